"""Differentiable discriminator augmentation (ADA: Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data"), NHWC, for every image D sees.

The pipeline and its constants follow the paper (appendix B) and NVIDIA's code:
  blit    x-flip, 90-degree rotations, integer translation (uniform, +-0.125 of the size)
  geom    isotropic scaling (log2 std 0.2), rotation (uniform, full circle; applied before and
          after the anisotropic scaling, each with probability 1 - sqrt(1 - p) so that one of
          them happens with probability p), anisotropic scaling (log2 std 0.2), fractional
          translation (std 0.125 of the size)
  color   brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue rotation (uniform, full
          circle, RGB only), saturation (log2 std 1, RGB only)
  filter  amplification of 4 frequency bands (log2 std 1), power-normalised
  noise   additive Gaussian noise with sigma = |N(0, 0.1)|
  cutout  a rectangle of half the image size set to 0
Transformation t is applied to a sample with probability multiplier_t * p (the pipeline's
multipliers are 0 or 1; `PIPELINES`). The geometric ones are composed into one inverse
matrix per sample and executed once: reflect-pad (by the margin the transformed corners need,
plus the filter support), upsample 2x with the orthogonal sym6 low-pass filter, warp with
bilinear sampling (zeros outside), then low-pass and downsample 2x with the flipped filter.
The colour ones are one 4x4 matrix per sample in homogeneous RGB.

Everything is differentiable w.r.t. the images (fakes carry G's gradients; R1 differentiates
D(augment(x)) w.r.t. the un-augmented x, twice). TF's own gradient of ImageProjectiveTransformV3
is the inverse warp, which is not the adjoint of bilinear sampling (it ignores the Jacobian of
scaling), so the warp here has an exact adjoint as its gradient. `xla=True` builds only
XLA-compilable ops: a static (maximal) padding, which gives the same result, and a
gather-based warp instead of ImageProjectiveTransformV3, which XLA cannot compile.

Random parameters are drawn by `sample()` for the GLOBAL minibatch from a stateless seed
(as sampling.py does for latents), so a sample's augmentation does not depend on how the
minibatch is split over replicas or gradient-accumulation chunks. With p = 0 nothing is
applied: each stage runs only when some sample of the batch is transformed by it, so the
output is then the input, bit for bit.
"""

import math
from typing import Dict

import numpy as np
import tensorflow as tf

from sg2tf.custom_ops import resolve_impl, setup_filter, upfirdn2d

# Probability multipliers of the official pipelines (NVIDIA's --augpipe names).
_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
PIPELINES = {
    'blit': _BLIT, 'geom': _GEOM, 'color': _COLOR, 'filter': dict(imgfilter=1),
    'noise': dict(noise=1), 'cutout': dict(cutout=1),
    'bg': {**_BLIT, **_GEOM}, 'bgc': {**_BLIT, **_GEOM, **_COLOR},
    'bgcf': {**_BLIT, **_GEOM, **_COLOR, 'imgfilter': 1},
    'bgcfn': {**_BLIT, **_GEOM, **_COLOR, 'imgfilter': 1, 'noise': 1},
    'bgcfnc': {**_BLIT, **_GEOM, **_COLOR, 'imgfilter': 1, 'noise': 1, 'cutout': 1},
}
GEOMETRIC = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac')
COLOR = ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')
TRANSFORMS = GEOMETRIC + COLOR + ('imgfilter', 'noise', 'cutout')

# Ranges (the paper's / NVIDIA's defaults).
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
FILTER_STD, FILTER_BANDS, NOISE_STD, CUTOUT_SIZE = 1.0, (1, 1, 1, 1), 0.1, 0.5
EXPECTED_POWER = np.array([10, 1, 1, 1], np.float64) / 13  # 1/f spectrum of the 4 bands.

# Daubechies' least-asymmetric low-pass filters.
SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036,
        -0.007800708325034148]
HZ_PAD = len(SYM6) // 4  # Margin (in pixels) for the up/down filters' support.
# Where sample i lands on the 2x grid of upsample2d(SYM6), and which 2x samples
# downsample2d(SYM6, flip_filter=True) centre on i: 2i + ALIGN. A symmetric filter gives 0.5;
# sym6 is not symmetric, and its delay at low frequencies (first moment over sum of its taps:
# 5.098 taps instead of 5.5) gives 0.098. With it, flips and rotations of smooth images come
# out within ~0.005 of np.flip / np.rot90 (0.5 would shift them by 0.4 px; NVIDIA's code uses
# 0, about 0.05 px off).
ALIGN = float(np.dot(np.arange(len(SYM6)), SYM6) / np.sum(SYM6) - (len(SYM6) - 2) / 2)
LUMA = np.array([1, 1, 1, 0], np.float64) / math.sqrt(3)  # Luma axis in homogeneous RGB.


def filter_bank(lowpass=SYM2, bands=4) -> np.ndarray:
  """[bands, taps] float64: band-pass filters whose sum is the identity (a unit impulse).

  Built as a wavelet decomposition: each level upsamples the bank by 2 and low-passes it with
  H(z)H(1/z)/2, then adds the high-pass H(-z)H(-1/z)/2 as the next band (row 0 lowest band).
  """
  lo = np.asarray(lowpass, np.float64)
  hi = lo * (-1.0) ** np.arange(lo.size)
  lo2, hi2 = np.convolve(lo, lo[::-1]) / 2, np.convolve(hi, hi[::-1]) / 2
  bank = np.zeros([bands, 1])
  bank[0, 0] = 1.0
  for i in range(1, bands):
    up = np.zeros([bands, 2 * bank.shape[1] - 1])
    up[:, ::2] = bank
    bank = np.stack([np.convolve(row, lo2) for row in up])
    start = (bank.shape[1] - hi2.size) // 2
    bank[i, start:start + hi2.size] += hi2
  return bank


# --------------------------------------------------------------------------- matrices

def _mat(rows, n):
  """[n, R, C] float32 from rows of Python scalars and [n] tensors (one stack, few ops)."""
  tensors = [e for row in rows for e in row if isinstance(e, tf.Tensor)]
  if not tensors:
    return tf.tile(tf.constant(rows, tf.float32)[tf.newaxis], [n, 1, 1])
  like = tf.cast(tensors[0], tf.float32)
  consts = {}

  def elem(e):
    if isinstance(e, tf.Tensor):
      return tf.cast(e, tf.float32)
    if float(e) not in consts:
      consts[float(e)] = tf.fill(tf.shape(like), float(e))
    return consts[float(e)]
  flat = tf.stack([elem(e) for row in rows for e in row], axis=-1)  # [n, R*C]
  return tf.reshape(flat, [-1, len(rows), len(rows[0])])


def translate2d(tx, ty, n):
  return _mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n)


def scale2d(sx, sy, n):
  return _mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n)


def rotate2d(theta, n):
  c, s = tf.cos(theta), tf.sin(theta)
  return _mat([[c, -s, 0], [s, c, 0], [0, 0, 1]], n)


def translate3d(t, n):
  return _mat([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], n)


def scale3d(s, n):
  return _mat([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], n)


def rotate3d(v, theta, n):
  """Rotation by theta about the unit axis v (Rodrigues), homogeneous 4x4."""
  vx, vy, vz = (float(a) for a in v[:3])
  s, c = tf.sin(theta), tf.cos(theta)
  cc = 1 - c
  return _mat([[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
               [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
               [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
               [0, 0, 0, 1]], n)


def _gate(params, name, prob, disabled):
  """The drawn value where the sample's uniform gate is below prob, else `disabled`."""
  gate, value = params[name]
  cond = gate < prob
  cond = tf.reshape(cond, [-1] + [1] * (value.shape.rank - 1))
  return tf.where(cond, value, tf.cast(disabled, value.dtype))


def geometric_matrix(params, p, mult, width, height):
  """Inverse transform G_inv [n, 3, 3] (output pixel -> input pixel, centred coordinates)."""
  n = tf.shape(params['n'])[0]
  g = tf.eye(3, batch_shape=[n])
  p = tf.cast(p, tf.float32)
  if mult.get('xflip'):
    i = _gate(params, 'xflip', mult['xflip'] * p, 0.0)
    g = g @ scale2d(1 - 2 * i, 1, n)  # Its own inverse.
  if mult.get('rotate90'):
    i = _gate(params, 'rotate90', mult['rotate90'] * p, 0.0)
    g = g @ rotate2d(math.pi / 2 * i, n)  # Inverse of a rotation by -pi/2 * i.
  if mult.get('xint'):
    t = _gate(params, 'xint', mult['xint'] * p, 0.0)
    g = g @ translate2d(-tf.round(t[:, 0] * width), -tf.round(t[:, 1] * height), n)
  if mult.get('scale'):
    s = _gate(params, 'scale', mult['scale'] * p, 1.0)
    g = g @ scale2d(1 / s, 1 / s, n)
  p_rot = 1 - tf.sqrt(tf.clip_by_value(1 - mult.get('rotate', 0) * p, 0.0, 1.0))
  if mult.get('rotate'):
    theta = _gate(params, 'rotate_pre', p_rot, 0.0)
    g = g @ rotate2d(theta, n)  # Inverse of a rotation by -theta, before aniso.
  if mult.get('aniso'):
    s = _gate(params, 'aniso', mult['aniso'] * p, 1.0)
    g = g @ scale2d(1 / s, s, n)
  if mult.get('rotate'):
    theta = _gate(params, 'rotate_post', p_rot, 0.0)
    g = g @ rotate2d(theta, n)
  if mult.get('xfrac'):
    t = _gate(params, 'xfrac', mult['xfrac'] * p, 0.0)
    g = g @ translate2d(-t[:, 0] * width, -t[:, 1] * height, n)
  return g


def color_matrix(params, p, mult, channels):
  """Colour transform C [n, 4, 4] acting on homogeneous RGB columns."""
  n = tf.shape(params['n'])[0]
  c = tf.eye(4, batch_shape=[n])
  p = tf.cast(p, tf.float32)
  vv = tf.constant(np.outer(LUMA, LUMA), tf.float32)
  eye = tf.eye(4)
  if mult.get('brightness'):
    c = translate3d(_gate(params, 'brightness', mult['brightness'] * p, 0.0), n) @ c
  if mult.get('contrast'):
    c = scale3d(_gate(params, 'contrast', mult['contrast'] * p, 1.0), n) @ c
  if mult.get('lumaflip'):
    i = _gate(params, 'lumaflip', mult['lumaflip'] * p, 0.0)
    c = (eye - 2 * vv * i[:, tf.newaxis, tf.newaxis]) @ c  # Householder reflection.
  if mult.get('hue') and channels > 1:
    c = rotate3d(LUMA, _gate(params, 'hue', mult['hue'] * p, 0.0), n) @ c
  if mult.get('saturation') and channels > 1:
    s = _gate(params, 'saturation', mult['saturation'] * p, 1.0)
    c = (vv + (eye - vv) * s[:, tf.newaxis, tf.newaxis]) @ c
  return c


def filter_gains(params, p, mult):
  """Per-sample band gains g [n, 4] (1 = identity), power-normalised per band change."""
  n = tf.shape(params['n'])[0]
  p = tf.cast(p, tf.float32)
  power = tf.constant(EXPECTED_POWER, tf.float32)
  g = tf.ones([n, len(FILTER_BANDS)])
  for i, band in enumerate(FILTER_BANDS):
    t_i = _gate(params, f'imgfilter{i}', mult['imgfilter'] * p * band, 1.0)
    t = tf.concat([tf.ones([n, i]), t_i[:, tf.newaxis], tf.ones([n, len(FILTER_BANDS) - i - 1])],
                  axis=1)
    g = g * t / tf.sqrt(tf.reduce_sum(power * tf.square(t), axis=1, keepdims=True))
  return g


# --------------------------------------------------------------------------- bilinear warp

def _taps(m, in_h, in_w, out_h, out_w):
  """Bilinear taps of sampling [n, in_h, in_w] images at m @ (x, y, 1) for every output pixel.

  Returns (flat indices into n*in_h*in_w [n, P, 4] int32, weights [n, P, 4]); taps outside
  the image get weight 0 (ImageProjectiveTransformV3's CONSTANT fill with 0).
  """
  n = tf.shape(m)[0]
  ys, xs = tf.meshgrid(tf.range(out_h, dtype=tf.float32), tf.range(out_w, dtype=tf.float32),
                       indexing='ij')
  xs, ys = tf.reshape(xs, [1, -1]), tf.reshape(ys, [1, -1])
  sx = m[:, 0, 0:1] * xs + m[:, 0, 1:2] * ys + m[:, 0, 2:3]  # [n, P]
  sy = m[:, 1, 0:1] * xs + m[:, 1, 1:2] * ys + m[:, 1, 2:3]
  x0, y0 = tf.floor(sx), tf.floor(sy)
  fx, fy = sx - x0, sy - y0
  in_h_f, in_w_f = tf.cast(in_h, tf.float32), tf.cast(in_w, tf.float32)
  base = tf.range(n)[:, tf.newaxis] * (in_h * in_w)  # [n, 1]
  idx, wgt = [], []
  for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                    (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
    xi, yi = x0 + dx, y0 + dy
    valid = (xi >= 0) & (xi <= in_w_f - 1) & (yi >= 0) & (yi <= in_h_f - 1)
    xi = tf.cast(tf.clip_by_value(xi, 0, in_w_f - 1), tf.int32)
    yi = tf.cast(tf.clip_by_value(yi, 0, in_h_f - 1), tf.int32)
    idx.append(base + yi * in_w + xi)
    wgt.append(tf.where(valid, w, tf.zeros_like(w)))
  return tf.stack(idx, -1), tf.stack(wgt, -1)


def _sample(x, idx, wgt, out_h, out_w):
  c = x.shape[-1]
  vals = tf.gather(tf.reshape(x, [-1, c]), idx)  # [n, P, 4, C]
  y = tf.reduce_sum(vals * wgt[..., tf.newaxis], axis=2)
  return tf.reshape(y, [-1, out_h, out_w, c])


def _adjoint(dy, idx, wgt, x_shape):
  """Transpose of _sample: scatter-add each output gradient into its 4 input taps."""
  c = dy.shape[-1]
  contrib = tf.reshape(dy, [tf.shape(dy)[0], -1, 1, c]) * wgt[..., tf.newaxis]  # [n, P, 4, C]
  total = x_shape[0] * x_shape[1] * x_shape[2]
  dx = tf.math.unsorted_segment_sum(tf.reshape(contrib, [-1, c]), tf.reshape(idx, [-1]), total)
  return tf.reshape(dx, x_shape)


def warp(x, m, out_shape, xla=False):
  """Bilinear resampling of x [n, H, W, C] float32 at m [n, 3, 3] @ (x_out, y_out, 1).

  Pixel centres at integer coordinates; zeros outside x. The gradient w.r.t. x is the exact
  adjoint (and itself differentiable). xla: gather-based forward (XLA-compilable); otherwise
  TF's ImageProjectiveTransformV3 kernel with the adjoint as its gradient.
  """
  out_h, out_w = int(out_shape[0]), int(out_shape[1])
  m = tf.cast(m, tf.float32)
  if xla:
    shape = tf.shape(x)
    idx, wgt = _taps(m, shape[1], shape[2], out_h, out_w)
    return _sample(x, idx, wgt, out_h, out_w)

  @tf.custom_gradient
  def fwd(x):
    flat = tf.reshape(m, [-1, 9])[:, :8] / tf.reshape(m, [-1, 9])[:, 8:9]
    y = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=flat, output_shape=tf.constant([out_h, out_w], tf.int32),
        fill_value=tf.constant(0.0), interpolation='BILINEAR', fill_mode='CONSTANT')
    y = tf.ensure_shape(y, [x.shape[0], out_h, out_w, x.shape[3]])

    def grad(dy):
      shape = tf.shape(x)
      idx, wgt = _taps(m, shape[1], shape[2], out_h, out_w)
      return _adjoint(dy, idx, wgt, shape)
    return y, grad
  return fwd(x)


# --------------------------------------------------------------------------- the pipeline

class AugmentPipe:
  """The augmentation pipeline `name` (a key of PIPELINES, or a dict of multipliers).

      params = pipe.sample(seed, global_batch, (H, W, C))  # global draws; slice per replica
      images = pipe(images, params, p)                     # p: scalar tensor (ADA strength)
  """

  def __init__(self, name='bgc', xla=False):
    if isinstance(name, str):
      if name not in PIPELINES:
        raise ValueError(f'unknown augmentation pipeline {name!r}; use one of '
                         f'{", ".join(PIPELINES)}.')
      mult = PIPELINES[name]
    else:
      mult = dict(name)
    unknown = set(mult) - set(TRANSFORMS)
    if unknown:
      raise ValueError(f'unknown augmentations {sorted(unknown)}; known: {TRANSFORMS}.')
    self.name = name if isinstance(name, str) else 'custom'
    self.mult = {k: float(v) for k, v in mult.items() if v}
    self.xla = bool(xla)
    # Until custom_ops has an implementation scope: XLA cannot compile the custom kernels.
    self._impl = 'ref' if self.xla else 'auto'
    if not self.xla:
      resolve_impl('auto')  # Load (or build) the ops now, not while a phase is being traced.
    self._hz = setup_filter(SYM6)  # Normalised to unit DC gain.
    self._bank = tf.constant(filter_bank(), tf.float32)

  def check_shape(self, height, width, channels):
    """Raises ValueError when the images cannot take this pipeline."""
    if channels not in (1, 3) and any(k in self.mult for k in COLOR):
      raise ValueError(f'colour augmentations need 1 or 3 channels, got {channels}.')
    pad = self._bank.shape[1] // 2
    if 'imgfilter' in self.mult and min(height, width) <= pad:
      raise ValueError(f'the filter augmentation needs images larger than {pad}x{pad}, got '
                       f'{height}x{width}; use a pipeline without filter (e.g. bgc).')

  # ------------------------------------------------------------------ random parameters

  # Plain TF code (no Python control flow on tensors): AutoGraph would only spend seconds of
  # tracing time converting it.
  @tf.autograph.experimental.do_not_convert
  def sample(self, seed, n: int, shape) -> Dict[str, tf.Tensor]:
    """All random draws of n images of `shape` (H, W, C), independent of p (gates are
    uniforms compared with the probability at apply time). Every entry has n rows."""
    h, w, c = (int(v) for v in shape)
    # Two draws ([n, 64] uniforms and normals) whose columns are handed out in order: far
    # fewer graph ops than one seeded draw per parameter.
    uniforms = tf.random.stateless_uniform([n, 64], tf.random.experimental.stateless_fold_in(
        seed, 1))
    normals = tf.random.stateless_normal([n, 64], tf.random.experimental.stateless_fold_in(
        seed, 2))
    columns = {'u': tf.unstack(uniforms, axis=1), 'z': tf.unstack(normals, axis=1)}
    used = {'u': 0, 'z': 0}

    def take(kind, s):
      width = int(np.prod(s)) if s else 1
      i = used[kind]
      used[kind] += width
      if not s:
        return columns[kind][i]
      return tf.reshape(tf.stack(columns[kind][i:i + width], axis=1), [n, *s])
    uni = lambda s=(), lo=0.0, hi=1.0: lo + (hi - lo) * take('u', s)  # pylint: disable=unnecessary-lambda-assignment
    nrm = lambda s=(), std=1.0: std * take('z', s)  # pylint: disable=unnecessary-lambda-assignment
    m = self.mult
    out = {'n': tf.zeros([n])}
    if 'xflip' in m:
      out['xflip'] = (uni(), tf.floor(uni() * 2))
    if 'rotate90' in m:
      out['rotate90'] = (uni(), tf.floor(uni() * 4))
    if 'xint' in m:
      out['xint'] = (uni(), uni([2], -XINT_MAX, XINT_MAX))
    if 'scale' in m:
      out['scale'] = (uni(), 2.0 ** nrm(std=SCALE_STD))
    if 'rotate' in m:
      lim = math.pi * ROTATE_MAX
      out['rotate_pre'] = (uni(), uni((), -lim, lim))
      out['rotate_post'] = (uni(), uni((), -lim, lim))
    if 'aniso' in m:
      out['aniso'] = (uni(), 2.0 ** nrm(std=ANISO_STD))
    if 'xfrac' in m:
      out['xfrac'] = (uni(), nrm([2], XFRAC_STD))
    if 'brightness' in m:
      out['brightness'] = (uni(), nrm(std=BRIGHTNESS_STD))
    if 'contrast' in m:
      out['contrast'] = (uni(), 2.0 ** nrm(std=CONTRAST_STD))
    if 'lumaflip' in m:
      out['lumaflip'] = (uni(), tf.floor(uni() * 2))
    if 'hue' in m:
      out['hue'] = (uni(), uni((), -math.pi * HUE_MAX, math.pi * HUE_MAX))
    if 'saturation' in m:
      out['saturation'] = (uni(), 2.0 ** nrm(std=SATURATION_STD))
    if 'imgfilter' in m:
      for i in range(len(FILTER_BANDS)):
        out[f'imgfilter{i}'] = (uni(), 2.0 ** nrm(std=FILTER_STD))
    if 'noise' in m:
      out['noise'] = (uni(), tf.abs(nrm(std=NOISE_STD)))
      out['noise_pixels'] = tf.random.stateless_normal(
          [n, h, w, c], tf.random.experimental.stateless_fold_in(seed, 3))
    if 'cutout' in m:
      out['cutout'] = (uni(), tf.fill([n, 2], CUTOUT_SIZE))
      out['cutout_center'] = uni([2])
    return out

  # ------------------------------------------------------------------ execution

  @tf.autograph.experimental.do_not_convert
  def __call__(self, images, params, p):
    """images [n, H, W, C] (any float dtype, ~[-1, 1]) -> augmented images, same dtype."""
    dtype = images.dtype
    x = tf.cast(images, tf.float32)
    _, h, w, c = x.shape
    m = self.mult
    if any(k in m for k in GEOMETRIC):
      g = geometric_matrix(params, p, m, w, h)
      x = _when(_differs(g, tf.eye(3)), lambda: self._geometric(x, g), x, self.xla)
    if any(k in m for k in COLOR):
      cm = color_matrix(params, p, m, c)
      x = _when(_differs(cm, tf.eye(4)), lambda: _apply_color(x, cm), x, self.xla)
    if 'imgfilter' in m:
      gains = filter_gains(params, p, m)
      x = _when(_differs(gains, 1.0), lambda: self._filter(x, gains), x, self.xla)
    if 'noise' in m:
      sigma = _gate(params, 'noise', m['noise'] * tf.cast(p, tf.float32), 0.0)
      x = _when(_differs(sigma, 0.0),
                lambda: x + params['noise_pixels'] * sigma[:, None, None, None], x, self.xla)
    if 'cutout' in m:
      size = _gate(params, 'cutout', m['cutout'] * tf.cast(p, tf.float32), 0.0)
      x = _when(_differs(size, 0.0),
                lambda: x * cutout_mask(size, params['cutout_center'], h, w), x, self.xla)
    return tf.cast(x, dtype)

  def _geometric(self, x, g_inv):
    _, h, w, _ = x.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    if self.xla:
      # The largest margin reflect padding allows: the dynamic margin is clipped to it, and a
      # larger reflected border leaves every sampled value unchanged. Static shapes for XLA.
      mx0 = mx1 = w - 1
      my0 = my1 = h - 1
    else:
      # Margin so that the transformed output corners (plus the filters' support) stay
      # inside the reflected image; one margin for the whole batch.
      corners = tf.constant([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], tf.float32)
      cp = (g_inv @ corners)[:, :2, :]  # [n, xy, corner]
      centre = tf.constant([cx, cy], tf.float32)
      lo = tf.math.ceil(tf.reduce_max(-cp, axis=[0, 2]) - centre + 2 * HZ_PAD)
      hi = tf.math.ceil(tf.reduce_max(cp, axis=[0, 2]) - centre + 2 * HZ_PAD)
      top = tf.constant([w - 1, h - 1], tf.float32)
      lo = tf.cast(tf.clip_by_value(lo, 0.0, top), tf.int32)
      hi = tf.cast(tf.clip_by_value(hi, 0.0, top), tf.int32)
      mx0, my0, mx1, my1 = lo[0], lo[1], hi[0], hi[1]
    x = tf.pad(x, [[0, 0], [my0, my1], [mx0, mx1], [0, 0]], mode='REFLECT')
    # upsample2d(x, hz, up=2), one axis at a time: 2 x 12 taps instead of a 12x12 filter.
    fw = int(self._hz.shape[0])
    u0, u1 = (fw + 1) // 2, (fw - 2) // 2
    x = upfirdn2d(x, self._hz[tf.newaxis, :], up=[2, 1], padding=[u0, u1, 0, 0], gain=2,
                  impl=self._impl)
    x = upfirdn2d(x, self._hz[:, tf.newaxis], up=[1, 2], padding=[0, 0, u0, u1], gain=2,
                  impl=self._impl)
    n = tf.shape(g_inv)[0]
    # Canvas index k (2x, with a 2*HZ_PAD border) -> centred output coordinates, and centred
    # input coordinates -> index in the upsampled padded image. Sample i sits at 2i + ALIGN
    # of the 2x grid (see ALIGN).
    k0 = ALIGN + 2 * HZ_PAD
    out_from_canvas = translate2d(-cx, -cy, n) @ scale2d(0.5, 0.5, n) @ translate2d(-k0, -k0, n)
    up_from_in = (translate2d(ALIGN, ALIGN, n) @ scale2d(2, 2, n) @
                  translate2d(cx + tf.cast(mx0, tf.float32), cy + tf.cast(my0, tf.float32), n))
    mat = up_from_in @ g_inv @ out_from_canvas
    x = warp(x, mat, [2 * (h + 2 * HZ_PAD), 2 * (w + 2 * HZ_PAD)], xla=self.xla)
    # downsample2d(x, hz, padding=-2 * HZ_PAD, flip_filter=True), one axis at a time, each as
    # filter-then-subsample: the same values, but TF's second derivative of a strided
    # depthwise conv (the reference op's down=2, reached by R1 through a tf.cond) fails its
    # own shape check.
    p0, p1 = -2 * HZ_PAD + (fw - 1) // 2, -2 * HZ_PAD + (fw - 2) // 2
    x = upfirdn2d(x, self._hz[tf.newaxis, :], padding=[p0, p1, 0, 0], flip_filter=True,
                  impl=self._impl)[:, :, ::2, :]
    x = upfirdn2d(x, self._hz[:, tf.newaxis], padding=[0, 0, p0, p1], flip_filter=True,
                  impl=self._impl)[:, ::2, :, :]
    return x

  def _filter(self, x, gains):
    """Per-sample separable filter gains @ bank, reflect-padded (depthwise over n*C)."""
    n, h, w, c = x.shape
    n = n if n is not None else tf.shape(x)[0]
    taps = self._bank.shape[1]
    pad = taps // 2
    k = tf.repeat(gains @ self._bank, c, axis=0)  # [n*C, taps]; the bank rows are symmetric.
    y = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, -1])  # [1, H, W, n*C]
    y = tf.pad(y, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode='REFLECT')
    kt = tf.transpose(k)  # [taps, n*C]
    y = tf.nn.depthwise_conv2d(y, kt[tf.newaxis, :, :, tf.newaxis], [1, 1, 1, 1], 'VALID')
    y = tf.nn.depthwise_conv2d(y, kt[:, tf.newaxis, :, tf.newaxis], [1, 1, 1, 1], 'VALID')
    return tf.transpose(tf.reshape(y, [h, w, n, c]), [2, 0, 1, 3])


def _apply_color(x, cm):
  if x.shape[-1] == 3:
    return tf.einsum('nij,nhwj->nhwi', cm[:, :3, :3], x) + cm[:, tf.newaxis, tf.newaxis, :3, 3]
  # Grayscale: the mean of the RGB rows, applied to the single channel.
  row = tf.reduce_mean(cm[:, :3, :], axis=1)  # [n, 4]
  scale = tf.reduce_sum(row[:, :3], axis=1)
  return x * scale[:, None, None, None] + row[:, None, None, 3:]


def cutout_mask(size, centre, h, w):
  """[n, H, W, 1] float32: 0 inside each sample's size x size rectangle (relative units)."""
  xs = (tf.range(w, dtype=tf.float32) + 0.5) / w
  ys = (tf.range(h, dtype=tf.float32) + 0.5) / h
  out_x = tf.abs(xs[tf.newaxis, :] - centre[:, 0:1]) >= size[:, 0:1] / 2  # [n, W]
  out_y = tf.abs(ys[tf.newaxis, :] - centre[:, 1:2]) >= size[:, 1:2] / 2  # [n, H]
  mask = out_x[:, tf.newaxis, :] | out_y[:, :, tf.newaxis]
  return tf.cast(mask, tf.float32)[..., tf.newaxis]


def _differs(value, identity):
  return tf.reduce_any(tf.not_equal(value, identity))


def _when(pred, fn, x, xla=False):
  """fn() when pred, else x unchanged (bit for bit).

  Without XLA a tf.cond skips the stage's work; under XLA the stage always runs and tf.where
  selects (XLA cannot compile the second derivative of some ops inside a cond branch, whose
  shapes it sees as dynamic).
  """
  if xla:
    return tf.where(pred, fn(), x)
  return tf.cond(pred, fn, lambda: tf.identity(x))
