"""upfirdn2d CUDA kernel without TensorFlow: nvcc compiles it (always, when nvcc exists) and,
on a machine with a GPU and CuPy, ctypes drives it on CuPy arrays against the NumPy
reference over a sweep of up/down/filter/padding/flip/dtype.

Plain unittest + NumPy (+ CuPy): the GPU machines have no TensorFlow and maybe no absl.
"""

import ctypes
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

from tests.custom_ops.np_ref import np_upfirdn2d
from tests.gpu import nvcc_util

KERNEL = nvcc_util.CC_DIR / 'kernels' / 'upfirdn2d_kernel.cu.cc'
HARNESS = pathlib.Path(__file__).resolve().parent / 'upfirdn2d_harness.cu'
# Production targets, as build.py's nvcc_flags().
GENCODE = ['-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=sm_90']
DTYPES = {'float32': 0, 'float16': 1, 'bfloat16': 2}
ARG_NAMES = ('n', 'in_h', 'in_w', 'c', 'fh', 'fw', 'upx', 'upy', 'downx', 'downy',
             'padx0', 'padx1', 'pady0', 'pady1', 'flip')


_NVCC_UTIL_PATH = nvcc_util.nvcc_path


def _nvcc():
  """nvcc_util.nvcc_path() imports sg2tf.custom_ops (TensorFlow), which GPU machines may
  lack; fall back to a search that does not need it."""
  try:
    return _NVCC_UTIL_PATH()
  except ImportError:
    return shutil.which('nvcc') or next(
        (p for p in ('/usr/local/cuda/bin/nvcc',) if pathlib.Path(p).exists()), None)


def _load_harness():
  """Compiles kernel + harness into a shared library; returns the ctypes handle."""
  nvcc_util.nvcc_path = _nvcc  # compile_shared looks nvcc up through this name
  try:
    lib = nvcc_util.compile_shared([KERNEL, HARNESS], 'upfirdn2d_harness')
  finally:
    nvcc_util.nvcc_path = _NVCC_UTIL_PATH
  p64 = ctypes.POINTER(ctypes.c_int64)
  lib.sg2tf_upfirdn2d_out_size.argtypes = [p64, p64]
  lib.sg2tf_upfirdn2d_out_size.restype = ctypes.c_int
  lib.sg2tf_upfirdn2d_launch.argtypes = [ctypes.c_int, p64, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_void_p, ctypes.c_void_p]
  lib.sg2tf_upfirdn2d_launch.restype = ctypes.c_int
  lib.sg2tf_cuda_error_string.argtypes = [ctypes.c_int]
  lib.sg2tf_cuda_error_string.restype = ctypes.c_char_p
  return lib


def _args(**kw):
  return (ctypes.c_int64 * len(ARG_NAMES))(*[int(kw[k]) for k in ARG_NAMES])


def _to_bf16_bits(a):
  """float32 -> bfloat16 bits (uint16), round to nearest even (finite inputs)."""
  u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
  return ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _from_bf16_bits(b):
  return (b.astype(np.uint32) << 16).view(np.float32)


def _sweep(num=80, seed=2024):
  """Seeded cases: up/down in {1,2,4} per axis, filters 1..8 taps (non-square), padding
  -4..6 per side (kept so the output is non-empty), flip, odd sizes, N and C."""
  rng = np.random.RandomState(seed)
  cases = []
  for _ in range(num):
    upx, upy, downx, downy = (int(rng.choice([1, 2, 4])) for _ in range(4))
    fh, fw = int(rng.randint(1, 9)), int(rng.randint(1, 9))
    h, w = int(rng.randint(1, 14)), int(rng.randint(1, 14))
    px0, px1, py0, py1 = (int(rng.randint(-4, 7)) for _ in range(4))
    px1 = max(px1, fw - w * upx - px0)
    py1 = max(py1, fh - h * upy - py0)
    cases.append(dict(n=int(rng.choice([1, 2, 3])), in_h=h, in_w=w,
                      c=int(rng.choice([1, 3, 8, 33, 64, 130])), fh=fh, fw=fw, upx=upx, upy=upy,
                      downx=downx, downy=downy, padx0=px0, padx1=px1, pady0=py0, pady1=py1,
                      flip=int(rng.randint(2))))
  # StyleGAN2's uses: [1,3,3,1] up/down by 2 and filter-only, as upfirdn2d.py pads them.
  for (up, down, p0, p1) in ((2, 1, 2, 1), (1, 2, 1, 1), (1, 1, 2, 1)):
    cases.append(dict(n=2, in_h=16, in_w=16, c=64, fh=4, fw=4, upx=up, upy=up, downx=down,
                      downy=down, padx0=p0, padx1=p1, pady0=p0, pady1=p1, flip=0))
  return cases


def _reference(x, f, a):
  return np_upfirdn2d(x, f, (a['upx'], a['upy']), (a['downx'], a['downy']),
                      (a['padx0'], a['padx1'], a['pady0'], a['pady1']), bool(a['flip']))


class Upfirdn2dCompileTest(unittest.TestCase):
  """Needs nvcc only (no GPU): the sources compile for the production targets and the
  harness's host-side size arithmetic matches the reference."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if _nvcc() is None:
      raise unittest.SkipTest('nvcc not found')

  def test_kernel_compiles_for_production_targets(self):
    with tempfile.TemporaryDirectory(prefix='sg2tf_nvcc_') as tmp:
      cmd = [_nvcc(), '-x', 'cu', '-std=c++17', '-O3', '--expt-relaxed-constexpr',
             '-Xcompiler', '-fPIC', '-DNDEBUG', f'-I{nvcc_util.CC_DIR}', *GENCODE,
             '-c', str(KERNEL), '-o', str(pathlib.Path(tmp) / 'k.o')]
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
      self.assertEqual(proc.returncode, 0, f'{" ".join(cmd)}\n{proc.stdout}{proc.stderr}')

  def test_harness_links_and_sizes_match_reference(self):
    lib = _load_harness()
    out = (ctypes.c_int64 * 2)()
    rng = np.random.RandomState(0)
    for a in _sweep(num=25):
      x = rng.standard_normal([1, a['in_h'], a['in_w'], 1])
      f = np.ones([a['fh'], a['fw']])
      self.assertEqual(lib.sg2tf_upfirdn2d_out_size(_args(**a), out), 0)
      self.assertEqual(tuple(out), _reference(x, f, a).shape[1:3], a)
    empty = dict(_sweep(num=1)[0], in_h=2, in_w=2, fh=5, fw=5, upx=1, upy=1,
                 padx0=0, padx1=0, pady0=0, pady1=0)
    self.assertEqual(lib.sg2tf_upfirdn2d_out_size(_args(**empty), out), 1)


class Upfirdn2dCudaTest(unittest.TestCase):
  """Needs a GPU, CuPy and nvcc."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    try:
      ok, why = nvcc_util.gpu_available()
    except ImportError as e:  # nvcc_util's nvcc lookup imports TensorFlow
      ok, why = False, f'nvcc lookup needs TensorFlow: {e}'
      try:
        import cupy  # pylint: disable=g-import-not-at-top
        ok, why = cupy.cuda.runtime.getDeviceCount() > 0 and _nvcc() is not None, 'no GPU/nvcc'
      except Exception as e2:  # pylint: disable=broad-except
        why = f'CuPy/CUDA not usable: {e2}'
    if not ok:
      raise unittest.SkipTest(why)
    import cupy  # pylint: disable=g-import-not-at-top
    cls.cp = cupy
    cls.lib = _load_harness()

  def _run(self, x, f, a, dtype):
    """x: float32 NHWC host array, stored on the device as `dtype`; returns (y, x as stored)."""
    cp = self.cp
    if dtype == 'bfloat16':
      bits = _to_bf16_bits(x)
      x_dev, x_used = cp.asarray(bits), _from_bf16_bits(bits)
    else:
      x_used = x.astype(dtype)
      x_dev = cp.asarray(x_used)
      x_used = x_used.astype(np.float32)
    out = (ctypes.c_int64 * 2)()
    self.assertEqual(self.lib.sg2tf_upfirdn2d_out_size(_args(**a), out), 0)
    y_dev = cp.full((a['n'], out[0], out[1], a['c']), 0x7fff if dtype == 'bfloat16' else np.nan,
                    dtype=x_dev.dtype)  # NaN canary: every output must be written
    f_dev = cp.asarray(np.ascontiguousarray(f, np.float32))
    stream = cp.cuda.get_current_stream()
    err = self.lib.sg2tf_upfirdn2d_launch(DTYPES[dtype], _args(**a), x_dev.data.ptr,
                                          f_dev.data.ptr, y_dev.data.ptr, stream.ptr)
    self.assertEqual(err, 0, self.lib.sg2tf_cuda_error_string(err))
    stream.synchronize()
    y = cp.asnumpy(y_dev)
    y = _from_bf16_bits(y) if dtype == 'bfloat16' else y.astype(np.float32)
    return y, x_used

  def test_sweep_matches_numpy(self):
    rng = np.random.RandomState(7)
    # Relative to the output's scale: float32 sums, float16 (11 bits) and bfloat16 (8 bits)
    # stores of a float32 sum.
    tolerances = {'float32': 1e-5, 'float16': 1e-3, 'bfloat16': 8e-3}
    for i, a in enumerate(_sweep()):
      x = rng.standard_normal([a['n'], a['in_h'], a['in_w'], a['c']]).astype(np.float32)
      f = rng.standard_normal([a['fh'], a['fw']]).astype(np.float32)
      for dtype, tol in tolerances.items():
        with self.subTest(case=i, dtype=dtype, **a):
          y, x_used = self._run(x, f, a, dtype)
          want = _reference(x_used, f, a)
          self.assertEqual(y.shape, want.shape)
          scale = max(1.0, float(np.max(np.abs(want))))
          self.assertLessEqual(float(np.max(np.abs(y - want))) / scale, tol)

  def test_many_rows_use_grid_stride(self):
    # More rows than one grid covers (65535 blocks of 8 rows each).
    a = dict(n=600_000, in_h=1, in_w=1, c=1, fh=1, fw=2, upx=2, upy=1, downx=1, downy=1,
             padx0=1, padx1=0, pady0=0, pady1=0, flip=0)
    x = np.random.RandomState(1).standard_normal([a['n'], 1, 1, 1]).astype(np.float32)
    f = np.array([[0.25, 2.0]], np.float32)
    y, _ = self._run(x, f, a, 'float32')
    np.testing.assert_allclose(y, _reference(x, f, a), rtol=1e-6, atol=1e-6)

  def test_int64_index_path(self):
    # Padding beyond int32 range selects the 64-bit index kernel; the window it keeps
    # lies entirely in the left padding, so the output is zeros of the right shape.
    big = 1 << 30
    a = dict(n=1, in_h=3, in_w=3, c=2, fh=2, fw=2, upx=1, upy=1, downx=1, downy=1,
             padx0=big + 2, padx1=-big, pady0=0, pady1=0, flip=0)
    x = np.ones([1, 3, 3, 2], np.float32)
    y, _ = self._run(x, np.ones([2, 2], np.float32), a, 'float32')
    self.assertEqual(y.shape, (1, 2, 4, 2))
    self.assertEqual(float(np.abs(y).max()), 0.0)

  def test_invalid_parameters_are_rejected(self):
    a = dict(n=1, in_h=2, in_w=2, c=1, fh=5, fw=5, upx=1, upy=1, downx=1, downy=1,
             padx0=0, padx1=0, pady0=0, pady1=0, flip=0)
    err = self.lib.sg2tf_upfirdn2d_launch(0, _args(**a), 0, 0, 0, 0)
    self.assertNotEqual(err, 0)  # cudaErrorInvalidValue: the output would be empty


if __name__ == '__main__':
  unittest.main()
