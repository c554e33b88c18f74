"""The StyleGAN baseline of config a (NHWC): official G_style (G_mapping + G_synthesis) and
D_basic of training/networks_stylegan.py, the networks of StyleGAN's own
karras2019stylegan-*.pkl too. Progressive growing as in sg2tf/networks/growing.py.

What differs from StyleGAN2 (all as the official code defines it):
- The He gain (sqrt(2) for convs, FromRGB, D's Dense0 and the mapping layers; 1 for ToRGB,
  D's last layer and the style affines) is in the weights' run-time scale
  gain / sqrt(fan_in) * lrmul, and lrelu has no gain of its own.
- Synthesis layer: conv, noise (one learned weight per channel, `Noise/weight`), bias, lrelu,
  instance normalisation, then AdaIN style modulation x * (s0 + 1) + s1 with
  s = w @ StyleMod/weight / sqrt(w_dim) + StyleMod/bias. The 4x4 input is a learned constant
  initialised to ones, followed by the same epilogue (layer 0).
- Up-convs: nearest 2x upsampling then a 3x3 conv, or above 64x64 input (fused_scale='auto')
  one stride-2 transposed conv with the kernel padded and summed over its four 2x2 shifts;
  then the [1, 2, 1] blur. D's down-convs: blur, then a 3x3 conv and 2x2 averaging, or at
  >= 128x128 input a stride-2 conv with the padded, summed kernel / 4.
- One noise buffer per layer (num_ws of them), w index = layer index; ToRGB reads no w.
- D_basic has no Output layer: 4x4/Dense1 gives the logits (with labels: summed with them).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from sg2tf import layers
from sg2tf.custom_ops import bias_act, filter2d, setup_filter
from sg2tf.networks import growing
from sg2tf.networks.mapping import MappingNetwork
from sg2tf.networks.checks import check_resolution

_SQRT2 = math.sqrt(2.0)
ACTIVATIONS = ('lrelu', 'relu')
FUSED_SCALES = ('auto', True, False)


def _ops(impl):
  """Keyword arguments for the ops: impl only when a call sets it (else the op decides)."""
  return {} if impl is None else {'impl': impl}


def _act(x, b, activation, impl):
  """x + b, then lrelu (slope 0.2) / relu / linear, all WITHOUT gain (it is in the weights)."""
  return bias_act(x, b, act=activation, alpha=0.2 if activation == 'lrelu' else None, gain=1.0,
                  **_ops(impl))


def check_activation(activation, who):
  if activation not in ACTIVATIONS:
    raise ValueError(f'{who}: nonlinearity must be one of {ACTIVATIONS}, got {activation!r}')
  return activation


def nf_fn(fmap_base, fmap_decay=1.0, fmap_max=512):
  """Official StyleGAN feature maps: min(int(base / 2**(stage*decay)), max) (no minimum)."""
  return lambda stage: min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _padded_sum(w):
  """[k, k, I, O] -> [k+1, k+1, I, O]: the kernel zero-padded by 1 and summed over its four
  one-pixel shifts (the official fused-scale kernel)."""
  w = tf.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])
  return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANDense(keras.layers.Layer):
  """y = act(x @ W * gain / sqrt(in) * lrmul + b * lrmul); W ~ N(0, 1/lrmul^2), b = 0."""

  def __init__(self, units, gain=_SQRT2, lr_multiplier=1.0, activation='linear', **kwargs):
    super().__init__(**kwargs)
    self.units, self.gain = int(units), float(gain)
    self.lr_multiplier, self.activation = float(lr_multiplier), activation

  def build(self, input_shape):
    self.in_features = int(input_shape[-1])
    self.weight = self.add_weight(
        name='weight', shape=[self.in_features, self.units],
        initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_multiplier))
    self.bias = self.add_weight(name='bias', shape=[self.units], initializer='zeros')
    self.weight_gain = self.gain / math.sqrt(self.in_features) * self.lr_multiplier

  def call(self, x, impl=None):  # x: [N, in_features]
    x = tf.matmul(x, self.weight * self.weight_gain)  # [N, units]
    return _act(x, self.bias * self.lr_multiplier, self.activation, impl)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.units,)

  def get_config(self):
    config = super().get_config()
    config.update(units=self.units, gain=self.gain, lr_multiplier=self.lr_multiplier,
                  activation=self.activation)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANConv2D(keras.layers.Layer):
  """Equalized-lr conv (SAME), no bias; resample None, 'up' or 'down' (module docstring).

  fused_scale: 'auto' (official: fused when the output of an up-conv, or the input of a
  down-conv, is >= 128 pixels wide), True or False.
  """

  def __init__(self, filters, kernel_size, gain=_SQRT2, resample=None, fused_scale='auto',
               **kwargs):
    super().__init__(**kwargs)
    if resample not in (None, 'up', 'down'):
      raise ValueError(f'StyleGANConv2D: resample must be None, "up" or "down", got {resample!r}')
    if fused_scale not in FUSED_SCALES:
      raise ValueError(f'StyleGANConv2D: fused_scale must be one of {FUSED_SCALES}, got '
                       f'{fused_scale!r}')
    self.filters, self.kernel_size = int(filters), int(kernel_size)
    self.gain, self.resample, self.fused_scale = float(gain), resample, fused_scale

  def build(self, input_shape):
    self.in_channels = int(input_shape[-1])
    k = self.kernel_size
    self.weight = self.add_weight(name='weight', shape=[k, k, self.in_channels, self.filters],
                                  initializer=keras.initializers.RandomNormal(0.0, 1.0))
    self.weight_gain = self.gain / math.sqrt(k * k * self.in_channels)
    fused = self.fused_scale
    if fused == 'auto':
      size = int(input_shape[1])
      fused = (size * 2 >= 128) if self.resample == 'up' else (size >= 128)
    self.fused = bool(fused) and self.resample is not None

  def call(self, x):  # x: [N, H, W, C_in]
    w = self.weight * self.weight_gain
    if self.resample == 'up':
      if self.fused:
        _, h, wd, _ = x.shape
        w4 = tf.transpose(_padded_sum(w), [0, 1, 3, 2])  # [k+1, k+1, O, I]
        shape = tf.stack([tf.shape(x)[0], 2 * h, 2 * wd, self.filters])
        return tf.nn.conv2d_transpose(x, w4, shape, strides=2, padding='SAME')
      x = growing.nearest_upsample(x, 2)
    elif self.resample == 'down' and self.fused:
      return tf.nn.conv2d(x, _padded_sum(w) * 0.25, strides=2, padding='SAME')
    x = tf.nn.conv2d(x, w, strides=1, padding='SAME')  # [N, H', W', filters]
    if self.resample == 'down':
      x = growing.box_downsample(x, 2)
    return x

  def compute_output_shape(self, input_shape):  # [N, H, W, C_in] -> [N, H', W', filters]
    n, h, w = tuple(input_shape)[:3]
    up, down = (2, 1) if self.resample == 'up' else (1, 2) if self.resample == 'down' else (1, 1)
    return (n, None if h is None else h * up // down, None if w is None else w * up // down,
            self.filters)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size, gain=self.gain,
                  resample=self.resample, fused_scale=self.fused_scale)
    return config


def _blur_filter(blur_filter):
  return None if not blur_filter else [float(v) for v in blur_filter]


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANConvLayer(keras.layers.Layer):
  """D's layers: [blur] -> conv [down] -> bias -> act (FromRGB, Conv0, Conv1_down)."""

  def __init__(self, filters, kernel_size, activation='lrelu', down=False, blur_filter=None,
               fused_scale='auto', **kwargs):
    super().__init__(**kwargs)
    self.filters, self.kernel_size, self.activation = int(filters), int(kernel_size), activation
    self.down, self.blur_filter, self.fused_scale = bool(down), _blur_filter(blur_filter), fused_scale
    self.conv = StyleGANConv2D(self.filters, self.kernel_size, resample='down' if down else None,
                               fused_scale=fused_scale, name='conv')

  def build(self, input_shape):
    self.conv.build(input_shape)
    self.bias = self.add_weight(name='bias', shape=[self.filters], initializer='zeros')
    self._blur = setup_filter(self.blur_filter) if self.down and self.blur_filter else None

  def call(self, x, impl=None):
    if self._blur is not None:
      x = filter2d(x, self._blur, **_ops(impl))
    return _act(self.conv(x), self.bias, self.activation, impl)

  def compute_output_shape(self, input_shape):
    return self.conv.compute_output_shape(input_shape)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size, activation=self.activation,
                  down=self.down, blur_filter=self.blur_filter, fused_scale=self.fused_scale)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANSynthesisLayer(keras.layers.Layer):
  """[const | conv | up-conv + blur], noise, bias, act, instance norm, style modulation.

  kind 'const': the learned 4x4 input (ones) with the epilogue. Holds its constant noise
  buffer (official noise{i}, NHWC [1, R, R, 1]) as a non-trainable weight.
  """

  def __init__(self, channels, w_dim, resolution, kind='conv', activation='lrelu',
               blur_filter=(1, 2, 1), fused_scale='auto', **kwargs):
    super().__init__(**kwargs)
    if kind not in ('const', 'conv', 'up'):
      raise ValueError(f'StyleGANSynthesisLayer: kind must be const, conv or up, got {kind!r}')
    self.channels, self.w_dim, self.resolution = int(channels), int(w_dim), int(resolution)
    self.kind, self.activation = kind, activation
    self.blur_filter, self.fused_scale = _blur_filter(blur_filter), fused_scale
    if kind != 'const':
      self.conv = StyleGANConv2D(self.channels, 3, resample='up' if kind == 'up' else None,
                                 fused_scale=fused_scale, name='conv')
    self.style = StyleGANDense(2 * self.channels, gain=1.0, name='style')

  def build(self, input_shape):
    r, c = self.resolution, self.channels
    if self.kind == 'const':
      self.const = self.add_weight(name='const', shape=[1, 4, 4, c], initializer='ones')
    else:
      self.conv.build(input_shape)
    self.noise_const = self.add_weight(name='noise_const', shape=[1, r, r, 1],
                                       initializer=keras.initializers.RandomNormal(0.0, 1.0),
                                       trainable=False)
    self.noise_weight = self.add_weight(name='noise_weight', shape=[c], initializer='zeros')
    self.bias = self.add_weight(name='bias', shape=[c], initializer='zeros')
    self.style.build([None, self.w_dim])
    self._blur = setup_filter(self.blur_filter) if self.kind == 'up' and self.blur_filter else None

  def call(self, x, w, noise_mode='random', noise=None, impl=None):
    """x: [N, R/2, R/2, C_in] ('up'), [N, R, R, C] ('conv') or ignored ('const');
    w: [N, w_dim]; noise: optional [N or 1, R, R, 1] (overrides noise_mode)."""
    if self.kind == 'const':
      x = tf.tile(self.const, [tf.shape(w)[0], 1, 1, 1])  # [N, 4, 4, C]
    else:
      x = self.conv(x)
      if self._blur is not None:
        x = filter2d(x, self._blur, **_ops(impl))
    if noise is None:
      layers.check_noise_mode(noise_mode)
      if noise_mode == 'random':
        shape = tf.shape(x)
        noise = tf.random.normal([shape[0], shape[1], shape[2], 1], dtype=x.dtype)
      elif noise_mode == 'const':
        noise = self.noise_const
    if noise is not None:
      x = x + tf.cast(noise, x.dtype) * self.noise_weight
    x = _act(x, self.bias, self.activation, impl)
    x = x - tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # Instance normalisation.
    x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=[1, 2], keepdims=True) + 1e-8)
    s = self.style(tf.cast(w, tf.float32), impl=impl)[:, tf.newaxis, tf.newaxis, :]  # [N,1,1,2C]
    return x * (s[..., :self.channels] + 1.0) + s[..., self.channels:]

  def compute_output_shape(self, input_shape):  # x -> [N, R, R, channels]
    return (tuple(input_shape)[0], self.resolution, self.resolution, self.channels)

  def get_config(self):
    config = super().get_config()
    config.update(channels=self.channels, w_dim=self.w_dim, resolution=self.resolution,
                  kind=self.kind, activation=self.activation, blur_filter=self.blur_filter,
                  fused_scale=self.fused_scale)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANSynthesisBlock(keras.layers.Layer):
  """One resolution: 4x4 Const + Conv, or Conv0_up + Conv1; and its ToRGB (1x1, gain 1)."""

  def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels,
               activation='lrelu', blur_filter=(1, 2, 1), fused_scale='auto', **kwargs):
    super().__init__(**kwargs)
    self.in_channels, self.out_channels = int(in_channels), int(out_channels)
    self.w_dim, self.resolution, self.img_channels = int(w_dim), int(resolution), int(img_channels)
    self.activation, self.blur_filter = activation, _blur_filter(blur_filter)
    self.fused_scale = fused_scale
    common = dict(w_dim=self.w_dim, resolution=self.resolution, activation=activation,
                  blur_filter=self.blur_filter, fused_scale=fused_scale)
    first = 'const' if self.resolution == 4 else 'up'
    self.conv0 = StyleGANSynthesisLayer(self.out_channels, kind=first, name='conv0', **common)
    self.conv1 = StyleGANSynthesisLayer(self.out_channels, kind='conv', name='conv1', **common)
    self.torgb = StyleGANConv2D(self.img_channels, 1, gain=1.0, name='torgb')

  def build(self, input_shape=None):
    """input_shape: that of x, [N, R/2, R/2, C_in] (the shapes follow from the arguments)."""
    del input_shape
    r = self.resolution
    self.conv0.build([None, r // 2, r // 2, self.in_channels])
    self.conv1.build([None, r, r, self.out_channels])
    self.torgb.build([None, r, r, self.out_channels])
    self.torgb_bias = self.add_weight(name='torgb_bias', shape=[self.img_channels],
                                      initializer='zeros')

  @property
  def synthesis_layers(self):
    return [self.conv0, self.conv1]

  def call(self, x, ws, noise_mode='random', noise=None, impl=None):
    """ws: [N, 2, w_dim] (this block's layers); noise: None or two entries.
    Returns (x [N, R, R, C_out], rgb [N, R, R, img_channels])."""
    noise = noise or [None, None]
    x = self.conv0(x, ws[:, 0], noise_mode=noise_mode, noise=noise[0], impl=impl)
    x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, noise=noise[1], impl=impl)
    rgb = bias_act(self.torgb(x), self.torgb_bias, **_ops(impl))
    return x, rgb

  def compute_output_shape(self, input_shape=None):  # (x [N, R, R, C_out], rgb [N, R, R, C])
    n, r = None if input_shape is None else tuple(input_shape)[0], self.resolution
    return (n, r, r, self.out_channels), (n, r, r, self.img_channels)

  def get_config(self):
    config = super().get_config()
    config.update(in_channels=self.in_channels, out_channels=self.out_channels, w_dim=self.w_dim,
                  resolution=self.resolution, img_channels=self.img_channels,
                  activation=self.activation, blur_filter=self.blur_filter,
                  fused_scale=self.fused_scale)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANSynthesisNetwork(growing.GrowingSynthesisBase):
  """Official StyleGAN G_synthesis in NHWC (use_styles, const input, noise, instance norm;
  the defaults): ws [N, num_ws, w_dim] -> images. Layer i (w[:, i], noise{i}) runs at
  resolution 2**(i//2 + 2); a block at 2**k has nf(k-1) channels."""

  def __init__(self, w_dim=512, img_resolution=1024, img_channels=3, fmap_base=8192,
               fmap_decay=1.0, fmap_max=512, activation='lrelu', blur_filter=(1, 2, 1),
               fused_scale='auto', **kwargs):
    super().__init__(**kwargs)
    self.w_dim = int(w_dim)
    self.img_resolution = check_resolution(img_resolution, 'StyleGANSynthesisNetwork')
    self.img_channels = int(img_channels)
    self.fmap_base, self.fmap_decay, self.fmap_max = int(fmap_base), float(fmap_decay), int(fmap_max)
    self.activation = check_activation(activation, 'StyleGANSynthesisNetwork')
    self.blur_filter, self.fused_scale = _blur_filter(blur_filter), fused_scale
    nf = nf_fn(self.fmap_base, self.fmap_decay, self.fmap_max)
    log2 = int(np.log2(self.img_resolution))
    self.num_ws = 2 * log2 - 2
    self.resolutions = [2 ** k for k in range(2, log2 + 1)]
    for k in range(2, log2 + 1):
      setattr(self, f'b{2 ** k}', StyleGANSynthesisBlock(
          nf(k - 2) if k > 2 else 0, nf(k - 1), self.w_dim, 2 ** k, self.img_channels,
          activation=activation, blur_filter=self.blur_filter, fused_scale=fused_scale,
          name=f'b{2 ** k}'))

  @property
  def blocks(self):
    return [getattr(self, f'b{r}') for r in self.resolutions]

  def build(self, input_shape=None):
    """input_shape: that of ws, [N, num_ws, w_dim] (the shapes follow from the arguments)."""
    del input_shape
    for blk in self.blocks:
      blk.build((None, blk.resolution // 2, blk.resolution // 2, blk.in_channels))
    self._add_lod()

  def _rgb_pair(self, ws, res, noise_mode, noise, fused_modconv, impl):
    del fused_modconv  # No modulated convolutions here.
    x = y = y_low = None
    for i, blk in enumerate(self.blocks):
      if blk.resolution > res:
        break
      block_noise = None if noise is None else list(noise[2 * i:2 * i + 2])
      x, rgb = blk(x, ws[:, 2 * i:2 * i + 2], noise_mode=noise_mode, noise=block_noise,
                   impl=impl)
      y_low, y = y, rgb
    return y, y_low

  def get_config(self):
    config = super().get_config()
    config.update(w_dim=self.w_dim, img_resolution=self.img_resolution,
                  img_channels=self.img_channels, fmap_base=self.fmap_base,
                  fmap_decay=self.fmap_decay, fmap_max=self.fmap_max, activation=self.activation,
                  blur_filter=self.blur_filter, fused_scale=self.fused_scale)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANMapping(MappingNetwork):
  """Official StyleGAN G_mapping: as StyleGAN2's, but each FC layer has the He gain sqrt(2)
  in its weights and an activation without gain."""

  def _make_fc(self, units, name):
    check_activation(self.activation, 'StyleGANMapping')
    return StyleGANDense(units, gain=_SQRT2, lr_multiplier=self.lr_multiplier,
                         activation=self.activation, name=name)


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANGenerator(growing.GrowingGeneratorBase):
  """Official G_style in NHWC (config a; StyleGAN's own pickles).

  Defaults of a call without truncation arguments: psi 0.7 on the first 8 layers (official
  G_style). sg2tf's convention for explicit arguments holds here too: truncation_cutoff=None
  means all layers (the official G_style would not truncate at all), psi 1 or None none.
  """
  MAPPING = StyleGANMapping
  SYNTHESIS = StyleGANSynthesisNetwork

  def __init__(self, z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
               mapping_layers=8, mapping_dim=512, mapping_lr_multiplier=0.01,
               mapping_activation='lrelu', normalize_z=True, w_avg_beta=0.995, fmap_base=8192,
               fmap_decay=1.0, fmap_max=512, activation='lrelu', blur_filter=(1, 2, 1),
               fused_scale='auto', truncation_psi=0.7, truncation_cutoff=8, **kwargs):
    super().__init__(**kwargs)
    self._setup(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_layers, mapping_dim,
                mapping_lr_multiplier, mapping_activation, normalize_z, w_avg_beta,
                truncation_psi, truncation_cutoff, fmap_base=fmap_base, fmap_decay=fmap_decay,
                fmap_max=fmap_max, activation=activation, blur_filter=blur_filter,
                fused_scale=fused_scale)


@keras.saving.register_keras_serializable(package='sg2tf')
class StyleGANDiscriminator(growing.GrowingDiscriminatorBase):
  """Official D_basic in NHWC (config a): per-resolution FromRGB (1x1), blocks Conv0 +
  blur/Conv1_down, and at 4x4 minibatch stddev, Conv, Dense0, Dense1 (the logits; with
  labels summed against them, official LabelSwitch)."""

  def __init__(self, c_dim=0, img_resolution=1024, img_channels=3, fmap_base=8192,
               fmap_decay=1.0, fmap_max=512, activation='lrelu', mbstd_group_size=4,
               mbstd_num_features=1, blur_filter=(1, 2, 1), fused_scale='auto', **kwargs):
    super().__init__(**kwargs)
    self.c_dim = int(c_dim)
    self.img_resolution = check_resolution(img_resolution, 'StyleGANDiscriminator')
    if self.img_resolution < 8:
      raise ValueError(f'StyleGANDiscriminator: img_resolution must be >= 8, got {img_resolution}')
    self.img_channels = int(img_channels)
    self.fmap_base, self.fmap_decay, self.fmap_max = int(fmap_base), float(fmap_decay), int(fmap_max)
    self.activation = check_activation(activation, 'StyleGANDiscriminator')
    self.mbstd_group_size, self.mbstd_num_features = int(mbstd_group_size), int(mbstd_num_features)
    self.blur_filter, self.fused_scale = _blur_filter(blur_filter), fused_scale
    nf = nf_fn(self.fmap_base, self.fmap_decay, self.fmap_max)
    log2 = int(np.log2(self.img_resolution))
    self.resolutions = [2 ** k for k in range(2, log2 + 1)][::-1]  # R .. 4 (level order)
    act = dict(activation=activation)
    for k in range(log2, 1, -1):
      setattr(self, f'fromrgb{2 ** k}', StyleGANConvLayer(nf(k - 1), 1, name=f'fromrgb{2 ** k}',
                                                          **act))
    for k in range(log2, 2, -1):
      setattr(self, f'b{2 ** k}_conv0', StyleGANConvLayer(nf(k - 1), 3, name=f'b{2 ** k}_conv0',
                                                          **act))
      setattr(self, f'b{2 ** k}_conv1', StyleGANConvLayer(
          nf(k - 2), 3, down=True, blur_filter=self.blur_filter, fused_scale=fused_scale,
          name=f'b{2 ** k}_conv1', **act))
    self.mbstd = None
    if self.mbstd_group_size > 1:
      self.mbstd = layers.MinibatchStddev(self.mbstd_group_size, self.mbstd_num_features,
                                          name='mbstd')
    self.conv4 = StyleGANConvLayer(nf(1), 3, name='conv4', **act)
    self.dense0 = StyleGANDense(nf(0), activation=activation, name='dense0')
    self.dense1 = StyleGANDense(max(self.c_dim, 1), gain=1.0, name='dense1')
    self.build()

  def build(self, input_shape=None):
    del input_shape
    nf = nf_fn(self.fmap_base, self.fmap_decay, self.fmap_max)
    for r in self.resolutions:
      k = int(np.log2(r))
      getattr(self, f'fromrgb{r}').build([None, r, r, self.img_channels])
      if r > 4:
        getattr(self, f'b{r}_conv0').build([None, r, r, nf(k - 1)])
        getattr(self, f'b{r}_conv1').build([None, r, r, nf(k - 1)])
    extra = 0
    if self.mbstd is not None:
      self.mbstd.build([None, 4, 4, nf(1)])
      extra = self.mbstd_num_features
    self.conv4.build([None, 4, 4, nf(1) + extra])
    self.dense0.build([None, nf(1) * 16])
    self.dense1.build([None, nf(0)])
    self._add_lod()

  def _block(self, x, res, impl):
    x = getattr(self, f'b{res}_conv0')(x, impl=impl)
    return getattr(self, f'b{res}_conv1')(x, impl=impl)

  def _level_logits(self, img, level, c, impl):
    res = self.img_resolution >> level
    img = tf.cast(img, tf.float32)
    x = getattr(self, f'fromrgb{res}')(img, impl=impl)
    if res > 4:
      x = self._block(x, res, impl)
      y = getattr(self, f'fromrgb{res // 2}')(box_down2(img), impl=impl)
      x = growing.lerp(x, y, self._frac(level))
      r = res // 2
      while r > 4:
        x = self._block(x, r, impl)
        r //= 2
    if self.mbstd is not None:
      x = self.mbstd(x)
    x = self.conv4(x, impl=impl)  # [N, 4, 4, nf(1)]
    x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, x.shape[3] * 16])  # NCHW flatten
    x = self.dense1(self.dense0(x, impl=impl), impl=impl)  # [N, max(c_dim, 1)]
    if self.c_dim:
      x = tf.reduce_sum(x * tf.cast(c, x.dtype), axis=1, keepdims=True)
    return x

  def get_config(self):
    config = super().get_config()
    config.update(c_dim=self.c_dim, img_resolution=self.img_resolution,
                  img_channels=self.img_channels, fmap_base=self.fmap_base,
                  fmap_decay=self.fmap_decay, fmap_max=self.fmap_max, activation=self.activation,
                  mbstd_group_size=self.mbstd_group_size,
                  mbstd_num_features=self.mbstd_num_features, blur_filter=self.blur_filter,
                  fused_scale=self.fused_scale)
    return config


def box_down2(x):
  return growing.box_downsample(x, 2)
