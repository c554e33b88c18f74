"""Loads the compiled op library (building it on first use).

Loading must never block a user: if the library cannot be built or loaded, `available()`
says so with ONE warning (the reason, the compiler log, how to retry) and the policy
(policy.py) uses the pure-TF reference. A build that failed is remembered on disk by
build.py, so later processes do not rebuild it. `get_library()` raises
`CustomOpUnavailableError` with the same reason (impl='custom').
Set `SG2TF_DISABLE_CUSTOM_OPS=1` to use the reference without trying to build.
"""

import os
import threading

from absl import logging
import tensorflow as tf

from sg2tf.custom_ops import _device


class CustomOpUnavailableError(RuntimeError):
  """impl='custom' was requested but the compiled ops cannot be used here."""


_lock = threading.Lock()
_state = {'lib': None, 'path': None, 'error': None, 'tried': False, 'warned': False}
# Test-only fault injection (selfcheck.inject_fault_for_tests): op name -> 'wrong' | 'raise'.
_faults = {}


def _load():
  from sg2tf.custom_ops import build  # pylint: disable=g-import-not-at-top
  if build.disabled():
    raise CustomOpUnavailableError('disabled by SG2TF_DISABLE_CUSTOM_OPS')
  want_cuda = _device.gpus_visible()
  if want_cuda and build.find_nvcc() is None:
    raise CustomOpUnavailableError(
        'TensorFlow sees a GPU but nvcc was not found, so there are no GPU kernels '
        '(install the CUDA toolkit or set $CUDA_HOME, then run python -m sg2tf.custom_ops.build)')
  try:
    path = build.find_built(cuda=want_cuda)
    if path is None:
      if not any(row['state'] == 'failed' for row in build.status(cuda=want_cuda)):
        logging.info('sg2tf: custom ops not built yet for this TF/compiler; building now '
                     '(first use).')
      path = build.build(cuda=want_cuda)  # Raises at once for a build that failed before.
  except build.BuildError as e:
    raise CustomOpUnavailableError(e.one_line()) from e
  except ValueError as e:  # A bad SG2TF_OPS_VARIANT.
    raise CustomOpUnavailableError(str(e)) from e
  try:
    lib = tf.load_op_library(str(path))
  except (tf.errors.NotFoundError, OSError) as e:
    raise CustomOpUnavailableError(f'could not load {path}: {e}'.replace('\n', ' ')) from e
  return lib, path


def get_library():
  """The loaded op module; raises CustomOpUnavailableError (cached) when unavailable."""
  with _lock:
    if not _state['tried']:
      _state['tried'] = True
      try:
        _state['lib'], _state['path'] = _load()
      except CustomOpUnavailableError as e:
        _state['error'] = str(e)
    if _state['lib'] is None:
      raise CustomOpUnavailableError(
          f'sg2tf custom ops are unavailable: {_state["error"]}. Use impl="ref" or fix the cause.')
    return _state['lib']


def library_path():
  """Path of the loaded library (None when not loaded)."""
  return _state['path']


def available() -> bool:
  """Whether the library loads; the first False logs ONE warning with the reason."""
  try:
    get_library()
    return True
  except CustomOpUnavailableError as e:
    with _lock:
      if not _state['warned']:
        _state['warned'] = True
        logging.warning('%s Falling back to the pure-TF reference ops (impl="ref").', e)
    return False


def active_faults():
  """Test-only faults: inject_fault_for_tests (sg2tf.selfcheck) and, for subprocesses,
  SG2TF_TEST_INJECT_FAULT=op:kind[,op:kind] (kind 'wrong' or 'raise')."""
  out = {}
  for item in filter(None, (s.strip() for s in
                            os.environ.get('SG2TF_TEST_INJECT_FAULT', '').split(','))):
    op, _, kind = item.partition(':')
    out[op] = kind or 'wrong'
  out.update(_faults)
  return out


def apply_fault(op: str, y):
  """Test-only: corrupts (or fails) a custom op's output when a fault is injected for op."""
  kind = active_faults().get(op) if (_faults or 'SG2TF_TEST_INJECT_FAULT' in os.environ) else None
  if kind is None:
    return y
  if kind == 'raise':
    raise tf.errors.InternalError(None, None, f'{op}: injected kernel fault (test hook)')
  return y * 1.25 + 0.5


def _reset_for_tests():
  with _lock:
    _state.update(lib=None, path=None, error=None, tried=False, warned=False)
