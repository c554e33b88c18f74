"""The GPU check (run_gpu_check.py) as far as a machine without a GPU allows, and all of it
where there is one:

- the CUDA harness library builds with nvcc for the H200's sm_90 and its host-side code
  (size arithmetic, parameter validation, activation table) is right (needs nvcc only);
- the whole driver runs through the CPU kernels of the op library `make ops` built
  (`--backend=cpu`): every correctness case passes, and the speed rows, table and JSON file
  are complete;
- the driver's parts: byte counts, target evaluation, comparison semantics, bfloat16 codec,
  JSON writing, sanitizer output classification, and that a wrong or incomplete kernel
  output fails the check;
- with CuPy and a GPU: the full correctness sweep on the CUDA kernels.

Plain unittest + NumPy: the GPU machines have no TensorFlow (TF-dependent cross-checks skip).
"""

import ctypes
import json
import os
import pathlib
import stat
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from tests.gpu import backends
from tests.gpu import build_libs
from tests.gpu import check_bias_act
from tests.gpu import check_upfirdn2d
from tests.gpu import report
from tests.gpu import sanitizer
from tests.gpu import speed
from tests.gpu.check_common import Results, rel_error
from tests.custom_ops.np_ref import np_upfirdn2d
from tests.custom_ops.sweeps import upfirdn2d_wide_sweep

DRIVER = pathlib.Path(__file__).resolve().parent / 'run_gpu_check.py'
H200_ARCH = '90'


def _ops_library():
  """The CPU op library TensorFlow loads (built by `make ops`; built here if missing)."""
  try:
    from sg2tf.custom_ops import build  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise unittest.SkipTest(f'the op library needs TensorFlow: {e}')
  return build.build(cuda=False)


class _HostOnlyCuda(backends.Backend):
  """The CUDA harness's host-side entry points without a GPU: parameter checks return
  before any CUDA call, and pointers are never dereferenced."""
  name = 'cuda-host-only'
  upfirdn2d_validates = True

  def __init__(self, lib):
    super().__init__()
    self.lib = lib
    self._out_size = lib.sg2tf_upfirdn2d_out_size

  def ptr(self, arr, offset_elems=0):
    return None if arr is None else arr.ctypes.data

  def upfirdn2d(self, dtype, a, x, f, y, strides=None, x_offset=0, y_offset=0):
    return self.lib.sg2tf_upfirdn2d_launch_strided(
        backends.DTYPE_CODE[dtype], backends.upfirdn2d_args(a), None, self.ptr(x),
        self.ptr(f), self.ptr(y), None)

  def bias_act(self, dtype, p, x, b=None, xref=None, yref=None, dy=None, y=None):
    ints, floats = backends.bias_act_args(p)
    return self.lib.sg2tf_bias_act_launch(backends.DTYPE_CODE[dtype], ints, floats,
                                          self.ptr(x), self.ptr(b), self.ptr(xref),
                                          self.ptr(yref), self.ptr(dy), self.ptr(y), None)

  def bias_act_tables(self):
    n = self.lib.sg2tf_bias_act_num_acts()
    return n, [self.lib.sg2tf_bias_act_ref_kind(i) for i in range(n)]

  def error_string(self, code):
    return self.lib.sg2tf_cuda_error_string(code).decode()


class CudaLibraryTest(unittest.TestCase):
  """Needs nvcc only: the library the GPU run builds, built for the H200 (sm_90)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if build_libs.nvcc_path() is None:
      raise unittest.SkipTest('nvcc not found')
    path, cls.info = build_libs.build_cuda_library(H200_ARCH, log=lambda m: None)
    lib = ctypes.CDLL(str(path))  # cudart is static: loads without a driver
    p64, vp = ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p
    lib.sg2tf_upfirdn2d_out_size.argtypes = [p64, p64]
    lib.sg2tf_upfirdn2d_launch_strided.argtypes = [ctypes.c_int, p64, p64, vp, vp, vp, vp]
    lib.sg2tf_bias_act_launch.argtypes = [ctypes.c_int, vp, vp] + [vp] * 7
    lib.sg2tf_bias_act_ref_kind.argtypes = [ctypes.c_int]
    lib.sg2tf_cuda_error_string.argtypes = [ctypes.c_int]
    lib.sg2tf_cuda_error_string.restype = ctypes.c_char_p
    cls.be = _HostOnlyCuda(lib)

  def test_built_for_the_requested_gpu(self):
    self.assertIn('arch=compute_90,code=[sm_90,compute_90]', ' '.join(self.info['flags']))
    for fn in ('sg2tf_upfirdn2d_launch', 'sg2tf_upfirdn2d_launch_strided',
               'sg2tf_bias_act_launch', 'sg2tf_spin'):
      self.assertTrue(hasattr(self.be.lib, fn), fn)

  def test_output_sizes_match_the_reference(self):
    rng = np.random.RandomState(0)
    for a in upfirdn2d_wide_sweep():
      x = rng.standard_normal([1, a['in_h'], a['in_w'], 1])
      want = np_upfirdn2d(x, np.ones([a['fh'], a['fw']]), (a['upx'], a['upy']),
                          (a['downx'], a['downy']),
                          (a['padx0'], a['padx1'], a['pady0'], a['pady1']))
      self.assertEqual(self.be.upfirdn2d_out_size(a), want.shape[1:3], a)

  def test_host_side_checks(self):
    res = Results()
    check_upfirdn2d.check_invalid(self.be, res)
    check_bias_act.check_invalid(self.be, res)
    check_bias_act.check_tables(self.be, res)
    self.assertGreaterEqual(len(res.cases), 13)
    self.assertTrue(res.passed, report.failures_text(res))


class CpuBackendDriverTest(unittest.TestCase):
  """run_gpu_check.py --backend=cpu end to end, on the kernels TensorFlow runs."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ops_lib = _ops_library()
    cls.tmp = tempfile.mkdtemp(prefix='sg2tf_gpu_check_')
    cls.json_path = os.path.join(cls.tmp, 'out', 'report.json')
    cmd = [sys.executable, str(DRIVER), '--backend=cpu', f'--cpu-ops-lib={cls.ops_lib}',
           '--json', cls.json_path, '--threads=2']
    cls.proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    with open(cls.json_path) as f:
      cls.rep = json.load(f)

  def test_exits_zero_with_every_case_passed(self):
    self.assertEqual(self.proc.returncode, 0, self.proc.stdout[-6000:] + self.proc.stderr)
    c = self.rep['correctness']
    self.assertTrue(c['passed'])
    self.assertEqual(c['num_failed'], 0)
    self.assertGreater(c['num_cases'], 2000)
    self.assertEqual(self.rep['exit_code'], 0)

  def test_every_group_ran(self):
    groups = self.rep['correctness']['groups']
    for g in ('upfirdn2d/cpu_tests_sweep', 'upfirdn2d/wide_sweep', 'upfirdn2d/strided_views',
              'upfirdn2d/grid_and_index_limits', 'upfirdn2d/large', 'bias_act/forward',
              'bias_act/grad1', 'bias_act/grad2', 'bias_act/special_values',
              'bias_act/in_place', 'bias_act/large', 'bias_act/invalid_params',
              'bias_act/activation_table'):
      self.assertGreater(groups.get(g, {}).get('cases', 0), 0, g)
    # The CPU tests' sweep, in every dtype.
    self.assertEqual(groups['upfirdn2d/cpu_tests_sweep']['cases'], 48 * 3)
    # 9 activations + 2 overrides, bias or not, 2 clamps, 6 layouts, 3 dtypes.
    self.assertEqual(groups['bias_act/forward']['cases'], 11 * 2 * 2 * 6 * 3)
    self.assertEqual(list(self.rep['correctness']['skipped']), ['upfirdn2d/invalid_params'])
    self.assertEqual(self.rep['device']['kernels_from'], str(self.ops_lib))

  def test_speed_rows_table_and_json(self):
    s = self.rep['speed']
    self.assertEqual(len(s['rows']), 2 * len(speed.CPU_SHAPES) * len(speed.OPS))
    self.assertGreater(s['copy_gbps'], 0)
    for row in s['rows']:
      self.assertGreater(row['ours_s'], 0, row)
      self.assertAlmostEqual(row['gbps'], row['bytes_moved'] / row['ours_s'] / 1e9, places=6)
      self.assertAlmostEqual(row['frac_of_copy'], row['gbps'] / s['copy_gbps'], places=9)
    out = self.proc.stdout
    for text in ('correctness vs float64 NumPy', 'eager/ours', 'targets (reported, not '
                 'asserted)', 'gpu check (cpu): PASSED'):
      self.assertIn(text, out)
    self.assertEqual(self.rep['sanitizer']['status'], 'skipped')
    self.assertEqual(self.rep['schema'], report.SCHEMA)


class _Wrong(backends.CpuBackend):
  """The CPU backend with one corruption after every dense launch: 'shift' moves one output
  element by 5% of the output's scale, 'skip' leaves one unwritten (NaN)."""

  def __init__(self, mode, ops_lib):
    super().__init__(log=lambda m: None, threads=1, ops_lib=ops_lib)
    self.mode = mode

  def _corrupt(self, y, dtype):
    flat = y.reshape(-1)
    if not flat.size:
      return
    if self.mode == 'skip':
      flat[flat.size // 2] = backends.nan_bits(dtype)
    else:
      vals = backends.from_storage(flat, dtype)
      scale = max(1.0, float(np.nanmax(np.abs(vals))))
      flat[0] = backends.to_storage(vals[:1] + 0.05 * scale, dtype)[0]

  def upfirdn2d(self, dtype, a, x, f, y, strides=None, x_offset=0, y_offset=0):
    err = super().upfirdn2d(dtype, a, x, f, y, strides, x_offset, y_offset)
    if err == 0 and strides is None:
      self._corrupt(y, dtype)
    return err

  def bias_act(self, dtype, p, x, b=None, xref=None, yref=None, dy=None, y=None):
    err = super().bias_act(dtype, p, x, b, xref, yref, dy, y)
    if y is not None and err == 0:
      self._corrupt(y, dtype)
    return err


class CheckCanFailTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ops_lib = _ops_library()

  def test_wrong_or_missing_outputs_fail(self):
    for mode in ('shift', 'skip'):
      be = _Wrong(mode, self.ops_lib)
      res = Results()
      check_upfirdn2d.check_sweeps(be, res, reduced=True)
      check_bias_act.check_modes(be, res, reduced=True)
      groups = res.groups()
      for g in ('upfirdn2d/cpu_tests_sweep', 'upfirdn2d/wide_sweep', 'bias_act/forward',
                'bias_act/grad1'):
        self.assertEqual(groups[g]['failed'], groups[g]['cases'], (mode, g, groups[g]))


class PartsTest(unittest.TestCase):

  def test_bytes_moved(self):
    # bias_act reads x and b, writes y; up2 reads a quarter-size input; down2 writes one.
    t = 32 * 64 * 64 * 256 * 2
    self.assertEqual(speed.op_geometry('bias_act', 32, 256, 64, 2),
                     ((32, 64, 64, 256), (32, 64, 64, 256), 2 * t + 256 * 2, t))
    self.assertEqual(speed.op_geometry('up2', 32, 256, 64, 2),
                     ((32, 32, 32, 256), (32, 64, 64, 256), t // 4 + t + 64, t))
    self.assertEqual(speed.op_geometry('down2', 32, 256, 64, 2),
                     ((32, 64, 64, 256), (32, 32, 32, 256), t + t // 4 + 64, t))

  def test_targets(self):
    big, small = 64 << 20, (64 << 20) - 1
    rows = [dict(op='bias_act', dtype='float16', shape='a', tensor_bytes=big, ours_s=1.0,
                 frac_of_copy=0.81, eager_s=2.0),
            dict(op='bias_act', dtype='float16', shape='b', tensor_bytes=big, ours_s=1.0,
                 frac_of_copy=0.79, eager_s=0.5),
            dict(op='up2', dtype='float16', shape='c', tensor_bytes=big, ours_s=1.0,
                 frac_of_copy=0.5, eager_s=None),
            dict(op='down2', dtype='float16', shape='d', tensor_bytes=small, ours_s=1.0,
                 frac_of_copy=0.1, eager_s=1.5),
            dict(op='down2', dtype='float16', shape='e', tensor_bytes=big, ours_s=None)]
    got = [(t['case'], t['target'].split()[0], t['met']) for t in speed.evaluate_targets(rows)]
    self.assertEqual(got, [('bias_act float16 a', 'bias_act', True),
                           ('bias_act float16 a', 'faster', True),
                           ('bias_act float16 b', 'bias_act', False),
                           ('bias_act float16 b', 'faster', False),
                           ('up2 float16 c', 'up2', True),
                           ('down2 float16 d', 'faster', True)])
    text = report.targets_text(dict(targets=speed.evaluate_targets(rows)))
    self.assertIn('NOT MET', text)
    self.assertIn('4 of 6 targets met', text)

  def test_rel_error(self):
    self.assertEqual(rel_error([1.0, 2.0], [1.0, 2.0]), 0.0)
    self.assertAlmostEqual(rel_error([0.0, 4.0], [0.0, 2.0]), 1.0)     # scale = max |want|
    self.assertAlmostEqual(rel_error([0.5], [0.25]), 0.25)            # scale floor 1
    self.assertEqual(rel_error([np.nan, 1.0], [np.nan, 1.0]), 0.0)
    self.assertEqual(rel_error([0.0], [np.nan]), float('inf'))        # NaN must stay NaN
    self.assertEqual(rel_error([np.nan], [0.0]), float('inf'))        # unwritten output
    self.assertEqual(rel_error([np.inf], [-np.inf]), float('inf'))
    self.assertEqual(rel_error(np.zeros(2), np.zeros(3)), float('inf'))

  def test_bfloat16_codec(self):
    f = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, -2.5, np.inf, np.nan, 3e38], np.float32)
    bits = backends.to_storage(f, 'bfloat16')
    # Round to nearest, ties to even; NaN stays a quiet NaN.
    self.assertEqual([hex(b) for b in bits[:5]], ['0x3f80', '0x3f80', '0x3f82', '0xc020',
                                                  '0x7f80'])
    self.assertEqual(bits[5] & 0x7fc0, 0x7fc0)
    back = backends.from_storage(bits, 'bfloat16')
    self.assertEqual(back[3], -2.5)
    self.assertTrue(np.isnan(back[5]))

  def test_json_is_strict_atomic_and_respects_umask(self):
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'sub', 'r.json')
      old = os.umask(0o027)
      try:
        report.write_json(path, dict(a=float('inf'), b=[float('nan')], c={'d': 1.5}))
      finally:
        os.umask(old)
      with open(path) as f:
        data = json.loads(f.read(), parse_constant=lambda c: self.fail(f'non-strict {c}'))
      self.assertEqual(data['a'], 'inf')
      self.assertEqual(data['c'], {'d': 1.5})
      self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
      self.assertEqual(os.listdir(os.path.dirname(path)), ['r.json'])

  def test_sanitizer_classification(self):
    ok = '========= COMPUTE-SANITIZER\n... \n========= ERROR SUMMARY: 0 errors\n'
    self.assertEqual(sanitizer.classify(0, ok, {'passed': True})[0], 'passed')
    value_differed = {'passed': False, 'num_failed': 2,
                      'failures': [{'error': 0.5, 'detail': ''}]}
    self.assertEqual(sanitizer.classify(1, ok, value_differed)[0], 'failed')
    could_not_launch = {'passed': False, 'num_failed': 1,
                        'failures': [{'error': None, 'detail': 'launch: unknown error'}]}
    self.assertEqual(sanitizer.classify(1, ok, could_not_launch)[0], 'skipped')
    bad = ('========= Invalid __global__ write of size 2 bytes\n'
           '========= ERROR SUMMARY: 3 errors\n')
    self.assertEqual(sanitizer.classify(99, bad, None)[:3:2], ('failed', 3))
    refused = ('========= Error: Device not supported\nerror 999 at the first allocation\n'
               '========= ERROR SUMMARY: 0 errors\n')
    status, reason, _ = sanitizer.classify(1, refused, could_not_launch)
    self.assertEqual(status, 'skipped')
    self.assertIn('does not support this device', reason)

  def test_tables_match_sg2tf(self):
    try:
      from sg2tf.custom_ops.bias_act import activation_funcs  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      self.skipTest(f'needs TensorFlow: {e}')
    self.assertEqual(
        {k: (s.index, s.grad_ref, s.def_alpha, float(s.def_gain), s.has_2nd_grad)
         for k, s in activation_funcs.items()},
        {k: (i, r, a, float(g), h) for k, (i, r, a, g, h) in check_bias_act.ACTS.items()})

  def test_build_flags_match_the_op_build(self):
    try:
      from sg2tf.custom_ops import build  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      self.skipTest(f'needs TensorFlow: {e}')
    nvcc = [f for f in build.nvcc_flags()]
    no_gencode = [f for i, f in enumerate(nvcc) if f != '-gencode' and
                  (i == 0 or nvcc[i - 1] != '-gencode')]
    self.assertEqual(no_gencode, list(build_libs.NVCC_FLAGS))
    self.assertEqual(build.cpu_compile_flags([], build.variant_flags('baseline')),
                     list(build_libs.CXX_FLAGS) + build_libs.cxx_arch_flags(build.cxx()))


class CudaBackendTest(unittest.TestCase):
  """Needs CuPy, a GPU and nvcc: the full correctness sweep on the CUDA kernels."""

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
    if build_libs.nvcc_path() is None:
      raise unittest.SkipTest('nvcc not found')
    cls.be = backends.CudaBackend(log=lambda m: None)

  def test_correctness(self):
    res = Results()
    check_upfirdn2d.run_all(self.be, res)
    check_bias_act.run_all(self.be, res)
    self.assertTrue(res.passed, report.failures_text(res))
    self.assertFalse(res.skipped)


if __name__ == '__main__':
  unittest.main()
