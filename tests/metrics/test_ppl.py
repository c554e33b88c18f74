"""PPL: interpolation, crop, downsampling, percentile filter, and the analytic value of a
linear generator with a squared-L2 'perceptual' distance."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf.metrics import ppl
from tests.metrics import standins


def sq_l2(a, b):
  return tf.reduce_sum(tf.square(a - b), axis=[1, 2, 3])


def np_view(images, crop):
  """The official image path in NumPy: crop (NCHW formula), box-downsample to <= 256."""
  x = images.transpose(0, 3, 1, 2)  # NCHW, as the official code indexes it
  if crop:
    c = x.shape[2] // 8
    x = x[:, :, c * 3:c * 7, c * 2:c * 6]
  f = x.shape[2] // 256
  if f > 1:
    n, ch, h, w = x.shape
    x = x.reshape(n, ch, h // f, f, w // f, f).mean(axis=(3, 5))
  return x


class InterpolationTest(tf.test.TestCase):

  def test_slerp(self):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal([5, 8]), rng.standard_normal([5, 8])
    an, bn = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in (a, b)]
    theta = np.arccos(np.sum(an * bn, axis=1))
    for t in (0.0, 0.3, 1.0):
      s = ppl.slerp(tf.constant(a), tf.constant(b), tf.fill([5, 1], tf.constant(t, tf.float64)))
      s = s.numpy()
      self.assertAllClose(np.linalg.norm(s, axis=1), np.ones(5))
      self.assertAllClose(np.arccos(np.clip(np.sum(s * an, axis=1), -1, 1)), t * theta,
                          atol=1e-6)
    self.assertAllClose(s, bn, atol=1e-6)

  def test_lerp(self):
    self.assertAllClose(ppl.lerp(np.array([1.0, 2.0]), np.array([3.0, 6.0]), 0.25), [1.5, 3.0])


class ImagePathTest(tf.test.TestCase, parameterized.TestCase):

  def test_crop_matches_the_official_nchw_formula(self):
    x = np.arange(2 * 64 * 64 * 3, dtype=np.float32).reshape(2, 64, 64, 3)
    got = ppl.crop_face(tf.constant(x)).numpy()
    self.assertEqual(got.shape, (2, 32, 32, 3))  # rows 24..56, cols 16..48
    self.assertAllEqual(got.transpose(0, 3, 1, 2), np_view(x, crop=True))

  @parameterized.parameters((256, 256), (512, 256), (1024, 256), (128, 128))
  def test_downsample_to_256(self, size, expected):
    x = np.random.default_rng(size).random([1, size, size, 1]).astype(np.float32)
    got = ppl.downsample_to_256(tf.constant(x)).numpy()
    self.assertEqual(got.shape, (1, expected, expected, 1))
    self.assertAllClose(got.transpose(0, 3, 1, 2), np_view(x, crop=False), rtol=1e-6)

  def test_filtered_mean(self):
    rng = np.random.default_rng(1)
    d = rng.permutation(np.arange(1000, dtype=np.float64) ** 1.5)
    d[:5] = 1e9  # outliers
    s = np.sort(d)
    # 1st percentile 'lower' = s[9], 99th 'higher' = s[990] (indices 9.99 and 989.01).
    self.assertAllClose(ppl.filtered_mean(d), s[9:991].mean(), rtol=1e-12)
    with self.assertRaisesRegex(ValueError, 'not finite'):
      ppl.filtered_mean([1.0, np.nan])


class AnalyticPPLTest(tf.test.TestCase, parameterized.TestCase):
  """With G linear (w = z M, image = w A) and distance |x0 - x1|^2, the scaled distance of a
  pair is known in closed form: 127.5^2 |P(dw A)|^2 with P = crop/downsample and dw the
  derivative of the latent path (exact for lerp in W)."""

  def _distances(self, G, config, n, seed=0):
    rng_z, rng_t = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    z01, t = ppl.sample_inputs(rng_z, rng_t, n, G.z_dim, config.sampling)
    fn = ppl.make_distance_fn(G, sq_l2, config)
    return fn(tf.constant(z01), tf.constant(t)).numpy(), z01.astype(np.float64), t

  def _image_of(self, G, dw, crop):
    """127.5 * P(dw A) as a flat vector per row of dw."""
    img = (dw @ G.A.astype(np.float64)).reshape(-1, G.resolution, G.resolution, G.channels)
    return 127.5 * np_view(img, crop).reshape(len(dw), -1)

  @parameterized.parameters(('end', True), ('full', True), ('end', False))
  def test_w_space(self, sampling, crop):
    G = standins.LinearGenerator(resolution=32)
    config = ppl.PPLConfig('w', sampling, crop)
    got, z01, _ = self._distances(G, config, 64)
    dw = (z01[1::2] - z01[0::2]) @ G.M.astype(np.float64)  # lerp: d/dt w = w1 - w0
    expected = np.sum(self._image_of(G, dw, crop) ** 2, axis=1)
    # float32 at epsilon 1e-4 (as in the official code) leaves ~1e-3 relative error.
    self.assertAllClose(got, expected, rtol=5e-3)
    self.assertAllClose(ppl.filtered_mean(got), ppl.filtered_mean(expected), rtol=2e-3)

  @parameterized.parameters('end', 'full')
  def test_z_space(self, sampling):
    G = standins.LinearGenerator(resolution=16)
    config = ppl.PPLConfig('z', sampling, crop=False)
    got, z01, t = self._distances(G, config, 64, seed=3)
    a = z01[0::2] / np.linalg.norm(z01[0::2], axis=1, keepdims=True)
    b = z01[1::2] / np.linalg.norm(z01[1::2], axis=1, keepdims=True)
    d = np.sum(a * b, axis=1, keepdims=True)
    theta = np.arccos(d)
    c = b - d * a
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    p = t[:, None] * theta
    dz = theta * (-a * np.sin(p) + c * np.cos(p))  # d/dt slerp
    expected = np.sum(self._image_of(G, dz @ G.M.astype(np.float64), False) ** 2, axis=1)
    self.assertAllClose(got, expected, rtol=1e-2)
    self.assertAllClose(ppl.filtered_mean(got), ppl.filtered_mean(expected), rtol=3e-3)

  def test_large_images_are_downsampled(self):
    G = standins.LinearGenerator(resolution=512, z_dim=4)
    config = ppl.PPLConfig('w', 'end', crop=False)
    got, z01, _ = self._distances(G, config, 3)
    dw = (z01[1::2] - z01[0::2]) @ G.M.astype(np.float64)
    expected = np.sum(self._image_of(G, dw, False) ** 2, axis=1)
    self.assertAllClose(got, expected, rtol=5e-3)

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, 'space'):
      ppl.PPLConfig('x', 'end', True)


if __name__ == '__main__':
  tf.test.main()
