"""Generator = mapping + synthesis, with truncation, style mixing and w_avg tracking.

Style mixing and the w_avg update have one implementation each, used by a plain call
(`G(z, style_mixing_prob=0.9, update_w_avg=True)`, one device, stateful random numbers) and
by training (sg2tf/training/sampling.py and phases.py, which draw the second latents and the
crossover statelessly for the global minibatch and average the batch means of w over the
replicas): `StyleMixing.mixing_cutoff` / `style_mix` / `mix_styles` here, and
`MappingNetwork.batch_mean` / `moved_w_avg` for w_avg.
"""

import keras
import tensorflow as tf

from sg2tf.custom_ops import policy
from sg2tf.networks.mapping import MappingNetwork
from sg2tf.networks.synthesis import SynthesisNetwork


class StyleMixing:
  """Official style mixing of G_main (training), shared by Generator and the growing
  generators. Needs `mapping`, `num_ws`, `z_dim` and `active_num_ws(resolution)`."""

  def mixing_cutoff(self, prob, seed=None, resolution=None):
    """The crossover layer: with probability prob uniform in [1, cur), else cur (no mixing);
    cur = active_num_ws(resolution), the layers in use (official cur_layers).

    seed: None draws with tf.random (stateful); or a pair of stateless seeds ([2] each), the
    first for the coin, the second for the layer (what training passes).
    """
    cur = self.active_num_ws(resolution)
    if seed is None:
      layer = tf.random.uniform([], 1, cur, dtype=tf.int32)
      coin = tf.random.uniform([])
    else:
      coin_seed, layer_seed = seed
      coin = tf.random.stateless_uniform([], seed=coin_seed)
      layer = tf.random.stateless_uniform([], seed=layer_seed, minval=1, maxval=cur,
                                          dtype=tf.int32)
    return tf.where(coin < prob, layer, cur)

  def style_mix(self, ws, c=None, prob=0.9, z2=None, cutoff=None, resolution=None, impl=None):
    """ws [N, num_ws, w_dim] with the layers >= cutoff taken from the ws of second latents z2
    (same labels c). z2 None: drawn N(0, 1); cutoff None: mixing_cutoff(prob, resolution)."""
    if z2 is None:
      z2 = tf.random.normal([tf.shape(ws)[0], self.z_dim], dtype=ws.dtype)
    if cutoff is None:
      cutoff = self.mixing_cutoff(prob, resolution=resolution)
    ws2 = self.mapping(z2, c, impl=impl)
    return self.mix_styles(ws, ws2, cutoff)

  def mix_styles(self, ws, ws2, cutoff):
    """Layers < cutoff from ws, the rest from ws2. cutoff: int or int32 scalar tensor."""
    layer = tf.range(self.num_ws)[tf.newaxis, :, tf.newaxis]
    return tf.where(layer < cutoff, ws, ws2)


class MappingThenSynthesis:
  """Shapes of a generator that is `mapping` (z [N, z_dim] -> ws [N, num_ws, w_dim]) followed
  by `synthesis` (ws -> images [N, R, R, C]): Generator and the growing generators."""

  def build(self, input_shape=None):
    """Builds mapping and synthesis with their input shapes (z's, ws'); input_shape: z's."""
    del input_shape
    self.mapping.build((None, self.z_dim))
    self.synthesis.build((None, self.num_ws, self.w_dim))

  def compute_output_shape(self, input_shape=None):  # z [N, z_dim] -> images [N, R, R, C]
    n = None if input_shape is None else tuple(input_shape)[0]
    return (n, self.img_resolution, self.img_resolution, self.img_channels)


@keras.saving.register_keras_serializable(package='sg2tf')
class Generator(MappingThenSynthesis, StyleMixing, keras.Model):
  """Official G_main in NHWC: G(z [N, z_dim], c [N, c_dim] or None) -> images [N, R, R, C].

  Images are nominally in [-1, 1] and not clipped. Sub-networks: `G.mapping(z, c,
  truncation_psi, truncation_cutoff)` -> ws [N, num_ws, w_dim] and `G.synthesis(ws,
  noise_mode, noise, fused_modconv)` -> images. Built at construction.

  Training mixes styles with `style_mix` (crossover from `mixing_cutoff`) and moves w_avg
  toward the batch mean of the mapping output before mixing, as the official G_main does;
  `style_mixing_prob` and `update_w_avg=True` do the same in a call (module docstring).

  num_fp16_res / conv_clamp / fp16_dtype: mixed precision of the synthesis network;
  the mapping network is always float32. Defaults: off (exact float32).
  """

  def __init__(self, z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
               mapping_layers=8, mapping_dim=512, mapping_lr_multiplier=0.01,
               mapping_activation='lrelu', normalize_z=True, w_avg_beta=0.995,
               architecture='skip', fmap_base=16384, fmap_decay=1.0, fmap_min=1, fmap_max=512,
               activation='lrelu', resample_filter=(1, 3, 3, 1), num_fp16_res=0, conv_clamp=None,
               fp16_dtype='float16', **kwargs):
    super().__init__(**kwargs)
    self.z_dim, self.c_dim, self.w_dim = int(z_dim), int(c_dim), int(w_dim)
    self.img_resolution, self.img_channels = int(img_resolution), int(img_channels)
    self._config = dict(
        z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, img_resolution=self.img_resolution,
        img_channels=self.img_channels, mapping_layers=int(mapping_layers),
        mapping_dim=int(mapping_dim), mapping_lr_multiplier=float(mapping_lr_multiplier),
        mapping_activation=mapping_activation, normalize_z=bool(normalize_z),
        w_avg_beta=float(w_avg_beta), architecture=architecture, fmap_base=int(fmap_base),
        fmap_decay=float(fmap_decay), fmap_min=int(fmap_min), fmap_max=int(fmap_max),
        activation=activation,
        resample_filter=None if resample_filter is None else [float(v) for v in resample_filter],
        num_fp16_res=int(num_fp16_res),
        conv_clamp=None if conv_clamp is None else float(conv_clamp),
        fp16_dtype=tf.as_dtype(fp16_dtype).name)
    self.synthesis = SynthesisNetwork(
        w_dim=self.w_dim, img_resolution=self.img_resolution, img_channels=self.img_channels,
        fmap_base=fmap_base, fmap_decay=fmap_decay, fmap_min=fmap_min, fmap_max=fmap_max,
        architecture=architecture, activation=activation, resample_filter=resample_filter,
        num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, fp16_dtype=fp16_dtype,
        name='synthesis')
    self.num_ws = self.synthesis.num_ws
    self.mapping = MappingNetwork(
        z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
        num_layers=mapping_layers, layer_dim=mapping_dim, lr_multiplier=mapping_lr_multiplier,
        activation=mapping_activation, normalize_z=normalize_z, w_avg_beta=w_avg_beta,
        name='mapping')
    self.build()

  def call(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode='random',
           fused_modconv=None, style_mixing_prob=0.0, update_w_avg=False, return_ws=False,
           impl=None, training=None):
    """z: [N, z_dim]; c: [N, c_dim] for conditional networks.

    Args:
      truncation_psi, truncation_cutoff: truncation trick (psi 1 = none; cutoff None = all
        layers).
      noise_mode: 'random' (fresh noise each call), 'const' (stored buffers) or 'none'.
      fused_modconv: None = the policy's formulation (fused on GPU, non-fused on CPU);
        True/False to force.
      style_mixing_prob: probability of mixing in the ws of a second random z from a random
        crossover layer (training: 0.9).
      update_w_avg: move w_avg toward this batch's mapping output first (training).
      return_ws: also return the ws that were synthesized.
      impl: shorthand for `with sg2tf.custom_ops.implementation(impl):` around the call
        ('auto', 'custom', 'ref'; None: the policy as it is).
    Returns:
      images [N, R, R, img_channels], or (images, ws) with return_ws.
    """
    del training
    with policy.implementation(impl):
      ws = self.mapping(z, c)
      if update_w_avg:
        self.mapping.update_w_avg(ws)
      if not (isinstance(style_mixing_prob, (int, float)) and style_mixing_prob <= 0):
        ws = self.style_mix(ws, c, style_mixing_prob)
      ws = self.mapping.truncate(ws, truncation_psi, truncation_cutoff)
      img = self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)
    return (img, ws) if return_ws else img

  def active_num_ws(self, resolution=None):
    """The w layers in use: all (progressive growing has fewer, see growing.py)."""
    del resolution
    return self.num_ws

  def get_config(self):
    config = super().get_config()
    config.update(self._config)
    return config
