"""Synthesis network w -> image (NHWC), architectures orig / skip / resnet (paper Fig. 7)."""

import math

import keras
import numpy as np
import tensorflow as tf

from sg2tf import layers
from sg2tf.custom_ops import policy, setup_filter, upsample2d
from sg2tf.networks.checks import ARCHITECTURES, FP16_DTYPES  # pylint: disable=unused-import
from sg2tf.networks.checks import check_architecture, check_fp16_dtype, check_mixed_precision
from sg2tf.networks.checks import check_resolution, check_ws_and_noise, fp16_resolution


@keras.saving.register_keras_serializable(package='sg2tf')
class SynthesisBlock(keras.layers.Layer):
  """One resolution: [const] or [Conv0_up], Conv1, [Skip], [ToRGB].

  w indices (official): Conv0_up = 2k-5, Conv1 = 2k-4, ToRGB = 2k-3 at resolution 2**k;
  at 4x4 Conv = 0 and ToRGB = 1. The block receives ws[:, first:first + num_ws].

  use_fp16: activations x in fp16_dtype, float16 or bfloat16 (weights stay float32, cast at
  use; ws and the ToRGB image sum stay float32). conv_clamp: clamp every conv output to [-conv_clamp, conv_clamp]
  (StyleGAN2-ADA uses 256 with mixed precision); None = no clamp (official StyleGAN2).
  """

  def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, architecture,
               is_last, activation='lrelu', resample_filter=(1, 3, 3, 1), use_fp16=False,
               conv_clamp=None, fp16_dtype='float16', **kwargs):
    super().__init__(**kwargs)
    self.use_fp16 = bool(use_fp16)
    self.fp16_dtype = check_fp16_dtype(fp16_dtype, 'SynthesisBlock')
    self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
    self.compute_dtype_ = tf.as_dtype(self.fp16_dtype) if self.use_fp16 else tf.float32
    # Keras would cast float16 inputs back to the float32 policy: the layers keep our dtype.
    sub = dict(autocast=not self.use_fp16)
    self.in_channels, self.out_channels = int(in_channels), int(out_channels)
    self.w_dim, self.resolution, self.img_channels = int(w_dim), int(resolution), int(img_channels)
    self.architecture, self.is_last = architecture, bool(is_last)
    self.activation = activation
    self.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]
    self.is_first = self.resolution == 4
    common = dict(w_dim=self.w_dim, resolution=self.resolution, activation=activation,
                  resample_filter=self.resample_filter, conv_clamp=self.conv_clamp, **sub)
    if self.is_first:
      self.const = layers.ConstantInput(self.out_channels, name='const')
    else:
      self.conv0 = layers.SynthesisLayer(self.out_channels, up=2, name='conv0', **common)
    self.conv1 = layers.SynthesisLayer(self.out_channels, name='conv1', **common)
    self.has_torgb = architecture == 'skip' or self.is_last
    if self.has_torgb:
      self.torgb = layers.ToRGB(self.img_channels, self.w_dim, conv_clamp=self.conv_clamp,
                                name='torgb', **sub)
    if architecture == 'resnet' and not self.is_first:
      self.skip = layers.EqualizedConv2D(self.out_channels, 1, use_bias=False, up=2,
                                         resample_filter=self.resample_filter,
                                         name='skip', **sub)
    self.num_conv = 1 if self.is_first else 2
    self.num_ws = self.num_conv + 1  # ToRGB's w is also the next block's first.

  def build(self, input_shape=None):
    """input_shape: that of the block's ws, [N, num_ws, w_dim]; the shapes of x and img
    follow from the constructor's arguments."""
    del input_shape
    r = self.resolution
    if self.is_first:
      self.const.build((None, self.num_ws, self.w_dim))
    else:
      self.conv0.build([None, r // 2, r // 2, self.in_channels])
      if self.architecture == 'resnet':
        self.skip.build([None, r // 2, r // 2, self.in_channels])
    self.conv1.build([None, r, r, self.out_channels])
    if self.has_torgb:
      self.torgb.build([None, r, r, self.out_channels])
    self._filter = setup_filter(self.resample_filter) if self.resample_filter else None

  @property
  def synthesis_layers(self):
    return [self.conv1] if self.is_first else [self.conv0, self.conv1]

  def call(self, x, img, ws, noise_mode='random', noise=None, fused_modconv=None):
    """x: [N, R/2, R/2, C_in] (None at 4x4), img: [N, R/2, R/2, img_channels] or None,
    ws: [N, num_ws, w_dim]; noise: None or a list with one entry per conv (None entries use
    noise_mode). Returns (x [N, R, R, C_out], img [N, R, R, img_channels] or None)."""
    noise = noise or [None] * self.num_conv
    kw = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)
    dtype = self.compute_dtype_
    if self.is_first:
      x = tf.cast(self.const(ws), dtype)
      x = self.conv1(x, ws[:, 0], noise=noise[0], **kw)
    else:
      x = tf.cast(x, dtype)
      t = x
      x = self.conv0(x, ws[:, 0], noise=noise[0], **kw)
      x = self.conv1(x, ws[:, 1], noise=noise[1], **kw)
      if self.architecture == 'resnet':
        x = (x + self.skip(t)) * (1 / math.sqrt(2))
    if img is not None:
      img = upsample2d(img, self._filter)
    if self.has_torgb:
      y = self.torgb(x, ws[:, self.num_conv], fused_modconv=fused_modconv)
      y = tf.cast(y, tf.float32)
      img = y if img is None else img + y
    return x, img

  def compute_output_shape(self, input_shape=None):
    """(x [N, R, R, C_out], img [N, R, R, img_channels]); x's alone where the call returns
    no image (img None: below the last block of 'orig' and 'resnet')."""
    n = None if input_shape is None else tuple(input_shape)[0]
    r = self.resolution
    x = (n, r, r, self.out_channels)
    return (x, (n, r, r, self.img_channels)) if self.architecture == 'skip' or self.is_last else x

  def get_config(self):
    config = super().get_config()
    config.update(in_channels=self.in_channels, out_channels=self.out_channels, w_dim=self.w_dim,
                  resolution=self.resolution, img_channels=self.img_channels,
                  architecture=self.architecture, is_last=self.is_last,
                  activation=self.activation, resample_filter=self.resample_filter,
                  use_fp16=self.use_fp16, conv_clamp=self.conv_clamp,
                  fp16_dtype=self.fp16_dtype)
    return config


def add_synthesis_blocks(net, w_dim, img_resolution, img_channels, fmap_base, fmap_decay,
                         fmap_min, fmap_max, architecture, activation, resample_filter,
                         torgb_everywhere, fp16_dtype='float16'):
  """Sets the synthesis network net's arguments as attributes and its blocks b4 ... bR (the
  one construction of SynthesisNetwork and of the growing GrowingSynthesisNetwork, which
  has a ToRGB at every resolution: torgb_everywhere). net.num_fp16_res and net.conv_clamp
  must be set."""
  who = type(net).__name__
  net.w_dim = int(w_dim)
  net.img_resolution = check_resolution(img_resolution, who)
  net.img_channels = int(img_channels)
  net.fmap_base, net.fmap_decay = int(fmap_base), float(fmap_decay)
  net.fmap_min, net.fmap_max = int(fmap_min), int(fmap_max)
  net.activation = activation
  net.resample_filter = None if resample_filter is None else [float(v) for v in resample_filter]
  nf = layers.nf_fn(net.fmap_base, net.fmap_decay, net.fmap_min, net.fmap_max)
  log2 = int(np.log2(net.img_resolution))
  net.num_ws = 2 * log2 - 2
  # Blocks are attributes b4, b8, ...: tf.train.Checkpoint does not see into Keras 3 lists.
  net.resolutions = [2 ** k for k in range(2, log2 + 1)]
  fp16_res = fp16_resolution(net.img_resolution, net.num_fp16_res)
  for k in range(2, log2 + 1):
    setattr(net, f'b{2 ** k}', SynthesisBlock(
        in_channels=nf(k - 2) if k > 2 else 0, out_channels=nf(k - 1), w_dim=net.w_dim,
        resolution=2 ** k, img_channels=net.img_channels, architecture=architecture,
        is_last=torgb_everywhere or k == log2, activation=activation,
        resample_filter=net.resample_filter, use_fp16=2 ** k >= fp16_res,
        conv_clamp=net.conv_clamp, fp16_dtype=fp16_dtype, name=f'b{2 ** k}'))


class SynthesisLayersMixin:
  """For synthesis networks whose `blocks` each list their modulated conv layers."""

  @property
  def synthesis_layers(self):
    """The modulated conv layers in official noise/w order (noise0, noise1, ...)."""
    return [lyr for blk in self.blocks for lyr in blk.synthesis_layers]

  @property
  def noise_shapes(self):
    return [tuple(lyr.noise_const.shape) for lyr in self.synthesis_layers]


@keras.saving.register_keras_serializable(package='sg2tf')
class SynthesisNetwork(SynthesisLayersMixin, keras.layers.Layer):
  """Official G_synthesis_stylegan2 in NHWC: ws [N, num_ws, w_dim] -> images [N, R, R, C].

  num_ws = 2*log2(R) - 2. A block at resolution 2**k has nf(k-1) channels. Noise
  buffers live in the layers (`noise_const`), one per conv, in official order.

  Mixed precision (off by default): num_fp16_res > 0 computes the blocks of the
  num_fp16_res highest resolutions (>= 8x8) in fp16_dtype (float16, or bfloat16: the same
  scheme), conv_clamp clamps every conv output (256 in StyleGAN2-ADA). A num_fp16_res of
  log2(R) - 2 or more puts every block from 8x8 up in low precision; the 4x4 block stays
  float32. The defaults (0, None) are the exact float32 network.
  """

  def __init__(self, w_dim=512, img_resolution=1024, img_channels=3, fmap_base=16384,
               fmap_decay=1.0, fmap_min=1, fmap_max=512, architecture='skip', activation='lrelu',
               resample_filter=(1, 3, 3, 1), num_fp16_res=0, conv_clamp=None,
               fp16_dtype='float16', **kwargs):
    super().__init__(**kwargs)
    self.num_fp16_res, self.conv_clamp = check_mixed_precision(num_fp16_res, conv_clamp,
                                                               'SynthesisNetwork')
    self.fp16_dtype = check_fp16_dtype(fp16_dtype, 'SynthesisNetwork')
    check_architecture(architecture, 'SynthesisNetwork')
    self.architecture = architecture
    add_synthesis_blocks(self, w_dim, img_resolution, img_channels, fmap_base, fmap_decay,
                         fmap_min, fmap_max, architecture, activation, resample_filter,
                         torgb_everywhere=False, fp16_dtype=self.fp16_dtype)

  @property
  def blocks(self):
    return [getattr(self, f'b{r}') for r in self.resolutions]

  def build(self, input_shape=None):
    """input_shape: that of ws, [N, num_ws, w_dim] (the shapes follow from the arguments)."""
    del input_shape
    for blk in self.blocks:
      blk.build((None, blk.num_ws, self.w_dim))

  def compute_output_shape(self, input_shape=None):  # ws [N, num_ws, w_dim] -> [N, R, R, C]
    n = None if input_shape is None else tuple(input_shape)[0]
    return (n, self.img_resolution, self.img_resolution, self.img_channels)

  def call(self, ws, noise_mode='random', noise=None, fused_modconv=None, impl=None):
    """ws: [N, num_ws, w_dim]. noise: optional list with one [N or 1, R, R, 1] tensor per
    conv layer (official order), overriding noise_mode (e.g. the projector's noise maps).
    impl: shorthand for `with sg2tf.custom_ops.implementation(impl):` around the call."""
    with policy.implementation(impl):
      return self._synthesize(ws, noise_mode, noise, fused_modconv)

  def _synthesize(self, ws, noise_mode, noise, fused_modconv):
    layers.check_noise_mode(noise_mode)
    ws = check_ws_and_noise(ws, noise, self.num_ws, self.w_dim, len(self.synthesis_layers),
                            'SynthesisNetwork')
    x = img = None
    w_idx = noise_idx = 0
    for blk in self.blocks:
      block_noise = None if noise is None else list(noise[noise_idx:noise_idx + blk.num_conv])
      x, img = blk(x, img, ws[:, w_idx:w_idx + blk.num_ws], noise_mode=noise_mode,
                   noise=block_noise, fused_modconv=fused_modconv)
      w_idx += blk.num_conv
      noise_idx += blk.num_conv
    return img

  def get_config(self):
    config = super().get_config()
    config.update(w_dim=self.w_dim, img_resolution=self.img_resolution,
                  img_channels=self.img_channels, fmap_base=self.fmap_base,
                  fmap_decay=self.fmap_decay, fmap_min=self.fmap_min, fmap_max=self.fmap_max,
                  architecture=self.architecture, activation=self.activation,
                  resample_filter=self.resample_filter, num_fp16_res=self.num_fp16_res,
                  conv_clamp=self.conv_clamp, fp16_dtype=self.fp16_dtype)
    return config
