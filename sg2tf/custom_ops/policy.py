"""The op-level policy: which implementation the ops use and which formulation the modulated
convolution uses. Decided here and nowhere else; networks and layers do not carry it.

Implementation of `upfirdn2d` and `bias_act` (and of everything built on them):
  'custom'  the compiled C++/CUDA kernel (CustomOpUnavailableError with the reason if it
            cannot be loaded);
  'ref'     the pure-TF reference (XLA-compilable; what exported SavedModels contain);
  'auto'    custom when the library loads (and its start-up self-check passed), else the
            reference with ONE warning saying why.
An op's per-call `impl='custom'|'ref'` wins; its default `impl='auto'` follows the policy:
the innermost `with implementation(...)` scope, else the process default
(`set_implementation`, initially 'auto').

Formulation of the modulated convolution (the paper's fused form or the non-fused one):
  'gpu'   fused: one grouped convolution per layer, and the fused up-convolution as a grouped
          conv2d_transpose; what GPUs run. On a CPU its gradients need XLA
          (`tf.function(jit_compile=True)` with the 'ref' implementation).
  'cpu'   non-fused: scale activations, shared convolution, scale by the demodulation
          factors. A fused convolution asked for per call (`fused_modconv=True`) uses zero
          insertion + grouped conv instead of the grouped conv2d_transpose.
  'auto'  'gpu' when TensorFlow sees a GPU (the one device check, `_device.gpus_visible`)
          and the fused self-check did not fail, else 'cpu'.
A per-call `fused_modconv=True|False` on the layers/networks still wins for fusing.

Scopes are process-wide, not per thread, so that tf.distribute's replica threads see the
scope their strategy.run was called in. The policy is read when a function is traced: a
tf.function traced under one policy keeps it.
"""

import contextlib
import threading
from typing import Dict, Optional

from sg2tf.custom_ops import _device
from sg2tf.custom_ops import _loader

IMPLS = ('auto', 'custom', 'ref')
FORMULATIONS = ('auto', 'gpu', 'cpu')
# Paths the start-up self-check can switch off (sg2tf.custom_ops.selfcheck).
PATHS = ('bias_act', 'upfirdn2d', 'fused_modconv')

_lock = threading.RLock()
_defaults = {'impl': 'auto', 'formulation': 'auto'}
_scopes = []  # [(token, key, value)], innermost last.
_disabled: Dict[str, str] = {}  # path -> why it was switched off.


def check_impl(impl: str) -> str:
  if impl not in IMPLS:
    raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
  return impl


def check_formulation(formulation: str) -> str:
  if formulation not in FORMULATIONS:
    raise ValueError(f'formulation must be one of {FORMULATIONS}, got {formulation!r}')
  return formulation


def _current(key: str) -> str:
  with _lock:
    for _, k, v in reversed(_scopes):
      if k == key:
        return v
    return _defaults[key]


@contextlib.contextmanager
def _scope(key, value):
  if value is None:  # Lets callers write `with implementation(maybe_none):`.
    yield
    return
  token = object()
  with _lock:
    _scopes.append((token, key, value))
  try:
    yield
  finally:
    with _lock:
      _scopes[:] = [s for s in _scopes if s[0] is not token]


def implementation(impl: Optional[str]):
  """Scope: `with implementation('ref'): ...` makes the ops' default impl 'ref' inside.

  None leaves the policy as it is.
  """
  return _scope('impl', None if impl is None else check_impl(impl))


def formulation(name: Optional[str]):
  """Scope: `with formulation('gpu'): ...` uses the GPU (fused, grouped) formulation."""
  return _scope('formulation', None if name is None else check_formulation(name))


def set_implementation(impl: str) -> str:
  """Sets the process default implementation; returns the previous one."""
  with _lock:
    old, _defaults['impl'] = _defaults['impl'], check_impl(impl)
  return old


def set_formulation(name: str) -> str:
  """Sets the process default formulation; returns the previous one."""
  with _lock:
    old, _defaults['formulation'] = _defaults['formulation'], check_formulation(name)
  return old


def current_implementation() -> str:
  """The policy's implementation ('auto', 'custom' or 'ref') before resolving 'auto'."""
  return _current('impl')


def current_formulation() -> str:
  """The policy's formulation ('auto', 'gpu' or 'cpu') before resolving 'auto'."""
  return _current('formulation')


def requested_impl(impl: str = 'auto') -> str:
  """What a call asks for: its own impl unless 'auto', else the policy's (may be 'auto')."""
  check_impl(impl)
  return current_implementation() if impl == 'auto' else impl


def resolve_impl(impl: str = 'auto', op: Optional[str] = None) -> str:
  """'custom' or 'ref' for a call of op `op` ('bias_act', 'upfirdn2d') with `impl`."""
  impl = requested_impl(impl)
  if impl == 'ref':
    return 'ref'
  if impl == 'custom':
    _loader.get_library()
    return 'custom'
  if op is not None and op in _disabled:
    return 'ref'
  return 'custom' if _loader.available() else 'ref'


def resolve_formulation() -> str:
  """'gpu' or 'cpu' (see the module docstring)."""
  name = current_formulation()
  if name == 'auto':
    name = 'gpu' if _device.gpus_visible() and 'fused_modconv' not in _disabled else 'cpu'
  return name


def fused_modconv(fused: Optional[bool] = None) -> bool:
  """Whether a modulated conv runs fused: the call's choice, else the formulation's."""
  return resolve_formulation() == 'gpu' if fused is None else bool(fused)


def grouped_transpose() -> bool:
  """Whether a grouped transposed conv is one grouped conv2d_transpose (GPU formulation) or
  zero insertion + grouped conv (CPU formulation: TF has no grouped CPU kernel for it)."""
  return resolve_formulation() == 'gpu'


def disable(path: str, reason: str) -> None:
  """Switches off an 'auto' choice of `path` (one of PATHS) for this process."""
  if path not in PATHS:
    raise ValueError(f'path must be one of {PATHS}, got {path!r}')
  with _lock:
    _disabled[path] = reason


def disabled() -> Dict[str, str]:
  """{path: reason} of the paths switched off in this process."""
  with _lock:
    return dict(_disabled)


def _reset_for_tests():
  with _lock:
    _defaults.update(impl='auto', formulation='auto')
    _scopes.clear()
    _disabled.clear()
