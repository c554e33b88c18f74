"""Progressive-growing networks of StyleGAN2's configs b-d (NHWC): official
G_synthesis_stylegan_revised (+ G_main) and D_stylegan, and the level-of-detail logic they
share with the StyleGAN baseline of config a (sg2tf/networks/stylegan1.py).

Level of detail (official `lod`, a non-trainable variable of G's synthesis network and of D):
lod = 0 is the full resolution R, lod = k the resolution R / 2**k. Between two integer lods
the networks fade: at lod = k + f (0 < f < 1) the generator's image is
`img(k) + (img(k + 1) - img(k)) * f`, where img(k + 1) is the lower-resolution ToRGB output
nearest-upsampled by 2 (not clipped, as in the official recursive graphs), and D blends its
two FromRGB paths the same way. At an integer lod k > 0 the full-size image is the 2**k-times
nearest-upsampled output of resolution R / 2**k.

Calls come in two forms:
  - full size (default): images [N, R, R, C] in and out at the network's current lod, any
    value; eagerly the needed level is picked in Python, inside a tf.function by
    tf.switch_case, so only that level's layers run (as the official `recursive` structure).
  - one level (training): G.synthesis(ws, resolution=R_k) returns [N, R_k, R_k, C] and D
    accepts images of that size, for k <= lod <= k + 1 (R_k = R / 2**k). Training feeds the
    networks at the current resolution instead of upsampling everything to R: the same
    function of the same data (D's official box downsampling of a nearest-upsampled image is
    the identity), at a fraction of the memory.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from sg2tf import layers
from sg2tf.custom_ops import policy
from sg2tf.networks.discriminator import DiscriminatorBlock, DiscriminatorEpilogue
from sg2tf.networks.generator import MappingThenSynthesis, StyleMixing
from sg2tf.networks.mapping import MappingNetwork
from sg2tf.networks.checks import check_mixed_precision, check_resolution, check_ws_and_noise
from sg2tf.networks.checks import fp16_resolution
from sg2tf.networks.synthesis import SynthesisLayersMixin, add_synthesis_blocks

# Call-argument sentinel: "the build function's own default" (it differs per network).
DEFAULT = 'default'


def nearest_upsample(x, factor):
  """[N, H, W, C] -> [N, H*f, W*f, C], every pixel repeated f x f times (official tile)."""
  if factor == 1:
    return x
  _, h, w, c = x.shape
  x = tf.reshape(x, [-1, h, 1, w, 1, c])
  x = tf.tile(x, [1, 1, factor, 1, factor, 1])
  return tf.reshape(x, [-1, h * factor, w * factor, c])


def box_downsample(x, factor):
  """[N, H, W, C] -> [N, H/f, W/f, C], the mean of every f x f block (official naive
  downsample / avg_pool)."""
  if factor == 1:
    return x
  _, h, w, c = x.shape
  x = tf.reshape(x, [-1, h // factor, factor, w // factor, factor, c])
  return tf.reduce_mean(x, axis=[2, 4])


def fade_reals(x, frac):
  """Official FadeLOD of the training reals: lerp(x, the 2x2 means of x repeated, frac).

  x [N, H, W, C] at the current training resolution; frac = lod - floor(lod) in [0, 1).
  """
  y = nearest_upsample(box_downsample(x, 2), 2)
  return x + (y - x) * tf.cast(frac, x.dtype)


def lerp(a, b, t):
  """a + (b - a) * t, the official tflib.lerp."""
  return a + (b - a) * tf.cast(t, a.dtype)


def level_of(resolution, img_resolution):
  """The integer lod whose images are `resolution` pixels wide."""
  r = check_resolution(resolution, 'progressive growing')
  if r > img_resolution:
    raise ValueError(f'resolution {r} is above the network resolution {img_resolution}')
  return int(np.log2(img_resolution)) - int(np.log2(r))


def check_level_lod(lod, level, max_level, who):
  """Eagerly: a one-level call needs level <= lod <= level + 1 (any lod >= level at the top)."""
  if not tf.executing_eagerly():
    return
  value = float(np.asarray(lod))
  if value < level - 1e-6 or (level < max_level and value > level + 1 + 1e-6):
    raise ValueError(f'{who}: images of level {level} need {level} <= lod <= {level + 1}, but '
                     f'lod is {value:g}; set the lod first (net.set_lod) or call at full size.')


class LodMixin:
  """A non-trainable `lod` variable and the dispatch to one level (see module docstring)."""

  def _add_lod(self):
    self._lod = self.add_weight(name='lod', shape=[], initializer='zeros', trainable=False)

  @property
  def lod(self):
    """The level-of-detail variable (assign to it, or use set_lod)."""
    return self._lod

  def set_lod(self, value):
    self._lod.assign(float(value))

  def _frac(self, level):
    """lod - level clipped to [0, 1]: the fade weight of the next lower level."""
    return tf.clip_by_value(tf.cast(self._lod, tf.float32) - level, 0.0, 1.0)

  def _by_level(self, fn, max_level):
    """fn(level) for level = clip(floor(lod), 0, max_level): eagerly a Python call, in graphs
    a tf.switch_case (only the chosen branch runs)."""
    lod = tf.cast(self._lod, tf.float32)
    if tf.executing_eagerly():
      return fn(int(np.clip(np.floor(float(lod.numpy())), 0, max_level)))
    k = tf.clip_by_value(tf.cast(tf.floor(lod), tf.int32), 0, max_level)
    return tf.switch_case(k, [functools.partial(fn, j) for j in range(max_level + 1)])


class GrowingSynthesisBase(LodMixin, SynthesisLayersMixin, keras.layers.Layer):
  """Shared call logic of the growing synthesis networks.

  Subclasses set `img_resolution`, `img_channels`, `w_dim`, `num_ws`, `resolutions` and
  implement `_rgb_pair(ws, res, noise_mode, noise, fused_modconv, impl)` -> (ToRGB output at
  res, ToRGB output at res / 2 or None), running the blocks up to res only.
  """

  @property
  def max_level(self):
    return len(self.resolutions) - 1  # lod of the 4x4 level

  def _level_image(self, ws, level, noise_mode, noise, fused_modconv, impl):
    res = self.img_resolution >> level
    y, y_low = self._rgb_pair(ws, res, noise_mode, noise, fused_modconv, impl)
    if y_low is not None:
      y = lerp(y, nearest_upsample(y_low, 2), self._frac(level))
    return y  # [N, res, res, C]

  def _check_inputs(self, ws, noise):
    return check_ws_and_noise(ws, noise, self.num_ws, self.w_dim, len(self.noise_shapes),
                              type(self).__name__)

  def compute_output_shape(self, input_shape=None):  # ws -> full-size images [N, R, R, C]
    n = None if input_shape is None else tuple(input_shape)[0]
    return (n, self.img_resolution, self.img_resolution, self.img_channels)

  def call(self, ws, noise_mode='random', noise=None, fused_modconv=None, impl=None,
           resolution=None):
    """ws [N, num_ws, w_dim] -> images [N, R, R, C] at the current lod, or [N, r, r, C] with
    resolution=r (one level, see module docstring). noise: optional list with one
    [N or 1, r, r, 1] tensor (or None) per layer, official order; overrides noise_mode."""
    layers.check_noise_mode(noise_mode)
    ws = self._check_inputs(ws, noise)
    # impl is the op policy's scope (sg2tf.custom_ops); the sub-layers carry none.
    args = (noise_mode, noise, fused_modconv, None)
    with policy.implementation(impl):
      if resolution is not None:
        level = level_of(resolution, self.img_resolution)
        check_level_lod(self._lod, level, self.max_level, type(self).__name__)
        return self._level_image(ws, level, *args)
      return self._by_level(
          lambda k: nearest_upsample(self._level_image(ws, k, *args), 2 ** k), self.max_level)


@keras.saving.register_keras_serializable(package='sg2tf')
class GrowingSynthesisNetwork(GrowingSynthesisBase):
  """Official G_synthesis_stylegan_revised in NHWC: ws [N, num_ws, w_dim] -> images.

  The 'orig' StyleGAN2 blocks (modulated convs with weight demodulation, noise, bias + lrelu)
  with a ToRGB at every resolution for the fade-in. num_ws = 2*log2(R) - 2; a block at 2**k
  has nf(k-1) channels; ToRGB of resolution 2**k reads w[:, 2k-3]. Mixed precision as in
  SynthesisNetwork (num_fp16_res highest resolutions in float16, conv_clamp).
  """

  def __init__(self, w_dim=512, img_resolution=1024, img_channels=3, fmap_base=16384,
               fmap_decay=1.0, fmap_min=1, fmap_max=512, activation='lrelu',
               resample_filter=(1, 3, 3, 1), num_fp16_res=0, conv_clamp=None, **kwargs):
    super().__init__(**kwargs)
    self.num_fp16_res, self.conv_clamp = check_mixed_precision(num_fp16_res, conv_clamp,
                                                               'GrowingSynthesisNetwork')
    add_synthesis_blocks(self, w_dim, img_resolution, img_channels, fmap_base, fmap_decay,
                         fmap_min, fmap_max, 'orig', activation, resample_filter,
                         torgb_everywhere=True)

  @property
  def blocks(self):
    return [getattr(self, f'b{r}') for r in self.resolutions]

  def build(self, input_shape=None):
    """input_shape: that of ws, [N, num_ws, w_dim] (the shapes follow from the arguments)."""
    del input_shape
    for blk in self.blocks:
      blk.build((None, blk.num_ws, self.w_dim))
    self._add_lod()

  def _rgb_pair(self, ws, res, noise_mode, noise, fused_modconv, impl):
    x = y = y_low = None
    w_idx = noise_idx = 0
    for blk in self.blocks:
      if blk.resolution > res:
        break
      block_noise = None if noise is None else list(noise[noise_idx:noise_idx + blk.num_conv])
      x, rgb = blk(x, None, ws[:, w_idx:w_idx + blk.num_ws], noise_mode=noise_mode,
                   noise=block_noise, fused_modconv=fused_modconv)
      y_low, y = y, rgb
      w_idx += blk.num_conv
      noise_idx += blk.num_conv
    return y, y_low

  def get_config(self):
    config = super().get_config()
    config.update(w_dim=self.w_dim, img_resolution=self.img_resolution,
                  img_channels=self.img_channels, fmap_base=self.fmap_base,
                  fmap_decay=self.fmap_decay, fmap_min=self.fmap_min, fmap_max=self.fmap_max,
                  activation=self.activation, resample_filter=self.resample_filter,
                  num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp)
    return config


class GrowingGeneratorBase(MappingThenSynthesis, StyleMixing, keras.Model):
  """Mapping + growing synthesis, truncation with the build function's own defaults, style
  mixing over the layers of the current lod, w_avg tracking (official G_main / G_style).

  Subclasses set MAPPING / SYNTHESIS (the classes) and call `_setup` from __init__;
  `truncation_psi`, `truncation_cutoff` are the defaults a call without truncation
  arguments uses.
  """
  MAPPING = MappingNetwork
  SYNTHESIS = None

  def _setup(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_layers,
             mapping_dim, mapping_lr_multiplier, mapping_activation, normalize_z, w_avg_beta,
             truncation_psi, truncation_cutoff, **synthesis_kwargs):
    self.z_dim, self.c_dim, self.w_dim = int(z_dim), int(c_dim), int(w_dim)
    self.img_resolution, self.img_channels = int(img_resolution), int(img_channels)
    self.truncation_psi = None if truncation_psi is None else float(truncation_psi)
    self.truncation_cutoff = None if truncation_cutoff is None else int(truncation_cutoff)
    self.synthesis = self.SYNTHESIS(w_dim=self.w_dim, img_resolution=self.img_resolution,
                                    img_channels=self.img_channels, name='synthesis',
                                    **synthesis_kwargs)
    self.num_ws = self.synthesis.num_ws
    self.mapping = self.MAPPING(
        z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
        num_layers=mapping_layers, layer_dim=mapping_dim, lr_multiplier=mapping_lr_multiplier,
        activation=mapping_activation, normalize_z=normalize_z, w_avg_beta=w_avg_beta,
        name='mapping')
    # The constructor's kwargs as normalised by the sub-networks (for get_config).
    syn = {k: v for k, v in self.synthesis.get_config().items() if k in synthesis_kwargs}
    self._config = dict(
        z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, img_resolution=self.img_resolution,
        img_channels=self.img_channels, mapping_layers=self.mapping.num_layers,
        mapping_dim=self.mapping.layer_dim, mapping_lr_multiplier=self.mapping.lr_multiplier,
        mapping_activation=self.mapping.activation, normalize_z=self.mapping.normalize_z,
        w_avg_beta=self.mapping.w_avg_beta, **syn, truncation_psi=self.truncation_psi,
        truncation_cutoff=self.truncation_cutoff)
    self.build()

  @property
  def lod(self):
    return self.synthesis.lod

  def set_lod(self, value):
    self.synthesis.set_lod(value)

  def active_num_ws(self, resolution=None):
    """Layers in use: num_ws - 2 * floor(lod) (official cur_layers), or those of a level."""
    if resolution is not None:
      return 2 * int(np.log2(resolution)) - 2
    return self.num_ws - 2 * tf.cast(tf.floor(tf.maximum(self.lod, 0.0)), tf.int32)

  def truncate(self, ws, truncation_psi=DEFAULT, truncation_cutoff=DEFAULT):
    psi = self.truncation_psi if isinstance(truncation_psi, str) else truncation_psi
    cutoff = self.truncation_cutoff if isinstance(truncation_cutoff, str) else truncation_cutoff
    if psi is None:
      return ws
    return self.mapping.truncate(ws, psi, cutoff)

  def call(self, z, c=None, truncation_psi=DEFAULT, truncation_cutoff=DEFAULT,
           noise_mode='random', fused_modconv=None, style_mixing_prob=0.0, update_w_avg=False,
           return_ws=False, impl=None, training=None, resolution=None):
    """z: [N, z_dim]; c: [N, c_dim] for conditional networks -> images [N, R, R, C].

    truncation_psi / truncation_cutoff: not given = this build function's defaults
    (`self.truncation_psi`, `self.truncation_cutoff`); psi 1 or None = none; cutoff None =
    all layers. Other arguments as sg2tf.networks.Generator; resolution: one level (training).
    """
    del training
    ws = self.mapping(z, c, impl=impl)
    if update_w_avg:
      self.mapping.update_w_avg(ws)
    if not (isinstance(style_mixing_prob, (int, float)) and style_mixing_prob <= 0):
      ws = self.style_mix(ws, c, style_mixing_prob, impl=impl, resolution=resolution)
    ws = self.truncate(ws, truncation_psi, truncation_cutoff)
    img = self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl,
                         resolution=resolution)
    return (img, ws) if return_ws else img

  def get_config(self):
    config = super().get_config()
    config.update(self._config)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class GrowingGenerator(GrowingGeneratorBase):
  """Official G_main with synthesis_func='G_synthesis_stylegan_revised' (configs b-d), NHWC.

  Mapping: sg2tf.networks.MappingNetwork (official G_mapping). Defaults of a call without
  truncation arguments: psi 0.5 on all layers, as the official G_main.
  """
  SYNTHESIS = GrowingSynthesisNetwork

  def __init__(self, z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
               mapping_layers=8, mapping_dim=512, mapping_lr_multiplier=0.01,
               mapping_activation='lrelu', normalize_z=True, w_avg_beta=0.995,
               fmap_base=16384, fmap_decay=1.0, fmap_min=1, fmap_max=512, activation='lrelu',
               resample_filter=(1, 3, 3, 1), num_fp16_res=0, conv_clamp=None,
               truncation_psi=0.5, truncation_cutoff=None, **kwargs):
    super().__init__(**kwargs)
    self._setup(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_layers, mapping_dim,
                mapping_lr_multiplier, mapping_activation, normalize_z, w_avg_beta,
                truncation_psi, truncation_cutoff, fmap_base=fmap_base, fmap_decay=fmap_decay,
                fmap_min=fmap_min, fmap_max=fmap_max, activation=activation,
                resample_filter=resample_filter, num_fp16_res=num_fp16_res,
                conv_clamp=conv_clamp)


class GrowingDiscriminatorBase(LodMixin, keras.Model):
  """Shared call logic of the growing discriminators.

  Subclasses set `img_resolution`, `img_channels`, `c_dim`, `resolutions` (4 .. R) and
  implement `_level_logits(img, level, c, impl)` for images at resolution R / 2**level.
  """

  @property
  def max_level(self):
    return len(self.resolutions) - 1

  def compute_output_shape(self, input_shape=None):  # images [N, r, r, C] -> logits [N, 1]
    return (None if input_shape is None else tuple(input_shape)[0], 1)

  def call(self, img, c=None, impl=None, training=None, resolution=None):
    """img: [N, R, R, C] (NHWC, nominally [-1, 1]) at the current lod, or [N, r, r, C] with
    r = R / 2**k for k <= lod <= k + 1 (one level, training); c: [N, c_dim] -> logits [N, 1].

    resolution: the images' level, stated (training passes it: full-size images are then
    level 0, for lod in [0, 1], and run without the switch over the levels)."""
    del training
    img = tf.convert_to_tensor(img)
    r, ch, name = self.img_resolution, self.img_channels, type(self).__name__
    size = img.shape[1] if img.shape.rank == 4 else None
    if (img.shape.rank != 4 or size is None or img.shape[2] != size or img.shape[3] != ch
        or size not in self.resolutions or resolution not in (None, size)):
      raise ValueError(f'{name}: images must be [N, R, R, {ch}] (NHWC) with R = {r} or a '
                       f'lower power of two >= 4 (one level, = resolution={resolution} when '
                       f'given), got shape {img.shape}')
    if self.c_dim and c is None:
      raise ValueError(f'{name}: this network is conditional (c_dim={self.c_dim}); pass labels '
                       'as the second argument, D(images, c).')
    with policy.implementation(impl):  # The op policy's scope; the sub-layers carry none.
      if size < r or resolution is not None:
        level = level_of(size, r)
        check_level_lod(self._lod, level, self.max_level, name)
        return self._level_logits(img, level, c, None)
      return self._by_level(
          lambda k: self._level_logits(box_downsample(img, 2 ** k), k, c, None), self.max_level)


@keras.saving.register_keras_serializable(package='sg2tf')
class GrowingDiscriminator(GrowingDiscriminatorBase):
  """Official D_stylegan in NHWC (configs b-d): per-resolution FromRGB + 'orig' blocks
  (Conv0, Conv1_down), minibatch stddev, Conv, Dense0, Output (projection on labels).

  FromRGB of resolution 2**k (official FromRGB_lod{log2(R)-k}) has nf(k-1) channels; the
  4x4 one is `fromrgb4`. Mixed precision as in sg2tf.networks.Discriminator.
  """

  def __init__(self, c_dim=0, img_resolution=1024, img_channels=3, fmap_base=16384,
               fmap_decay=1.0, fmap_min=1, fmap_max=512, activation='lrelu',
               mbstd_group_size=4, mbstd_num_features=1, resample_filter=(1, 3, 3, 1),
               num_fp16_res=0, conv_clamp=None, **kwargs):
    super().__init__(**kwargs)
    self.num_fp16_res, self.conv_clamp = check_mixed_precision(num_fp16_res, conv_clamp,
                                                               'GrowingDiscriminator')
    self.c_dim = int(c_dim)
    self.img_resolution = check_resolution(img_resolution, 'GrowingDiscriminator')
    if self.img_resolution < 8:
      raise ValueError(f'GrowingDiscriminator: img_resolution must be >= 8, got {img_resolution}')
    self.img_channels = int(img_channels)
    self.fmap_base, self.fmap_decay = int(fmap_base), float(fmap_decay)
    self.fmap_min, self.fmap_max = int(fmap_min), int(fmap_max)
    self.activation = activation
    self.mbstd_group_size, self.mbstd_num_features = int(mbstd_group_size), int(mbstd_num_features)
    self.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]
    nf = layers.nf_fn(self.fmap_base, self.fmap_decay, self.fmap_min, self.fmap_max)
    log2 = int(np.log2(self.img_resolution))
    self.resolutions = [2 ** k for k in range(2, log2 + 1)][::-1]  # R .. 4 (level order)
    fp16_res = fp16_resolution(self.img_resolution, self.num_fp16_res)
    for k in range(log2, 2, -1):
      setattr(self, f'b{2 ** k}', DiscriminatorBlock(
          nf(k - 1), nf(k - 2), 2 ** k, self.img_channels, 'orig', is_top=True,
          activation=activation, resample_filter=self.resample_filter,
          use_fp16=2 ** k >= fp16_res, conv_clamp=self.conv_clamp, name=f'b{2 ** k}'))
    self.fromrgb4 = layers.EqualizedConv2D(nf(1), 1, activation=activation,
                                           conv_clamp=self.conv_clamp, name='fromrgb4')
    self.epilogue = DiscriminatorEpilogue(
        nf(1), nf(0), self.img_channels, self.c_dim, 'orig',
        mbstd_group_size=self.mbstd_group_size, mbstd_num_features=self.mbstd_num_features,
        activation=activation, conv_clamp=self.conv_clamp, name='b4')
    self.build()

  @property
  def blocks(self):
    """The 'orig' blocks from R down to 8x8."""
    return [getattr(self, f'b{r}') for r in self.resolutions[:-1]]

  def build(self, input_shape=None):
    """Builds every block with its input shape; input_shape: that of the images."""
    del input_shape
    for blk in self.blocks:
      blk.build((None, blk.resolution, blk.resolution, blk.in_channels))
    self.fromrgb4.build([None, 4, 4, self.img_channels])
    self.epilogue.build((None, 4, 4, self.epilogue.in_channels))
    self._add_lod()

  def _fromrgb(self, img, res, impl):
    """FromRGB of resolution res applied to img [N, res, res, C] (in that block's dtype)."""
    if res == 4:
      return self.fromrgb4(tf.cast(img, tf.float32))
    blk = getattr(self, f'b{res}')
    return blk.fromrgb(tf.cast(img, blk.compute_dtype_))

  def _level_logits(self, img, level, c, impl):
    res = self.img_resolution >> level
    if res == 4:
      x = self._fromrgb(img, 4, impl)
    else:
      x, _ = getattr(self, f'b{res}')(None, img)  # FromRGB, Conv0, Conv1_down
      y = self._fromrgb(box_downsample(img, 2), res // 2, impl)
      x = lerp(tf.cast(x, y.dtype), y, self._frac(level))
    for blk in self.blocks:
      if blk.resolution < res:  # Below the level: the convs only (FromRGB is the top's).
        x = blk.conv1(blk.conv0(tf.cast(x, blk.compute_dtype_)))
    return self.epilogue(x, None, c)

  def get_config(self):
    config = super().get_config()
    config.update(c_dim=self.c_dim, img_resolution=self.img_resolution,
                  img_channels=self.img_channels, fmap_base=self.fmap_base,
                  fmap_decay=self.fmap_decay, fmap_min=self.fmap_min, fmap_max=self.fmap_max,
                  activation=self.activation, mbstd_group_size=self.mbstd_group_size,
                  mbstd_num_features=self.mbstd_num_features,
                  resample_filter=self.resample_filter, num_fp16_res=self.num_fp16_res,
                  conv_clamp=self.conv_clamp)
    return config
