"""bias_act correctness through a backend, against tests/custom_ops/np_ref.np_act (float64).

The derivative launches are made the way sg2tf/custom_ops/bias_act.py's gradient makes them:
- first derivative (gradient of the forward op): x = dy, with xref = x when the activation
  reads x or has a second derivative, and yref = the forward output as the kernel stored it
  when the activation reads y or there is a clamp;
- second derivative (gradient of the first-derivative op, activations with a nonzero f''):
  x = d_dx, dy = the first op's dy, the same xref/yref.
Groups: every activation x bias/no bias x clamp x layout (channels last, channel axis
before others, 1-D, odd channel counts) x dtype in all three modes; alpha/gain overrides;
in place (y aliasing x) over more elements than one grid's threads; special values; a large
tensor; parameter validation; the kernel's activation table against this one.
"""

import math

import numpy as np

from tests.custom_ops.np_ref import np_act
from tests.gpu import backends
from tests.gpu.check_common import TOLERANCES

DTYPES = backends.DTYPES
TOL_FWD = TOLERANCES['bias_act']
TOL_GRAD = TOLERANCES['bias_act_grad']

# name: (index, grad_ref, default alpha, default gain, has a second derivative): bias_act.py's
# activation_funcs without TensorFlow (tests/gpu/test_gpu_check.py checks they agree).
ACTS = {
    'linear': (0, '', 0.0, 1.0, False),
    'relu': (1, 'y', 0.0, math.sqrt(2), False),
    'lrelu': (2, 'y', 0.2, math.sqrt(2), False),
    'tanh': (3, 'y', 0.0, 1.0, True),
    'sigmoid': (4, 'y', 0.0, 1.0, True),
    'elu': (5, 'y', 1.0, 1.0, True),
    'selu': (6, 'y', 0.0, 1.0, True),
    'softplus': (7, 'y', 0.0, 1.0, True),
    'swish': (8, 'x', 0.0, math.sqrt(2), True),
}
REF_KIND = {'': 0, 'x': 1, 'y': 2}

# (shape, axis): channels last with odd/RGB/wide channel counts, a channel axis before the
# others (inner > 1), a rank-3 tensor, 1-D.
LAYOUTS = [((2, 5, 6, 37), 3), ((1, 9, 9, 3), 3), ((2, 4, 4, 512), 3), ((2, 19, 4, 6), 1),
           ((3, 7, 11), 2), ((130,), 0)]


def _params(shape, axis, act, grad, b, xref, yref, dy, alpha, gain, clamp):
  shape = tuple(shape)
  return dict(size=int(np.prod(shape)), channels=shape[axis] if shape else 1,
              inner=int(np.prod(shape[axis + 1:])) if shape else 1, act=ACTS[act][0],
              grad=grad, has_bias=b is not None, has_xref=xref is not None,
              has_yref=yref is not None, has_dy=dy is not None, alpha=alpha, gain=gain,
              clamp=clamp)


class _Runner:
  """Launches on one backend; outputs start as NaN unless `out` is given (in place)."""

  def __init__(self, be):
    self.be = be

  def launch(self, dtype, shape, axis, act, grad, x, b=None, xref=None, yref=None, dy=None,
             alpha=0.0, gain=1.0, clamp=-1.0, out=None):
    be = self.be
    if out is None:
      out = be.full(tuple(shape), dtype, backends.nan_bits(dtype))
    p = _params(shape, axis, act, grad, b, xref, yref, dy, alpha, gain, clamp)
    err = be.bias_act(dtype, p, x, b, xref, yref, dy, out)
    return err, out

  def dev(self, a, dtype):
    """float32 host array -> (backend array of dtype, the float64 values it holds)."""
    return (self.be.asarray(backends.to_storage(a, dtype)),
            backends.stored(a, dtype).astype(np.float64))

  def host(self, d, dtype):
    self.be.sync()
    return backends.from_storage(self.be.to_host(d), dtype).astype(np.float64)


def _bshape(shape, axis):
  s = [1] * len(shape)
  s[axis] = -1
  return s


def check_modes(be, res, reduced=False):
  r = _Runner(be)
  rng = np.random.RandomState(3)
  layouts = [LAYOUTS[0], LAYOUTS[3]] if reduced else LAYOUTS
  dtypes = DTYPES[:2] if reduced else DTYPES
  overrides = [('lrelu', 0.1, 3.0), ('elu', 0.5, None)]
  for shape, axis in layouts:
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    b = rng.standard_normal([shape[axis]]).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    ddx = rng.standard_normal(shape).astype(np.float32)
    for dtype in dtypes:
      xd, xh = r.dev(x, dtype)
      dyd, dyh = r.dev(dy, dtype)
      ddxd, ddxh = r.dev(ddx, dtype)
      for with_bias in (True, False):
        bd, bh = r.dev(b, dtype) if with_bias else (None, None)
        v = xh + (bh.reshape(_bshape(shape, axis)) if with_bias else 0.0)
        runs = [(a, None, None) for a in ACTS] + ([] if reduced else overrides)
        for act, alpha_o, gain_o in runs:
          _, grad_ref, def_alpha, def_gain, has_2nd = ACTS[act]
          alpha = def_alpha if alpha_o is None else alpha_o
          gain = def_gain if gain_o is None else gain_o
          f, d1, d2 = np_act(act, v, alpha)
          for clamp in (-1.0, 0.7):
            name = (f'{act}_a{alpha:g}_g{gain:.3g}_{"x".join(map(str, shape))}_axis{axis}_'
                    f'{"bias" if with_bias else "nobias"}_clamp{clamp:g}')
            kw = dict(alpha=alpha, gain=gain, clamp=clamp)
            want = f * gain
            if clamp >= 0:
              want = np.clip(want, -clamp, clamp)
            err, yd = r.launch(dtype, shape, axis, act, 0, xd, bd, **kw)
            if err != 0:
              res.add('bias_act/forward', name, dtype, False,
                      detail=f'launch: {be.error_string(err)}')
              continue
            yh = r.host(yd, dtype)
            res.check('bias_act/forward', name, dtype, yh, want, TOL_FWD[dtype])
            # The refs as the TF gradient passes them (module docstring).
            xref = xd if (grad_ref == 'x' or has_2nd) else None
            yref = yd if (grad_ref == 'y' or clamp >= 0) else None
            mask = 1.0 if clamp < 0 else (np.abs(yh) < backends.stored(clamp, dtype))
            err, g1 = r.launch(dtype, shape, axis, act, 1, dyd, bd, xref, yref, **kw)
            if err != 0:
              res.add('bias_act/grad1', name, dtype, False,
                      detail=f'launch: {be.error_string(err)}')
            else:
              res.check('bias_act/grad1', name, dtype, r.host(g1, dtype),
                        dyh * gain * d1 * mask, TOL_GRAD[dtype])
            if not has_2nd:
              continue
            err, g2 = r.launch(dtype, shape, axis, act, 2, ddxd, bd, xref, yref, dyd, **kw)
            if err != 0:
              res.add('bias_act/grad2', name, dtype, False,
                      detail=f'launch: {be.error_string(err)}')
            else:
              res.check('bias_act/grad2', name, dtype, r.host(g2, dtype),
                        ddxh * dyh * gain * d2 * mask, TOL_GRAD[dtype])


def check_in_place(be, res):
  """y aliasing x (the TF op forwards its input buffer), over more elements than one
  launch's threads (grid-stride loop), odd channel count; forward and first derivative."""
  r = _Runner(be)
  rng = np.random.RandomState(5)
  shape, axis = (3, 97, 101, 67), 3
  x = rng.standard_normal(shape).astype(np.float32)
  b = np.linspace(-1, 1, shape[-1]).astype(np.float32)
  dy = rng.standard_normal(shape).astype(np.float32)
  alpha, gain = 0.2, math.sqrt(2)
  for dtype in DTYPES:
    xd, xh = r.dev(x, dtype)
    bd, bh = r.dev(b, dtype)
    f, d1, _ = np_act('lrelu', xh + bh, alpha)
    err, yd = r.launch(dtype, shape, axis, 'lrelu', 0, xd, bd, alpha=alpha, gain=gain, out=xd)
    if err != 0:
      res.add('bias_act/in_place', 'forward', dtype, False, detail=be.error_string(err))
      continue
    res.check('bias_act/in_place', 'forward', dtype, r.host(yd, dtype), f * gain,
              TOL_FWD[dtype])
    dyd, dyh = r.dev(dy, dtype)
    err, gd = r.launch(dtype, shape, axis, 'lrelu', 1, dyd, bd, yref=yd, alpha=alpha,
                       gain=gain, out=dyd)
    if err != 0:
      res.add('bias_act/in_place', 'grad1', dtype, False, detail=be.error_string(err))
      continue
    res.check('bias_act/in_place', 'grad1', dtype, r.host(gd, dtype), dyh * gain * d1,
              TOL_GRAD[dtype])


def check_special_values(be, res):
  """NaN propagates, infinities saturate as the formulas say, exp never overflows into NaN
  (softplus beyond 20 is linear); with and without clamp (which keeps NaN)."""
  r = _Runner(be)
  x = np.array([np.nan, np.inf, -np.inf, 100.0, -100.0, 0.0, 30.0, -30.0, 1e-3, -1e-3],
               np.float32)
  for dtype in DTYPES:
    xd, xh = r.dev(x, dtype)
    for act, (_, _, alpha, gain, _) in ACTS.items():
      for clamp in (-1.0, 5.0):
        f = np_act(act, xh, alpha)[0] * gain
        f[0] = np.nan  # NaN in, NaN out, for every activation
        if clamp >= 0:
          f = np.clip(f, -clamp, clamp)
        err, yd = r.launch(dtype, x.shape, 0, act, 0, xd, alpha=alpha, gain=gain, clamp=clamp)
        name = f'{act}_clamp{clamp:g}'
        if err != 0:
          res.add('bias_act/special_values', name, dtype, False, detail=be.error_string(err))
          continue
        res.check('bias_act/special_values', name, dtype, r.host(yd, dtype), f,
                  TOL_FWD[dtype])


def check_large(be, res, dtype='float16'):
  """lrelu + bias on be.large_shape ([32, 1024, 1024, 3] on a GPU), forward and first
  derivative: every output written, and 1M random elements plus both ends exact."""
  group = 'bias_act/large'
  r = _Runner(be)
  shape = tuple(be.large_shape)
  axis, c = len(shape) - 1, shape[-1]
  size = int(np.prod(shape))
  rng = np.random.RandomState(9)
  x = rng.standard_normal(shape).astype(np.float32)
  dy = rng.standard_normal(shape).astype(np.float32)
  b = rng.standard_normal([c]).astype(np.float32)
  idx = np.unique(np.concatenate([np.arange(min(size, 65536)),
                                  np.arange(max(0, size - 65536), size),
                                  rng.randint(0, size, min(size, 1 << 20))]))
  # Only the sampled elements' stored values are needed on the host.
  dev_and_sample = lambda a: (be.asarray(backends.to_storage(a, dtype)),
                              backends.stored(a.reshape(-1)[idx], dtype).astype(np.float64))
  xd, xh = dev_and_sample(x)
  bd, bh = r.dev(b, dtype)
  v = xh + bh[idx % c]
  del x
  f, d1, _ = np_act('lrelu', v, 0.2)
  gain = math.sqrt(2)
  name = 'x'.join(map(str, shape))
  err, yd = r.launch(dtype, shape, axis, 'lrelu', 0, xd, bd, alpha=0.2, gain=gain)
  if err != 0:
    res.add(group, f'forward_{name}', dtype, False, detail=be.error_string(err))
    return
  be.sync()
  xp_idx = be.xp.asarray(idx)
  if not be.all_finite(yd, dtype):
    res.add(group, f'forward_{name}', dtype, False, detail='some outputs not written')
  else:
    got = backends.from_storage(be.to_host(yd.reshape(-1)[xp_idx]), dtype)
    res.check(group, f'forward_{name}', dtype, got, f * gain, TOL_FWD[dtype])
  del xd
  dyd, dyh = dev_and_sample(dy)
  del dy
  err, gd = r.launch(dtype, shape, axis, 'lrelu', 1, dyd, bd, yref=yd, alpha=0.2, gain=gain)
  if err != 0:
    res.add(group, f'grad1_{name}', dtype, False, detail=be.error_string(err))
    return
  be.sync()
  if not be.all_finite(gd, dtype):
    res.add(group, f'grad1_{name}', dtype, False, detail='some outputs not written')
  else:
    got = backends.from_storage(be.to_host(gd.reshape(-1)[xp_idx]), dtype)
    res.check(group, f'grad1_{name}', dtype, got, dyh * gain * d1, TOL_GRAD[dtype])
  del yd, gd, dyd
  be.free()


def check_invalid(be, res):
  """Inconsistent parameters are rejected before any memory is touched."""
  group = 'bias_act/invalid_params'
  fake = be.asarray(np.zeros(8, backends.STORAGE['float32']))

  def launch(**kw):
    p = dict(size=8, channels=2, inner=1, act=2, grad=0, has_bias=0, has_xref=0, has_yref=0,
             has_dy=0, alpha=0.2, gain=1.0, clamp=-1.0)
    p.update(kw)
    ptr = p.pop('ptr', fake)
    refs = [ptr if p[k] else None for k in ('has_bias', 'has_xref', 'has_yref', 'has_dy')]
    return be.bias_act('float32', p, ptr, *refs, ptr)

  bad = {'act9': dict(act=9), 'act-1': dict(act=-1), 'grad3': dict(grad=3),
         'channels0': dict(channels=0), 'inner0': dict(inner=0), 'null_x_y': dict(ptr=None),
         'lrelu_grad1_no_yref': dict(grad=1),
         'swish_grad1_no_xref': dict(act=8, grad=1, has_yref=1),
         'tanh_grad2_no_dy': dict(act=3, grad=2, has_yref=1)}
  for name, kw in bad.items():
    err = launch(**kw)
    res.add(group, name, 'float32', err != 0, detail=f'returned {err}')
  err = launch(size=0, ptr=None)
  res.add(group, 'size0_is_a_no_op', 'float32', err == 0, detail=f'returned {err}')


def check_tables(be, res):
  n, kinds = be.bias_act_tables()
  want = [REF_KIND[ACTS[a][1]] for a in sorted(ACTS, key=lambda a: ACTS[a][0])]
  res.add('bias_act/activation_table', 'num_acts_and_ref_kinds', '-',
          n == len(ACTS) and kinds == want, detail=f'kernel {n} {kinds}, python {want}')


def run_all(be, res, reduced=False):
  if be.bias_act_missing:
    res.skip('bias_act', be.bias_act_missing)
    return
  check_tables(be, res)
  check_invalid(be, res)
  check_modes(be, res, reduced)
  check_special_values(be, res)
  check_in_place(be, res)
  if not reduced:
    check_large(be, res)
