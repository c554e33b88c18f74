"""bfloat16 blocks (fp16_dtype='bfloat16'): the float16 scheme with bfloat16 activations, both
op implementations, float32 outputs and weights, gradients that do not underflow."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf import custom_ops
from sg2tf.networks import Discriminator, Generator
from sg2tf.training import losses
from tests import testutil


def _pair(cls, **kw):
  """A float32 network and a bfloat16 one (blocks 16 and 8) with the same weights."""
  n32 = cls(**kw)
  nbf = cls(num_fp16_res=2, conv_clamp=256, fp16_dtype='bfloat16', **kw)
  for a, b in zip(nbf.variables, n32.variables):
    assert a.dtype == tf.float32
    a.assign(b)
  return n32, nbf


G_KW = dict(z_dim=16, w_dim=16, mapping_dim=16, mapping_layers=2, img_resolution=16,
            fmap_base=64, fmap_max=16)
D_KW = dict(img_resolution=16, fmap_base=64, fmap_max=16, mbstd_group_size=2)


class BFloat16Test(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('ref', 'custom')
  def test_close_to_float32_and_gradients_do_not_underflow(self, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    g32, gbf = _pair(Generator, **G_KW)
    d32, dbf = _pair(Discriminator, **D_KW)
    self.assertEqual([b.compute_dtype_ for b in gbf.synthesis.blocks],
                     [tf.float32, tf.bfloat16, tf.bfloat16])
    self.assertEqual([b.compute_dtype_ for b in dbf.blocks], [tf.bfloat16, tf.bfloat16])
    z = tf.random.stateless_normal([4, 16], [1, 2])
    out = {}
    for name, G, D in (('f32', g32, d32), ('bf16', gbf, dbf)):
      with tf.GradientTape() as tape:
        img = G(z, noise_mode='const', fused_modconv=False, impl=impl)
        logits = D(img, impl=impl)
        loss = tf.reduce_sum(tf.nn.softplus(-logits))
      grads = tape.gradient(loss, G.trainable_weights + D.trainable_weights)
      out[name] = (img, logits, grads)
    (i32, l32, g32s), (ibf, lbf, gbfs) = out['f32'], out['bf16']
    self.assertEqual((ibf.dtype, lbf.dtype), (tf.float32, tf.float32))
    # bfloat16 keeps 8 mantissa bits (relative step 2^-8 = 4e-3); measured ~1e-2 here.
    self.assertLess(float(tf.reduce_max(tf.abs(ibf - i32)) / tf.reduce_max(tf.abs(i32))), 5e-2)
    self.assertLess(float(tf.reduce_max(tf.abs(lbf - l32)) / tf.reduce_max(tf.abs(l32))), 5e-2)
    for a, b in zip(g32s, gbfs):
      a, b = a.numpy(), b.numpy()
      self.assertEqual(b.dtype, np.float32)
      self.assertTrue(np.all(np.isfinite(b)))
      # No underflow: exactly the float32 gradient's non-zero entries are non-zero.
      self.assertEqual(np.count_nonzero(b), np.count_nonzero(a))
    # And the whole gradient is the float32 one up to bfloat16 rounding (measured 2.4e-2;
    # single sums with cancellation, e.g. the noise strengths starting at 0, differ more).
    flat32 = np.concatenate([g.numpy().ravel() for g in g32s])
    flatbf = np.concatenate([g.numpy().ravel() for g in gbfs])
    self.assertLess(np.linalg.norm(flatbf - flat32), 0.06 * np.linalg.norm(flat32))

  def test_r1_through_bfloat16_blocks(self):
    d32, dbf = _pair(Discriminator, **D_KW)
    img = tf.random.stateless_normal([4, 16, 16, 3], [3, 4])
    with tf.GradientTape() as tape:
      with custom_ops.implementation('ref'):
        _, gp = losses.r1_penalty(dbf, img)
      total = tf.reduce_sum(gp)
    grads = tape.gradient(total, dbf.trainable_weights)
    with custom_ops.implementation('ref'):
      _, gp32 = losses.r1_penalty(d32, img)
    self.assertEqual(gp.dtype, tf.float32)
    self.assertAllClose(gp, gp32, rtol=0.1)
    for g in grads:
      if g is not None:
        self.assertTrue(bool(tf.reduce_all(tf.math.is_finite(g))))

  def test_config_round_trip_and_validation(self):
    G = Generator(num_fp16_res=1, conv_clamp=256, fp16_dtype='bfloat16', **G_KW)
    self.assertEqual(G.get_config()['fp16_dtype'], 'bfloat16')
    G2 = Generator.from_config(G.get_config())
    self.assertEqual(G2.synthesis.b16.compute_dtype_, tf.bfloat16)
    D = Discriminator(num_fp16_res=1, fp16_dtype=tf.bfloat16, **D_KW)
    self.assertEqual(Discriminator.from_config(D.get_config()).b16.compute_dtype_, tf.bfloat16)
    with self.assertRaisesRegex(ValueError, 'fp16_dtype'):
      Discriminator(num_fp16_res=1, fp16_dtype='float64', **D_KW)


if __name__ == '__main__':
  tf.test.main()
