"""Where the GPU check's kernels run: one interface, two backends.

- CudaBackend: the CUDA kernels (build_libs.build_cuda_library) on CuPy arrays.
- CpuBackend: the CPU kernels (build_libs.build_cpu_library) on NumPy arrays, so the whole
  driver (sweeps, references, tolerances, byte counts, targets, table, JSON) is tested in CI.

Arrays hold the storage type of the op's dtype: float32, float16, or bfloat16 as uint16 bits
(neither NumPy nor CuPy has bfloat16). Launches return an error code (0 = success) and are
asynchronous on CUDA; `sync()` waits.
"""

import ctypes
import os
import time

import numpy as np

from tests.gpu import build_libs

DTYPES = ('float32', 'float16', 'bfloat16')
DTYPE_CODE = {'float32': 0, 'float16': 1, 'bfloat16': 2}
STORAGE = {'float32': np.float32, 'float16': np.float16, 'bfloat16': np.uint16}
ITEMSIZE = {'float32': 4, 'float16': 2, 'bfloat16': 2}
UPFIRDN2D_ARGS = ('n', 'in_h', 'in_w', 'c', 'fh', 'fw', 'upx', 'upy', 'downx', 'downy',
                  'padx0', 'padx1', 'pady0', 'pady1', 'flip')
BIAS_ACT_INTS = ('size', 'channels', 'inner', 'act', 'grad', 'has_bias', 'has_xref',
                 'has_yref', 'has_dy')
BIAS_ACT_FLOATS = ('alpha', 'gain', 'clamp')

_P64 = ctypes.POINTER(ctypes.c_int64)
_VP = ctypes.c_void_p


def to_storage(a, dtype):
  """float array -> host array of dtype's storage type (bfloat16: round to nearest even)."""
  a = np.ascontiguousarray(a, np.float32)
  if dtype == 'bfloat16':
    u = a.view(np.uint32).astype(np.uint64)
    bits = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    bits[nan] = (0x7fc0 | ((a.view(np.uint32)[nan] >> 16) & 0x8000)).astype(np.uint16)
    return bits
  return a.astype(STORAGE[dtype])


def from_storage(s, dtype):
  """Host storage array -> float32 values."""
  s = np.asarray(s)
  if dtype == 'bfloat16':
    return (s.astype(np.uint32) << 16).view(np.float32)
  return s.astype(np.float32)


def stored(a, dtype):
  """The float32 values `a` holds once stored as dtype."""
  return from_storage(to_storage(a, dtype), dtype)


def nan_bits(dtype):
  """A NaN in dtype's storage type: the canary every output element must overwrite."""
  return {'float32': np.float32(np.nan), 'float16': np.float16(np.nan),
          'bfloat16': np.uint16(0x7fc0)}[dtype]


def time_per_call(fn, elapsed, min_seconds=0.02, reps=3, max_iters=200):
  """Median seconds per call of fn() over `reps` batches of >= min_seconds (after a warm-up
  call). elapsed(k) runs fn k times and returns the seconds that took (by its own clock)."""
  fn()
  one = max(elapsed(1), 1e-6)
  iters = int(min(max_iters, max(3, np.ceil(min_seconds / one))))
  return float(np.median([elapsed(iters) / iters for _ in range(reps)]))


def wall_clock(fn):
  """elapsed() for time_per_call on synchronous code."""
  def elapsed(k):
    t = time.perf_counter()
    for _ in range(k):
      fn()
    return time.perf_counter() - t
  return elapsed


def event_clock(fn, start, end, ms_between, spin=None):
  """elapsed() for time_per_call by CUDA events (CuPy's or PyTorch's) on the current stream.

  spin(seconds), when given, first queues a kernel that keeps the GPU busy a little longer
  than Python needs to queue the k calls (judged from the previous batch), so the calls run
  back to back behind it and the events time the GPU, not the launch rate from Python.
  """
  cpu_s = [50e-6]  # seconds Python takes to queue one call

  def elapsed(k):
    if spin is not None:
      spin(min(0.1, 1.5 * k * cpu_s[0] + 2e-4))
    start.record()
    t = time.perf_counter()
    for _ in range(k):
      fn()
    cpu_s[0] = (time.perf_counter() - t) / k
    end.record()
    end.synchronize()
    return ms_between(start, end) / 1e3
  return elapsed


def upfirdn2d_args(a):
  return (ctypes.c_int64 * len(UPFIRDN2D_ARGS))(*[int(a[k]) for k in UPFIRDN2D_ARGS])


def bias_act_args(p):
  ints = (ctypes.c_int64 * len(BIAS_ACT_INTS))(*[int(p[k]) for k in BIAS_ACT_INTS])
  floats = (ctypes.c_float * len(BIAS_ACT_FLOATS))(*[float(p[k]) for k in BIAS_ACT_FLOATS])
  return ints, floats


class Backend:
  """What the checks need from a device. Subclasses set xp (numpy or cupy) and the rest."""
  name = ''
  xp = np
  # Shapes of the 'large' correctness cases: [N, H, W, C].
  large_shape = (4, 64, 48, 3)
  # Whether the upfirdn2d entry point rejects parameters itself (the CUDA launcher does;
  # Upfirdn2dCpu leaves that to the TF op).
  upfirdn2d_validates = False
  bias_act_missing = None  # None, or why bias_act cannot run here

  def __init__(self):
    self.build_info = {}

  # --- arrays
  def asarray(self, host):
    return self.xp.asarray(host)

  def to_host(self, arr):
    return np.asarray(arr)

  def full(self, shape, dtype, value):
    return self.xp.full(shape, value, dtype=STORAGE[dtype])

  def ptr(self, arr, offset_elems=0):
    raise NotImplementedError

  def sync(self):
    pass

  def all_finite(self, arr, dtype):
    """No NaN/inf anywhere (computed where the array lives)."""
    xp = self.xp
    if dtype == 'float32':
      return bool(xp.isfinite(arr).all())
    exp_mask = 0x7c00 if dtype == 'float16' else 0x7f80
    bits = arr.view(xp.uint16)
    return not bool(((bits & exp_mask) == exp_mask).any())

  def free(self):
    """Returns cached memory between large cases."""

  # --- kernels
  def upfirdn2d_out_size(self, a):
    out = (ctypes.c_int64 * 2)()
    rc = self._out_size(upfirdn2d_args(a), out)
    return (int(out[0]), int(out[1])) if rc == 0 else None

  def upfirdn2d(self, dtype, a, x, f, y, strides=None, x_offset=0, y_offset=0):
    """Queues the op; returns an error code. strides: (x_n, x_h, x_w, y_n, y_h, y_w)."""
    raise NotImplementedError

  def bias_act(self, dtype, p, x, b=None, xref=None, yref=None, dy=None, y=None):
    raise NotImplementedError

  def bias_act_tables(self):
    """(number of activations, [ref kind of each]) as the compiled code has them."""
    raise NotImplementedError

  def error_string(self, code):
    return f'error {code}'

  # --- timing
  def time_per_call(self, fn, min_seconds=0.02, reps=3):
    """Median seconds per call of fn() (module-level time_per_call, on this device's clock)."""
    raise NotImplementedError

  spin = None  # CUDA only: spin(seconds, stream) keeps the GPU busy (see event_clock)

  def copy(self, dst, src):
    raise NotImplementedError

  def describe(self):
    return {'backend': self.name}


class CudaBackend(Backend):
  """The CUDA kernels on CuPy arrays, on CuPy's current stream."""
  name = 'cuda'
  large_shape = (32, 1024, 1024, 3)
  upfirdn2d_validates = True

  def __init__(self, arch=None, log=print, pool=True):
    super().__init__()
    import cupy  # pylint: disable=g-import-not-at-top
    self.xp = cupy
    if not pool:  # Every array its own cudaMalloc, so memcheck sees exact bounds.
      cupy.cuda.set_allocator(None)
      cupy.cuda.set_pinned_memory_allocator(None)
    if cupy.cuda.runtime.getDeviceCount() < 1:
      raise RuntimeError('no CUDA device')
    self.device = cupy.cuda.Device()
    self.arch = arch or str(self.device.compute_capability)  # e.g. '90'
    path, self.build_info = build_libs.build_cuda_library(self.arch, log=log)
    lib = ctypes.CDLL(str(path))
    lib.sg2tf_upfirdn2d_out_size.argtypes = [_P64, _P64]
    lib.sg2tf_upfirdn2d_launch_strided.argtypes = [ctypes.c_int, _P64, _P64, _VP, _VP, _VP, _VP]
    lib.sg2tf_cuda_error_string.argtypes = [ctypes.c_int]
    lib.sg2tf_cuda_error_string.restype = ctypes.c_char_p
    lib.sg2tf_bias_act_launch.argtypes = [ctypes.c_int, _VP, _VP] + [_VP] * 7
    lib.sg2tf_bias_act_ref_kind.argtypes = [ctypes.c_int]
    lib.sg2tf_spin.argtypes = [ctypes.c_ulonglong, _VP]
    self.lib = lib
    self._out_size = lib.sg2tf_upfirdn2d_out_size

  def to_host(self, arr):
    return self.xp.asnumpy(arr)

  def ptr(self, arr, offset_elems=0):
    if arr is None:
      return None
    return arr.data.ptr + offset_elems * arr.itemsize

  def _stream(self):
    return self.xp.cuda.get_current_stream().ptr

  def sync(self):
    self.xp.cuda.get_current_stream().synchronize()

  def free(self):
    self.sync()
    self.xp.get_default_memory_pool().free_all_blocks()

  def upfirdn2d(self, dtype, a, x, f, y, strides=None, x_offset=0, y_offset=0):
    st = None if strides is None else (ctypes.c_int64 * 6)(*strides)
    return self.lib.sg2tf_upfirdn2d_launch_strided(
        DTYPE_CODE[dtype], upfirdn2d_args(a), st, self.ptr(x, x_offset), self.ptr(f),
        self.ptr(y, y_offset), self._stream())

  def bias_act(self, dtype, p, x, b=None, xref=None, yref=None, dy=None, y=None):
    ints, floats = bias_act_args(p)
    return self.lib.sg2tf_bias_act_launch(DTYPE_CODE[dtype], ints, floats, self.ptr(x),
                                          self.ptr(b), self.ptr(xref), self.ptr(yref),
                                          self.ptr(dy), self.ptr(y), self._stream())

  def bias_act_tables(self):
    n = self.lib.sg2tf_bias_act_num_acts()
    return n, [self.lib.sg2tf_bias_act_ref_kind(i) for i in range(n)]

  def error_string(self, code):
    return self.lib.sg2tf_cuda_error_string(code).decode()

  def time_per_call(self, fn, min_seconds=0.02, reps=3):
    cp = self.xp
    clock = event_clock(fn, cp.cuda.Event(), cp.cuda.Event(), cp.cuda.get_elapsed_time,
                        spin=self.spin)
    return time_per_call(fn, clock, min_seconds, reps)

  spin_error = None  # set when the spin kernel failed: timings then include launch gaps

  def spin(self, seconds, stream=None):
    """Keeps the GPU busy for `seconds` on `stream` (default: CuPy's current one)."""
    if self.spin_error is None:
      err = self.lib.sg2tf_spin(int(seconds * 1e9),
                                self._stream() if stream is None else stream)
      if err != 0:
        self.spin_error = (f'spin kernel failed ({self.error_string(err)}): timings '
                           'include Python launch gaps')

  def copy(self, dst, src):
    rt = self.xp.cuda.runtime
    rt.memcpyAsync(dst.data.ptr, src.data.ptr, src.nbytes, rt.memcpyDeviceToDevice,
                   self._stream())

  def describe(self):
    cp = self.xp
    props = cp.cuda.runtime.getDeviceProperties(self.device.id)
    name = props['name']
    return {
        'backend': self.name,
        'gpu': name.decode() if isinstance(name, bytes) else str(name),
        'compute_capability': self.arch,
        'multiprocessors': int(props['multiProcessorCount']),
        'memory_gib': round(props['totalGlobalMem'] / 2**30, 1),
        'l2_mib': round(props.get('l2CacheSize', 0) / 2**20, 1),
        'cuda_runtime': cp.cuda.runtime.runtimeGetVersion(),
        'cuda_driver': cp.cuda.runtime.driverGetVersion(),
        'cupy': cp.__version__,
        'numpy': np.__version__,
    }


class CpuBackend(Backend):
  """The CPU kernels on NumPy arrays (synchronous)."""
  name = 'cpu'

  def __init__(self, log=print, threads=None, ops_lib=None):
    super().__init__()
    path, self.build_info = build_libs.build_cpu_library(ops_lib=ops_lib, log=log)
    self.bias_act_missing = self.build_info['bias_act']
    lib = ctypes.CDLL(str(path))
    lib.sg2tf_cpu_upfirdn2d_out_size.argtypes = [_P64, _P64]
    lib.sg2tf_cpu_upfirdn2d.argtypes = [ctypes.c_int, _P64, _P64, _VP, _VP, _VP, ctypes.c_int]
    if self.bias_act_missing is None:
      lib.sg2tf_cpu_bias_act.argtypes = [ctypes.c_int, _VP, _VP] + [_VP] * 6 + [ctypes.c_int]
      lib.sg2tf_cpu_bias_act_ref_kind.argtypes = [ctypes.c_int]
    self.lib = lib
    self._out_size = lib.sg2tf_cpu_upfirdn2d_out_size
    self.threads = threads or min(4, os.cpu_count() or 1)

  def ptr(self, arr, offset_elems=0):
    if arr is None:
      return None
    return arr.ctypes.data + offset_elems * arr.itemsize

  def upfirdn2d(self, dtype, a, x, f, y, strides=None, x_offset=0, y_offset=0):
    st = None if strides is None else (ctypes.c_int64 * 6)(*strides)
    return self.lib.sg2tf_cpu_upfirdn2d(DTYPE_CODE[dtype], upfirdn2d_args(a), st,
                                        self.ptr(x, x_offset), self.ptr(f),
                                        self.ptr(y, y_offset), self.threads)

  def bias_act(self, dtype, p, x, b=None, xref=None, yref=None, dy=None, y=None):
    ints, floats = bias_act_args(p)
    return self.lib.sg2tf_cpu_bias_act(DTYPE_CODE[dtype], ints, floats, self.ptr(x),
                                       self.ptr(b), self.ptr(xref), self.ptr(yref),
                                       self.ptr(dy), self.ptr(y), self.threads)

  def bias_act_tables(self):
    n = self.lib.sg2tf_cpu_bias_act_num_acts()
    return n, [self.lib.sg2tf_cpu_bias_act_ref_kind(i) for i in range(n)]

  def error_string(self, code):
    return 'rejected' if code == 1 else f'error {code}'

  def time_per_call(self, fn, min_seconds=0.02, reps=3):
    return time_per_call(fn, wall_clock(fn), min_seconds, reps, max_iters=50)

  def copy(self, dst, src):
    np.copyto(dst, src)

  def describe(self):
    return {'backend': self.name, 'cpu_threads': self.threads, 'numpy': np.__version__,
            'kernels_from': self.build_info['kernels_from'],
            'bias_act': self.bias_act_missing or 'BiasActCpu'}
