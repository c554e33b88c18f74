"""Random phase inputs: deterministic, sliced per replica, style mixing as official."""

import numpy as np
import tensorflow as tf

from sg2tf.training import sampling
from tests.training.tiny import tiny_g


class SamplingTest(tf.test.TestCase):

  def test_inputs_are_deterministic_and_mix_layers(self):
    G = tiny_g()
    seed = tf.constant([3, 4], tf.int64)
    a = sampling.generator_inputs(G, seed, 4, 0.9)
    b = sampling.generator_inputs(G, seed, 4, 0.9)
    self.assertAllEqual(a.z, b.z)
    self.assertAllEqual(a.noise[-1], b.noise[-1])
    self.assertEqual(len(a.noise), len(G.synthesis.noise_shapes))
    self.assertNotAllClose(a.z, a.z2)
    cutoffs = [int(sampling.generator_inputs(G, tf.constant([i, 0], tf.int64), 2, 0.9).cutoff)
               for i in range(200)]
    self.assertBetween(min(cutoffs), 1, G.num_ws)
    self.assertEqual(max(cutoffs), G.num_ws)  # no mixing ~10% of the time
    frac_mixed = np.mean(np.array(cutoffs) < G.num_ws)
    self.assertBetween(frac_mixed, 0.8, 0.97)
    none = sampling.generator_inputs(G, seed, 4, 0.0)
    self.assertIsNone(none.z2)

  def test_mixing_draws_keep_their_streams(self):
    # Training mixes with the Generator's own G.mixing_cutoff / G.style_mix, fed the
    # stateless draws training has always used: z2 from key 1, the coin from key 2 and the
    # crossover layer from key 3 of the phase seed (so resumed runs and old runs agree).
    G = tiny_g()
    branches = set()
    for i in range(12):
      seed = tf.constant([i, 7], tf.int64)
      got = sampling.generator_inputs(G, seed, 2, 0.9)
      coin = tf.random.stateless_uniform([], seed=sampling.fold(seed, 2))
      layer = tf.random.stateless_uniform([], seed=sampling.fold(seed, 3), minval=1,
                                          maxval=G.num_ws, dtype=tf.int32)
      want = int(layer) if float(coin) < 0.9 else G.num_ws
      self.assertEqual(int(got.cutoff), want)
      branches.add(want == G.num_ws)
      self.assertAllEqual(got.z2, tf.random.stateless_normal([2, G.z_dim],
                                                             seed=sampling.fold(seed, 1)))
    self.assertLen(branches, 2)  # both mixed and unmixed draws were checked

  def test_generate_updates_nothing_and_mixes(self):
    G = tiny_g()
    inputs = sampling.generator_inputs(G, tf.constant([1, 2], tf.int64), 2, 1.0)
    ws, w_mean = sampling.mapping(G, inputs)
    ws1 = G.mapping(inputs.z, impl='ref')
    ws2 = G.mapping(inputs.z2, impl='ref')
    k = int(inputs.cutoff)
    self.assertAllClose(ws[:, :k], ws1[:, :k])
    self.assertAllClose(ws[:, k:], ws2[:, k:])
    self.assertAllClose(w_mean, tf.reduce_mean(ws1[:, 0], axis=0))
    self.assertAllEqual(G.mapping.w_avg, np.zeros([8]))


if __name__ == '__main__':
  tf.test.main()
