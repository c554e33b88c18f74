"""StyleGAN2 building blocks as Keras 3 layers (NHWC).

Every weight is stored the way NVIDIA's official code stores it (HWIO convs, [in, out]
dense, N(0, 1/lr_multiplier^2) init) and scaled at run time (equalized learning rate), so
official weights import as-is and a trained checkpoint stays in the official layout.
Conventions: ../shared/fixtures/official_pkl/README.md, sections 1-12.

The layers carry no op implementation: the ops follow the op-level policy
(sg2tf.custom_ops.policy, e.g. `with sg2tf.custom_ops.implementation('ref'):`).
`fused_modconv=None` takes the policy's formulation: fused (one grouped conv) on GPU,
non-fused on CPU, where TF has no gradient for grouped convolutions without XLA.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from sg2tf.conventions import NOISE_MODES
from sg2tf.custom_ops import bias_act, conv2d_resample, policy, setup_filter, upfirdn2d

_DEMOD_EPS = 1e-8


def resolve_fused_modconv(fused_modconv) -> bool:
  """None: the policy's formulation (fused on GPU, non-fused on CPU); True/False force it."""
  return policy.fused_modconv(fused_modconv)


def check_noise_mode(noise_mode):
  if noise_mode not in NOISE_MODES:
    raise ValueError(f'noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}')


def _resized(size, up=1, down=1):
  """A static spatial size after up/down sampling (None stays None)."""
  return None if size is None else int(size) * up // down


def _dims(x):
  """Shape as a list: static sizes where known (the custom ops need static H, W), else dynamic."""
  dyn = tf.shape(x)
  return [d if d is not None else dyn[i] for i, d in enumerate(x.shape)]


@keras.saving.register_keras_serializable(package='sg2tf')
class EqualizedDense(keras.layers.Layer):
  """Fully connected layer with equalized learning rate: y = act(x @ W * c + b * lrmul).

  c = gain / sqrt(in_features) * lr_multiplier. W starts N(0, 1/lr_multiplier^2) and the
  stored bias is bias_init / lr_multiplier, so the effective bias starts at bias_init.
  """

  def __init__(self, units, activation='linear', lr_multiplier=1.0, gain=1.0, use_bias=True,
               bias_init=0.0, **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.activation = activation
    self.lr_multiplier = float(lr_multiplier)
    self.gain = float(gain)
    self.use_bias = bool(use_bias)
    self.bias_init = float(bias_init)

  def build(self, input_shape):
    self.in_features = int(input_shape[-1])
    self.weight = self.add_weight(
        name='weight', shape=[self.in_features, self.units],
        initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_multiplier))
    self.bias = None
    if self.use_bias:
      self.bias = self.add_weight(
          name='bias', shape=[self.units],
          initializer=keras.initializers.Constant(self.bias_init / self.lr_multiplier))
    self.weight_gain = self.gain / math.sqrt(self.in_features) * self.lr_multiplier

  def call(self, x):  # x: [N, in_features]
    x = tf.matmul(x, self.weight * self.weight_gain)  # [N, units]
    b = None if self.bias is None else self.bias * self.lr_multiplier
    if b is None and self.activation == 'linear':
      return x
    return bias_act(x, b, act=self.activation)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.units,)

  def get_config(self):
    config = super().get_config()
    config.update(units=self.units, activation=self.activation, lr_multiplier=self.lr_multiplier,
                  gain=self.gain, use_bias=self.use_bias, bias_init=self.bias_init)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class EqualizedConv2D(keras.layers.Layer):
  """Conv2D (SAME) with equalized learning rate, optional FIR up/downsampling, bias + act.

  Up: transposed conv then FIR; down: FIR then strided conv (conv2d_resample), as in the
  official code.
  """

  def __init__(self, filters, kernel_size, activation='linear', use_bias=True, up=1, down=1,
               resample_filter=(1, 3, 3, 1), lr_multiplier=1.0, gain=1.0, conv_clamp=None,
               **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = int(kernel_size)
    self.activation = activation
    self.use_bias = bool(use_bias)
    self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
    self.up, self.down = int(up), int(down)
    self.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]
    self.lr_multiplier = float(lr_multiplier)
    self.gain = float(gain)

  def build(self, input_shape):
    self.in_channels = int(input_shape[-1])
    k = self.kernel_size
    self.weight = self.add_weight(
        name='weight', shape=[k, k, self.in_channels, self.filters],
        initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_multiplier))
    self.bias = None
    if self.use_bias:
      self.bias = self.add_weight(name='bias', shape=[self.filters], initializer='zeros')
    self.weight_gain = self.gain / math.sqrt(k * k * self.in_channels) * self.lr_multiplier
    self._filter = setup_filter(self.resample_filter) if (self.up > 1 or self.down > 1) else None

  def call(self, x):  # x: [N, H, W, C_in]
    # float16 inputs (mixed precision): the float32 weights are cast at use by the op.
    w = self.weight * self.weight_gain
    x = conv2d_resample(x, w, f=self._filter, up=self.up, down=self.down,
                        padding=self.kernel_size // 2)  # [N, H', W', filters]
    b = None if self.bias is None else self.bias * self.lr_multiplier
    if b is None and self.activation == 'linear' and self.conv_clamp is None:
      return x
    return bias_act(x, b, act=self.activation, clamp=self.conv_clamp)

  def compute_output_shape(self, input_shape):  # [N, H, W, C_in] -> [N, H', W', filters]
    n, h, w = tuple(input_shape)[:3]
    return (n, _resized(h, self.up, self.down), _resized(w, self.up, self.down), self.filters)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size, activation=self.activation,
                  use_bias=self.use_bias, up=self.up, down=self.down,
                  resample_filter=self.resample_filter, lr_multiplier=self.lr_multiplier,
                  gain=self.gain, conv_clamp=self.conv_clamp)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class ModulatedConv2D(keras.layers.Layer):
  """Modulated (and optionally demodulated) conv, paper Eq. 1 and 3, no bias.

  Style s = w @ (mod_weight / sqrt(w_dim)) + mod_bias + 1. `mod_bias` is stored WITHOUT
  the +1, exactly as in official pickles (init 0, so the effective style bias starts at 1).

  fused: per-sample kernels, batch folded into the channel axis, ONE grouped convolution.
  non-fused: scale the activations by s, shared conv, scale by the demodulation factors.
  Both give the same result up to float rounding.

  float16 x (mixed precision): styles, kernels and demodulation factors are computed in
  float32 and cast at use. Non-fused with demodulation, W is first divided by its per-output
  max |W| and s by its per-sample max |s| (as StyleGAN2-ADA does): demodulation cancels
  both scales, and the float16 x * s and conv can no longer overflow.
  """

  def __init__(self, filters, kernel_size, w_dim, demodulate=True, up=1,
               resample_filter=(1, 3, 3, 1), **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = int(kernel_size)
    self.w_dim = int(w_dim)
    self.demodulate = bool(demodulate)
    self.up = int(up)
    self.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]

  def build(self, input_shape):
    self.in_channels = int(input_shape[-1])
    k = self.kernel_size
    normal = keras.initializers.RandomNormal(0.0, 1.0)
    self.weight = self.add_weight(name='weight', shape=[k, k, self.in_channels, self.filters],
                                  initializer=normal)
    self.mod_weight = self.add_weight(name='mod_weight', shape=[self.w_dim, self.in_channels],
                                      initializer=normal)
    self.mod_bias = self.add_weight(name='mod_bias', shape=[self.in_channels], initializer='zeros')
    self.weight_gain = 1.0 / math.sqrt(k * k * self.in_channels)
    self.mod_gain = 1.0 / math.sqrt(self.w_dim)
    self._filter = setup_filter(self.resample_filter) if self.up > 1 else None

  def styles(self, w):
    """w [N, w_dim] -> s [N, C_in]."""
    s = tf.matmul(w, self.mod_weight * self.mod_gain)
    return bias_act(s, self.mod_bias) + 1.0

  def call(self, x, w, fused_modconv=None):  # x: [N, H, W, C_in], w: [N, w_dim]
    s = self.styles(tf.cast(w, tf.float32))  # [N, I]
    weight = self.weight * self.weight_gain  # [k, k, I, O]
    if resolve_fused_modconv(fused_modconv):
      return self._fused(x, s, weight)
    if x.dtype != tf.float32 and self.demodulate:
      weight = weight / tf.reduce_max(tf.abs(weight), axis=[0, 1, 2], keepdims=True)
      s = s / tf.reduce_max(tf.abs(s), axis=1, keepdims=True)
    x = x * tf.cast(s, x.dtype)[:, tf.newaxis, tf.newaxis, :]
    x = conv2d_resample(x, weight, f=self._filter, up=self.up,
                        padding=self.kernel_size // 2)  # [N, H', W', O]
    if self.demodulate:
      # sum_{kh,kw,i} (W s_i)^2 = (s^2) @ sum_{kh,kw} W^2.
      d = tf.math.rsqrt(tf.matmul(tf.square(s), tf.reduce_sum(tf.square(weight), [0, 1]))
                        + _DEMOD_EPS)  # [N, O]
      x = x * tf.cast(d, x.dtype)[:, tf.newaxis, tf.newaxis, :]
    return x

  def _fused(self, x, s, weight):
    k, ci, co = self.kernel_size, self.in_channels, self.filters
    ww = weight[tf.newaxis] * s[:, tf.newaxis, tf.newaxis, :, tf.newaxis]  # [N, k, k, I, O]
    if self.demodulate:
      d = tf.math.rsqrt(tf.reduce_sum(tf.square(ww), axis=[1, 2, 3]) + _DEMOD_EPS)  # [N, O]
      ww = ww * d[:, tf.newaxis, tf.newaxis, tf.newaxis, :]
    n_static = x.shape[0]
    n, h, wd = _dims(x)[:3]
    # Group g of the conv = sample g: input channels [g*I, (g+1)*I), outputs [g*O, (g+1)*O).
    xg = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, wd, n * ci])  # [1, H, W, N*I]
    wg = tf.reshape(tf.transpose(ww, [1, 2, 3, 0, 4]), [k, k, ci, n * co])  # [k, k, I, N*O]
    wg = tf.cast(wg, x.dtype)  # Demodulated in float32: |entries| <= 1 fit float16.
    if self.up > 1 and n_static is None:
      y = self._fused_up_zero_insert(xg, wg)
    else:
      # Without resampling the group count is inferred from the channels, so it may be
      # dynamic. With up, conv2d_resample's grouped transposed conv follows the policy's
      # formulation (grouped conv2d_transpose on 'gpu', zero insertion on 'cpu').
      y = conv2d_resample(xg, wg, f=self._filter, up=self.up, padding=k // 2,
                          groups=n_static or 1)  # [1, H', W', N*O]
    _, h2, w2, _ = _dims(y)
    y = tf.reshape(y, [h2, w2, n, co])  # [H', W', N, O]
    return tf.transpose(y, [2, 0, 1, 3])  # [N, H', W', O]

  def _fused_up_zero_insert(self, xg, wg):
    """Fused up path via the zero-insertion form of the transposed conv (README section 8):
    zero-insert, pad k-1, grouped correlation with W as stored, then the FIR with gain up^2.

    Used when the batch (= group count) is dynamic, which conv2d_resample's grouped
    transposed conv cannot take (it is the same computation as conv2d_resample's 'cpu'
    formulation).
    """
    k, up = self.kernel_size, self.up
    fw = int(self._filter.shape[0])
    xz = upfirdn2d(xg, None, up=up, padding=[k - 1, k - up, k - 1, k - up])
    y = tf.nn.conv2d(xz, wg, strides=1, padding='VALID')
    p0 = (fw + up - 1) // 2 + k // 2 - (k - 1)
    p1 = (fw - up) // 2 + k // 2 - (k - up)
    return upfirdn2d(y, self._filter, padding=[p0, p1, p0, p1], gain=up * up)

  def compute_output_shape(self, input_shape):  # x: [N, H, W, C_in] -> [N, H*up, W*up, O]
    n, h, w = tuple(input_shape)[:3]
    return (n, _resized(h, self.up), _resized(w, self.up), self.filters)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size, w_dim=self.w_dim,
                  demodulate=self.demodulate, up=self.up, resample_filter=self.resample_filter)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class SynthesisLayer(keras.layers.Layer):
  """Modulated 3x3 conv, then per-pixel noise * noise_strength, then act(x + bias).

  Holds its own constant noise buffer (official `noise{i}`, NHWC [1, R, R, 1]) as a
  non-trainable weight, so `noise_mode='const'` is deterministic and saved with the network.
  """

  def __init__(self, filters, w_dim, resolution, kernel_size=3, up=1, activation='lrelu',
               resample_filter=(1, 3, 3, 1), conv_clamp=None, **kwargs):
    super().__init__(**kwargs)
    self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
    self.filters = int(filters)
    self.w_dim = int(w_dim)
    self.resolution = int(resolution)
    self.kernel_size = int(kernel_size)
    self.up = int(up)
    self.activation = activation
    self.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]
    self.conv = ModulatedConv2D(self.filters, self.kernel_size, self.w_dim, demodulate=True,
                                up=self.up, resample_filter=self.resample_filter,
                                autocast=self.autocast, name='conv')

  def build(self, input_shape):
    self.conv.build(input_shape)
    r = self.resolution
    self.noise_const = self.add_weight(name='noise_const', shape=[1, r, r, 1],
                                       initializer=keras.initializers.RandomNormal(0.0, 1.0),
                                       trainable=False)
    self.noise_strength = self.add_weight(name='noise_strength', shape=[], initializer='zeros')
    self.bias = self.add_weight(name='bias', shape=[self.filters], initializer='zeros')

  def call(self, x, w, noise_mode='random', noise=None, fused_modconv=None):
    """x: [N, H, W, C_in], w: [N, w_dim], noise: optional [N or 1, R, R, 1] (overrides the mode)."""
    x = self.conv(x, w, fused_modconv=fused_modconv)  # [N, R, R, filters]
    if noise is None:
      check_noise_mode(noise_mode)
      if noise_mode == 'random':
        shape = tf.shape(x)
        noise = tf.random.normal([shape[0], shape[1], shape[2], 1], dtype=tf.float32)
      elif noise_mode == 'const':
        noise = self.noise_const
    if noise is not None:
      x = x + tf.cast(tf.cast(noise, tf.float32) * self.noise_strength, x.dtype)
    return bias_act(x, self.bias, act=self.activation, clamp=self.conv_clamp)

  def compute_output_shape(self, input_shape):  # x: [N, H, W, C_in] -> [N, R, R, filters]
    return (tuple(input_shape)[0], self.resolution, self.resolution, self.filters)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, w_dim=self.w_dim, resolution=self.resolution,
                  kernel_size=self.kernel_size, up=self.up, activation=self.activation,
                  resample_filter=self.resample_filter, conv_clamp=self.conv_clamp)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class ToRGB(keras.layers.Layer):
  """Modulated 1x1 conv WITHOUT demodulation, then x + bias (linear)."""

  def __init__(self, img_channels, w_dim, conv_clamp=None, **kwargs):
    super().__init__(**kwargs)
    self.img_channels = int(img_channels)
    self.w_dim = int(w_dim)
    self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
    self.conv = ModulatedConv2D(self.img_channels, 1, self.w_dim, demodulate=False,
                                autocast=self.autocast, name='conv')

  def build(self, input_shape):
    self.conv.build(input_shape)
    self.bias = self.add_weight(name='bias', shape=[self.img_channels], initializer='zeros')

  def call(self, x, w, fused_modconv=None):  # x: [N, H, W, C], w: [N, w_dim]
    x = self.conv(x, w, fused_modconv=fused_modconv)  # [N, H, W, img_channels]
    return bias_act(x, self.bias, clamp=self.conv_clamp)

  def compute_output_shape(self, input_shape):  # x: [N, H, W, C] -> [N, H, W, img_channels]
    return tuple(input_shape)[:3] + (self.img_channels,)

  def get_config(self):
    config = super().get_config()
    config.update(img_channels=self.img_channels, w_dim=self.w_dim,
                  conv_clamp=self.conv_clamp)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class ConstantInput(keras.layers.Layer):
  """Learned 4x4 input of the synthesis network, tiled over the batch."""

  def __init__(self, channels, size=4, **kwargs):
    super().__init__(**kwargs)
    self.channels = int(channels)
    self.size = int(size)

  def build(self, input_shape=None):
    """input_shape: that of the call's batch_like (only its batch size is used)."""
    del input_shape
    self.const = self.add_weight(name='const', shape=[1, self.size, self.size, self.channels],
                                 initializer=keras.initializers.RandomNormal(0.0, 1.0))

  def call(self, batch_like):  # batch_like: any tensor whose first dim is the batch.
    n = tf.shape(batch_like)[0]
    return tf.tile(self.const, [n, 1, 1, 1])  # [N, 4, 4, C]

  def compute_output_shape(self, input_shape=None):
    n = None if input_shape is None else tuple(input_shape)[0]
    return (n, self.size, self.size, self.channels)

  def get_config(self):
    config = super().get_config()
    config.update(channels=self.channels, size=self.size)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class MinibatchStddev(keras.layers.Layer):
  """Appends the average std over groups of `group_size` samples as extra channels.

  Official grouping: the batch is reshaped to [G, M, ...], so sample n belongs to group
  n % M (strided, not consecutive). G = min(group_size, N); N must be divisible by G.
  """

  def __init__(self, group_size=4, num_features=1, **kwargs):
    super().__init__(**kwargs)
    self.group_size = int(group_size)
    self.num_features = int(num_features)

  def build(self, input_shape):
    c = input_shape[-1]
    if c is not None and c % self.num_features:
      raise ValueError(f'MinibatchStddev: {c} channels are not divisible by '
                       f'num_features={self.num_features}')

  def call(self, x):  # x: [N, H, W, C]
    n_static = x.shape[0]
    if n_static is not None:
      g = min(self.group_size, n_static)
      if n_static % g:
        raise ValueError(f'MinibatchStddev: batch size {n_static} must be divisible by the '
                         f'group size {g} (mbstd_group_size={self.group_size}); '
                         'use a batch that is a multiple of it.')
    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    c = x.shape[3]
    f = self.num_features
    g = tf.minimum(self.group_size, n)
    y = tf.reshape(x, [g, -1, h, w, f, c // f])  # [G, M, H, W, F, c]
    y = tf.cast(y, tf.float32)
    y = y - tf.reduce_mean(y, axis=0, keepdims=True)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)  # [M, H, W, F, c]
    y = tf.reduce_mean(y, axis=[1, 2, 4])  # [M, F]
    y = tf.cast(y, x.dtype)[:, tf.newaxis, tf.newaxis, :]  # [M, 1, 1, F]
    y = tf.tile(y, [g, h, w, 1])  # [N, H, W, F]; sample n gets group n % M.
    return tf.concat([x, y], axis=3)  # [N, H, W, C + F]

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (input_shape[-1] + self.num_features,)

  def get_config(self):
    config = super().get_config()
    config.update(group_size=self.group_size, num_features=self.num_features)
    return config


def nf_fn(fmap_base, fmap_decay=1.0, fmap_min=1, fmap_max=512):
  """Feature maps per stage, official formula: clip(int(base / 2**(stage*decay)), min, max)."""
  def nf(stage):
    return int(np.clip(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_min, fmap_max))
  return nf
