"""frechet_distance against closed forms; FeatureStats against np.cov."""

from absl.testing import parameterized
import numpy as np
import scipy.linalg
import tensorflow as tf

from sg2tf import metrics
from sg2tf.metrics import fid


def _random_spd(rng, d, cond=10.0):
  q, _ = np.linalg.qr(rng.standard_normal([d, d]))
  return (q * np.linspace(1.0, cond, d)) @ q.T


class FrechetDistanceTest(tf.test.TestCase, parameterized.TestCase):

  def test_same_features_give_zero(self):
    x = np.random.default_rng(0).standard_normal([500, 16])
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    self.assertAllClose(metrics.frechet_distance(mu, sigma, mu, sigma), 0.0, atol=1e-8)

  def test_diagonal_gaussians_closed_form(self):
    # sqrt(S1 S2) of diagonal covariances is elementwise: FID = |dmu|^2 + sum (s1 - s2)^2.
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    s1, s2 = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    self.assertAllClose(metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)),
                        expected, rtol=1e-10)

  def test_commuting_covariances_closed_form(self):
    # Same eigenvectors: tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt(l1) - sqrt(l2))^2.
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal([12, 12]))
    l1, l2 = rng.uniform(0.5, 4, 12), rng.uniform(0.5, 4, 12)
    s1, s2 = (q * l1) @ q.T, (q * l2) @ q.T
    mu1, mu2 = np.zeros(12), np.full(12, 0.5)
    expected = 12 * 0.25 + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    self.assertAllClose(metrics.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-9)

  def test_general_gaussians_match_the_definition(self):
    rng = np.random.default_rng(3)
    s1, s2 = _random_spd(rng, 10), _random_spd(rng, 10, cond=100)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    r1 = scipy.linalg.sqrtm(s1)
    # The symmetric form tr(sqrt(R1 S2 R1)) equals tr(sqrt(S1 S2)).
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * np.trace(
        scipy.linalg.sqrtm(r1 @ s2 @ r1).real)
    self.assertAllClose(metrics.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-8)

  def test_sampled_gaussians_approach_the_closed_form(self):
    rng = np.random.default_rng(4)
    d = 4
    s1, s2 = np.diag([1.0, 2.0, 0.5, 1.5]), np.diag([2.0, 1.0, 1.0, 0.5])
    x = rng.multivariate_normal(np.zeros(d), s1, 200000)
    y = rng.multivariate_normal(np.ones(d), s2, 200000)
    expected = d + np.sum((np.sqrt(np.diag(s1)) - np.sqrt(np.diag(s2))) ** 2)
    got = metrics.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0),
                                   np.cov(y, rowvar=False))
    self.assertAllClose(got, expected, rtol=0.01)

  def test_near_singular_covariances_stay_finite(self):
    # Fewer samples than dimensions: rank-deficient covariances (as with 2048-d features of
    # a small sample).
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal([20, 64]), rng.standard_normal([20, 64]) + 0.1
    got = metrics.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0),
                                   np.cov(y, rowvar=False))
    self.assertTrue(np.isfinite(got))
    self.assertGreater(got, 0.0)
    # Exactly singular (zero) covariances: only the mean term remains.
    z = np.zeros([64, 64])
    self.assertAllClose(metrics.frechet_distance(np.zeros(64), z, np.ones(64), z), 64.0,
                        atol=1e-4)

  def test_result_is_real_float(self):
    rng = np.random.default_rng(6)
    s1, s2 = _random_spd(rng, 6), _random_spd(rng, 6)
    got = metrics.frechet_distance(np.zeros(6), s1, np.zeros(6), s2)
    self.assertIsInstance(got, float)

  @parameterized.named_parameters(
      ('mean_shape', np.zeros([3, 1]), np.eye(3)),
      ('cov_shape', np.zeros(3), np.eye(4)),
      ('nan', np.array([0.0, np.nan, 0.0]), np.eye(3)))
  def test_bad_input_raises_clear_error(self, mu, sigma):
    with self.assertRaisesRegex(ValueError, 'frechet_distance'):
      metrics.frechet_distance(mu, sigma, np.zeros(3), np.eye(3))

  def test_width_mismatch(self):
    with self.assertRaisesRegex(ValueError, 'different widths'):
      metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


class FeatureStatsTest(tf.test.TestCase):

  def test_streaming_matches_np_cov(self):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal([1000, 32]) * 3 + 100).astype(np.float32)  # large offset
    st = fid.FeatureStats(capture_all=True)
    for i in range(0, 1000, 96):
      st.append(x[i:i + 96])
    mu, cov = st.get_mean_cov()
    x64 = x.astype(np.float64)
    self.assertAllClose(mu, x64.mean(0), rtol=1e-12)
    self.assertAllClose(cov, np.cov(x64, rowvar=False), rtol=1e-9, atol=1e-9)
    self.assertAllEqual(st.get_all(), x)

  def test_max_items_drops_the_rest(self):
    st = fid.FeatureStats(capture_all=True, max_items=5)
    st.append(np.ones([3, 2]))
    st.append(np.zeros([4, 2]))
    self.assertTrue(st.is_full())
    self.assertEqual(st.get_all().shape, (5, 2))

  def test_errors(self):
    st = fid.FeatureStats()
    with self.assertRaisesRegex(ValueError, 'at least 2'):
      st.get_mean_cov()
    st.append(np.ones([2, 3]))
    with self.assertRaisesRegex(ValueError, 'expected 3'):
      st.append(np.ones([2, 4]))
    with self.assertRaisesRegex(ValueError, r'\[N, D\]'):
      st.append(np.ones([3]))


if __name__ == '__main__':
  tf.test.main()
