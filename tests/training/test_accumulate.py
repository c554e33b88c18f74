"""Gradient accumulation (batch_gpu) and the XLA-compiled passes (jit): the same gradients as
one pass over the replica's batch, for all four phases; minibatch-stddev groups stay inside
a chunk; training state and resume are unchanged."""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from sg2tf.training import accumulate
from sg2tf.training import augment
from sg2tf.training import config as config_lib
from sg2tf.training import distribute
from sg2tf.training import loop
from sg2tf.training import phases as phases_lib
from tests.training import tiny

SEED = tf.constant([5, 9], tf.int64)


def rel_err(a, b):
  return max(float(tf.reduce_max(tf.abs(x - y)) / (tf.reduce_max(tf.abs(x)) + 1e-12))
             for x, y in zip(a, b))


class AccumulateTest(tiny.TrainerTestCase):

  DATASET_COUNT = 16

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.reals = tf.constant(np.random.RandomState(0).uniform(-1, 1, [8, 8, 8, 3]), tf.float32)

  def trainer(self, name, batch=8, mbstd=1, **kw):
    cfg = tiny.tiny_config(os.path.join(self.root, name), self.data, resolution=8,
                           batch_size=batch, total_kimg=1.0, **kw)
    cfg = dataclasses.replace(cfg, D=dataclasses.replace(cfg.D, mbstd_group_size=mbstd))
    return loop.Trainer(cfg, distribute.make_strategy('default'))

  def phases(self, tr, batch=8, **kw):
    return phases_lib.Phases(tr.strategy, tr.G, tr.D, tr.G_ema, tr.g_opt, tr.d_opt,
                             tr.pl_mean, tr.rng, global_batch=batch, loss_cfg=tr.cfg.loss,
                             impl='ref', **kw)

  def test_rows_and_sum(self):
    x = tf.reshape(tf.range(12.0), [6, 2])
    got = accumulate.rows({'a': x, 'b': None, 'c': tf.constant(3)}, tf.constant(2), 3)
    self.assertAllEqual(got['a'], x[2:5])
    self.assertIsNone(got['b'])
    self.assertEqual(int(got['c']), 3)
    total = tf.function(lambda: accumulate.sum_over_chunks(
        3, lambda i: {'s': tf.reduce_sum(accumulate.rows(x, i * 2, 2))}))()
    self.assertEqual(float(total['s']), 66.0)

  def _compare(self, one, others, names, what):
    for name in names:
      g1, m1 = one.gradients(name, SEED, self.reals)
      for other in others:
        g2, m2 = other.gradients(name, SEED, self.reals)
        self.assertLess(rel_err(g1, g2), 1e-4, msg=f'{name} {what}')
        self.assertAllClose(m1, m2, rtol=1e-5, atol=1e-6)
      self.assertTrue(any(float(tf.reduce_max(tf.abs(g))) > 0 for g in g1))

  def test_chunks_and_jit_give_the_same_gradients(self):
    # Lazy regularisation (all four phases, with augmentation on every D input) and without
    # it (penalties inside the main phases); batch 8 -> chunks of 2 (path length: 4 samples
    # in chunks of 1). The blit pipeline: its parameters are per sample like every
    # pipeline's, and it traces fast (the transforms are test_augment's). With lazy
    # regularisation also XLA (in chunks of 4, with the XLA form of the augmentation): every
    # phase compiled, against the same one-pass gradients.
    p = tf.Variable(0.7)
    for lazy in (True, False):
      tr = self.trainer(f'grads{lazy}', loss=dict(lazy_regularization=lazy))
      base = dict(augment=augment.AugmentPipe('blit'), augment_p=p) if lazy else {}
      one = self.phases(tr, **base)
      chunked = self.phases(tr, batch_gpu=2, **base)
      self.assertEqual((chunked.chunks, chunked.pl_chunks), (4, 4))
      others = [chunked]
      if lazy:
        others.append(self.phases(tr, batch_gpu=4, jit_compile=True, augment_p=p,
                                  augment=augment.AugmentPipe('blit', xla=True)))
      names = ('Gmain', 'Greg', 'Dmain', 'Dreg') if lazy else ('Gmain', 'Dmain')
      self._compare(one, others, names, f'lazy={lazy} (chunks of 2; chunks of 4 with XLA)')

  def test_mbstd_groups_stay_within_a_chunk(self):
    # Dreg (no random inputs without augmentation): batch 4 in chunks of 2 with groups of 2
    # is the sum of two batches of 2, each scaled by its share of the batch.
    tr = self.trainer('mbstd', batch=4, mbstd=2)
    reals = self.reals[:4]
    chunked = self.phases(tr, batch=4, batch_gpu=2).gradients('Dreg', SEED, reals)[0]
    half = self.phases(tr, batch=2)
    parts = [half.gradients('Dreg', SEED, reals[i:i + 2])[0] for i in (0, 2)]
    self.assertLess(rel_err(chunked, [(a + b) / 2 for a, b in zip(*parts)]), 1e-5)
    whole = self.phases(tr, batch=4).gradients('Dreg', SEED, reals)[0]
    self.assertGreater(rel_err(chunked, whole), 1e-3)  # One group of 4 is another function.

  def test_state_and_resume_unchanged(self):
    acc = self.trainer('acc', batch=4, batch_gpu=2)
    self.assertEqual(acc.phases.chunks, 2)
    for _ in range(2):
      acc.train_step()
    names = sorted(n for n, _ in tf.train.list_variables(acc.save_checkpoint()))
    plain = self.trainer('plain', batch=4)  # Built, not trained: the same state variables.
    self.assertEqual(names, sorted(n for n, _ in tf.train.list_variables(
        plain.save_checkpoint())))
    resumed = self.trainer('acc', batch=4)  # Same run dir, without accumulation.
    self.assertEqual(int(resumed.step.numpy()), 2)
    for a, b in zip(acc.G.variables + acc.D.variables, resumed.G.variables +
                    resumed.D.variables):
      self.assertAllEqual(a, b)
    self.assertTrue(np.isfinite(resumed.train_step()['Loss/D/loss']))

  def test_config_checks(self):
    cfg = tiny.tiny_config(os.path.join(self.root, 'bad'), self.data, resolution=8,
                           batch_size=8, batch_gpu=3)
    with self.assertRaisesRegex(config_lib.ConfigError, '--batch_gpu=3'):
      config_lib.check_replicas(cfg, 1)
    cfg = dataclasses.replace(cfg, batch_gpu=4,
                              D=dataclasses.replace(cfg.D, mbstd_group_size=3))
    with self.assertRaisesRegex(config_lib.ConfigError, 'minibatch stddev group size 3'):
      config_lib.check_replicas(cfg, 1)
    with self.assertRaisesRegex(config_lib.ConfigError, '--jit'):
      tiny.tiny_config(os.path.join(self.root, 'bad'), self.data, resolution=8, jit=True,
                       impl='custom')


if __name__ == '__main__':
  tf.test.main()
