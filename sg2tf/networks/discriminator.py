"""Discriminator image (+ labels) -> logit, architectures orig / skip / resnet (NHWC)."""

import math

import keras
import numpy as np
import tensorflow as tf

from sg2tf import layers
from sg2tf.custom_ops import downsample2d, policy, setup_filter
from sg2tf.networks.checks import check_architecture, check_mixed_precision, check_resolution
from sg2tf.networks.checks import check_fp16_dtype, fp16_resolution


@keras.saving.register_keras_serializable(package='sg2tf')
class DiscriminatorBlock(keras.layers.Layer):
  """Resolution R -> R/2: [FromRGB], Conv0 (3x3), Conv1_down (3x3, FIR then stride 2), [Skip].

  Official D_stylegan2 block at 2**k: Conv0 nf(k-1) -> nf(k-1), Conv1_down -> nf(k-2); the
  resnet Skip is a 1x1 down conv with no bias; x = (x + skip) / sqrt(2).

  use_fp16: activations in fp16_dtype (float16 or bfloat16; weights float32, cast at use); the
  image input stays
  float32 and is cast only for FromRGB. conv_clamp: clamp every conv output (None: none).
  """

  def __init__(self, in_channels, out_channels, resolution, img_channels, architecture, is_top,
               activation='lrelu', resample_filter=(1, 3, 3, 1), use_fp16=False, conv_clamp=None,
               fp16_dtype='float16', **kwargs):
    super().__init__(**kwargs)
    self.in_channels, self.out_channels = int(in_channels), int(out_channels)
    self.resolution, self.img_channels = int(resolution), int(img_channels)
    self.use_fp16 = bool(use_fp16)
    self.fp16_dtype = check_fp16_dtype(fp16_dtype, 'DiscriminatorBlock')
    self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
    self.compute_dtype_ = tf.as_dtype(self.fp16_dtype) if self.use_fp16 else tf.float32
    # Keras would cast float16 inputs back to the float32 policy: the layers keep our dtype.
    sub = dict(autocast=not self.use_fp16, conv_clamp=self.conv_clamp)
    self.architecture, self.is_top = architecture, bool(is_top)
    self.activation = activation
    self.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]
    self.has_fromrgb = architecture == 'skip' or self.is_top
    if self.has_fromrgb:
      self.fromrgb = layers.EqualizedConv2D(self.in_channels, 1, activation=activation,
                                            name='fromrgb', **sub)
    self.conv0 = layers.EqualizedConv2D(self.in_channels, 3, activation=activation,
                                        name='conv0', **sub)
    self.conv1 = layers.EqualizedConv2D(self.out_channels, 3, activation=activation, down=2,
                                        resample_filter=self.resample_filter,
                                        name='conv1', **sub)
    if architecture == 'resnet':
      self.skip = layers.EqualizedConv2D(self.out_channels, 1, use_bias=False, down=2,
                                         resample_filter=self.resample_filter,
                                         name='skip', **sub)

  def build(self, input_shape=None):
    """input_shape: that of x, [N, R, R, C_in] (the shapes follow from the arguments)."""
    del input_shape
    r = self.resolution
    if self.has_fromrgb:
      self.fromrgb.build([None, r, r, self.img_channels])
    self.conv0.build([None, r, r, self.in_channels])
    self.conv1.build([None, r, r, self.in_channels])
    if self.architecture == 'resnet':
      self.skip.build([None, r, r, self.in_channels])
    self._filter = setup_filter(self.resample_filter) if self.resample_filter else None

  def call(self, x, img):
    """x: [N, R, R, C_in] or None (top block), img: [N, R, R, img_channels] or None.
    Returns (x [N, R/2, R/2, C_out], img downsampled for the skip architecture, else None)."""
    dtype = self.compute_dtype_
    x = None if x is None else tf.cast(x, dtype)
    if self.has_fromrgb:
      y = self.fromrgb(tf.cast(img, dtype))
      x = y if x is None else x + y
    img = downsample2d(img, self._filter) if self.architecture == 'skip' else None
    t = x
    x = self.conv0(x)
    x = self.conv1(x)
    if self.architecture == 'resnet':
      x = (x + self.skip(t)) * (1 / math.sqrt(2))
    return x, img

  def compute_output_shape(self, input_shape=None):
    """(x [N, R/2, R/2, C_out], img [N, R/2, R/2, img_channels]) for 'skip'; x's alone for
    the others (whose call returns img None)."""
    n = None if input_shape is None else tuple(input_shape)[0]
    r = self.resolution // 2
    x = (n, r, r, self.out_channels)
    return (x, (n, r, r, self.img_channels)) if self.architecture == 'skip' else x

  def get_config(self):
    config = super().get_config()
    config.update(in_channels=self.in_channels, out_channels=self.out_channels,
                  resolution=self.resolution, img_channels=self.img_channels,
                  architecture=self.architecture, is_top=self.is_top, activation=self.activation,
                  resample_filter=self.resample_filter, use_fp16=self.use_fp16,
                  conv_clamp=self.conv_clamp, fp16_dtype=self.fp16_dtype)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class DiscriminatorEpilogue(keras.layers.Layer):
  """4x4: [FromRGB (skip)], minibatch stddev, Conv, Dense0, Output (projection on labels)."""

  def __init__(self, in_channels, dense_channels, img_channels, c_dim, architecture,
               mbstd_group_size=4, mbstd_num_features=1, activation='lrelu', conv_clamp=None,
               **kwargs):
    super().__init__(**kwargs)
    self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
    self.in_channels, self.dense_channels = int(in_channels), int(dense_channels)
    self.img_channels, self.c_dim = int(img_channels), int(c_dim)
    self.architecture = architecture
    self.mbstd_group_size, self.mbstd_num_features = int(mbstd_group_size), int(mbstd_num_features)
    self.activation = activation
    if architecture == 'skip':
      self.fromrgb = layers.EqualizedConv2D(self.in_channels, 1, activation=activation,
                                            conv_clamp=self.conv_clamp, name='fromrgb')
    self.mbstd = None
    if self.mbstd_group_size > 1:
      self.mbstd = layers.MinibatchStddev(self.mbstd_group_size, self.mbstd_num_features,
                                          name='mbstd')
    self.conv = layers.EqualizedConv2D(self.in_channels, 3, activation=activation,
                                       conv_clamp=self.conv_clamp, name='conv')
    self.fc = layers.EqualizedDense(self.dense_channels, activation=activation, name='fc')
    self.out = layers.EqualizedDense(max(self.c_dim, 1), name='out')

  def build(self, input_shape=None):
    """input_shape: that of x, [N, 4, 4, C] (the shapes follow from the arguments)."""
    del input_shape
    if self.architecture == 'skip':
      self.fromrgb.build([None, 4, 4, self.img_channels])
    extra = self.mbstd_num_features if self.mbstd is not None else 0
    if self.mbstd is not None:
      self.mbstd.build([None, 4, 4, self.in_channels])
    self.conv.build([None, 4, 4, self.in_channels + extra])
    self.fc.build([None, self.in_channels * 16])
    self.out.build([None, self.dense_channels])

  def call(self, x, img, c=None):  # x: [N, 4, 4, C], img: [N, 4, 4, img_ch] or None
    x = tf.cast(x, tf.float32)  # The epilogue and the logits are always float32.
    if self.architecture == 'skip':
      x = x + self.fromrgb(img)
    if self.mbstd is not None:
      x = self.mbstd(x)
    x = self.conv(x)  # [N, 4, 4, C]
    # Official Dense0 flattens NCHW (index c*16 + h*4 + w): keep its weight rows as-is.
    x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, self.in_channels * 16])
    x = self.fc(x)
    x = self.out(x)  # [N, max(c_dim, 1)]
    if self.c_dim:
      x = tf.reduce_sum(x * tf.cast(c, x.dtype), axis=1, keepdims=True)
    return x  # [N, 1]

  def compute_output_shape(self, input_shape=None):  # x [N, 4, 4, C] -> logits [N, 1]
    return (None if input_shape is None else tuple(input_shape)[0], 1)

  def get_config(self):
    config = super().get_config()
    config.update(in_channels=self.in_channels, dense_channels=self.dense_channels,
                  img_channels=self.img_channels, c_dim=self.c_dim,
                  architecture=self.architecture, mbstd_group_size=self.mbstd_group_size,
                  mbstd_num_features=self.mbstd_num_features, activation=self.activation,
                  conv_clamp=self.conv_clamp)
    return config


@keras.saving.register_keras_serializable(package='sg2tf')
class Discriminator(keras.Model):
  """Official D_stylegan2 in NHWC: D(images [N, R, R, C], labels [N, c_dim] or None) -> [N, 1].

  Built at construction (every shape follows from the arguments). Mixed precision (off by
  default): num_fp16_res > 0 runs the blocks of the num_fp16_res highest resolutions (>= 8x8)
  in fp16_dtype (float16 or bfloat16); conv_clamp clamps every conv output. The epilogue
  (4x4, logits) is float32.
  """

  def __init__(self, c_dim=0, img_resolution=1024, img_channels=3, architecture='resnet',
               fmap_base=16384, fmap_decay=1.0, fmap_min=1, fmap_max=512, activation='lrelu',
               mbstd_group_size=4, mbstd_num_features=1, resample_filter=(1, 3, 3, 1),
               num_fp16_res=0, conv_clamp=None, fp16_dtype='float16', **kwargs):
    super().__init__(**kwargs)
    self.num_fp16_res, self.conv_clamp = check_mixed_precision(num_fp16_res, conv_clamp,
                                                               'Discriminator')
    self.fp16_dtype = check_fp16_dtype(fp16_dtype, 'Discriminator')
    check_architecture(architecture, 'Discriminator')
    self.c_dim = int(c_dim)
    self.img_resolution = check_resolution(img_resolution, 'Discriminator')
    if self.img_resolution < 8:
      raise ValueError(f'Discriminator: img_resolution must be >= 8 (as in the official '
                       f'D_stylegan2), got {img_resolution}')
    self.img_channels = int(img_channels)
    self.architecture = architecture
    self.fmap_base, self.fmap_decay = int(fmap_base), float(fmap_decay)
    self.fmap_min, self.fmap_max = int(fmap_min), int(fmap_max)
    self.activation = activation
    self.mbstd_group_size, self.mbstd_num_features = int(mbstd_group_size), int(mbstd_num_features)
    self.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]
    nf = layers.nf_fn(self.fmap_base, self.fmap_decay, self.fmap_min, self.fmap_max)
    log2 = int(np.log2(self.img_resolution))
    # Blocks are attributes b<R>: tf.train.Checkpoint does not see into Keras 3 lists.
    self.resolutions = [2 ** k for k in range(log2, 2, -1)]
    fp16_res = fp16_resolution(self.img_resolution, self.num_fp16_res)
    for k in range(log2, 2, -1):
      setattr(self, f'b{2 ** k}', DiscriminatorBlock(
          nf(k - 1), nf(k - 2), 2 ** k, self.img_channels, architecture, is_top=k == log2,
          activation=activation, resample_filter=self.resample_filter,
          use_fp16=2 ** k >= fp16_res, conv_clamp=self.conv_clamp,
          fp16_dtype=self.fp16_dtype, name=f'b{2 ** k}'))
    self.epilogue = DiscriminatorEpilogue(
        nf(1), nf(0), self.img_channels, self.c_dim, architecture,
        mbstd_group_size=self.mbstd_group_size, mbstd_num_features=self.mbstd_num_features,
        activation=activation, conv_clamp=self.conv_clamp, name='b4')
    self.build()

  @property
  def blocks(self):
    return [getattr(self, f'b{r}') for r in self.resolutions]

  def build(self, input_shape=None):
    """Builds every block with its input shape; input_shape: that of the images."""
    del input_shape
    for blk in self.blocks:
      blk.build((None, blk.resolution, blk.resolution, blk.in_channels))
    self.epilogue.build((None, 4, 4, self.epilogue.in_channels))

  def compute_output_shape(self, input_shape=None):  # images [N, R, R, C] -> logits [N, 1]
    return (None if input_shape is None else tuple(input_shape)[0], 1)

  def call(self, img, c=None, impl=None, training=None):
    """img: [N, R, R, img_channels] (NHWC, nominally [-1, 1]); c: [N, c_dim] -> logits [N, 1].

    impl: shorthand for `with sg2tf.custom_ops.implementation(impl):` around the call.
    """
    del training
    with policy.implementation(impl):
      return self._logits(img, c)

  def _logits(self, img, c):
    img = tf.convert_to_tensor(img)
    r, ch = self.img_resolution, self.img_channels
    if img.shape.rank != 4 or tuple(img.shape[1:]) != (r, r, ch):
      raise ValueError(f'Discriminator: images must be [N, {r}, {r}, {ch}] (NHWC), '
                       f'got shape {img.shape}')
    if self.c_dim and c is None:
      raise ValueError(f'Discriminator: this network is conditional (c_dim={self.c_dim}); '
                       'pass labels as the second argument, D(images, c).')
    x = None
    for blk in self.blocks:
      x, img = blk(x, img)
    return self.epilogue(x, img, c)

  def get_config(self):
    config = super().get_config()
    config.update(c_dim=self.c_dim, img_resolution=self.img_resolution,
                  img_channels=self.img_channels, architecture=self.architecture,
                  fmap_base=self.fmap_base, fmap_decay=self.fmap_decay, fmap_min=self.fmap_min,
                  fmap_max=self.fmap_max, activation=self.activation,
                  mbstd_group_size=self.mbstd_group_size,
                  mbstd_num_features=self.mbstd_num_features,
                  resample_filter=self.resample_filter, num_fp16_res=self.num_fp16_res,
                  conv_clamp=self.conv_clamp, fp16_dtype=self.fp16_dtype)
    return config
