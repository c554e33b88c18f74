"""The training loop on a tiny dataset: files, lazy-regularisation schedule, Adam settings,
exact resume, NaN handling and run-directory checks. (Training with float16 blocks, what
--mixed_precision means: tests/training/test_train_options.py.)"""

import dataclasses
import glob
import json
import os

import numpy as np
import tensorflow as tf

from sg2tf.training import checkpointing
from sg2tf.training import config as config_lib
from sg2tf.training import distribute
from sg2tf.training import loop
from tests.training import tiny

# Regularisation intervals small enough to see several of each in 5 minibatches.
_LOSS = dict(g_reg_interval=2, d_reg_interval=3)


def _state(tr):
  variables = (tr.G.variables + tr.D.variables + tr.G_ema.variables + tr.g_opt.variables +
               tr.d_opt.variables)
  return [v.numpy() for v in variables] + [tr.pl_mean.numpy(), tr.rng.state.numpy(),
                                           tr.step.numpy(), tr.nimg.numpy()]


class TrainerTest(tiny.TrainerTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Run A: 6 minibatches of 4 in one go, with x-flips and a shuffle crossing epochs.
    cls.cfg_a = cls.config('A', 0.024)
    cls.trainer_a = loop.Trainer(cls.cfg_a, distribute.make_strategy('default'))
    cls.trainer_a.run()
    cls.state_a = _state(cls.trainer_a)

  @classmethod
  def config(cls, name, kimg, **kw):
    cfg = tiny.tiny_config(os.path.join(cls.root, name), cls.data, resolution=8,
                           total_kimg=kimg, loss=dict(_LOSS), checkpoint_ticks=1, **kw)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, mirror=True))

  def G_z_dim(self):
    return json.load(open(os.path.join(self.cfg_a.run_dir, 'export', 'networks-final',
                                       'networks.json')))['G']['z_dim']

  def test_run_dir_contents(self):
    run = self.cfg_a.run_dir
    files = tiny.list_files(run)
    self.assertIn('config.json', files)
    self.assertEqual(config_lib.read_config(run), self.cfg_a)
    for png in ('reals.png', 'fakes_init.png', 'fakes000000.png'):
      self.assertIn(png, files)
    self.assertTrue(glob.glob(os.path.join(run, 'events.out.tfevents.*')))
    self.assertIsNotNone(tf.train.latest_checkpoint(os.path.join(run, 'checkpoints')))
    self.assertTrue(os.path.isfile(os.path.join(run, 'export', 'networks-final',
                                                'networks.json')))
    self.assertTrue(glob.glob(os.path.join(run, 'network-snapshot-*', 'networks.json')))
    # The final G_ema as a portable SavedModel that generates images of the run's size.
    exported = tf.saved_model.load(os.path.join(run, 'export', 'saved_model'))
    out = exported.signatures['generate'](z=tf.zeros([2, self.G_z_dim()]),
                                          truncation_psi=tf.constant(1.0))
    self.assertEqual(out['images'].shape[:3], [2, 8, 8])
    # At most keep_checkpoints rolling checkpoints.
    self.assertLen(glob.glob(os.path.join(run, 'checkpoints', '*.index')),
                   min(self.cfg_a.keep_checkpoints, 4))
    import PIL.Image  # pylint: disable=g-import-not-at-top
    grid = np.asarray(PIL.Image.open(os.path.join(run, 'fakes000000.png')))
    self.assertEqual(grid.shape, (16, 16, 3))  # 2x2 grid of 8x8 RGB

  def test_tensorboard_scalars(self):
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    acc = event_accumulator.EventAccumulator(self.cfg_a.run_dir, size_guidance={'tensors': 0})
    acc.Reload()
    tags = set(acc.Tags()['tensors'])
    for tag in ('Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake',
                'Loss/r1_penalty', 'Loss/pl_lengths', 'Loss/pl_penalty', 'Loss/pl_mean',
                'Progress/lr_G', 'Timing/sec_per_kimg', 'Timing/img_per_sec',
                'Resources/peak_host_mem_gb', 'Timing/phase_Dreg_ms', 'fakes', 'reals'):
      self.assertIn(tag, tags)

  def test_lazy_regularisation_schedule_and_adam(self):
    tr = self.trainer_a
    calls = {k: v[1] for k, v in tr.phase_totals.items()}
    # 6 minibatches (0..5): Greg on 0, 2, 4; Dreg on 0, 3.
    self.assertEqual(calls, {'Gmain': 6, 'Greg': 3, 'Dmain': 6, 'Dreg': 2})
    self.assertEqual(int(tr.step.numpy()), 6)
    # One Adam per network, shared by its main and regularisation steps.
    self.assertEqual(int(tr.g_opt.iterations.numpy()), 9)
    self.assertEqual(int(tr.d_opt.iterations.numpy()), 8)
    for opt, k in ((tr.g_opt, 2), (tr.d_opt, 3)):
      c = k / (k + 1)
      self.assertAllClose(opt.learning_rate, 0.002 * c)
      self.assertAllClose(opt.beta_1, 0.0)
      self.assertAllClose(opt.beta_2, 0.99 ** c)
      self.assertAllClose(opt.epsilon, 1e-8)
    self.assertNotEqual(float(tr.pl_mean.numpy()), 0.0)
    self.assertNotAllClose(tr.G.mapping.w_avg, np.zeros(tr.G.w_dim))
    self.assertAllEqual(tr.G_ema.mapping.w_avg, tr.G.mapping.w_avg)

  def test_resume_is_exact(self):
    # Run B: 3 minibatches, a new process-equivalent Trainer resumes and trains 3 more.
    first = loop.Trainer(self.config('B', 0.012), distribute.make_strategy('default'))
    first.run()
    second = loop.Trainer(self.config('B', 0.024), distribute.make_strategy('default'))
    self.assertEqual(int(second.step.numpy()), 3)
    second.run()
    calls = {k: v[1] for k, v in second.phase_totals.items()}
    self.assertEqual(calls, {'Gmain': 3, 'Greg': 1, 'Dmain': 3, 'Dreg': 1})  # 4; 3
    for a, b in zip(self.state_a, _state(second)):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)

  def test_nonfinite_loss_stops_without_saving(self):
    cfg = self.config('nan', 0.024, tick_kimg=1.0)
    tr = loop.Trainer(cfg, distribute.make_strategy('default'))
    tr.run(max_steps=1)
    saved = tiny.list_files(os.path.join(cfg.run_dir, 'checkpoints'))
    original = tr.phases.d_reg
    tr.phases.d_reg = lambda *a: {'Loss/r1_penalty': tf.constant(np.inf)}
    with self.assertRaisesRegex(loop.NonFiniteLossError,
                                r'Loss/r1_penalty = inf in phase Dreg at minibatch 3'):
      tr.run()
    tr.phases.d_reg = original
    self.assertEqual(tiny.list_files(os.path.join(cfg.run_dir, 'checkpoints')), saved)
    # NaN weights are never written either.
    tr.G.synthesis.blocks[0].conv1.bias.assign(tf.fill([16], np.nan))
    with self.assertRaisesRegex(loop.NonFiniteLossError, 'holds NaN'):
      tr.save_checkpoint()
    self.assertEqual(tiny.list_files(os.path.join(cfg.run_dir, 'checkpoints')), saved)

  def test_run_dir_checks(self):
    run_dir = self.cfg_a.run_dir
    with self.assertRaisesRegex(config_lib.ConfigError, '--resume=none'):
      loop.Trainer(dataclasses.replace(self.cfg_a, resume='none'),
                   distribute.make_strategy('default'))
    other = dataclasses.replace(self.cfg_a, G=dataclasses.replace(self.cfg_a.G, fmap_max=8))
    with self.assertRaisesRegex(config_lib.ConfigError, r'G\.fmap_max: 16 -> 8'):
      loop.Trainer(other, distribute.make_strategy('default'))
    self.assertEqual(config_lib.read_config(run_dir).G.fmap_max, 16)  # left untouched

  def test_snapshot_loads_as_network_dir(self):
    from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
    path = checkpointing.export_path(self.cfg_a.run_dir)
    _, _, g_ema = serialization.load_networks(path)
    for a, b in zip(g_ema.variables, self.trainer_a.G_ema.variables):
      self.assertAllEqual(a, b)


if __name__ == '__main__':
  tf.test.main()
