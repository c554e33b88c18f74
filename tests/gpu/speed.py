"""Speed of the kernels at StyleGAN2 shapes, side by side in one run with the device's copy
bandwidth, PyTorch eager and torch.compile (when importable).

Per call: bias_act = lrelu(x + b) * sqrt(2) on [N, R, R, C]; up2 = upsample2d's upfirdn2d
([1,3,3,1], up 2, padding 2,1, gain 4) producing [N, R, R, C]; down2 = downsample2d's
(padding 1,1) reading [N, R, R, C]. GB/s counts the bytes each kernel must move: every input
element read once and every output element written once (+ bias / filter). The roofline of
these memory-bound ops is a device-to-device copy (read + write) measured in the same run.
PyTorch runs the same computation in its own layout (NCHW, as the official PyTorch code):
`leaky_relu(x + b) * gain`, and upfirdn2d as zero insertion + pad + conv2d (groups=C) with
the flipped FIR filter (stride 2 for down2). Its output is checked against ours once per op
and dtype, so the comparison is of the same computation. Timed with CUDA events around
batches of back-to-back calls queued behind a spin kernel, so both sides are timed on the GPU
without Python's launch overhead between calls (median of 3 batches of >= 20 ms after a
warm-up); on the CPU backend with a wall clock.
"""

import math
import time

import numpy as np

from tests.gpu import backends
from tests.gpu.check_common import rel_error

MIB = 1 << 20
# (C, R): the activations of StyleGAN2's synthesis network at R x R (N = 32).
GPU_SHAPES = ((512, 8), (512, 16), (512, 32), (256, 64), (128, 128), (64, 256), (32, 1024))
GPU_N = 32
CPU_SHAPES = ((512, 8), (64, 32))
CPU_N = 2
OPS = ('bias_act', 'up2', 'down2')
TIMING = ('GPU time per call: CUDA events around a batch of back-to-back calls queued behind '
          'a spin kernel (no Python launch gaps), median of 3 batches of >= 20 ms')
TARGET_BYTES = 64 * MIB  # the roofline targets apply from this tensor size on
TARGETS = {'bias_act': 0.8, 'up2': 0.5, 'down2': 0.5}
_FIR = np.array([1, 3, 3, 1], np.float64) / 8
_UP2 = dict(upx=2, upy=2, downx=1, downy=1, padx0=2, padx1=1, pady0=2, pady1=1, fh=4, fw=4,
            flip=0)
_DOWN2 = dict(upx=1, upy=1, downx=2, downy=2, padx0=1, padx1=1, pady0=1, pady1=1, fh=4, fw=4,
              flip=0)


def op_geometry(op, n, c, r, itemsize):
  """(input shape, output shape, bytes moved, the [N, R, R, C] tensor's bytes)."""
  full, half = (n, r, r, c), (n, r // 2, r // 2, c)
  tensor = n * r * r * c * itemsize
  if op == 'bias_act':
    return full, full, 2 * tensor + c * itemsize, tensor
  if op == 'up2':
    return half, full, tensor // 4 + tensor + 16 * 4, tensor
  if op == 'down2':
    return full, half, tensor + tensor // 4 + 16 * 4, tensor
  raise ValueError(op)


def kernel_filter(op):
  gain = 4.0 if op == 'up2' else 1.0
  return (np.outer(_FIR, _FIR) * gain).astype(np.float32)


def evaluate_targets(rows):
  """The issue's targets per row: bias_act >= 80% and up2/down2 >= 50% of copy bandwidth for
  tensors >= 64 MiB; faster than PyTorch eager at every shape it ran at."""
  out = []
  for row in rows:
    if row.get('ours_s') is None:
      continue
    label = f"{row['op']} {row['dtype']} {row['shape']}"
    want = TARGETS[row['op']]
    if row['tensor_bytes'] >= TARGET_BYTES and row.get('frac_of_copy') is not None:
      out.append(dict(target=f'{row["op"]} >= {want:.0%} of copy bandwidth (>= 64 MiB)',
                      case=label, value=row['frac_of_copy'], threshold=want,
                      met=row['frac_of_copy'] >= want))
    if row.get('eager_s') is not None:
      out.append(dict(target='faster than PyTorch eager', case=label,
                      value=row['eager_s'] / row['ours_s'], threshold=1.0,
                      met=row['ours_s'] < row['eager_s']))
  return out


class _Torch:
  """PyTorch baselines on the backend's device; `reason` says why one is missing."""

  def __init__(self, device, use_compile, compile_budget_s, log, spin=None):
    self.reason = self.compile_reason = None
    self.spin = spin
    self.log = log
    self.compile_budget_s = compile_budget_s
    self.compile_spent_s = 0.0
    self._compiled = {}
    try:
      import torch  # pylint: disable=g-import-not-at-top
      import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
    except Exception as e:  # pylint: disable=broad-except
      self.torch, self.reason = None, f'PyTorch not importable: {e}'
      self.compile_reason = self.reason
      return
    self.torch, self.F = torch, F
    self.device = torch.device(device)
    if device == 'cuda' and not torch.cuda.is_available():
      self.torch, self.reason = None, 'PyTorch sees no CUDA device'
      self.compile_reason = self.reason
      return
    if not use_compile:
      self.compile_reason = 'disabled (--no-compile)'
    self.version = torch.__version__

  def dtype(self, name):
    return {'float32': self.torch.float32, 'float16': self.torch.float16}[name]

  def fn(self, op):
    F = self.F

    def bias_act(x, b):
      return F.leaky_relu(x + b.view(1, -1, 1, 1), 0.2) * math.sqrt(2)

    def resample(x, w, up, down, pad):
      n, c, h, wd = x.shape
      if up > 1:  # zero insertion
        x = x.reshape(n, c, h, 1, wd, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, wd * up)
      x = F.pad(x, pad)
      return F.conv2d(x, w, stride=down, groups=c)

    if op == 'bias_act':
      return bias_act
    if op == 'up2':
      return lambda x, w: resample(x, w, 2, 1, [2, 1, 2, 1])
    return lambda x, w: resample(x, w, 1, 2, [1, 1, 1, 1])

  def inputs(self, op, in_shape, dtype, x_nhwc_host=None):
    """NCHW tensors: x (random, or the given NHWC host values) and b or the filter."""
    torch = self.torch
    n, h, w, c = in_shape
    dt = self.dtype(dtype)
    if x_nhwc_host is None:
      x = torch.randn((n, c, h, w), device=self.device, dtype=dt)
    else:
      x = torch.from_numpy(np.ascontiguousarray(x_nhwc_host.transpose(0, 3, 1, 2)))
      x = x.to(device=self.device, dtype=dt)
    if op == 'bias_act':  # the bias our kernel gets (speed.run), rounded the same way
      other = torch.from_numpy(np.linspace(-1, 1, c, dtype=np.float32))
      other = other.to(device=self.device, dtype=dt)
    else:  # conv2d correlates: the weight is the FIR filter flipped (true convolution).
      k = torch.from_numpy(kernel_filter(op)[::-1, ::-1].copy())
      other = k.to(device=self.device, dtype=dt).reshape(1, 1, 4, 4).repeat(c, 1, 1, 1)
    return x, other

  def compiled(self, op, dtype):
    """torch.compile of fn(op); None once it failed or the compile budget is spent."""
    if self.compile_reason is not None:
      return None
    key = (op, dtype)
    if key not in self._compiled:
      if self.compile_spent_s > self.compile_budget_s:
        return None
      self._compiled[key] = self.torch.compile(self.fn(op))
    return self._compiled[key]

  def time(self, fn):
    """Seconds per call, by CUDA events on PyTorch's stream (wall clock on the CPU)."""
    torch = self.torch
    if self.device.type != 'cuda':
      return backends.time_per_call(fn, backends.wall_clock(fn), max_iters=50)
    event = lambda: torch.cuda.Event(enable_timing=True)
    spin = None
    if self.spin is not None:  # our spin kernel, on PyTorch's stream
      spin = lambda secs: self.spin(secs, torch.cuda.current_stream().cuda_stream)
    clock = backends.event_clock(fn, event(), event(), lambda s, e: s.elapsed_time(e), spin)
    return backends.time_per_call(fn, clock)

  def free(self):
    if self.torch is not None and self.device.type == 'cuda':
      self.torch.cuda.synchronize()
      self.torch.cuda.empty_cache()


def _time_copy(be, nbytes):
  src = be.full((nbytes // 4,), 'float32', np.float32(1.0))
  dst = be.full((nbytes // 4,), 'float32', np.float32(0.0))
  return be.time_per_call(lambda: be.copy(dst, src))


def copy_bandwidth(be, nbytes):
  """Device-to-device copy: (GB/s counting bytes read + written, seconds per copy)."""
  secs = _time_copy(be, nbytes)
  be.free()  # the buffers are gone with _time_copy's frame
  return 2 * nbytes / secs / 1e9, secs


def _random(be, shape, dtype, seed):
  """Standard normal values made where the array lives (no multi-GiB host transfers)."""
  if be.name == 'cuda':
    x = be.xp.random.RandomState(seed).standard_normal(shape, dtype=np.float32)
  else:
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
  return x.astype(backends.STORAGE[dtype])


def _our_call(be, op, dtype, x, other, y, in_shape):
  n, h, w, c = in_shape
  if op == 'bias_act':
    p = dict(size=x.size, channels=c, inner=1, act=2, grad=0, has_bias=True, has_xref=False,
             has_yref=False, has_dy=False, alpha=0.2, gain=math.sqrt(2), clamp=-1.0)
    return lambda: be.bias_act(dtype, p, x, other, None, None, None, y)
  a = dict(_UP2 if op == 'up2' else _DOWN2, n=n, in_h=h, in_w=w, c=c)
  return lambda: be.upfirdn2d(dtype, a, x, other, y)


def _time_ours(be, op, dtype, in_shape, out_shape):
  """(launch error, seconds per call) of our kernel on random input."""
  c = in_shape[3]
  x = _random(be, in_shape, dtype, 1)
  other = (be.asarray(backends.to_storage(np.linspace(-1, 1, c, dtype=np.float32), dtype))
           if op == 'bias_act' else be.asarray(kernel_filter(op)))
  y = be.full(out_shape, dtype, backends.nan_bits(dtype))
  call = _our_call(be, op, dtype, x, other, y, in_shape)
  err = call()
  return err, (be.time_per_call(call) if err == 0 else None)


def _torch_check(tb, be, op, dtype, in_shape, out_shape, log):
  """Max relative difference between PyTorch's and our output on the same small input."""
  n, h, w, c = in_shape
  rng = np.random.RandomState(0)
  xh = rng.standard_normal(in_shape).astype(np.float32)
  xs = backends.to_storage(xh, dtype)
  x = be.asarray(xs)
  if op == 'bias_act':
    other = be.asarray(backends.to_storage(np.linspace(-1, 1, c, dtype=np.float32), dtype))
  else:
    other = be.asarray(kernel_filter(op))
  y = be.full(out_shape, dtype, backends.nan_bits(dtype))
  if _our_call(be, op, dtype, x, other, y, in_shape)() != 0:
    return None
  be.sync()
  ours = backends.from_storage(be.to_host(y), dtype)
  tx, tother = tb.inputs(op, in_shape, dtype, backends.from_storage(xs, dtype))
  theirs = tb.fn(op)(tx, tother).float().cpu().numpy().transpose(0, 2, 3, 1)
  return rel_error(theirs, ours)


def run(be, dtypes, n, shapes, use_torch=True, use_compile=True, compile_budget_s=90.0,
        compile_dtypes=('float16',), log=print, on_row=None):
  """Returns the speed section of the report (rows, copy bandwidth, targets)."""
  copy_bytes = (1 << 30) if be.name == 'cuda' else (64 << 20)
  copy_gbps, copy_s = copy_bandwidth(be, copy_bytes)
  log(f'copy bandwidth: {copy_gbps:.0f} GB/s ({copy_bytes >> 20} MiB buffers, read + write)')
  device = 'cuda' if be.name == 'cuda' else 'cpu'
  tb = _Torch(device, use_compile, compile_budget_s, log, be.spin) if use_torch else None
  rows, checked = [], {}
  for dtype in dtypes:
    for c, r in shapes:
      for op in OPS:
        if op == 'bias_act' and be.bias_act_missing:
          continue  # said once in the report's correctness section
        in_shape, out_shape, moved, tensor = op_geometry(op, n, c, r, backends.ITEMSIZE[dtype])
        row = dict(op=op, dtype=dtype, shape=f'{n}x{r}x{r}x{c}', tensor_bytes=tensor,
                   bytes_moved=moved, ours_s=None, gbps=None, frac_of_copy=None,
                   eager_s=None, compile_s=None, compile_warmup_s=None, torch_note='')
        err, secs = _time_ours(be, op, dtype, in_shape, out_shape)
        be.free()  # the buffers are gone with _time_ours's frame
        if err != 0:
          row['torch_note'] = f'our kernel failed to launch: {be.error_string(err)}'
        else:
          row['ours_s'] = secs
          row['gbps'] = moved / secs / 1e9
          row['frac_of_copy'] = row['gbps'] / copy_gbps
        if tb is not None and tb.torch is not None:
          _torch_row(tb, be, row, op, dtype, in_shape, out_shape, checked, compile_dtypes, log)
        elif tb is not None:
          row['torch_note'] = '; '.join(filter(None, [row['torch_note'], tb.reason]))
        rows.append(row)
        log(_row_line(row))
        if on_row:
          on_row(row)
  targets = evaluate_targets(rows)
  timing = TIMING if be.name == 'cuda' else 'wall clock (CPU backend)'
  if getattr(be, 'spin_error', None):
    timing = be.spin_error
  return dict(timing=timing,
              copy_gbps=copy_gbps, copy_bytes=copy_bytes, copy_s=copy_s, n=n,
              shapes=[list(s) for s in shapes], dtypes=list(dtypes), rows=rows,
              targets=targets, torch=None if tb is None else dict(
                  version=getattr(tb, 'version', None), reason=tb.reason,
                  compile_reason=tb.compile_reason, compile_spent_s=tb.compile_spent_s,
                  checks=checked))


def _row_line(r):
  us = lambda v: '-' if v is None else f'{v * 1e6:.1f} us'
  ours = (f"{us(r['ours_s'])}, {r['gbps']:.0f} GB/s ({r['frac_of_copy']:.0%} of copy)"
          if r['ours_s'] else 'failed')
  return (f"speed: {r['op']} {r['dtype']} {r['shape']}: {ours}; eager {us(r['eager_s'])}; "
          f"compile {us(r['compile_s'])}{'; ' + r['torch_note'] if r['torch_note'] else ''}")


def _torch_row(tb, be, row, op, dtype, in_shape, out_shape, checked, compile_dtypes, log):
  notes = []
  key = f'{op}/{dtype}'
  try:
    if key not in checked:
      small = (1,) + tuple(in_shape[1:3]) + (min(in_shape[3], 8),)
      small_out = (1,) + tuple(out_shape[1:3]) + (small[3],)
      checked[key] = _torch_check(tb, be, op, dtype, small, small_out, log)
    _torch_times(tb, row, op, dtype, in_shape, compile_dtypes, notes, log)
  except Exception as e:  # pylint: disable=broad-except
    notes.append(f'PyTorch failed: {type(e).__name__}: {str(e)[:300]}')
  tb.free()  # the inputs are gone with _torch_times's frame
  row['torch_note'] = '; '.join(filter(None, [row['torch_note']] + notes))


def _torch_times(tb, row, op, dtype, in_shape, compile_dtypes, notes, log):
  """PyTorch eager (and torch.compile) seconds per call into row."""
  x, other = tb.inputs(op, in_shape, dtype)
  fn = tb.fn(op)
  row['eager_s'] = tb.time(lambda: fn(x, other))
  cfn = tb.compiled(op, dtype) if dtype in compile_dtypes else None
  if cfn is not None:
    t = time.perf_counter()
    try:
      cfn(x, other)
      if tb.device.type == 'cuda':
        tb.torch.cuda.synchronize()
      row['compile_warmup_s'] = time.perf_counter() - t
      tb.compile_spent_s += row['compile_warmup_s']
      row['compile_s'] = tb.time(lambda: cfn(x, other))
    except Exception as e:  # pylint: disable=broad-except
      tb.compile_reason = f'torch.compile failed: {type(e).__name__}: {str(e)[:300]}'
      log(tb.compile_reason)
  elif dtype in compile_dtypes and tb.compile_reason is None:
    notes.append('torch.compile skipped: compile budget spent')
