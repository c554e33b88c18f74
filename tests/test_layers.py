"""Layers: equalized lr scaling, modulated conv (fused == non-fused == per-sample kernels),
demodulation keeps unit variance, noise modes, strided minibatch-stddev, config round-trips."""

import math

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf import layers


def _lrelu(x):
  return np.where(x > 0, x, 0.2 * x) * math.sqrt(2)


def _randomize(layer, seed=0):
  """Non-zero biases / noise strength so that their scaling is tested too."""
  rng = np.random.RandomState(seed)
  for v in layer.weights:
    v.assign(rng.standard_normal(v.shape).astype(np.float32) * (0.3 if len(v.shape) < 2 else 1))


class EqualizedTest(tf.test.TestCase):

  def test_dense_runtime_scaling(self):
    fc = layers.EqualizedDense(5, activation='lrelu', lr_multiplier=0.01)
    fc.build([None, 7])
    _randomize(fc)
    x = np.random.RandomState(1).standard_normal([3, 7]).astype(np.float32)
    want = _lrelu(x @ (fc.weight.numpy() * 0.01 / math.sqrt(7)) + fc.bias.numpy() * 0.01)
    self.assertAllClose(fc(x), want, atol=1e-5)

  def test_dense_init_follows_lr_multiplier(self):
    fc = layers.EqualizedDense(256, lr_multiplier=0.01, bias_init=1.0)
    fc.build([None, 256])
    self.assertAllClose(np.std(fc.weight.numpy()), 100.0, rtol=0.05)
    self.assertAllClose(fc.bias.numpy() * 0.01, np.ones(256))  # Effective bias = bias_init.

  def test_conv_same_with_bias_act(self):
    conv = layers.EqualizedConv2D(4, 3, activation='lrelu')
    conv.build([None, 6, 6, 3])
    _randomize(conv)
    x = np.random.RandomState(2).standard_normal([2, 6, 6, 3]).astype(np.float32)
    w = conv.weight.numpy() / math.sqrt(27)
    want = _lrelu(tf.nn.conv2d(x, w, 1, 'SAME').numpy() + conv.bias.numpy())
    self.assertAllClose(conv(x), want, atol=1e-5)

  def test_resampling_shapes(self):
    x = tf.zeros([2, 8, 8, 3])
    for kw, size in ((dict(down=2), 4), (dict(up=2), 16)):
      for k in (1, 3):
        conv = layers.EqualizedConv2D(5, k, use_bias=False, **kw)
        self.assertEqual(conv(x).shape, [2, size, size, 5])


class ModulatedConvTest(tf.test.TestCase, parameterized.TestCase):

  def _layer(self, k=3, demodulate=True, up=1, cin=6, cout=5):
    lyr = layers.ModulatedConv2D(cout, k, w_dim=8, demodulate=demodulate, up=up)
    lyr.build([None, 8, 8, cin])
    _randomize(lyr, seed=3)
    return lyr

  def _inputs(self, n=3, cin=6):
    rng = np.random.RandomState(4)
    return (rng.standard_normal([n, 8, 8, cin]).astype(np.float32),
            rng.standard_normal([n, 8]).astype(np.float32))

  @parameterized.parameters((3, True), (3, False), (1, False), (1, True))
  def test_matches_per_sample_kernels(self, k, demodulate):
    lyr = self._layer(k, demodulate)
    x, w = self._inputs()
    s = w @ (lyr.mod_weight.numpy() / math.sqrt(8)) + lyr.mod_bias.numpy() + 1  # +1 not stored.
    for fused in (False, True):
      got = lyr(x, w, fused_modconv=fused).numpy()
      for n in range(3):
        ww = lyr.weight.numpy() / math.sqrt(k * k * 6) * s[n][None, None, :, None]
        if demodulate:
          ww = ww / np.sqrt(np.sum(ww ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        want = tf.nn.conv2d(x[n:n + 1], ww, 1, 'SAME').numpy()[0]
        self.assertAllClose(got[n], want, atol=1e-4, msg=f'fused={fused} n={n}')

  @parameterized.parameters(True, False)
  def test_fused_equals_non_fused_up(self, demodulate):
    lyr = self._layer(3, demodulate, up=2)
    x, w = self._inputs()
    a = lyr(x, w, fused_modconv=False)
    self.assertEqual(a.shape, [3, 16, 16, 5])
    self.assertAllClose(a, lyr(x, w, fused_modconv=True), atol=1e-4)
    # Dynamic batch: the fused path's zero-insertion fallback.
    f = tf.function(lambda x, w: lyr(x, w, fused_modconv=True), input_signature=[
        tf.TensorSpec([None, 8, 8, 6]), tf.TensorSpec([None, 8])])
    self.assertAllClose(a, f(x, w), atol=1e-4)

  def test_demodulation_keeps_unit_variance_at_init(self):
    lyr = layers.ModulatedConv2D(64, 3, w_dim=32)
    lyr.build([None, 16, 16, 64])
    rng = np.random.RandomState(5)
    x = rng.standard_normal([4, 16, 16, 64]).astype(np.float32)
    w = rng.standard_normal([4, 32]).astype(np.float32)
    y = lyr(x, w, fused_modconv=False).numpy()
    self.assertAllClose(np.std(y[:, 1:-1, 1:-1]), 1.0, atol=0.1)  # Interior: no zero padding.

  def test_non_fused_has_gradients_on_cpu(self):
    lyr = self._layer(3, True, up=2)
    x, w = self._inputs()
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(lyr(x, w, fused_modconv=False)))
    grads = tape.gradient(loss, lyr.trainable_weights)
    self.assertTrue(all(g is not None and np.all(np.isfinite(g)) for g in grads))


class SynthesisLayerTest(tf.test.TestCase):

  def test_noise_modes(self):
    lyr = layers.SynthesisLayer(4, w_dim=8, resolution=8)
    lyr.build([None, 8, 8, 3])
    lyr.noise_strength.assign(0.5)
    rng = np.random.RandomState(6)
    x = rng.standard_normal([2, 8, 8, 3]).astype(np.float32)
    w = rng.standard_normal([2, 8]).astype(np.float32)
    const1, const2 = lyr(x, w, noise_mode='const'), lyr(x, w, noise_mode='const')
    self.assertAllEqual(const1, const2)
    self.assertNotAllClose(lyr(x, w, noise_mode='random'), lyr(x, w, noise_mode='random'))
    none = lyr(x, w, noise_mode='none')
    explicit = lyr(x, w, noise=lyr.noise_const.numpy())
    self.assertAllClose(explicit, const1)
    # const = conv + strength * buffer before the activation; zero noise gives 'none'.
    self.assertAllClose(lyr(x, w, noise=np.zeros([1, 8, 8, 1], np.float32)), none)
    with self.assertRaisesRegex(ValueError, 'noise_mode'):
      lyr(x, w, noise_mode='fixed')

  def test_noise_buffer_is_not_trainable(self):
    lyr = layers.SynthesisLayer(4, w_dim=8, resolution=8)
    lyr.build([None, 4, 4, 3])
    self.assertNotIn('noise_const', [v.name for v in lyr.trainable_weights])
    self.assertIn('noise_const', [v.name for v in lyr.non_trainable_weights])


class MinibatchStddevTest(tf.test.TestCase):

  def test_strided_groups(self):
    rng = np.random.RandomState(7)
    x = rng.standard_normal([8, 4, 4, 6]).astype(np.float32)
    x[1::2] *= 0.25
    y = layers.MinibatchStddev(4, 1)(x).numpy()
    self.assertEqual(y.shape, (8, 4, 4, 7))
    self.assertAllClose(y[..., :6], x)
    for n in range(8):
      group = x[n % 2::2]  # Sample n belongs to group n % M, M = 8 / 4.
      want = np.mean(np.sqrt(np.var(group, axis=0) + 1e-8))
      self.assertAllClose(y[n, :, :, 6], np.full([4, 4], want), atol=1e-5)

  def test_two_features_and_small_batch(self):
    x = np.random.RandomState(8).standard_normal([2, 4, 4, 6]).astype(np.float32)
    y = layers.MinibatchStddev(4, 2)(x).numpy()  # Group = min(4, N) = 2.
    for f in range(2):
      want = np.mean(np.sqrt(np.var(x[..., f * 3:(f + 1) * 3], axis=0) + 1e-8))
      self.assertAllClose(y[0, :, :, 6 + f], np.full([4, 4], want), atol=1e-5)

  def test_indivisible_batch_is_a_clear_error(self):
    with self.assertRaisesRegex(ValueError, 'divisible'):
      layers.MinibatchStddev(4)(tf.zeros([6, 4, 4, 2]))


class ConfigTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(
      (layers.EqualizedDense, dict(units=3, activation='lrelu', lr_multiplier=0.01)),
      (layers.EqualizedConv2D, dict(filters=3, kernel_size=1, down=2, use_bias=False)),
      (layers.ModulatedConv2D, dict(filters=3, kernel_size=3, w_dim=4, demodulate=False, up=2)),
      (layers.SynthesisLayer, dict(filters=3, w_dim=4, resolution=8, up=2)),
      (layers.ToRGB, dict(img_channels=1, w_dim=4)),
      (layers.ConstantInput, dict(channels=5)),
      (layers.MinibatchStddev, dict(group_size=2, num_features=1)))
  def test_round_trip(self, cls, kwargs):
    lyr = cls(**kwargs)
    config = lyr.get_config()
    self.assertEqual(cls.from_config(config).get_config(), config)

  def test_nf(self):
    nf = layers.nf_fn(320, fmap_max=96)
    self.assertEqual([nf(s) for s in range(6)], [96, 96, 80, 40, 20, 10])


if __name__ == '__main__':
  tf.test.main()
