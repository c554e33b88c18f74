"""The ADA controller: tunes the augmentation strength p from D's outputs on the reals.

The overfitting heuristic r_t = E[sign(D(x_real))] (over the augmented reals of every D
step, main and R1) is collected for `interval` minibatches (4); then
    p <- max(0, p + sign(r_t - target) * batch * interval / (ada_kimg * 1000)),
so p can move from 0 to 1 in ada_kimg thousand images (500) and the statistics restart. The
target is 0.6. `fixed` mode keeps p where it was set.

State (p and the running sums) lives in variables that the training checkpoint holds, so a
resumed run continues with the same p and the same partial statistics.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

MODES = ('noaug', 'ada', 'fixed')


class AdaController:
  """p and the r_t statistics; `observe()` after each D phase, `update()` after a minibatch.

  p: a scalar float32 tf.Variable (mirrored under a strategy) that the phases read.
  """

  def __init__(self, p: tf.Variable, target: float, batch_size: int, interval: int = 4,
               kimg: float = 500.0, adaptive: bool = True):
    self.p = p
    self.target = float(target)
    self.batch_size = int(batch_size)
    self.interval = int(interval)
    self.kimg = float(kimg)
    self.adaptive = bool(adaptive)
    # [sum of signs, number of logits] since the last adjustment.
    self.stats = tf.Variable(tf.zeros([2], tf.float64), trainable=False, name='ada_signs')

  @property
  def step_size(self) -> float:
    """How far one adjustment moves p."""
    return self.batch_size * self.interval / (self.kimg * 1000)

  def observe(self, mean_sign: float, count: int) -> None:
    """Adds `count` real logits whose signs average `mean_sign`."""
    if self.adaptive:
      self.stats.assign_add(np.array([mean_sign * count, count], np.float64))

  def update(self, minibatches_done: int) -> Optional[float]:
    """After minibatch number `minibatches_done` (1-based): every `interval` minibatches,
    moves p toward the target and returns the r_t used; otherwise None."""
    if not self.adaptive or minibatches_done % self.interval:
      return None
    total, count = (float(v) for v in self.stats.numpy())
    self.stats.assign(tf.zeros([2], tf.float64))
    if count == 0:
      return None
    rt = total / count
    p = float(self.p.numpy()) + float(np.sign(rt - self.target)) * self.step_size
    self.p.assign(max(p, 0.0))
    return rt
