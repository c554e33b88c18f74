"""Upsample, pad, FIR-filter and downsample in one op: `upfirdn2d` (NHWC).

One public function, its pure-TF reference beside it, and the compiled kernel behind it,
plus the helpers the networks use (`setup_filter`, `upsample2d`, `downsample2d`,
`filter2d`). Conventions follow NVIDIA's code: `flip_filter=False` is a true convolution,
padding is relative to the upsampled image and negative padding crops, `gain` scales the
whole result.

The gradient of upfirdn2d is another upfirdn2d (flipped filter, up and down swapped), so
derivatives of any order run through the same compiled kernel.
"""

import numpy as np
import tensorflow as tf

from sg2tf.custom_ops import _loader
from sg2tf.custom_ops import _validate
from sg2tf.custom_ops import policy


def setup_filter(f, normalize=True, flip_filter=False, gain=1, separable=None):
  """Turns a list/array into a float32 FIR filter constant.

  Args:
    f: None (identity), 1-D taps (separable) or a 2-D filter [fh, fw].
    normalize: scale so the taps sum to 1.
    flip_filter: flip the filter (convolution <-> correlation).
    gain: overall gain of the 2-D filter (a separable filter gets sqrt(gain) per axis).
    separable: keep a 1-D filter 1-D (default: yes when f is 1-D with >= 2 taps).
  Returns:
    A float32 tf constant, 1-D or 2-D.
  """
  if f is None:
    f = 1
  f = np.asarray(f, dtype=np.float32)
  if f.ndim == 0:
    f = f[np.newaxis]
  if f.ndim not in (1, 2) or f.size == 0:
    raise _validate.invalid(f'setup_filter: the filter must be 1-D or 2-D and non-empty, got shape {f.shape}')
  if normalize:
    f = f / np.sum(f)
  if separable is None:
    separable = f.ndim == 1 and f.size >= 2
  if f.ndim == 1 and not separable:
    f = np.outer(f, f)
  if flip_filter:
    f = f[::-1] if f.ndim == 1 else f[::-1, ::-1]
  f = f * (gain ** (f.ndim / 2))
  return tf.constant(np.ascontiguousarray(f), dtype=tf.float32)


def _as_2d_filter(f, gain):
  """A float32 [fh, fw] tensor: 1-D (separable) filters become an outer product."""
  if f is None:
    f = [[1.0]]
  f = tf.convert_to_tensor(f)
  if not f.dtype.is_floating:
    raise _validate.invalid(f'upfirdn2d: f must be a float filter, got {f.dtype.name}')
  if f.shape.rank not in (1, 2):
    raise _validate.invalid(
        f'upfirdn2d: f must be 1-D (separable) or 2-D [fh, fw], got shape {f.shape}')
  if 0 in f.shape:
    raise _validate.invalid(f'upfirdn2d: f must not be empty, got shape {f.shape}')
  static = tf.get_static_value(f)
  if static is not None:
    # A constant filter (the usual case) stays a graph constant: no outer product or gain
    # multiply at run time, and no small allocation between the large ones.
    k = np.asarray(static).astype(np.float32)
    if k.ndim == 1:
      k = k[:, np.newaxis] * k[np.newaxis, :]
    return tf.constant(k * np.float32(gain) if gain != 1 else k)
  f = tf.cast(f, tf.float32)
  if f.shape.rank == 1:
    f = f[:, tf.newaxis] * f[tf.newaxis, :]
  if gain != 1:
    f = f * gain
  return f


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='auto'):
  """Upsample by zero insertion, pad, FIR-filter and downsample a batch of NHWC images.

  Per spatial axis: insert `up - 1` zeros after every sample, pad by `padding` (negative
  values crop), convolve with `f` (true convolution unless `flip_filter`), keep every
  `down`-th sample, and multiply by `gain`.

  Args:
    x: [N, H, W, C] float32/float16/bfloat16.
    f: None, 1-D taps (separable, applied on both axes) or 2-D [fh, fw] float filter.
    up: int or [x, y] upsampling factors (>= 1).
    down: int or [x, y] downsampling factors (>= 1).
    padding: int, [x, y] or [x0, x1, y0, y1], relative to the upsampled image.
    flip_filter: False = convolution (as NVIDIA's code), True = correlation.
    gain: scale of the result.
    impl: 'custom', 'ref', or 'auto' (default): the policy's choice (policy.py). 'auto'
      uses the reference when H, W or the filter size are not static.
  Returns:
    [N, (H*up_y + py0 + py1 - fh) // down_y + 1, (W*up_x + ...) // down_x + 1, C].
  """
  x = _validate.float_tensor(x, 'upfirdn2d', 'x')
  if x.shape.rank != 4:
    raise _validate.invalid(f'upfirdn2d: x must be 4-D [N, H, W, C], got shape {x.shape}')
  upx, upy = _validate.int_pair(up, 'upfirdn2d', 'up', 1)
  downx, downy = _validate.int_pair(down, 'upfirdn2d', 'down', 1)
  px0, px1, py0, py1 = _validate.padding4(padding, 'upfirdn2d')
  f = _as_2d_filter(f, float(gain))
  fh, fw = f.shape
  h, w = x.shape[1], x.shape[2]
  for name, size, upv, p0, p1, fs in (('height', h, upy, py0, py1, fh), ('width', w, upx, px0, px1, fw)):
    if size is not None and fs is not None and size * upv + p0 + p1 < fs:
      raise _validate.invalid(
          f'upfirdn2d: the output {name} would be empty: input {size} x up {upv} + padding '
          f'({p0}, {p1}) is smaller than the filter ({fs} taps). Use more padding or a smaller filter.')
  args = (x, f, upx, upy, downx, downy, px0, px1, py0, py1, bool(flip_filter))
  static_spatial = h is not None and w is not None and fh is not None and fw is not None
  requested = policy.requested_impl(impl)
  if requested == 'auto' and not static_spatial:
    requested = 'ref'  # The compiled op's gradient needs static spatial sizes.
  if policy.resolve_impl(requested, 'upfirdn2d') == 'custom':
    if not static_spatial:
      raise _validate.invalid('upfirdn2d(impl="custom") needs static H, W and filter size; use impl="ref".')
    return _upfirdn2d_custom(*args)
  return _upfirdn2d_ref(*args)


def _upfirdn2d_ref(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter):
  """Plain TF ops (XLA-compilable); float16/bfloat16 computed in float32."""
  dtype = x.dtype
  if dtype != tf.float32:
    x = tf.cast(x, tf.float32)
  shape = tf.shape(x)
  n, h, w, c = shape[0], shape[1], shape[2], x.shape[3] if x.shape[3] is not None else shape[3]
  if upx > 1 or upy > 1:
    x = tf.reshape(x, [n, h, 1, w, 1, c])
    x = tf.pad(x, [[0, 0], [0, 0], [0, upy - 1], [0, 0], [0, upx - 1], [0, 0]])
    x = tf.reshape(x, [n, h * upy, w * upx, c])
  x = tf.pad(x, [[0, 0], [max(py0, 0), max(py1, 0)], [max(px0, 0), max(px1, 0)], [0, 0]])
  if min(px0, px1, py0, py1) < 0:
    s = tf.shape(x)
    x = x[:, max(-py0, 0):s[1] - max(-py1, 0), max(-px0, 0):s[2] - max(-px1, 0), :]
  # depthwise_conv2d cross-correlates: a true convolution flips the filter.
  k = f if flip_filter else f[::-1, ::-1]
  k = tf.tile(k[:, :, tf.newaxis, tf.newaxis], [1, 1, c, 1])
  if downx == downy:
    x = tf.nn.depthwise_conv2d(x, k, strides=[1, downy, downx, 1], padding='VALID')
  else:
    x = tf.nn.depthwise_conv2d(x, k, strides=[1, 1, 1, 1], padding='VALID')
    x = x[:, ::downy, ::downx, :]
  return tf.cast(x, dtype)


def _upfirdn2d_custom(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter):
  lib = _loader.get_library()
  y = lib.sg2tf_upfirdn2d(x, f, upx=upx, upy=upy, downx=downx, downy=downy, padx0=px0,
                          padx1=px1, pady0=py0, pady1=py1, flip_filter=flip_filter)
  return _loader.apply_fault('upfirdn2d', y)


@tf.RegisterGradient('Sg2tfUpfirdn2d')
def _upfirdn2d_grad(op, dy):
  """dx = upfirdn2d(dy) with the flipped filter, up and down swapped, and matching padding.

  The filter is treated as a constant (no gradient), as in NVIDIA's code.
  """
  x, f = op.inputs
  a = {k: op.get_attr(k) for k in ('upx', 'upy', 'downx', 'downy', 'padx0', 'padx1',
                                   'pady0', 'pady1', 'flip_filter')}
  in_h, in_w = x.shape[1], x.shape[2]
  out_h, out_w = op.outputs[0].shape[1], op.outputs[0].shape[2]
  fh, fw = f.shape
  # Adjoint padding: the zero-inserted dy, correlated with the reversed filter, must land
  # on the input samples i*up for i in [0, in).
  gpx0 = fw - a['padx0'] - 1
  gpy0 = fh - a['pady0'] - 1
  gpx1 = in_w * a['upx'] - out_w * a['downx'] + a['padx0'] - a['upx'] + 1
  gpy1 = in_h * a['upy'] - out_h * a['downy'] + a['pady0'] - a['upy'] + 1
  lib = _loader.get_library()
  dx = lib.sg2tf_upfirdn2d(dy, f, upx=a['downx'], upy=a['downy'], downx=a['upx'], downy=a['upy'],
                           padx0=gpx0, padx1=gpx1, pady0=gpy0, pady1=gpy1,
                           flip_filter=not a['flip_filter'])
  return dx, None


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='auto'):
  """FIR-filter x; by default the output keeps the input size (SAME-like padding)."""
  fw, fh = _filter_size(f)
  px0, px1, py0, py1 = _validate.padding4(padding, 'filter2d')
  p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
  return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='auto'):
  """Upsample by `up` with the FIR filter f; output is exactly `up` times larger."""
  upx, upy = _validate.int_pair(up, 'upsample2d', 'up', 1)
  px0, px1, py0, py1 = _validate.padding4(padding, 'upsample2d')
  fw, fh = _filter_size(f)
  p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2,
       py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
  return upfirdn2d(x, f, up=[upx, upy], padding=p, flip_filter=flip_filter,
                   gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='auto'):
  """Downsample by `down` after FIR-filtering with f; output is `down` times smaller."""
  downx, downy = _validate.int_pair(down, 'downsample2d', 'down', 1)
  px0, px1, py0, py1 = _validate.padding4(padding, 'downsample2d')
  fw, fh = _filter_size(f)
  p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2,
       py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
  return upfirdn2d(x, f, down=[downx, downy], padding=p, flip_filter=flip_filter,
                   gain=gain, impl=impl)


def _filter_size(f):
  """(width, height) of a filter; 1-D filters are separable (same taps on both axes)."""
  if f is None:
    return 1, 1
  shape = tf.convert_to_tensor(f).shape
  if shape.rank == 1:
    return int(shape[0]), int(shape[0])
  if shape.rank == 2:
    return int(shape[1]), int(shape[0])
  raise _validate.invalid(f'upfirdn2d: f must be 1-D or 2-D, got shape {shape}')
