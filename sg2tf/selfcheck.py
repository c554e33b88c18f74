"""Numerical self-checks: every accelerated path is compared with the reference before it is
trusted.

Paths (sg2tf.custom_ops.policy.PATHS):
  bias_act, upfirdn2d   compiled op vs pure-TF reference: forward, first and second order.
  fused_modconv         the fused (grouped-conv, GPU) formulation of the modulated conv vs
                        the non-fused one: forward and gradients, for up, down and no
                        resampling. On a CPU it runs under XLA (TF has no CPU gradient for
                        grouped convolutions otherwise), with the reference ops.

`ensure_trusted(who)` is what training, evaluation and export call at start-up: it checks
the paths the current policy would use on the default device, switches a failing path off
with ONE warning that names it and the measured error (the run continues on the reference
path), or raises SelfCheckError when that path was asked for explicitly
(`--impl=custom`, `formulation('gpu')`). Results are cached on disk per build + device (the
op library's cache directory; the fused check under $SG2TF_CACHE_DIR/selfcheck), so a
second run pays nothing; only passing results are cached, a failure is measured again by
the next process. `python -m sg2tf.doctor` runs the same checks on every device.

Test-only hooks: `inject_fault_for_tests(op, 'wrong' | 'raise')` makes a compiled op return
wrong values or raise (also `SG2TF_TEST_INJECT_FAULT=bias_act:wrong,upfirdn2d:raise`);
while a fault is injected nothing is read from or written to the cache.
"""

import contextlib
import hashlib
import json
import os
import pathlib
import threading
from typing import Dict, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from sg2tf import layers
from sg2tf import tool_util
from sg2tf import custom_ops
from sg2tf.custom_ops import _device, _loader, build, policy

# Max |custom - ref| / max(1, max |ref|) accepted per quantity. Float32 kernels agree to
# ~1e-6 here; a wrong kernel is off by O(1).
TOLERANCE = 1e-4
_VERSION = 1  # Bump when the checks change: older cached results are then ignored.
_SOURCES = ('selfcheck.py', 'layers.py', 'custom_ops/bias_act.py', 'custom_ops/upfirdn2d.py',
            'custom_ops/conv2d_resample.py')
_lock = threading.Lock()
_memo: Dict[str, dict] = {}  # In-process results by cache key.
_warned = set()


class SelfCheckError(custom_ops.CustomOpUnavailableError):
  """A path that was asked for explicitly failed its self-check."""


# ------------------------------------------------------------------ measurements

def _err(a, b) -> float:
  if a is None and b is None:
    return 0.0
  a = np.zeros_like(np.asarray(b)) if a is None else np.asarray(a, np.float64)
  b = np.zeros_like(a) if b is None else np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b), initial=0.0) / max(1.0, np.max(np.abs(b), initial=0.0)))


def _orders(fn, x, params, variables=(), seed=0):
  """(y, first-order grads, second-order grads) of fn(x, *params) w.r.t. [x] + params +
  variables (variables: ones fn reads itself, e.g. a layer's weights).

  First order: d/d(...) sum(y * u). Second order: d/d(...) sum(dy/dx^2), the R1 /
  path-length pattern (a gradient penalty differentiated again).
  """
  inputs = [x] + list(params)
  wrt = inputs + list(variables)  # Trainable variables are watched by the tapes themselves.
  with tf.GradientTape(persistent=True) as t2:
    t2.watch(inputs)
    with tf.GradientTape() as t1:
      t1.watch(inputs)
      y = fn(x, *params)
      u = tf.random.stateless_normal(tf.shape(y), [seed, 1])
      loss = tf.reduce_sum(y * u)
    g = t1.gradient(loss, wrt)
    penalty = tf.reduce_sum(tf.square(g[0]))
  h = t2.gradient(penalty, wrt)
  return y, g, h


def _compare(fn_a, fn_b, x, params, second_order=True) -> Dict[str, float]:
  ya, ga, ha = _orders(fn_a, x, params)
  yb, gb, hb = _orders(fn_b, x, params)
  out = {'forward': _err(ya, yb), 'grad': max(_err(a, b) for a, b in zip(ga, gb))}
  if second_order:
    out['grad2'] = max(_err(a, b) for a, b in zip(ha, hb))
  return out


def _rand(shape, seed, scale=1.0):
  return tf.constant(np.random.RandomState(seed).standard_normal(shape).astype(np.float32)
                     * scale)


def _bias_act_cases():
  x, b = _rand([2, 6, 6, 8], 1, 2.0), _rand([8], 2, 0.5)
  for act, clamp in (('lrelu', None), ('lrelu', 0.8), ('tanh', None), ('swish', None),
                     ('linear', 0.5)):
    yield f'{act}{"" if clamp is None else f" clamp={clamp}"}', x, b, act, clamp


def check_ops(device: str) -> Dict[str, dict]:
  """Compiled vs reference bias_act and upfirdn2d on `device` (the library must load)."""
  results = {}
  with tf.device(device):
    worst, err = {}, None
    try:
      for name, x, b, act, clamp in _bias_act_cases():
        fns = [lambda v, bb, i=i: custom_ops.bias_act(v, bb, act=act, clamp=clamp, impl=i)
               for i in ('custom', 'ref')]
        e = _compare(fns[0], fns[1], x, [b])
        worst = {k: max(worst.get(k, 0.0), v) for k, v in e.items()}
        if max(e.values()) > TOLERANCE:
          err = err or f'{name}: max error {max(e.values()):.3g}'
    except Exception as e:  # pylint: disable=broad-except
      err = _describe(e)
    results['bias_act'] = _result(worst, err)
    worst, err = {}, None
    f = custom_ops.setup_filter([1, 3, 3, 1])
    x = _rand([2, 8, 8, 4], 3)
    try:
      for name, op in (('up2', custom_ops.upsample2d), ('down2', custom_ops.downsample2d),
                       ('filter', custom_ops.filter2d)):
        # Squared first, so that the second derivative runs through the op's gradient.
        fns = [lambda v, i=i: op(tf.square(v), f, impl=i) for i in ('custom', 'ref')]
        e = _compare(fns[0], fns[1], x, [])
        worst = {k: max(worst.get(k, 0.0), v) for k, v in e.items()}
        if max(e.values()) > TOLERANCE:
          err = err or f'{name}: max error {max(e.values()):.3g}'
    except Exception as e:  # pylint: disable=broad-except
      err = _describe(e)
    results['upfirdn2d'] = _result(worst, err)
  return results


def _modconv_nonfused_down(x, s, weight, f):
  x = x * s[:, tf.newaxis, tf.newaxis, :]
  y = custom_ops.conv2d_resample(x, weight, f=f, down=2, padding=weight.shape[0] // 2)
  d = tf.math.rsqrt(tf.matmul(tf.square(s), tf.reduce_sum(tf.square(weight), [0, 1])) + 1e-8)
  return y * d[:, tf.newaxis, tf.newaxis, :]


def _modconv_fused_down(x, s, weight, f):
  n, h, w, ci = x.shape
  k, co = weight.shape[0], weight.shape[3]
  ww = weight[tf.newaxis] * s[:, tf.newaxis, tf.newaxis, :, tf.newaxis]  # [N, k, k, I, O]
  ww = ww * tf.math.rsqrt(tf.reduce_sum(tf.square(ww), axis=[1, 2, 3]) + 1e-8)[
      :, tf.newaxis, tf.newaxis, tf.newaxis, :]
  xg = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * ci])
  wg = tf.reshape(tf.transpose(ww, [1, 2, 3, 0, 4]), [k, k, ci, n * co])
  y = custom_ops.conv2d_resample(xg, wg, f=f, down=2, padding=k // 2, groups=n)
  y = tf.reshape(y, [h // 2, w // 2, n, co])
  return tf.transpose(y, [2, 0, 1, 3])


def modconv_case_fns(case: str, resolution: int = 8, channels: int = 4, batch: int = 2):
  """(fused fn, non-fused fn, x, params, variables) of one modulated-conv case ('none',
  'up', 'down'); fn(x, *params), gradients also w.r.t. variables.

  'none' and 'up' run the real layer (ModulatedConv2D, fused_modconv True / False);
  'down' (no StyleGAN2 layer modulates a down-conv, but the grouped conv is the same)
  compares conv2d_resample's grouped down-conv with the non-fused formulation.
  """
  x = _rand([batch, resolution, resolution, channels], 11)
  w = _rand([batch, 8], 12)
  if case in ('none', 'up'):
    lyr = layers.ModulatedConv2D(channels + 1, 3, w_dim=8, up=2 if case == 'up' else 1)
    lyr.build([None, resolution, resolution, channels])
    for i, v in enumerate(lyr.weights):
      v.assign(np.random.RandomState(20 + i).standard_normal(v.shape).astype(np.float32)
               * (0.3 if len(v.shape) < 2 else 1.0))
    return (lambda xx, ww: lyr(xx, ww, fused_modconv=True),
            lambda xx, ww: lyr(xx, ww, fused_modconv=False), x, [w], lyr.trainable_weights)
  if case != 'down':
    raise ValueError(f'case must be none, up or down, got {case!r}')
  f = custom_ops.setup_filter([1, 3, 3, 1])
  s = _rand([batch, channels], 13, 0.5) + 1.0
  weight = _rand([3, 3, channels, channels + 1], 14)
  return (lambda xx, ss, ww: _modconv_fused_down(xx, ss, ww, f),
          lambda xx, ss, ww: _modconv_nonfused_down(xx, ss, ww, f), x, [s, weight], [])


def compare_modconv(case: str, resolution: int = 8, second_order: bool = False,
                    jit_compile: Optional[bool] = None, device: str = '/CPU:0'):
  """Max errors of the GPU (fused, grouped) formulation vs the non-fused one for one case.

  jit_compile None: XLA on CPU (where TF needs it for grouped-conv gradients), not on GPU.
  Under XLA the reference ops are used (XLA cannot compile custom ops).
  """
  if jit_compile is None:
    jit_compile = 'GPU' not in device.upper()
  fused, nonfused, x, params, variables = modconv_case_fns(case, resolution)
  impl = 'ref' if jit_compile else None

  def compare(xx, *pp):
    with custom_ops.implementation(impl), custom_ops.formulation('gpu'):
      ya, ga, ha = _orders(fused, xx, list(pp), variables)
    with custom_ops.implementation(impl), custom_ops.formulation('cpu'):
      yb, gb, hb = _orders(nonfused, xx, list(pp), variables)
    return ya, yb, ga, gb, ha, hb
  with tf.device(device):
    ya, yb, ga, gb, ha, hb = tf.function(compare, jit_compile=jit_compile)(x, *params)
  out = {'forward': _err(ya, yb), 'grad': max(_err(a, b) for a, b in zip(ga, gb))}
  if second_order:
    out['grad2'] = max(_err(a, b) for a, b in zip(ha, hb))
  return out


def check_fused_modconv(device: str, jit_compile: Optional[bool] = None) -> Dict[str, dict]:
  worst, err = {}, None
  try:
    for case in ('none', 'up', 'down'):
      e = compare_modconv(case, jit_compile=jit_compile, device=device)
      worst = {k: max(worst.get(k, 0.0), v) for k, v in e.items()}
      if max(e.values()) > TOLERANCE:
        err = err or f'{case}: max error {max(e.values()):.3g}'
  except Exception as e:  # pylint: disable=broad-except
    err = _describe(e)
  return {'fused_modconv': _result(worst, err)}


def _describe(e: BaseException) -> str:
  text = getattr(e, 'message', None) or str(e) or type(e).__name__
  # TF's graph errors wrap the cause in "Graph execution error:" / "in user code:" and
  # trace lines; keep the line that says what went wrong.
  noise = ('[[', 'File ', 'Detected at', 'Graph execution error', 'in user code')
  lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
  useful = [l for l in lines if not l.startswith(noise)] or lines or [type(e).__name__]
  return f'{type(e).__name__}: {useful[-1].split(" [Op:")[0][:300]}'


def _result(max_errors, error):
  return {'ok': error is None, 'max_error': max_errors, 'error': error}


# ------------------------------------------------------------------ test hooks

@contextlib.contextmanager
def inject_fault_for_tests(op: str, kind: str):
  """Test-only: makes compiled op `op` return wrong values ('wrong') or raise ('raise')."""
  if op not in ('bias_act', 'upfirdn2d') or kind not in ('wrong', 'raise'):
    raise ValueError(f'inject_fault_for_tests({op!r}, {kind!r})')
  _loader._faults[op] = kind  # pylint: disable=protected-access
  try:
    yield
  finally:
    _loader._faults.pop(op, None)  # pylint: disable=protected-access


def _faults_active() -> bool:
  return bool(_loader.active_faults())


# ------------------------------------------------------------------ cache

def _sources_hash() -> str:
  h = hashlib.sha256(f'{_VERSION} {tf.__version__}'.encode())
  root = pathlib.Path(__file__).resolve().parent
  for rel in _SOURCES:
    h.update((root / rel).read_bytes())
  return h.hexdigest()[:16]


def _cache_file(kind: str, device: str, extra: str = '') -> Optional[pathlib.Path]:
  desc = _device.describe(device)
  key = hashlib.sha256(f'{kind}|{desc}|{extra}|{_sources_hash()}'.encode()).hexdigest()[:16]
  if kind == 'ops':
    lib = _loader.library_path()
    if lib is None:
      return None
    return pathlib.Path(lib).parent / f'selfcheck-{key}.json'
  return build.cache_root().parent / 'selfcheck' / f'{kind}-{key}.json'


def _read(path):
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _write(path, payload):
  try:
    tool_util.save_text(str(path), json.dumps(payload, indent=1))
  except OSError as e:  # A read-only cache only costs the check next time.
    logging.debug('sg2tf self-check: cannot cache %s: %s', path, e)


def _cached(kind, device, run, extra=''):
  """run() -> results, memoised in-process and on disk (unless a fault is injected)."""
  faults = _faults_active()
  path = _cache_file(kind, device, extra)
  key = str(path) if path else f'{kind}|{device}|{extra}'
  with _lock:
    if not faults and key in _memo:
      return _memo[key]
  if path is not None and not faults:
    payload = _read(path)
    if payload and payload.get('device') == _device.describe(device):
      with _lock:
        _memo[key] = payload['results']
      return payload['results']
  results = run()
  # Only passes are kept: a failure (perhaps transient, e.g. out of memory) is measured again
  # by the next process, and a fixed machine is trusted again without --force.
  if not faults and all(r['ok'] for r in results.values()):
    with _lock:
      _memo[key] = results
    if path is not None:
      _write(path, {'device': _device.describe(device), 'tf': tf.__version__,
                    'library': str(_loader.library_path() or ''), 'results': results})
  return results


# ------------------------------------------------------------------ start-up

def paths_in_use():
  """{path: explicit?} of the accelerated paths the current policy would use here."""
  impl, form = policy.current_implementation(), policy.current_formulation()
  out = {}
  if impl == 'custom' or (impl == 'auto' and _loader.available()):
    for op in ('bias_act', 'upfirdn2d'):
      if impl == 'custom' or op not in policy.disabled():
        out[op] = impl == 'custom'
  if form == 'gpu' or (form == 'auto' and _device.gpus_visible()
                       and 'fused_modconv' not in policy.disabled()):
    out['fused_modconv'] = form == 'gpu'
  return out


def ensure_trusted(who: str, jit_compile: bool = False) -> Dict[str, dict]:
  """Self-checks the paths the current policy would use on the default device (cached).

  A failing path is switched off (policy.disable) with ONE warning naming it and the
  measured error; an explicitly requested one raises SelfCheckError instead.
  Returns {path: result} of the paths checked.
  """
  in_use = paths_in_use()
  if not in_use:
    return {}
  if policy.current_implementation() == 'custom':
    _loader.get_library()  # CustomOpUnavailableError with the reason, before any check.
  if not tf.executing_eagerly():
    raise RuntimeError('selfcheck.ensure_trusted must be called eagerly (at start-up, not '
                       'inside a tf.function)')
  device = _device.default_device()
  results = {}
  if 'bias_act' in in_use or 'upfirdn2d' in in_use:
    results.update(_cached('ops', device, lambda: check_ops(device)))
  if 'fused_modconv' in in_use:
    results.update(_cached('fused', device, lambda: check_fused_modconv(device, jit_compile),
                           extra=f'jit={jit_compile}'))
  failed = {p: results[p] for p in in_use if not results[p]['ok']}
  if not failed:
    return {p: results[p] for p in in_use}
  desc = _device.describe(device)
  explicit = [p for p in failed if in_use[p]]
  if explicit:
    raise SelfCheckError(
        f'{who}: the self-check on {desc} failed for {", ".join(explicit)}, which was asked for '
        f'explicitly ({_summary(failed)}). Use --impl=auto or --impl=ref (or the '
        f"formulation 'cpu'), or report it with the output of python -m sg2tf.doctor.")
  for p, r in failed.items():
    policy.disable(p, r['error'])
  message = (f'sg2tf self-check on {desc} failed, switched off: {_summary(failed)}; {who} '
             f'continues on the reference path. Details: python -m sg2tf.doctor')
  with _lock:
    if message not in _warned:
      _warned.add(message)
      logging.warning('%s', message)
  return {p: results[p] for p in in_use}


def _summary(failed) -> str:
  names = {'bias_act': 'custom bias_act', 'upfirdn2d': 'custom upfirdn2d',
           'fused_modconv': 'fused modulated conv'}
  return '; '.join(f'{names[p]} ({r["error"]})' for p, r in failed.items())


def _reset_for_tests():
  with _lock:
    _memo.clear()
    _warned.clear()
