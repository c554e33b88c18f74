"""Mapping network z (+ labels) -> w, with w_avg tracking and the truncation trick."""

import keras
import tensorflow as tf

from sg2tf import layers
from sg2tf.custom_ops import policy


@keras.saving.register_keras_serializable(package='sg2tf')
class MappingNetwork(keras.layers.Layer):
  """Official G_mapping: [embed labels, concat], normalize, `num_layers` FC layers.

  Output w is broadcast to `num_ws` layers: [N, num_ws, w_dim]. Every FC layer (the last
  one too) has the activation, and the lr multiplier (0.01) scales weights AND biases.

  `w_avg` is a non-trainable variable (official `dlatent_avg`): w_avg <- lerp(mean_N(ws[:, 0]),
  w_avg, w_avg_beta), beta 0.995, on the untruncated, unmixed mapping output of every training
  call. `update_w_avg(ws)` does it on one device; training averages `batch_mean(ws)` over the
  replicas and assigns `moved_w_avg` to every copy. Calls never update it by themselves.
  """

  def __init__(self, z_dim=512, c_dim=0, w_dim=512, num_ws=18, num_layers=8, layer_dim=512,
               lr_multiplier=0.01, activation='lrelu', normalize_z=True, w_avg_beta=0.995,
               **kwargs):
    super().__init__(**kwargs)
    self.z_dim, self.c_dim, self.w_dim = int(z_dim), int(c_dim), int(w_dim)
    self.num_ws, self.num_layers, self.layer_dim = int(num_ws), int(num_layers), int(layer_dim)
    self.lr_multiplier = float(lr_multiplier)
    self.activation = activation
    self.normalize_z = bool(normalize_z)
    self.w_avg_beta = float(w_avg_beta)
    if self.z_dim < 1 or self.w_dim < 1 or self.num_layers < 1 or self.num_ws < 1:
      raise ValueError(f'MappingNetwork: z_dim, w_dim, num_layers and num_ws must be >= 1, got '
                       f'{self.z_dim}, {self.w_dim}, {self.num_layers}, {self.num_ws}')
    # Sub-layers are attributes, not a list: tf.train.Checkpoint does not see into the
    # lists that Keras 3 tracks.
    for i in range(self.num_layers):
      setattr(self, f'fc{i}', self._make_fc(
          self.w_dim if i == self.num_layers - 1 else self.layer_dim, f'fc{i}'))

  def _make_fc(self, units, name):
    """One FC layer (the StyleGAN baseline's mapping overrides this)."""
    return layers.EqualizedDense(units, activation=self.activation,
                                 lr_multiplier=self.lr_multiplier, name=name)

  @property
  def fcs(self):
    return [getattr(self, f'fc{i}') for i in range(self.num_layers)]

  def build(self, input_shape=None):
    """input_shape: that of z, [N, z_dim] (the shapes follow from the arguments)."""
    del input_shape
    if self.c_dim:
      # Official LabelConcat: a raw matmul, no equalized lr.
      self.embed = self.add_weight(name='embed', shape=[self.c_dim, self.z_dim],
                                   initializer=keras.initializers.RandomNormal(0.0, 1.0))
    features = self.z_dim * 2 if self.c_dim else self.z_dim
    for fc in self.fcs:
      fc.build([None, features])
      features = fc.units
    self.w_avg = self.add_weight(name='w_avg', shape=[self.w_dim], initializer='zeros',
                                 trainable=False)

  def call(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, impl=None):
    """z: [N, z_dim], c: [N, c_dim] (conditional networks) -> w [N, num_ws, w_dim].

    impl: shorthand for `with sg2tf.custom_ops.implementation(impl):` around the call.
    """
    with policy.implementation(impl):
      return self._map(z, c, truncation_psi, truncation_cutoff)

  def _map(self, z, c, truncation_psi, truncation_cutoff):
    x = tf.convert_to_tensor(z)
    if x.shape.rank != 2 or (x.shape[1] is not None and x.shape[1] != self.z_dim):
      raise ValueError(f'MappingNetwork: z must be [N, {self.z_dim}], got shape {x.shape}')
    if self.c_dim:
      if c is None:
        raise ValueError(f'MappingNetwork: this network is conditional (c_dim={self.c_dim}); '
                         'pass labels c of shape [N, c_dim].')
      y = tf.matmul(tf.cast(c, x.dtype), self.embed)  # [N, z_dim]
      x = tf.concat([x, y], axis=1)
    if self.normalize_z:
      x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=1, keepdims=True) + 1e-8)
    for fc in self.fcs:
      x = fc(x)
    ws = tf.tile(x[:, tf.newaxis, :], [1, self.num_ws, 1])  # [N, num_ws, w_dim]
    return self.truncate(ws, truncation_psi, truncation_cutoff)

  def compute_output_shape(self, input_shape=None):  # z [N, z_dim] -> [N, num_ws, w_dim]
    n = None if input_shape is None else tuple(input_shape)[0]
    return (n, self.num_ws, self.w_dim)

  def truncate(self, ws, truncation_psi=1.0, truncation_cutoff=None):
    """w' = w_avg + psi * (w - w_avg) on layers < cutoff (all when cutoff is None)."""
    if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
      return ws
    psi = tf.cast(truncation_psi, ws.dtype)
    if truncation_cutoff is not None:
      layer = tf.range(self.num_ws)[tf.newaxis, :, tf.newaxis]
      psi = tf.where(layer < truncation_cutoff, psi, tf.ones([], ws.dtype))
    w_avg = tf.cast(self.w_avg, ws.dtype)
    return w_avg + psi * (ws - w_avg)

  @staticmethod
  def batch_mean(ws):
    """The batch mean of w [w_dim] (float32) of ws [N, num_ws, w_dim] or [N, w_dim]."""
    ws = tf.convert_to_tensor(ws)
    if ws.shape.rank == 3:
      ws = ws[:, 0]
    return tf.reduce_mean(tf.cast(ws, tf.float32), axis=0)

  def moved_w_avg(self, w_avg, batch_mean):
    """The next w_avg: lerp(batch_mean, w_avg, w_avg_beta) (official dlatent_avg update)."""
    return batch_mean + (w_avg - batch_mean) * self.w_avg_beta

  def update_w_avg(self, ws):
    """Moves w_avg toward the batch mean of ws ([N, num_ws, w_dim] or [N, w_dim])."""
    batch_mean = tf.cast(self.batch_mean(ws), self.w_avg.dtype)
    return self.w_avg.assign(self.moved_w_avg(self.w_avg, batch_mean))

  def get_config(self):
    config = super().get_config()
    config.update(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                  num_layers=self.num_layers, layer_dim=self.layer_dim,
                  lr_multiplier=self.lr_multiplier, activation=self.activation,
                  normalize_z=self.normalize_z, w_avg_beta=self.w_avg_beta)
    return config
