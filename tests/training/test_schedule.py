"""The official training schedule (training_loop.py training_schedule) against values worked
out by hand from its definition, and the flags that set it."""

import dataclasses
import os
import tempfile

from absl import flags as absl_flags
import tensorflow as tf

from sg2tf import flags as sg2tf_flags
from sg2tf.training import config as config_lib
from sg2tf.training import schedule
from tests.training import tiny

PAPER = schedule.PAPER_GROWING


def _at(kimg, res=1024, cfg=PAPER, **kw):
  return schedule.training_schedule(int(round(kimg * 1000)), res, cfg, 32, 0.001, **kw)


class TrainingScheduleTest(tf.test.TestCase):

  def test_paper_schedule_at_1024(self):
    # kimg -> (lod, resolution, minibatch, lr, tick kimg). 8x8 start: lod 7 for 600 kimg,
    # then a 600-kimg fade to lod 6 (16x16 from its first image), and so on.
    want = {
        0: (7.0, 8, 256, 0.001, 28),
        599.999: (7.0, 8, 256, 0.001, 28),
        600: (7.0, 8, 256, 0.001, 28),
        900: (6.5, 16, 128, 0.001, 24),
        1199: (7 - 599 / 600, 16, 128, 0.001, 24),
        1200: (6.0, 16, 128, 0.001, 24),
        1800: (6.0, 16, 128, 0.001, 24),
        2100: (5.5, 32, 64, 0.001, 20),
        3300: (4.5, 64, 32, 0.001, 16),
        4500: (3.5, 128, 32, 0.0015, 12),
        5700: (2.5, 256, 32, 0.002, 8),
        6900: (1.5, 512, 32, 0.003, 6),
        8100: (0.5, 1024, 32, 0.003, 4),
        8400: (0.0, 1024, 32, 0.003, 4),
        25000: (0.0, 1024, 32, 0.003, 4),
    }
    for kimg, (lod, res, mb, lr, tick) in want.items():
      s = _at(kimg)
      self.assertAllClose(s.lod, lod, atol=1e-9, msg=str(kimg))
      self.assertEqual((s.resolution, s.minibatch_size, s.tick_kimg), (res, mb, tick), kimg)
      self.assertAllClose(s.lrate, lr)

  def test_no_growing_and_overrides(self):
    s = schedule.training_schedule(123456, 256, schedule.ScheduleConfig(), 32, 0.002)
    self.assertEqual((s.lod, s.resolution, s.minibatch_size, s.lrate, s.tick_kimg),
                     (0.0, 256, 32, 0.002, 8))
    short = dataclasses.replace(PAPER, lod_initial_resolution=16, lod_training_kimg=10,
                                lod_transition_kimg=30)
    self.assertAllClose(_at(25, 64, short).lod, 2 - 0.5)
    self.assertEqual(_at(25, 64, short).resolution, 32)
    self.assertEqual(_at(5, 64, short, tick_kimg=2.5).tick_kimg, 2.5)
    no_fade = dataclasses.replace(PAPER, lod_transition_kimg=0)
    self.assertEqual(_at(600, 64, no_fade).lod, 2.0)  # jumps at each phase start
    self.assertEqual(_at(599, 64, no_fade).lod, 3.0)

  def test_optimizer_reset_points(self):
    """floor or ceil of lod changes: at the start and at the end of every fade-in."""
    self.assertTrue(schedule.needs_optimizer_reset(-1.0, 7.0))   # the official first call
    self.assertFalse(schedule.needs_optimizer_reset(7.0, 7.0))
    self.assertTrue(schedule.needs_optimizer_reset(7.0, 6.99))   # fade starts
    self.assertFalse(schedule.needs_optimizer_reset(6.99, 6.5))
    self.assertTrue(schedule.needs_optimizer_reset(6.01, 6.0))   # fade ends
    self.assertEqual(schedule.resolutions(1024, PAPER), [8, 16, 32, 64, 128, 256, 512, 1024])

  def test_json_round_trip(self):
    cfg = dataclasses.replace(PAPER, minibatch_dict={8: 4}, lrate_dict=[[8, 0.5]])
    self.assertEqual(cfg.minibatch_dict, ((8, 4),))
    self.assertEqual(schedule.ScheduleConfig(**dataclasses.asdict(cfg)), cfg)


class ScheduleFlagsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.data = tiny.make_dataset(os.path.join(cls.root, 'data'), count=8, resolution=16)

  def parse(self, *args):
    fv = absl_flags.FlagValues()
    sg2tf_flags.define_train_flags(fv)
    fv(['train', f'--data_dir={self.data}', f'--run_dir={self.root}/run', *args])
    return sg2tf_flags.train_config_from_flags(fv)

  def test_configs_a_to_d_grow_with_the_paper_schedule(self):
    for name in ('config-a', 'config-b', 'config-c', 'config-d'):
      cfg = self.parse(f'--cfg={name}')
      self.assertEqual(cfg.schedule, PAPER, name)
      self.assertEqual(cfg.optimizer.learning_rate, 0.001)
    cfg = self.parse('--cfg=config-b', '--lod_initial_resolution=4', '--lod_training_kimg=1.5',
                     '--lod_transition_kimg=2', '--lr=0.003')
    self.assertEqual((cfg.schedule.lod_initial_resolution, cfg.schedule.lod_training_kimg,
                      cfg.schedule.lod_transition_kimg), (4, 1.5, 2.0))
    self.assertEqual(cfg.optimizer.learning_rate, 0.003)
    for name in ('config-b-nogrow', 'config-f'):
      cfg = self.parse(f'--cfg={name}')
      self.assertFalse(cfg.schedule.growing)
      self.assertEqual(cfg.optimizer.learning_rate, 0.002)

  def test_bad_combinations_are_refused_by_name(self):
    def resolve(*args):
      cfg = self.parse(*args, '--batch_size=4', '--mbstd_group_size=2', '--fmap_base=32')
      return config_lib.resolve_config(cfg)
    with self.assertRaisesRegex(config_lib.ConfigError, 'config-f is G_synthesis_stylegan2'):
      resolve('--cfg=config-f', '--lod_initial_resolution=8')
    with self.assertRaisesRegex(config_lib.ConfigError, 'lod_initial_resolution=32 must be'):
      resolve('--cfg=config-b', '--lod_initial_resolution=32')
    with self.assertRaisesRegex(config_lib.ConfigError, 'minibatch at 8x8 is 256 images'):
      resolve('--cfg=config-c')
    with self.assertRaisesRegex(config_lib.ConfigError, 'g_arch=skip: --cfg=config-d uses'):
      resolve('--cfg=config-d', '--g_arch=skip')
    with self.assertRaisesRegex(config_lib.ConfigError, 'mixed_precision.*config-a'):
      resolve('--cfg=config-a', '--mixed_precision')
    with self.assertRaisesRegex(config_lib.ConfigError, 'multi_worker with progressive'):
      resolve('--cfg=config-b', '--strategy=multi_worker', '--lod_initial_resolution=16')


if __name__ == '__main__':
  tf.test.main()
