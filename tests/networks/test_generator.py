"""Generator: truncation, style mixing, w_avg update, fused == non-fused, tf.function with a
dynamic batch, gradients, conditional networks, config round-trip."""

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf.networks import Discriminator, Generator
from tests import testutil


def _generator(**kwargs):
  args = dict(z_dim=16, w_dim=16, mapping_dim=16, mapping_layers=2, img_resolution=16,
              fmap_base=64, fmap_max=16)
  args.update(kwargs)
  return Generator(**args)


class GeneratorTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.G = _generator()
    for lyr in cls.G.synthesis.synthesis_layers:
      lyr.noise_strength.assign(0.3)
    cls.z = np.random.RandomState(0).standard_normal([4, 16]).astype(np.float32)

  def test_output(self):
    img, ws = self.G(self.z, noise_mode='const', return_ws=True)
    self.assertEqual(img.shape, [4, 16, 16, 3])
    self.assertEqual(ws.shape, [4, self.G.num_ws, 16])
    self.assertAllClose(img, self.G.synthesis(ws, noise_mode='const'))

  def test_psi_zero_gives_w_avg_image(self):
    self.G.mapping.w_avg.assign(np.linspace(-1, 1, 16).astype(np.float32))
    img = self.G(self.z, truncation_psi=0.0, noise_mode='const').numpy()
    self.assertAllClose(img, np.broadcast_to(img[:1], img.shape), atol=1e-5)
    ws = self.G.mapping(self.z, truncation_psi=0.0)
    self.assertAllClose(ws, np.broadcast_to(self.G.mapping.w_avg.numpy(), ws.shape))

  @parameterized.parameters('orig', 'skip', 'resnet')
  def test_fused_equals_non_fused(self, architecture):
    G = _generator(architecture=architecture, img_resolution=8)
    a = G(self.z, noise_mode='const', fused_modconv=False)
    b = G(self.z, noise_mode='const', fused_modconv=True)
    self.assertAllClose(a, b, atol=1e-4)

  def test_mix_styles_uses_the_right_w_per_layer(self):
    ws = self.G.mapping(self.z)
    ws2 = self.G.mapping(self.z[::-1])
    for cutoff in (1, 3, self.G.num_ws):
      mixed = self.G.mix_styles(ws, ws2, tf.constant(cutoff)).numpy()
      self.assertAllClose(mixed[:, :cutoff], ws[:, :cutoff])
      self.assertAllClose(mixed[:, cutoff:], ws2[:, cutoff:])
    # The mixed ws drive the synthesis layer by layer: layer i sees mixed[:, i].
    mixed = self.G.mix_styles(ws, ws2, 3)
    per_layer = self.G.synthesis(mixed, noise_mode='const')
    self.assertNotAllClose(per_layer, self.G.synthesis(ws, noise_mode='const'))

  def test_style_mixing_prob(self):
    tf.random.set_seed(1)
    _, ws = self.G(self.z, style_mixing_prob=1.0, return_ws=True, noise_mode='none')
    ws = ws.numpy()
    # Always mixed: a crossover in [1, num_ws) where the w changes; before it, one w.
    change = [i for i in range(1, self.G.num_ws) if not np.allclose(ws[:, i], ws[:, i - 1])]
    self.assertLen(change, 1)
    _, ws0 = self.G(self.z, style_mixing_prob=0.0, return_ws=True, noise_mode='none')
    self.assertAllClose(ws0, np.repeat(ws0[:, :1], self.G.num_ws, axis=1))

  def test_update_w_avg_in_call(self):
    G = _generator()
    G(self.z, update_w_avg=True, noise_mode='none')
    w = G.mapping(self.z)[:, 0].numpy().mean(0)
    self.assertAllClose(G.mapping.w_avg, w * (1 - 0.995), atol=1e-6)

  def test_tf_function_dynamic_batch_and_gradients(self):
    G = self.G

    @tf.function(input_signature=[tf.TensorSpec([None, 16])])
    def fwd(z):
      return G(z, noise_mode='const', fused_modconv=True)

    self.assertAllClose(fwd(self.z), G(self.z, noise_mode='const', fused_modconv=False),
                        atol=1e-4)
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(G(self.z, fused_modconv=False) ** 2)
    grads = tape.gradient(loss, G.trainable_weights)
    missing = [v.path for v, g in zip(G.trainable_weights, grads) if g is None]
    self.assertEqual(missing, [])

  def test_conditional(self):
    G = _generator(c_dim=3, img_resolution=8)
    c = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    self.assertEqual(G(self.z, c, noise_mode='none').shape, [4, 8, 8, 3])
    with self.assertRaisesRegex(ValueError, 'conditional'):
      G(self.z)

  def test_custom_equals_ref(self):
    testutil.custom_ops_or_skip(self)
    D = Discriminator(img_resolution=16, fmap_base=64, fmap_max=16)
    out = {}
    for impl in ('ref', 'custom'):
      with tf.GradientTape() as tape:
        img = self.G(self.z, noise_mode='const', fused_modconv=False, impl=impl)
        logits = D(img, impl=impl)
        loss = tf.reduce_sum(logits)
      grads = tape.gradient(loss, self.G.trainable_weights + D.trainable_weights)
      out[impl] = [img, logits] + grads
    for a, b in zip(out['ref'], out['custom']):
      self.assertAllClose(a, b, atol=1e-4)

  @parameterized.product(impl=['ref', 'custom'], architecture=['skip', 'resnet'],
                         fused=[False, True])
  def test_mixed_precision_close_to_float32(self, impl, architecture, fused):
    # Same weights, blocks 8 and 16 in float16 with conv_clamp 256. Measured max relative
    # error (max |diff| / max |img|) about 2e-3; float16 has an 11-bit mantissa (~5e-4).
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    G32 = _generator(architecture=architecture)
    G16 = _generator(architecture=architecture, num_fp16_res=2, conv_clamp=256)
    self.assertEqual([b.use_fp16 for b in G16.synthesis.blocks], [False, True, True])
    for a, b in zip(G16.variables, G32.variables):
      self.assertEqual(a.dtype, tf.float32)
      a.assign(b)
    kw = dict(noise_mode='const', fused_modconv=fused, impl=impl)
    img32, img16 = G32(self.z, **kw), G16(self.z, **kw)
    self.assertEqual(img16.dtype, tf.float32)
    self.assertAllEqual(tf.math.is_finite(img16), tf.ones_like(img16, tf.bool))
    rel = float(tf.reduce_max(tf.abs(img16 - img32)) / tf.reduce_max(tf.abs(img32)))
    self.assertLess(rel, 1e-2)

  def test_mixed_precision_block_dtypes(self):
    G = _generator(num_fp16_res=1, conv_clamp=256)
    blk, ws = G.synthesis.b16, G.mapping(self.z)[:, :3]
    x = tf.random.normal([4, 8, 8, blk.in_channels])
    img = tf.zeros([4, 8, 8, 3])
    self.assertEqual(blk.conv0(tf.cast(x, tf.float16), ws[:, 0]).dtype, tf.float16)
    x16, img16 = blk(x, img, ws)
    self.assertEqual(x16.dtype, tf.float16)  # activations in float16 ...
    self.assertEqual(img16.dtype, tf.float32)  # ... the ToRGB sum in float32.
    x32, _ = G.synthesis.b8(tf.random.normal([4, 4, 4, G.synthesis.b8.in_channels]), None,
                            ws)
    self.assertEqual(x32.dtype, tf.float32)
    # The clamp bounds every conv output: huge styles stay finite.
    big, _ = blk(x * 1e4, img, ws * 1e3)
    self.assertLessEqual(float(tf.reduce_max(tf.abs(tf.cast(big, tf.float32)))), 256.0)

  def test_mixed_precision_gradients_and_path_length(self):
    from sg2tf.training import losses  # pylint: disable=g-import-not-at-top
    G = _generator(num_fp16_res=2, conv_clamp=256)
    ws = G.mapping(self.z)
    y = tf.random.normal([4, 16, 16, 3]) * losses.pl_noise_scale(16)
    with tf.GradientTape() as tape:
      _, lengths = losses.path_lengths(lambda w: G.synthesis(w, noise_mode='const'), ws, y)
      loss = tf.reduce_sum(tf.square(lengths))
    grads = tape.gradient(loss, G.trainable_weights)
    self.assertAllEqual(tf.math.is_finite(lengths), [True] * 4)
    self.assertGreater(float(tf.reduce_min(lengths)), 0.0)
    for g in grads:
      if g is not None:
        self.assertEqual(g.dtype, tf.float32)
        self.assertTrue(bool(tf.reduce_all(tf.math.is_finite(g))))

  def test_config_round_trip(self):
    G = _generator(architecture='resnet', img_resolution=8, c_dim=2, num_fp16_res=1,
                   conv_clamp=256)
    G2 = Generator.from_config(G.get_config())
    self.assertEqual(G2.get_config(), G.get_config())
    self.assertEqual([v.shape for v in G2.weights], [v.shape for v in G.weights])


if __name__ == '__main__':
  tf.test.main()
