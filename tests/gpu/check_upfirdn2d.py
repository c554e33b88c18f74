"""upfirdn2d correctness through a backend, against tests/custom_ops/np_ref.np_upfirdn2d.

Groups: the CPU tests' sweep (tests/custom_ops/sweeps.upfirdn2d_sweep, gain and separable
filters as upfirdn2d.py hands them to the kernel), the wider kernel-level sweep, strided views
(non-contiguous x and y), more rows than one grid covers, the int64 index path, large
tensors (several blocks per grid dimension; all outputs written, sampled images exact), and
parameter validation. Every output starts as NaN, so an element the kernel skips fails.
"""

import numpy as np

from tests.custom_ops.np_ref import np_upfirdn2d
from tests.custom_ops.sweeps import upfirdn2d_sweep, upfirdn2d_wide_sweep
from tests.gpu import backends
from tests.gpu.check_common import TOLERANCES

DTYPES = backends.DTYPES
TOL = TOLERANCES['upfirdn2d']


def _kernel_filter(f, gain):
  """The [fh, fw] float32 filter upfirdn2d.py passes to the kernel: a 1-D filter becomes its
  outer product, and the gain is folded in (both in float32)."""
  f = np.asarray(f, np.float32)
  if f.ndim == 1:
    f = np.outer(f, f).astype(np.float32)
  return (f * np.float32(gain)).astype(np.float32)


def _reference(x, f2d, a):
  return np_upfirdn2d(x, f2d, (a['upx'], a['upy']), (a['downx'], a['downy']),
                      (a['padx0'], a['padx1'], a['pady0'], a['pady1']), bool(a['flip']))


def _args_from_cpu_case(c, fshape):
  fh, fw = (fshape[0], fshape[0]) if len(fshape) == 1 else fshape
  return dict(n=c['n'], in_h=c['h'], in_w=c['w'], c=c['c'], fh=fh, fw=fw, upx=c['up'][0],
              upy=c['up'][1], downx=c['down'][0], downy=c['down'][1], padx0=c['pad'][0],
              padx1=c['pad'][1], pady0=c['pad'][2], pady1=c['pad'][3], flip=int(c['flip']))


def _name(a):
  return (f"n{a['n']}_{a['in_h']}x{a['in_w']}x{a['c']}_f{a['fh']}x{a['fw']}_up{a['upx']}"
          f"{a['upy']}_down{a['downx']}{a['downy']}_p{a['padx0']}_{a['padx1']}_{a['pady0']}_"
          f"{a['pady1']}{'_flip' if a['flip'] else ''}")


def _run_dense(be, res, group, name, a, x, f2d, dtype, want=None):
  """One dense launch of x (float32 host values) as dtype; checks shape, launch, values
  against `want` (default: the NumPy reference)."""
  out = be.upfirdn2d_out_size(a)
  if want is None:
    want = _reference(backends.stored(x, dtype), f2d, a)
  if out != want.shape[1:3]:
    return res.add(group, name, dtype, False, detail=f'out size {out} != {want.shape[1:3]}')
  xd = be.asarray(backends.to_storage(x, dtype))
  fd = be.asarray(np.ascontiguousarray(f2d, np.float32))
  yd = be.full(want.shape, dtype, backends.nan_bits(dtype))
  err = be.upfirdn2d(dtype, a, xd, fd, yd)
  if err != 0:
    return res.add(group, name, dtype, False, detail=f'launch: {be.error_string(err)}')
  be.sync()
  got = backends.from_storage(be.to_host(yd), dtype)
  return res.check(group, name, dtype, got, want, TOL[dtype])


def check_sweeps(be, res, reduced=False):
  rng = np.random.RandomState(7)
  cpu_cases = upfirdn2d_sweep()
  wide_cases = upfirdn2d_wide_sweep()
  if reduced:
    cpu_cases, wide_cases = cpu_cases[:8], wide_cases[:8] + wide_cases[-3:]
  for c in cpu_cases:
    f = rng.standard_normal(c['fshape']).astype(np.float32)
    a = _args_from_cpu_case(c, c['fshape'])
    x = rng.standard_normal([a['n'], a['in_h'], a['in_w'], a['c']]).astype(np.float32)
    f2d = _kernel_filter(f, c['gain'])
    for dtype in DTYPES:
      _run_dense(be, res, 'upfirdn2d/cpu_tests_sweep', c['testcase_name'], a, x, f2d, dtype)
  for a in wide_cases:
    x = rng.standard_normal([a['n'], a['in_h'], a['in_w'], a['c']]).astype(np.float32)
    f2d = rng.standard_normal([a['fh'], a['fw']]).astype(np.float32)
    for dtype in DTYPES:
      _run_dense(be, res, 'upfirdn2d/wide_sweep', _name(a), a, x, f2d, dtype)


def _strided_cases():
  """Kernel args for the view checks (upsample2d/downsample2d/filter2d paddings and a mixed
  one) with an odd channel count."""
  base = dict(n=2, in_h=7, in_w=9, c=5, fh=4, fw=4, flip=0)
  return [dict(base, upx=2, upy=2, downx=1, downy=1, padx0=2, padx1=1, pady0=2, pady1=1),
          dict(base, upx=1, upy=1, downx=2, downy=2, padx0=1, padx1=1, pady0=1, pady1=1),
          dict(base, upx=1, upy=1, downx=1, downy=1, padx0=2, padx1=1, pady0=2, pady1=1),
          dict(base, fh=3, fw=2, upx=1, upy=2, downx=2, downy=1, padx0=0, padx1=1, pady0=-1,
               pady1=2, flip=1)]


def check_strided(be, res):
  """x a window of a larger tensor (channels 2..2+C of C+3, columns 1..W of W+2) and y
  written into a window of a larger NaN-filled buffer, whose other elements must stay NaN."""
  rng = np.random.RandomState(11)
  group = 'upfirdn2d/strided_views'
  for a in _strided_cases():
    n, h, w, c = a['n'], a['in_h'], a['in_w'], a['c']
    f2d = rng.standard_normal([a['fh'], a['fw']]).astype(np.float32)
    xbuf = rng.standard_normal([n, h, w + 2, c + 3]).astype(np.float32)
    oh, ow = be.upfirdn2d_out_size(a)
    ybuf_shape = (n + 1, oh + 1, ow + 3, c + 4)
    xs = (h * (w + 2) * (c + 3), (w + 2) * (c + 3), c + 3)
    ys = (ybuf_shape[1] * ybuf_shape[2] * ybuf_shape[3], ybuf_shape[2] * ybuf_shape[3],
          ybuf_shape[3])
    x_off, y_off = (c + 3) + 2, ys[0] + ys[1] + 3 * ys[2] + 1  # y at [1, 1, 3, 1]
    for dtype in DTYPES:
      xstored = backends.stored(xbuf, dtype)
      want = _reference(xstored[:, :, 1:w + 1, 2:c + 2], f2d, a)
      xd = be.asarray(backends.to_storage(xbuf, dtype))
      fd = be.asarray(f2d)
      yd = be.full(ybuf_shape, dtype, backends.nan_bits(dtype))
      err = be.upfirdn2d(dtype, a, xd, fd, yd, strides=xs + ys, x_offset=x_off, y_offset=y_off)
      name = _name(a)
      if err != 0:
        res.add(group, name, dtype, False, detail=f'launch: {be.error_string(err)}')
        continue
      be.sync()
      got = backends.from_storage(be.to_host(yd), dtype)
      window = got[1:1 + n, 1:1 + oh, 3:3 + ow, 1:1 + c]
      outside = np.ones(ybuf_shape, bool)
      outside[1:1 + n, 1:1 + oh, 3:3 + ow, 1:1 + c] = False
      if not np.isnan(got[outside]).all():
        res.add(group, name, dtype, False, detail='wrote outside its output view')
        continue
      res.check(group, name, dtype, window, want, TOL[dtype])


def check_grid_limits(be, res):
  """More rows than one launch's grid covers; padding beyond int32 (the int64 index path)."""
  group = 'upfirdn2d/grid_and_index_limits'
  a = dict(n=600_000, in_h=1, in_w=1, c=1, fh=1, fw=2, upx=2, upy=1, downx=1, downy=1,
           padx0=1, padx1=0, pady0=0, pady1=0, flip=0)
  x = np.random.RandomState(1).standard_normal([a['n'], 1, 1, 1]).astype(np.float32)
  _run_dense(be, res, group, 'rows_600000', a, x, np.array([[0.25, 2.0]], np.float32),
             'float32')
  # The window this padding keeps lies wholly in the left padding: zeros, of width
  # (3 + 2^30 + 2 - 2^30 - 2) + 1 = 4 (too wide for NumPy's reference to pad).
  big = 1 << 30
  a = dict(n=1, in_h=3, in_w=3, c=2, fh=2, fw=2, upx=1, upy=1, downx=1, downy=1,
           padx0=big + 2, padx1=-big, pady0=0, pady1=0, flip=0)
  _run_dense(be, res, group, 'int64_padding', a, np.ones([1, 3, 3, 2], np.float32),
             np.ones([2, 2], np.float32), 'float32', want=np.zeros([1, 2, 4, 2]))


def check_large(be, res, dtype='float16'):
  """StyleGAN2's up2/down2 ([1,3,3,1], upsample2d/downsample2d padding and gain) on
  be.large_shape ([32, 1024, 1024, 3] on a GPU): up2's output has 2x the rows, more than one
  grid dimension holds. Every output is checked to be written (finite); the first and last
  images against the reference."""
  group = 'upfirdn2d/large'
  n, h, w, c = be.large_shape
  f1 = np.array([1, 3, 3, 1], np.float32) / 8
  rng = np.random.RandomState(5)
  x = rng.standard_normal([n, h, w, c]).astype(np.float32)
  xs = backends.to_storage(x, dtype)
  x_used = backends.from_storage(xs, dtype)
  xd = be.asarray(xs)
  for kind, a, gain in (
      ('up2', dict(upx=2, upy=2, downx=1, downy=1, padx0=2, padx1=1, pady0=2, pady1=1), 4.0),
      ('down2', dict(upx=1, upy=1, downx=2, downy=2, padx0=1, padx1=1, pady0=1, pady1=1), 1.0)):
    a = dict(a, n=n, in_h=h, in_w=w, c=c, fh=4, fw=4, flip=0)
    f2d = _kernel_filter(f1, gain)
    oh, ow = be.upfirdn2d_out_size(a)
    name = f'{kind}_{n}x{h}x{w}x{c}'
    yd = be.full((n, oh, ow, c), dtype, backends.nan_bits(dtype))
    err = be.upfirdn2d(dtype, a, xd, be.asarray(f2d), yd)
    if err != 0:
      res.add(group, name, dtype, False, detail=f'launch: {be.error_string(err)}')
      continue
    be.sync()
    if not be.all_finite(yd, dtype):
      res.add(group, name, dtype, False, detail='some outputs not written (NaN canary left)')
      continue
    for i in sorted({0, n - 1}):
      got = backends.from_storage(be.to_host(yd[i:i + 1]), dtype)
      want = _reference(x_used[i:i + 1], f2d, dict(a, n=1))
      res.check(group, f'{name}_image{i}', dtype, got, want, TOL[dtype])
    del yd
    be.free()


def check_invalid(be, res):
  group = 'upfirdn2d/invalid_params'
  if not be.upfirdn2d_validates:
    res.skip(group, 'Upfirdn2dCpu validates nothing by contract (the TF op does)')
    return
  base = dict(n=1, in_h=2, in_w=2, c=1, fh=2, fw=2, upx=1, upy=1, downx=1, downy=1,
              padx0=0, padx1=0, pady0=0, pady1=0, flip=0)
  # (down = 0 is not tried: the harness's own size arithmetic divides by it.)
  bad = {'empty_output': dict(base, fh=5, fw=5), 'up0': dict(base, upx=0)}
  for name, a in bad.items():
    # Never dereferenced: the launcher checks the parameters first.
    err = be.upfirdn2d('float32', a, None, None, None)
    res.add(group, name, 'float32', err != 0, detail=f'returned {err}')


def run_all(be, res, reduced=False):
  check_sweeps(be, res, reduced)
  check_strided(be, res)
  check_grid_limits(be, res)
  check_invalid(be, res)
  if not reduced:
    check_large(be, res)
