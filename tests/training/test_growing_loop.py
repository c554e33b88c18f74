"""Training with progressive growing on a tiny 8x8 dataset: the schedule drives lod,
minibatch, learning rate, data resolution and optimizer resets; the progress scalars; exact
resume in the middle of a fade-in; config a (StyleGAN networks) and mixed precision."""

import dataclasses
import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf import paper_configs as net_configs
from sg2tf.training import distribute
from sg2tf.training import loop
from sg2tf.training import schedule
from tests import testutil
from tests.training import tiny

# 4x4 for 8 images, then a 16-image fade to 8x8 (minibatch 4 at 4x4, 2 at 8x8). The
# schedule is re-evaluated every 4 minibatches: steps 0-3 lod 1 (4x4, 16 images), steps 4-7
# lod 0.5 (8x8, fading, images 16-24), from step 8 lod 0. (The smallest growing networks:
# tracing the phases per level is what these tests spend their time on.)
SCHEDULE = schedule.ScheduleConfig(lod_initial_resolution=4, lod_training_kimg=0.008,
                                   lod_transition_kimg=0.016, minibatch_dict=((4, 4), (8, 2)),
                                   lrate_dict=((8, 0.003),))
_LOSS = dict(g_reg_interval=2, d_reg_interval=3)


def _state(tr):
  variables = (tr.G.variables + tr.D.variables + tr.G_ema.variables + tr.g_opt.variables +
               tr.d_opt.variables)
  return [v.numpy() for v in variables] + [tr.pl_mean.numpy(), tr.rng.state.numpy(),
                                           tr.step.numpy(), tr.nimg.numpy(), tr.lod.numpy()]


def _nets(name):
  net = net_configs.get_config(name, fmap_base=32, fmap_max=8)
  g = dataclasses.replace(net.G, z_dim=8, w_dim=8, mapping_dim=8, mapping_layers=2)
  d = dataclasses.replace(net.D, mbstd_group_size=2)
  return dict(G=g, D=d, cfg_name=name,
              loss=dict(_LOSS, lazy_regularization=net.lazy_regularization,
                        pl_weight=net.pl_weight))


class GrowingTrainerTest(tiny.TrainerTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.cfg_a = cls.config('A', 0.032)
    cls.trainer_a = loop.Trainer(cls.cfg_a, distribute.make_strategy('default'))
    cls.levels = []
    original = cls.trainer_a._apply_schedule  # pylint: disable=protected-access

    def record(new):
      original(new)
      cls.levels.append((int(cls.trainer_a.step.numpy()), new.lod, new.resolution,
                         new.minibatch_size, int(cls.trainer_a.g_opt.iterations.numpy())))
    cls.trainer_a._apply_schedule = record  # pylint: disable=protected-access
    cls.trainer_a.run()
    cls.state_a = _state(cls.trainer_a)

  @classmethod
  def config(cls, name, kimg, nets='config-d', **kw):
    kwargs = dict(_nets(nets), schedule=SCHEDULE, checkpoint_ticks=1, tick_kimg=0.008,
                  image_snapshot_ticks=100)
    kwargs.update(kw)
    cfg = tiny.tiny_config(os.path.join(cls.root, name), cls.data, resolution=8,
                           total_kimg=kimg, **kwargs)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, mirror=True))

  def test_schedule_drives_lod_data_minibatch_lr_and_resets(self):
    tr = self.trainer_a
    # (step, lod, resolution, minibatch, G Adam steps right after applying).
    self.assertEqual([lv[:4] for lv in self.levels],
                     [(0, 1.0, 4, 4), (4, 0.5, 8, 2), (8, 0.0, 8, 2)])
    # Reset at the start (official prev_lod -1), when the fade starts and when it ends.
    self.assertEqual([lv[4] for lv in self.levels], [0, 0, 0])
    self.assertEqual((int(tr.step.numpy()), int(tr.nimg.numpy())), (12, 32))
    # 4 Gmain + Greg on steps 8, 10 since the last reset.
    self.assertEqual(int(tr.g_opt.iterations.numpy()), 6)
    self.assertAllClose(tr.g_opt.learning_rate, 0.003 * 2 / 3)  # 8x8 lr, lazy factor
    for net in (tr.G, tr.D, tr.G_ema):
      self.assertAllClose(net.lod, 0.0)
    batch = tr._next_batch()  # pylint: disable=protected-access
    self.assertEqual(batch.shape, [2, 8, 8, 3])
    self.assertEqual(tr.phases.res, 8)

  def test_progress_scalars(self):
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    acc = event_accumulator.EventAccumulator(self.cfg_a.run_dir, size_guidance={'tensors': 0})
    acc.Reload()
    values = {tag: [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
              for tag in ('Progress/lod', 'Progress/minibatch', 'Progress/tick',
                          'Progress/kimg')}
    ticks = len(values['Progress/tick'])
    self.assertGreaterEqual(ticks, 4)
    self.assertLen(values['Progress/lod'], ticks)  # every tick
    self.assertEqual(values['Progress/lod'][0], 1.0)
    self.assertIn(0.5, values['Progress/lod'])
    self.assertEqual(values['Progress/lod'][-1], 0.0)
    self.assertEqual(values['Progress/minibatch'][0], 4)
    self.assertEqual(values['Progress/minibatch'][-1], 2)
    self.assertAllClose(values['Progress/kimg'][-1], 0.032)

  def test_resume_in_the_middle_of_a_fade_is_exact(self):
    # Run B stops after 6 minibatches: lod 0.5, 8x8, in the middle of a schedule group.
    first = loop.Trainer(self.config('B', 0.032), distribute.make_strategy('default'))
    first.run(max_steps=6)
    first.save_checkpoint()
    self.assertEqual((int(first.step.numpy()), float(first.lod.numpy())), (6, 0.5))
    second = loop.Trainer(self.config('B', 0.032), distribute.make_strategy('default'))
    self.assertEqual((second.sched.lod, second.sched.resolution, second.sched.minibatch_size),
                     (0.5, 8, 2))
    self.assertAllClose(second.D.lod, 0.5)
    second.run()
    for a, b in zip(self.state_a, _state(second)):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)

  def test_config_a_and_mixed_precision_train_across_the_switch(self):
    """The StyleGAN networks (config a: R1 in Dmain every minibatch), and config b's
    networks with float16 blocks, into a fade-in with finite losses (schedule evaluated every
    minibatch here: 4x4 at lod 1, then 8x8 at lod 0.75), on the compiled ops."""
    testutil.custom_ops_or_skip(self)
    every_step = dataclasses.replace(SCHEDULE, lod_training_kimg=0.0, minibatch_repeats=1)
    for name, nets, extra in (('a', 'config-a', dict(impl='custom')),
                              ('mp', 'config-b', dict(mixed_precision=True, num_fp16_res=1,
                                                      impl='custom'))):
      tr = loop.Trainer(self.config(name, 0.020, nets=nets, schedule=every_step, **extra),
                        distribute.make_strategy('default'))
      for _ in range(2):
        metrics = tr.train_step()
      self.assertEqual((tr.sched.resolution, tr.sched.lod), (8, 0.75), name)
      self.assertTrue(all(np.isfinite(v) for v in metrics.values()), name)
      self.assertIn('Loss/r1_penalty', metrics)
      for v in tr.G.variables + tr.D.variables:
        self.assertTrue(np.all(np.isfinite(v.numpy())), v.path)


class GrowingMirroredTest(tf.test.TestCase):

  def test_two_replicas_match_one_device_across_a_switch(self):
    """config-b's growing networks: 2 replicas on 2 CPU devices give the single-device
    losses and weights through 4x4 and into the 8x8 fade (fresh interpreter: logical
    devices must be set before TensorFlow initialises)."""
    root = tempfile.mkdtemp()
    code = f'''
import dataclasses, json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
tf.config.optimizer.set_experimental_options({{'disable_meta_optimizer': True}})
from sg2tf.training import distribute, loop
from tests.training import test_growing_loop as T, tiny
T.GrowingTrainerTest.root = {root!r}
T.GrowingTrainerTest.data = tiny.make_dataset({root!r} + '/data', count=12, resolution=8)
every_step = dataclasses.replace(T.SCHEDULE, lod_training_kimg=0.0, minibatch_repeats=1)
out = {{}}
for name, devices in (('one', None), ('two', ['/cpu:0', '/cpu:1'])):
  cfg = T.GrowingTrainerTest.config(name, 0.02, nets='config-b', schedule=every_step)
  # Minibatch-stddev groups are formed per replica; without it both compute the same function.
  cfg = dataclasses.replace(cfg, D=dataclasses.replace(cfg.D, mbstd_group_size=1))
  strategy = (distribute.make_strategy('default') if devices is None else
              distribute.make_strategy('mirrored', devices))
  tr = loop.Trainer(cfg, strategy)
  metrics = [tr.train_step() for _ in range(2)]
  out[name] = dict(metrics=metrics, replicas=tr.replicas, res=tr.sched.resolution,
                   weights=np.concatenate([np.ravel(v.numpy()) for v in
                                           tr.G.variables + tr.D.variables]).tolist())
print('RESULT ' + json.dumps(out))
'''
    result = json.loads(testutil.run_python(code).split('RESULT ', 1)[1])
    one, two = result['one'], result['two']
    self.assertEqual((one['replicas'], two['replicas'], one['res'], two['res']), (1, 2, 8, 8))
    for m1, m2 in zip(one['metrics'], two['metrics']):
      for k in m1:
        self.assertAllClose(m1[k], m2[k], rtol=1e-5, atol=1e-6, msg=k)
    self.assertAllClose(one['weights'], two['weights'], rtol=1e-4, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
