"""Discriminator: shapes for every architecture and several resolutions, conditional
projection, NCHW flatten of Dense0, bad input."""

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf import custom_ops
from sg2tf.networks import Discriminator
from sg2tf.training import losses
from tests import testutil


def _discriminator(resolution=16, architecture='resnet', **kwargs):
  return Discriminator(img_resolution=resolution, fmap_base=64, fmap_max=16,
                       architecture=architecture, **kwargs)


class DiscriminatorTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(architecture=['orig', 'skip', 'resnet'], resolution=[8, 32])
  def test_shapes(self, architecture, resolution):
    D = _discriminator(resolution, architecture)
    img = tf.random.normal([4, resolution, resolution, 3])
    self.assertEqual(D(img).shape, [4, 1])
    fromrgb = [b for b in D.blocks if b.has_fromrgb]
    self.assertLen(fromrgb, len(D.blocks) if architecture == 'skip' else 1)
    self.assertEqual(hasattr(D.epilogue, 'fromrgb'), architecture == 'skip')

  def test_gradients_and_dynamic_batch(self):
    D = _discriminator(8)
    img = tf.random.normal([4, 8, 8, 3])

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3])])
    def fwd(x):
      return D(x)

    self.assertAllClose(fwd(img), D(img), atol=1e-5)
    with tf.GradientTape() as tape:
      tape.watch(img)
      out = tf.reduce_sum(D(img))
    grads = tape.gradient(out, [img] + D.trainable_weights)
    self.assertTrue(all(g is not None for g in grads))

  def test_dense0_flattens_nchw(self):
    D = _discriminator(8, mbstd_group_size=1)
    ep = D.epilogue
    x = np.random.RandomState(0).standard_normal([2, 4, 4, 16]).astype(np.float32)
    conv_out = ep.conv(x).numpy()
    flat = np.transpose(conv_out, [0, 3, 1, 2]).reshape(2, -1)  # Index c*16 + h*4 + w.
    self.assertAllClose(ep(x, None), ep.out(ep.fc(flat)), atol=1e-5)

  def test_conditional(self):
    D = _discriminator(8, c_dim=3)
    img = tf.random.normal([4, 8, 8, 3])
    c = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    out = D(img, c).numpy()
    self.assertEqual(out.shape, (4, 1))
    self.assertEqual(D.epilogue.out.units, 3)
    with self.assertRaisesRegex(ValueError, 'conditional'):
      D(img)

  def test_bad_input(self):
    D = _discriminator(8)
    with self.assertRaisesRegex(ValueError, r'\[N, 8, 8, 3\]'):
      D(tf.zeros([4, 3, 8, 8]))
    with self.assertRaisesRegex(ValueError, '>= 8'):
      Discriminator(img_resolution=4)

  @parameterized.product(impl=['ref', 'custom'], architecture=['skip', 'resnet'])
  def test_mixed_precision_close_to_float32(self, impl, architecture):
    # Blocks 16 and 8 in float16, epilogue float32. Measured max relative error ~1e-3.
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    D32 = _discriminator(16, architecture, mbstd_group_size=2)
    D16 = _discriminator(16, architecture, mbstd_group_size=2, num_fp16_res=2, conv_clamp=256)
    self.assertEqual([b.use_fp16 for b in D16.blocks], [True, True])
    for a, b in zip(D16.variables, D32.variables):
      a.assign(b)
    img = tf.random.normal([4, 16, 16, 3], seed=1)
    l32, l16 = D32(img, impl=impl), D16(img, impl=impl)
    self.assertEqual(l16.dtype, tf.float32)
    rel = float(tf.reduce_max(tf.abs(l16 - l32)) / tf.reduce_max(tf.abs(l32)))
    self.assertLess(rel, 1e-2)
    with custom_ops.implementation(impl):
      x, _ = D16.b16(None, img)
    self.assertEqual(x.dtype, tf.float16)
    self.assertEqual(D16.b16.conv0(tf.zeros([4, 16, 16, D16.b16.in_channels], tf.float16)).dtype,
                     tf.float16)
    # R1 through the float16 blocks: finite, float32, and close to the float32 value.
    with custom_ops.implementation(impl):
      with tf.GradientTape() as tape:
        _, gp16 = losses.r1_penalty(D16, img)
        total = tf.reduce_sum(gp16)
      grads = tape.gradient(total, D16.trainable_weights)
      _, gp32 = losses.r1_penalty(D32, img)
    self.assertEqual(gp16.dtype, tf.float32)
    self.assertAllClose(gp16, gp32, rtol=5e-2)  # measured up to ~2e-2 (squared gradients)
    for g in grads:
      if g is not None:
        self.assertTrue(bool(tf.reduce_all(tf.math.is_finite(g))))

  def test_config_round_trip(self):
    D = _discriminator(8, architecture='skip', c_dim=2, num_fp16_res=1, conv_clamp=256)
    self.assertEqual(Discriminator.from_config(D.get_config()).get_config(), D.get_config())


if __name__ == '__main__':
  tf.test.main()
