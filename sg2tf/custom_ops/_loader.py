"""Loads the compiled op library and resolves `impl='auto'|'custom'|'ref'`.

`impl='auto'` must never block a user: if the library cannot be built or loaded, or it has
no kernels for the devices TF sees, the pure-TF reference runs instead and ONE warning says
why. `impl='custom'` raises `CustomOpUnavailableError` with the same reason.
Set `SG2TF_DISABLE_CUSTOM_OPS=1` to make 'auto' use the reference without trying to build.
"""

import os
import threading

from absl import logging
import tensorflow as tf

IMPLS = ('auto', 'custom', 'ref')


class CustomOpUnavailableError(RuntimeError):
  """impl='custom' was requested but the compiled ops cannot be used here."""


_lock = threading.Lock()
_state = {'lib': None, 'error': None, 'tried': False, 'warned': False, 'has_gpu_kernels': False}


def _gpus_visible() -> bool:
  try:
    return bool(tf.config.list_physical_devices('GPU'))
  except Exception:  # pylint: disable=broad-except
    return False


def _load():
  from sg2tf.custom_ops import build  # pylint: disable=g-import-not-at-top
  if os.environ.get('SG2TF_DISABLE_CUSTOM_OPS', '') not in ('', '0'):
    raise CustomOpUnavailableError('disabled by SG2TF_DISABLE_CUSTOM_OPS')
  want_cuda = _gpus_visible()
  if want_cuda and build.find_nvcc() is None:
    raise CustomOpUnavailableError(
        'TensorFlow sees a GPU but nvcc was not found, so there are no GPU kernels '
        '(install the CUDA toolkit or set $CUDA_HOME, then run python -m sg2tf.custom_ops.build)')
  path = build.library_dir(want_cuda) / (build.CUDA_LIB_NAME if want_cuda else build.LIB_NAME)
  if not path.exists():
    logging.info('sg2tf: custom ops not built yet for this TF/compiler; building now (first use).')
  try:
    path = build.build(cuda=want_cuda)
  except build.BuildError as e:
    raise CustomOpUnavailableError(f'build failed: {e}') from e
  try:
    lib = tf.load_op_library(str(path))
  except (tf.errors.NotFoundError, OSError) as e:
    raise CustomOpUnavailableError(f'could not load {path}: {e}') from e
  return lib, want_cuda


def get_library():
  """The loaded op module; raises CustomOpUnavailableError (cached) when unavailable."""
  with _lock:
    if not _state['tried']:
      _state['tried'] = True
      try:
        _state['lib'], _state['has_gpu_kernels'] = _load()
      except CustomOpUnavailableError as e:
        _state['error'] = str(e)
    if _state['lib'] is None:
      raise CustomOpUnavailableError(
          f'sg2tf custom ops are unavailable: {_state["error"]}. Use impl="ref" or fix the cause.')
    return _state['lib']


def resolve_impl(impl: str) -> str:
  """Returns 'custom' or 'ref' for a user's impl choice."""
  if impl not in IMPLS:
    raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
  if impl == 'ref':
    return 'ref'
  if impl == 'custom':
    get_library()
    return 'custom'
  try:
    get_library()
    return 'custom'
  except CustomOpUnavailableError as e:
    with _lock:
      if not _state['warned']:
        _state['warned'] = True
        logging.warning('%s Falling back to the pure-TF reference ops (impl="ref").', e)
    return 'ref'


def _reset_for_tests():
  with _lock:
    _state.update(lib=None, error=None, tried=False, warned=False, has_gpu_kernels=False)
