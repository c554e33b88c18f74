"""Phase helpers: the G_ema update."""

import numpy as np
import tensorflow as tf

from sg2tf.training import phases
from tests.training.tiny import tiny_g


class EmaTest(tf.test.TestCase):

  def test_ema_update(self):
    G, G_ema = tiny_g(), tiny_g()
    G.mapping.w_avg.assign(tf.fill([8], 3.0))
    before = [v.numpy() for v in G_ema.variables]
    phases.update_ema(tf.distribute.get_strategy(), G_ema, G, 0.9)
    for v_ema, v, old in zip(G_ema.variables, G.variables, before):
      if v.trainable:
        self.assertAllClose(v_ema, v.numpy() + (old - v.numpy()) * 0.9, rtol=1e-6)
      else:  # w_avg and noise buffers are copied, not averaged.
        self.assertAllEqual(v_ema, v)
    self.assertAllEqual(G_ema.mapping.w_avg, np.full([8], 3.0))


if __name__ == '__main__':
  tf.test.main()
