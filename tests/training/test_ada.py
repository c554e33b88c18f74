"""The ADA controller: p moves toward the target by the official rule, on a synthetic D whose
sign statistics the test sets; fixed mode; TensorBoard scalars; resume keeps p exactly."""

import os

import tensorflow as tf

from sg2tf.training import ada
from sg2tf.training import config as config_lib
from sg2tf.training import distribute
from sg2tf.training import loop
from tests.training import tiny


class ControllerTest(tf.test.TestCase):

  def test_rule(self):
    p = tf.Variable(0.0)
    c = ada.AdaController(p, target=0.6, batch_size=32, interval=4, kimg=500)
    self.assertAllClose(c.step_size, 32 * 4 / 500e3)
    for step in range(1, 4):
      c.observe(0.9, 32)
      self.assertIsNone(c.update(step))
    self.assertEqual(float(p.numpy()), 0.0)  # Only every 4 minibatches.
    c.observe(0.1, 32)  # r_t = (3 * 0.9 + 0.1) / 4 = 0.7 > 0.6: up.
    self.assertAllClose(c.update(4), 0.7)
    self.assertAllClose(p, c.step_size)
    self.assertAllEqual(c.stats, [0, 0])  # Statistics restart.
    for step in range(5, 13):
      c.observe(0.2, 32)
      c.update(step)
    self.assertEqual(float(p.numpy()), 0.0)  # Down twice, clamped at 0.

  def test_fixed_mode_keeps_p(self):
    p = tf.Variable(0.25)
    c = ada.AdaController(p, target=0.6, batch_size=4, interval=1, adaptive=False)
    c.observe(1.0, 4)
    self.assertIsNone(c.update(1))
    self.assertAllClose(p, 0.25)


def _state(tr):
  variables = tr.G.variables + tr.D.variables + tr.G_ema.variables
  return [v.numpy() for v in variables] + [tr.augment_p.numpy(), tr.ada.stats.numpy()]


class TrainerAdaTest(tiny.TrainerTestCase):

  def config(self, name, total_kimg, **augment):
    aug = dict(mode='ada', pipe='blit', target=0.6, interval=4, kimg=0.1, p=0.5)
    aug.update(augment)
    return tiny.tiny_config(os.path.join(self.root, name), self.data, resolution=8,
                            total_kimg=total_kimg, checkpoint_ticks=1,
                            augment=config_lib.AugmentConfig(**aug))

  def test_p_follows_synthetic_signs(self):
    tr = loop.Trainer(self.config('signs', 1.0, interval=1, kimg=0.04, p=0.0),
                      distribute.make_strategy('default'))
    step = tr.ada.step_size
    self.assertAllClose(step, 0.1)
    # D's output bias decides the sign of every logit (training moves it by ~lr per step).
    bias = tr.D.epilogue.out.bias
    bias.assign(tf.fill(bias.shape, 100.0))
    for i in range(3):
      m = tr.train_step()
      self.assertEqual(m['Loss/signs/real'], 1.0)
      self.assertAllClose(tr.augment_p, step * (i + 1))
    bias.assign(tf.fill(bias.shape, -100.0))
    for i in range(4):
      self.assertEqual(tr.train_step()['Loss/signs/real'], -1.0)
      self.assertAllClose(tr.augment_p, max(0.0, step * (2 - i)), atol=1e-7)
    # One more minibatch through run(): a tick with the TensorBoard scalars.
    bias.assign(tf.fill(bias.shape, 100.0))
    tr.run(max_steps=1)
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    acc = event_accumulator.EventAccumulator(tr.cfg.run_dir, size_guidance={'tensors': 0})
    acc.Reload()
    signs = [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors('Loss/signs/real')]
    p = [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors('Progress/augment')]
    # The tick's mean over its 8 minibatches (3 x +1, 4 x -1, +1); p after the last: 0 + step.
    self.assertEqual(signs, [0.0])
    self.assertAllClose(p, [step])
    self.assertEqual(config_lib.read_config(tr.cfg.run_dir).augment, tr.cfg.augment)

  def test_fixed_mode(self):
    tr = loop.Trainer(self.config('fixed', 1.0, mode='fixed', p=0.4),
                      distribute.make_strategy('default'))
    self.assertFalse(tr.ada.adaptive)
    self.assertAllClose(tr.augment_p, 0.4)
    self.assertIsNotNone(tr.phases.augment)

  def test_resume_keeps_p(self):
    strategy = distribute.make_strategy('default')
    straight = loop.Trainer(self.config('A', 1.0), strategy)
    for _ in range(6):
      straight.train_step()
    self.assertNotAllClose(straight.augment_p, 0.5)  # Adjusted after minibatch 4.
    first = loop.Trainer(self.config('B', 1.0), strategy)
    for _ in range(3):  # Mid-way through an adjustment interval of 4.
      first.train_step()
    first.save_checkpoint()
    self.assertNotAllClose(first.ada.stats, [0, 0])
    second = loop.Trainer(self.config('B', 1.0), strategy)
    self.assertAllClose(second.augment_p, first.augment_p)
    self.assertAllClose(second.ada.stats, first.ada.stats)
    for _ in range(3):
      second.train_step()
    for a, b in zip(_state(straight), _state(second)):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)

  def test_noaug_checkpoint_has_no_augment_state(self):
    cfg = tiny.tiny_config(os.path.join(self.root, 'noaug'), self.data, resolution=8,
                           total_kimg=1.0)
    tr = loop.Trainer(cfg, distribute.make_strategy('default'))
    self.assertIsNone(tr.augment)
    names = [n for n, _ in tf.train.list_variables(tr.save_checkpoint())]
    self.assertTrue([n for n in names if n.startswith('pl_mean')])
    self.assertFalse([n for n in names if 'augment' in n or 'ada' in n])


if __name__ == '__main__':
  tf.test.main()
