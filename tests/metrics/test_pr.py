"""precision_recall: brute force on small sets, known answers, blocking, memory bound."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf import metrics
from sg2tf.metrics import pr


def brute_force(real, fake, k):
  """The definition, with full N x N distance matrices in float64."""
  def radii(x):
    d = np.sum((x[:, None] - x[None]) ** 2, axis=-1)
    return np.sort(d, axis=1)[:, k]  # column 0 is the sample itself

  def inside(ev, ref, r):
    d = np.sum((ev[:, None] - ref[None]) ** 2, axis=-1)
    return np.any(d <= r[None], axis=1)

  real, fake = real.astype(np.float64), fake.astype(np.float64)
  return inside(fake, real, radii(real)).mean(), inside(real, fake, radii(fake)).mean()


class PrecisionRecallTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((3, 1000, 1000), (3, 7, 5), (1, 16, 3), (5, 13, 64))
  def test_matches_brute_force(self, k, row_block, col_block):
    rng = np.random.default_rng(k + row_block)
    real = rng.standard_normal([60, 6]).astype(np.float32)
    fake = (rng.standard_normal([45, 6]) * 1.3 + 0.4).astype(np.float32)
    got = metrics.precision_recall(real, fake, k=k, row_batch_size=row_block,
                                   col_batch_size=col_block)
    self.assertAllClose(got, brute_force(real, fake, k), atol=0)

  def test_precomputed_real_radii(self):
    rng = np.random.default_rng(9)
    real, fake = rng.standard_normal([40, 5]), rng.standard_normal([30, 5]) * 0.8
    radii = pr.knn_radii(real, 3)
    self.assertEqual(metrics.precision_recall(real, fake, real_radii=radii),
                     metrics.precision_recall(real, fake))
    ev = pr.inside_manifold(fake, real, radii)
    self.assertAllClose(ev.mean(), brute_force(real, fake, 3)[0])
    with self.assertRaisesRegex(ValueError, 'real_radii'):
      metrics.precision_recall(real, fake, real_radii=radii[:5])

  def test_knn_radii_excludes_self(self):
    # Points on a line at 0, 1, 3, 7, 15: 3rd neighbour of 0 (self excluded) is 7 -> 49.
    x = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]], np.float32)
    radii = pr.knn_radii(x, k=3, row_batch_size=2, col_batch_size=2)
    self.assertAllClose(radii, [49.0, 36.0, 16.0, 49.0, 196.0])

  def test_identical_sets(self):
    x = np.random.default_rng(0).standard_normal([50, 4]).astype(np.float32)
    self.assertAllClose(metrics.precision_recall(x, x.copy()), (1.0, 1.0))

  def test_far_apart_sets(self):
    rng = np.random.default_rng(1)
    real = rng.standard_normal([40, 3])
    self.assertAllClose(metrics.precision_recall(real, real + 100.0), (0.0, 0.0))

  def test_mode_dropping_lowers_recall_only(self):
    # Reals: two clusters far apart. Fakes: exactly the first cluster's samples, so every
    # fake sits on a real (precision 1) and exactly the first half of the reals is covered.
    rng = np.random.default_rng(2)
    a = rng.standard_normal([50, 2])
    b = rng.standard_normal([50, 2]) + 100.0
    p, r = metrics.precision_recall(np.concatenate([a, b]), a[::-1], k=3)
    self.assertEqual((p, r), (1.0, 0.5))

  def test_truncation_lowers_recall(self):
    # Fakes spread over a tiny part of the real Gaussian: high precision, low recall.
    rng = np.random.default_rng(3)
    real = rng.standard_normal([300, 2])
    fake = rng.standard_normal([300, 2]) * 0.2
    p, r = metrics.precision_recall(real, fake)
    self.assertGreater(p, 0.95)
    self.assertLess(r, 0.3)

  def test_distance_blocks_are_bounded(self):
    # Every distance computation sees at most row_batch x col_batch pairs: memory does not
    # grow with N x N.
    seen = []
    merge, cross = pr._merge_smallest, pr._cross_hits

    def spy_merge(best, u, v, kk):
      seen.append((u.shape[0], v.shape[0]))
      return merge(best, u, v, kk)

    def spy_cross(u, v, rv, ru):
      seen.append((u.shape[0], v.shape[0]))
      return cross(u, v, rv, ru)

    rng = np.random.default_rng(4)
    real, fake = rng.standard_normal([37, 3]), rng.standard_normal([29, 3])
    pr._merge_smallest, pr._cross_hits = spy_merge, spy_cross
    try:
      got = metrics.precision_recall(real, fake, row_batch_size=8, col_batch_size=5)
    finally:
      pr._merge_smallest, pr._cross_hits = merge, cross
    self.assertLessEqual(max(r for r, _ in seen), 8)
    self.assertLessEqual(max(c for _, c in seen), 5)
    self.assertGreater(len(seen), 20)
    self.assertAllClose(got, brute_force(real, fake, 3))

  @parameterized.named_parameters(
      ('width', np.zeros([5, 3]), np.zeros([5, 4]), 3, 'differ in width'),
      ('rank', np.zeros([5]), np.zeros([5, 4]), 3, r'\[N, D\]'),
      ('k_too_big', np.zeros([3, 2]), np.zeros([3, 2]), 3, 'k=3'),
      ('nan', np.full([5, 2], np.nan), np.zeros([5, 2]), 3, 'nan'))
  def test_bad_input(self, real, fake, k, message):
    with self.assertRaisesRegex(ValueError, message):
      metrics.precision_recall(real, fake, k=k)


if __name__ == '__main__':
  tf.test.main()
