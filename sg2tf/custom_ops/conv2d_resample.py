"""2-D convolution fused with FIR up/downsampling, the pattern StyleGAN2's layers use.

Up: a stride-`up` transposed convolution followed by the FIR filter (no MACs spent on
inserted zeros). Down: the FIR filter followed by a strided convolution. Both as in the
official code, so official weights give the official numbers (facts.md; fixture README
section 8). NHWC activations; HWIO weights used as cross-correlation (`flip_weight=True`).

`padding` is the padding a plain convolution would use (k // 2 for SAME); the extra
padding that the FIR filter and the resampling need is added here.
"""

import tensorflow as tf

from sg2tf.custom_ops import _validate
from sg2tf.custom_ops import policy
from sg2tf.custom_ops.upfirdn2d import _filter_size, upfirdn2d


def _conv(x, w, stride=1, flip_weight=True):
  """VALID conv of NHWC x with HWIO w; grouped when x has k * w.shape[2] channels (TF
  infers the group count from the channel counts)."""
  if not flip_weight:
    w = w[::-1, ::-1]
  return tf.nn.conv2d(x, w, strides=stride, padding='VALID')


def _conv_transpose(x, w, stride, groups=1, impl='auto'):
  """Transposed VALID conv that is the adjoint of correlating with w: output (H-1)*s + k.

  Equal to: zero-insert x, pad by k - 1, and TRUE-convolve with w. Grouped, the policy's
  formulation decides: one grouped conv2d_transpose ('gpu'), or that zero-insertion form
  ('cpu': TF has no grouped Conv2DBackpropInput kernel on CPU).
  """
  kh, kw, in_g, out_c = w.shape
  out_g = out_c // groups
  if groups > 1 and not policy.grouped_transpose():
    x = upfirdn2d(x, None, up=stride, padding=[kw - 1, kw - stride, kh - 1, kh - stride], impl=impl)
    return tf.nn.conv2d(x, w[::-1, ::-1], strides=1, padding='VALID')
  if groups == 1:
    wt = tf.transpose(w, [0, 1, 3, 2])  # conv2d_transpose wants [kh, kw, out, in].
  else:
    # Group g owns inputs [g*in_g, (g+1)*in_g) and outputs [g*out_g, (g+1)*out_g).
    wt = tf.reshape(w, [kh, kw, in_g, groups, out_g])
    wt = tf.transpose(wt, [0, 1, 4, 3, 2])
    wt = tf.reshape(wt, [kh, kw, out_g, groups * in_g])
  s = tf.shape(x)
  out_shape = tf.stack([s[0], (s[1] - 1) * stride + kh, (s[2] - 1) * stride + kw, out_c])
  return tf.nn.conv2d_transpose(x, wt, out_shape, strides=stride, padding='VALID')


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True,
                    flip_filter=False, impl='auto'):
  """Conv2D with optional up/downsampling through the FIR filter f.

  Args:
    x: [N, H, W, C_in] activations.
    w: [kh, kw, C_in / groups, C_out] weights (HWIO).
    f: FIR filter for resampling (None = identity), e.g. setup_filter([1, 3, 3, 1]).
    up, down: integer factors (>= 1; StyleGAN2 uses 2).
    padding: int, [x, y] or [x0, x1, y0, y1]: the padding of the equivalent plain conv.
    groups: grouped convolution (the fused modulated conv).
    flip_weight: True = cross-correlation (tf.nn.conv2d semantics), False = convolution.
    flip_filter: see upfirdn2d.
    impl: upfirdn2d implementation ('auto' = the policy's, 'custom', 'ref').
  Returns:
    [N, H * up / down, W * up / down, C_out] for SAME padding.
  """
  x = _validate.float_tensor(x, 'conv2d_resample', 'x')
  w = tf.convert_to_tensor(w)
  if x.shape.rank != 4 or w.shape.rank != 4:
    raise _validate.invalid(
        f'conv2d_resample: x and w must be 4-D (NHWC, HWIO), got {x.shape} and {w.shape}')
  up, down = int(up), int(down)
  if up < 1 or down < 1:
    raise _validate.invalid(f'conv2d_resample: up and down must be >= 1, got up={up}, down={down}')
  if x.shape[3] is not None and x.shape[3] != w.shape[2] * groups:
    raise _validate.invalid(
        f'conv2d_resample: x has {x.shape[3]} channels but w expects {w.shape[2]} x {groups} groups')
  w = tf.cast(w, x.dtype)
  kh, kw = int(w.shape[0]), int(w.shape[1])
  fw, fh = _filter_size(f)
  px0, px1, py0, py1 = _validate.padding4(padding, 'conv2d_resample')
  if up > 1:
    px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
    py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
  if down > 1:
    px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
    py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2

  if kw == 1 and kh == 1 and down > 1 and up == 1:
    # 1x1 conv commutes with the filter: filter + subsample first, on fewer pixels.
    x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
    return _conv(x, w, flip_weight=flip_weight)
  if kw == 1 and kh == 1 and up > 1 and down == 1:
    x = _conv(x, w, flip_weight=flip_weight)
    return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                     flip_filter=flip_filter, impl=impl)
  if down > 1 and up == 1:
    x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
    return _conv(x, w, stride=down, flip_weight=flip_weight)
  if up > 1:
    # The transposed conv true-convolves: hand it the flipped kernel to correlate with w.
    # Its output (H-1)*up + k already holds k-1 (before) and k-up (after) samples of the
    # padding that the zero-insertion form of the same pipeline would add.
    x = _conv_transpose(x, w[::-1, ::-1] if flip_weight else w, up, groups, impl)
    x = upfirdn2d(x, f, padding=[px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)],
                  gain=up ** 2, flip_filter=flip_filter, impl=impl)
    if down > 1:
      x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
    return x
  if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
    if px0 > 0 or py0 > 0:
      x = tf.pad(x, [[0, 0], [py0, py1], [px0, px1], [0, 0]])
    return _conv(x, w, flip_weight=flip_weight)
  x = upfirdn2d(x, None, padding=[px0, px1, py0, py1], impl=impl)
  return _conv(x, w, flip_weight=flip_weight)

