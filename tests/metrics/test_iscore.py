"""inception_score against closed forms."""

import numpy as np
import tensorflow as tf

from sg2tf import metrics


class InceptionScoreTest(tf.test.TestCase):

  def test_confident_and_uniform_over_classes_gives_num_classes(self):
    # p(y|x) one-hot, classes balanced within each split: KL = log K, IS = K.
    probs = np.tile(np.eye(7), [10, 1])  # 70 samples, each split has each class once
    mean, std = metrics.inception_score(probs, num_splits=10)
    self.assertAllClose(mean, 7.0, rtol=1e-12)
    self.assertAllClose(std, 0.0, atol=1e-12)

  def test_identical_predictions_give_one(self):
    probs = np.tile(np.array([[0.2, 0.5, 0.3]]), [40, 1])
    self.assertAllClose(metrics.inception_score(probs, num_splits=4)[0], 1.0)

  def test_matches_the_definition(self):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal([60, 5]) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for part in np.split(p, 3):
      q = part.mean(0)
      scores.append(np.exp(np.mean([np.sum(r * np.log(r / q)) for r in part])))
    mean, std = metrics.inception_score(p, num_splits=3)
    self.assertAllClose([mean, std], [np.mean(scores), np.std(scores)], rtol=1e-12)

  def test_zero_probabilities_are_fine(self):
    probs = np.array([[1.0, 0.0], [0.0, 1.0]] * 5)
    self.assertAllClose(metrics.inception_score(probs, num_splits=5)[0], 2.0)

  def test_bad_input(self):
    with self.assertRaisesRegex(ValueError, 'num_splits'):
      metrics.inception_score(np.ones([3, 2]) / 2, num_splits=10)
    with self.assertRaisesRegex(ValueError, 'finite'):
      metrics.inception_score(-np.ones([10, 2]), num_splits=2)


if __name__ == '__main__':
  tf.test.main()
