"""bias_act CUDA kernel without TensorFlow: nvcc compiles it for the production targets
(always, when nvcc exists) and, on a machine with a GPU and CuPy, ctypes drives it on CuPy
arrays against a NumPy float64 reference: every activation x grad mode (0, 1, 2) x clamp x
dtype x bias layout.

Plain unittest + NumPy (+ CuPy): the GPU machines have no TensorFlow and maybe no absl.
"""

import ctypes
import functools
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

from tests.gpu import nvcc_util

KERNEL = nvcc_util.CC_DIR / 'kernels' / 'bias_act_kernel.cu.cc'
HARNESS = pathlib.Path(__file__).resolve().parent / 'bias_act_harness.cu'
# Production targets (build.py's nvcc_flags()) plus compute_80 PTX, so that other GPUs
# (sm_86, sm_89, ...) can run the tests through the driver's JIT.
GENCODE = ['-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=sm_90',
           '-gencode', 'arch=compute_80,code=compute_80']
DTYPES = {'float32': 0, 'float16': 1, 'bfloat16': 2}
CUDA_ERROR_INVALID_VALUE = 1

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805
# name: (index, grad_ref, default alpha, default gain), as activation_funcs in
# sg2tf/custom_ops/bias_act.py (checked against it when TensorFlow is importable).
ACTS = {
    'linear': (0, '', 0.0, 1.0),
    'relu': (1, 'y', 0.0, np.sqrt(2)),
    'lrelu': (2, 'y', 0.2, np.sqrt(2)),
    'tanh': (3, 'y', 0.0, 1.0),
    'sigmoid': (4, 'y', 0.0, 1.0),
    'elu': (5, 'y', 1.0, 1.0),
    'selu': (6, 'y', 0.0, 1.0),
    'softplus': (7, 'y', 0.0, 1.0),
    'swish': (8, 'x', 0.0, np.sqrt(2)),  # NVIDIA's default gain (issue 13 §3)
}
REF_KIND = {'': 0, 'x': 1, 'y': 2}


def np_act(act, v, alpha):
  """Forward f(v) and its derivatives f'(v), f''(v), written in v (the kernel uses the
  output a for 'y' activations), float64."""
  sg = 1 / (1 + np.exp(-v))
  t = np.tanh(v)
  em = np.exp(np.minimum(v, 0))
  return {
      'linear': (v, np.ones_like(v), np.zeros_like(v)),
      'relu': (np.maximum(v, 0), (v > 0) * 1.0, np.zeros_like(v)),
      'lrelu': (np.where(v > 0, v, alpha * v), np.where(v > 0, 1.0, alpha), np.zeros_like(v)),
      'tanh': (t, 1 - t**2, -2 * t * (1 - t**2)),
      'sigmoid': (sg, sg * (1 - sg), sg * (1 - sg) * (1 - 2 * sg)),
      'elu': (np.where(v >= 0, v, alpha * (em - 1)), np.where(v >= 0, 1.0, alpha * em),
              np.where(v >= 0, 0.0, alpha * em)),
      'selu': (_SELU_SCALE * np.where(v > 0, v, _SELU_ALPHA * (em - 1)),
               _SELU_SCALE * np.where(v > 0, 1.0, _SELU_ALPHA * em),
               _SELU_SCALE * np.where(v > 0, 0.0, _SELU_ALPHA * em)),
      'softplus': (np.logaddexp(0, v), sg, sg * (1 - sg)),
      'swish': (v * sg, sg * (1 + v * (1 - sg)), sg * (1 - sg) * (2 + v * (1 - 2 * sg))),
  }[act]


def _nvcc():
  """nvcc_util.nvcc_path() imports sg2tf.custom_ops (TensorFlow), which GPU machines lack;
  fall back to a search that does not need it."""
  try:
    return nvcc_util.nvcc_path()
  except ImportError:
    return shutil.which('nvcc') or next(
        (p for p in ('/usr/local/cuda/bin/nvcc',) if pathlib.Path(p).exists()), None)


@functools.lru_cache(maxsize=None)
def _load_harness():
  """One nvcc run for the whole file: kernel + harness for the production targets."""
  out_dir = pathlib.Path(tempfile.mkdtemp(prefix='sg2tf_bias_act_'))
  lib_path = out_dir / 'bias_act_harness.so'
  cmd = [_nvcc(), '-shared', '-std=c++17', '-O3', '--expt-relaxed-constexpr', '-Xcompiler',
         '-fPIC', '-DNDEBUG', f'-I{nvcc_util.CC_DIR}', *GENCODE, '-o', str(lib_path),
         '-x', 'cu', str(KERNEL), '-x', 'cu', str(HARNESS)]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise AssertionError(f'nvcc failed:\n{" ".join(cmd)}\n{proc.stdout}{proc.stderr}')
  lib = ctypes.CDLL(str(lib_path))
  shutil.rmtree(out_dir, ignore_errors=True)  # Loaded: the file is no longer needed.
  lib.sg2tf_bias_act_num_acts.restype = ctypes.c_int
  lib.sg2tf_bias_act_ref_kind.argtypes = [ctypes.c_int]
  lib.sg2tf_bias_act_ref_kind.restype = ctypes.c_int
  lib.sg2tf_bias_act_launch.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p] + [
      ctypes.c_void_p] * 7
  lib.sg2tf_bias_act_launch.restype = ctypes.c_int
  lib.sg2tf_bias_act_error_string.argtypes = [ctypes.c_int]
  lib.sg2tf_bias_act_error_string.restype = ctypes.c_char_p
  return lib


def _args(size, channels, inner, act, grad, has_bias, has_xref, has_yref, has_dy,
          alpha, gain, clamp):
  ints = (ctypes.c_int64 * 9)(size, channels, inner, act, grad, int(has_bias), int(has_xref),
                              int(has_yref), int(has_dy))
  floats = (ctypes.c_float * 3)(alpha, gain, clamp)
  return ints, floats


def _to_bf16_bits(a):
  """float32 -> bfloat16 bits (uint16), round to nearest even (finite inputs)."""
  u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
  return ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _from_bf16_bits(b):
  return (np.asarray(b).astype(np.uint32) << 16).view(np.float32)


def _stored(a, dtype):
  """The float32 values that `a` holds once stored as dtype."""
  a = np.asarray(a, np.float32)
  if dtype == 'bfloat16':
    return _from_bf16_bits(_to_bf16_bits(a))
  return a.astype(dtype).astype(np.float32)


class BiasActCompileTest(unittest.TestCase):
  """Needs nvcc only (no GPU): the sources compile and link for the production targets,
  the kernel's tables match bias_act.py, and bad parameters are rejected before any CUDA
  call."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if _nvcc() is None:
      raise unittest.SkipTest('nvcc not found')
    cls.lib = _load_harness()

  def test_tables_match_python(self):
    self.assertEqual(self.lib.sg2tf_bias_act_num_acts(), len(ACTS))
    for name, (index, grad_ref, _, _) in ACTS.items():
      self.assertEqual(self.lib.sg2tf_bias_act_ref_kind(index), REF_KIND[grad_ref], name)
    try:
      from sg2tf.custom_ops.bias_act import activation_funcs  # pylint: disable=g-import-not-at-top
    except ImportError:
      return  # No TensorFlow here (the GPU machines): the kernel side was checked above.
    self.assertEqual(
        {k: (s.index, s.grad_ref, s.def_alpha, s.def_gain) for k, s in activation_funcs.items()},
        {k: (i, r, a, float(g)) for k, (i, r, a, g) in ACTS.items()})

  def test_invalid_parameters_are_rejected(self):
    def launch(**kw):
      p = dict(size=8, channels=2, inner=1, act=2, grad=0, has_bias=0, has_xref=0, has_yref=0,
               has_dy=0, alpha=0.2, gain=1.0, clamp=-1.0)
      p.update(kw)
      ptr = p.pop('ptr', 16)  # Never dereferenced: validation comes first.
      ints, floats = _args(**p)
      refs = [ptr if p[k] else None for k in ('has_bias', 'has_xref', 'has_yref', 'has_dy')]
      return self.lib.sg2tf_bias_act_launch(0, ints, floats, ptr, *refs, ptr, None)

    bad = [dict(act=9), dict(act=-1), dict(grad=3), dict(channels=0), dict(inner=0),
           dict(ptr=None),                      # x and y null
           dict(grad=1),                        # lrelu derivative without yref
           dict(act=8, grad=1, has_yref=1),     # swish derivative without xref
           dict(act=3, grad=2, has_yref=1)]     # second derivative without dy
    for kw in bad:
      self.assertEqual(launch(**kw), CUDA_ERROR_INVALID_VALUE, kw)
    self.assertEqual(launch(size=0, ptr=None), 0)  # Nothing to do: success, no CUDA call.


class BiasActCudaTest(unittest.TestCase):
  """Needs a GPU, CuPy and nvcc."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    try:
      import cupy  # pylint: disable=g-import-not-at-top
      if cupy.cuda.runtime.getDeviceCount() < 1:
        raise unittest.SkipTest('no CUDA device')
    except unittest.SkipTest:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise unittest.SkipTest(f'CuPy/CUDA not usable: {e}')
    if _nvcc() is None:
      raise unittest.SkipTest('nvcc not found')
    cls.cp = cupy
    cls.lib = _load_harness()

  def _dev(self, a, dtype):
    """float32 host array -> (device array of dtype, the float32 values it holds)."""
    cp = self.cp
    if dtype == 'bfloat16':
      return cp.asarray(_to_bf16_bits(a)), _stored(a, dtype)
    return cp.asarray(np.asarray(a, np.float32).astype(dtype)), _stored(a, dtype)

  def _host(self, d, dtype):
    h = self.cp.asnumpy(d)
    return _from_bf16_bits(h) if dtype == 'bfloat16' else h.astype(np.float32)

  def _launch(self, dtype, shape, axis, act, grad, x, b=None, xref=None, yref=None, dy=None,
              alpha=0.0, gain=1.0, clamp=-1.0, out=None):
    """Device arrays in, device array out (NaN-filled first unless `out` is given)."""
    cp = self.cp
    channels = shape[axis] if shape else 1
    inner = int(np.prod(shape[axis + 1:])) if shape else 1
    size = int(np.prod(shape))
    if out is None:
      out = cp.full(x.shape, 0x7fc0 if dtype == 'bfloat16' else np.nan, dtype=x.dtype)
    ints, floats = _args(size, channels, inner, ACTS[act][0], grad, b is not None,
                         xref is not None, yref is not None, dy is not None, alpha, gain, clamp)
    ptr = lambda a: None if a is None else a.data.ptr
    stream = cp.cuda.get_current_stream()
    err = self.lib.sg2tf_bias_act_launch(DTYPES[dtype], ints, floats, ptr(x), ptr(b), ptr(xref),
                                         ptr(yref), ptr(dy), ptr(out), stream.ptr)
    self.assertEqual(err, 0, self.lib.sg2tf_bias_act_error_string(err))
    stream.synchronize()
    return out

  def _check(self, got, want, tol, msg):
    self.assertEqual(got.shape, want.shape, msg)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    err = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
    self.assertLessEqual(err, tol, msg)

  def test_all_modes_match_numpy(self):
    rng = np.random.RandomState(3)
    # Relative to the output's scale: float32 math with float32 (11-bit half, 8-bit
    # bfloat16) loads and stores; 'y' derivatives read the rounded output.
    tolerances = {'float32': 2e-5, 'float16': 4e-3, 'bfloat16': 3e-2}
    layouts = [((2, 5, 6, 37), 3, True),   # NHWC, channels last (inner == 1)
               ((2, 19, 4, 6), 1, True),   # NCHW, channel axis 1 (inner > 1)
               ((3, 7, 11), 2, False),     # no bias
               ((130,), 0, True)]          # 1-D
    for shape, axis, with_bias in layouts:
      x = (rng.standard_normal(shape) * 2).astype(np.float32)
      b = rng.standard_normal([shape[axis]]).astype(np.float32) if with_bias else None
      dy = rng.standard_normal(shape).astype(np.float32)
      ddx = rng.standard_normal(shape).astype(np.float32)
      for dtype, tol in tolerances.items():
        xd, xh = self._dev(x, dtype)
        bd, bh = self._dev(b, dtype) if with_bias else (None, None)
        dyd, dyh = self._dev(dy, dtype)
        ddxd, ddxh = self._dev(ddx, dtype)
        bshape = [1] * len(shape)
        bshape[axis] = -1
        v = xh.astype(np.float64) + (0 if bh is None else bh.reshape(bshape))
        for act, (_, grad_ref, alpha, gain) in ACTS.items():
          f, d1, d2 = np_act(act, v, alpha)
          for clamp in (-1.0, 0.7):
            msg = dict(shape=shape, axis=axis, dtype=dtype, act=act, clamp=clamp)
            want_y = f * gain
            if clamp >= 0:
              want_y = np.clip(want_y, -clamp, clamp)
            yd = self._launch(dtype, shape, axis, act, 0, xd, bd, alpha=alpha, gain=gain,
                              clamp=clamp)
            yh = self._host(yd, dtype)
            self._check(yh, want_y, tol, dict(msg, grad=0))
            # The derivative ops read the y the forward op stored (as bias_act.py passes it).
            yref = yd if (grad_ref == 'y' or clamp >= 0) else None
            xref = xd if grad_ref == 'x' else None
            # Clamped outputs pass no gradient; they were stored as T(clamp).
            mask = 1.0 if clamp < 0 else np.abs(yh) < _stored(clamp, dtype)
            g1 = self._launch(dtype, shape, axis, act, 1, dyd, bd, xref, yref, alpha=alpha,
                              gain=gain, clamp=clamp)
            self._check(self._host(g1, dtype), dyh * gain * d1 * mask, tol, dict(msg, grad=1))
            g2 = self._launch(dtype, shape, axis, act, 2, ddxd, bd, xref, yref, dyd, alpha=alpha,
                              gain=gain, clamp=clamp)
            self._check(self._host(g2, dtype), ddxh * dyh * gain * d2 * mask, tol,
                        dict(msg, grad=2))

  def test_large_grid_stride_and_in_place(self):
    # More elements than one grid's threads cover, odd channel count, written in place.
    cp = self.cp
    shape = (3, 97, 101, 67)
    x = np.random.RandomState(5).standard_normal(shape).astype(np.float32)
    b = np.linspace(-1, 1, shape[-1]).astype(np.float32)
    xd, bd = cp.asarray(x), cp.asarray(b)
    out = self._launch('float32', shape, 3, 'lrelu', 0, xd, bd, alpha=0.2, gain=np.sqrt(2),
                       out=xd)
    f, _, _ = np_act('lrelu', x.astype(np.float64) + b, 0.2)
    np.testing.assert_allclose(cp.asnumpy(out), f * np.sqrt(2), rtol=1e-6, atol=1e-6)

  def test_special_values(self):
    x = np.array([np.nan, np.inf, -np.inf, 100.0, -100.0, 0.0, 30.0, -30.0], np.float32)
    for act, (_, _, alpha, gain) in ACTS.items():
      xd, _ = self._dev(x, 'float32')
      y = self._host(self._launch('float32', x.shape, 0, act, 0, xd, alpha=alpha, gain=gain),
                     'float32')
      with np.errstate(all='ignore'):
        want = np_act(act, x.astype(np.float64), alpha)[0] * gain
      want[0] = np.nan  # NaN propagates through every activation.
      if act == 'swish':
        want[2] = np.nan  # -inf * sigmoid(-inf) = -inf * 0
      np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-30, err_msg=act)


if __name__ == '__main__':
  unittest.main()
