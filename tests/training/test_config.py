"""Training config: hyperparameter formulas, validation, flags, flagfiles, train_main errors."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from absl import flags
from absl.testing import parameterized
import tensorflow as tf

from sg2tf import cli
from sg2tf import flags as sg2tf_flags
from sg2tf.training import config as config_lib
from tests.training import tiny

REPO = pathlib.Path(__file__).resolve().parents[2]


def parse(argv):
  fv = flags.FlagValues()
  sg2tf_flags.define_train_flags(fv)
  cli.parse(['train_main.py'] + list(argv), fv)  # --preset (configs/*.flags) expanded
  return sg2tf_flags.train_config_from_flags(fv)


class FormulaTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((4, 0.8), (16, 16 / 17))
  def test_lazy_adam_hparams(self, k, c):
    opt = config_lib.OptimizerConfig()
    lr, b1, b2 = config_lib.lazy_adam_hparams(opt, k)
    self.assertAllClose([lr, b1, b2], [0.002 * c, 0.0, 0.99 ** c])
    self.assertEqual(config_lib.lazy_adam_hparams(opt, k, lazy=False), (0.002, 0.0, 0.99))

  def test_ema_beta(self):
    self.assertAllClose(config_lib.ema_beta(32, 10.0), 0.5 ** (32 / 10000))
    # Half-life 10 kimg: after 10k images (batch 32) the old weights weigh one half.
    self.assertAllClose(config_lib.ema_beta(32, 10.0) ** (10000 / 32), 0.5)
    self.assertAllClose(config_lib.ema_beta(32, 10.0, cur_nimg=1000, ema_rampup=0.05),
                        0.5 ** (32 / 50))
    self.assertEqual(config_lib.ema_beta(32, 10.0, cur_nimg=0, ema_rampup=0.05), 0.0)
    self.assertEqual(config_lib.ema_beta(32, 0.0), 0.0)

  def test_official_tick_and_grid(self):
    cfg = config_lib.TrainConfig(run_dir='r', data=config_lib.DataConfig('d'))
    self.assertEqual(cfg.tick_nimg, 4000)  # 1024x1024
    self.assertEqual(cfg.grid_size, (7, 4))
    cfg = dataclasses.replace(cfg, G=dataclasses.replace(cfg.G, img_resolution=256))
    self.assertEqual(cfg.tick_nimg, 8000)


class ResolveTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.data = tiny.make_dataset(os.path.join(cls.root, 'data'), count=8, resolution=16,
                                 label_dim=3)

  def base(self, **kw):
    kw.setdefault('data', config_lib.DataConfig(data_dir=self.data))
    return config_lib.TrainConfig(run_dir=os.path.join(self.root, 'run'), **kw)

  def test_fills_in_the_dataset(self):
    cfg = config_lib.resolve_config(self.base(batch_size=4))
    self.assertEqual((cfg.resolution, cfg.G.img_channels, cfg.D.c_dim), (16, 3, 0))
    cfg = config_lib.resolve_config(self.base(batch_size=4, data=config_lib.DataConfig(
        data_dir=self.data, resolution=8, use_labels=True)))
    self.assertEqual((cfg.resolution, cfg.G.c_dim, cfg.D.c_dim), (8, 3, 3))
    # JSON round trip (the run directory's config.json).
    self.assertEqual(config_lib.TrainConfig.from_dict(json.loads(cfg.to_json())), cfg)

  def test_errors_name_the_flag(self):
    cases = [
        (dict(data=config_lib.DataConfig(data_dir='/nonexistent')), '--data_dir'),
        (dict(data=config_lib.DataConfig(data_dir=self.data, resolution=64)), '--resolution=64'),
        (dict(batch_size=0), '--batch_size'),
        (dict(batch_size=64), '--batch_size=64'),
        (dict(strategy='tpu'), '--strategy'),
        (dict(resume='/nope/ckpt-1'), '--resume'),
        (dict(grid=(0, 3)), '--grid'),
        (dict(loss=config_lib.LossConfig(style_mixing_prob=2.0)), '--style_mixing'),
        # A tick of <= 0 images would checkpoint every minibatch; inf gamma trains nothing.
        (dict(tick_kimg=0.0), '--tick_kimg=0.0 must be > 0'),
        (dict(tick_kimg=-1.0), '--tick_kimg=-1.0 must be > 0'),
        (dict(loss=config_lib.LossConfig(r1_gamma=float('inf'))), '--gamma=inf must be a finite'),
        (dict(loss=config_lib.LossConfig(r1_gamma=float('nan'))), '--gamma=nan must be a finite'),
        (dict(optimizer=config_lib.OptimizerConfig(learning_rate=float('inf'))), '--lr=inf'),
    ]
    for kw, needle in cases:
      kw.setdefault('batch_size', 4)
      with self.assertRaisesRegex(config_lib.ConfigError, needle.replace('-', r'\-')):
        config_lib.resolve_config(self.base(**kw))

  def test_replicas(self):
    cfg = config_lib.resolve_config(self.base(batch_size=8))
    config_lib.check_replicas(cfg, 2)
    with self.assertRaisesRegex(config_lib.ConfigError, 'not divisible by the 3 replicas'):
      config_lib.check_replicas(cfg, 3)
    with self.assertRaisesRegex(config_lib.ConfigError, 'pl_batch_shrink'):
      config_lib.check_replicas(cfg, 8)


class FlagsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(sorted(p.name for p in (REPO / 'configs').glob('*.flags')))
  def test_flagfiles_parse(self, name):
    cfg = parse([f'--flagfile={REPO / "configs" / name}', '--data_dir=/d', '--run_dir=/r'])
    self.assertEqual((cfg.data.data_dir, cfg.run_dir), ('/d', '/r'))
    self.assertIn(cfg.cfg_name, tuple(f'config-{c}' for c in 'abcdef'))

  def test_paper_settings(self):
    cfgs = {n: parse([f'--flagfile={REPO / "configs" / (n + ".flags")}', '--data_dir=/d',
                      '--run_dir=/r']) for n in ('ffhq_a', 'ffhq_b', 'ffhq_c', 'ffhq_d', 'ffhq_e',
                                                 'ffhq_f', 'church_f', 'car_f')}
    self.assertFalse(cfgs['ffhq_b'].loss.lazy_regularization)
    self.assertEqual(cfgs['ffhq_b'].loss.pl_weight, 0)
    # Configs a-d as run_training.py sets them: growing from 8x8, lr 0.001, lazy regularisation
    # off for a-b, path length off for a-c, the StyleGAN networks for a.
    for n, lazy, pl in (('ffhq_a', False, 0), ('ffhq_b', False, 0), ('ffhq_c', True, 0),
                        ('ffhq_d', True, 2)):
      c = cfgs[n]
      self.assertEqual((c.loss.lazy_regularization, c.loss.pl_weight, c.loss.r1_gamma),
                       (lazy, pl, 10), n)
      self.assertEqual((c.schedule.lod_initial_resolution, c.schedule.lod_training_kimg,
                        c.schedule.lod_transition_kimg), (8, 600, 600), n)
      self.assertEqual(dict(c.schedule.minibatch_dict), {8: 256, 16: 128, 32: 64, 64: 32}, n)
      self.assertEqual(dict(c.schedule.lrate_dict),
                       {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}, n)
      self.assertEqual((c.optimizer.learning_rate, c.batch_size, c.G.fmap_base), (0.001, 32, 8192))
      self.assertEqual((c.G.network, c.D.network), ('G_style', 'D_basic') if n == 'ffhq_a' else
                       ('G_synthesis_stylegan_revised', 'D_stylegan'))
    self.assertFalse(cfgs['ffhq_e'].schedule.growing)
    self.assertEqual((cfgs['ffhq_e'].loss.r1_gamma, cfgs['ffhq_e'].G.fmap_base), (100, 8192))
    f = cfgs['ffhq_f']
    self.assertEqual((f.loss.r1_gamma, f.G.fmap_base, f.data.mirror, f.total_kimg),
                     (10, 16384, True, 25000))
    self.assertEqual((f.G.architecture, f.D.architecture), ('skip', 'resnet'))
    self.assertEqual((f.batch_size, f.optimizer.learning_rate, f.ema_kimg), (32, 0.002, 10))
    self.assertEqual((cfgs['church_f'].loss.r1_gamma, cfgs['church_f'].data.mirror), (100, False))
    self.assertEqual(cfgs['car_f'].data.resolution, 512)

  def test_command_line_overrides_flagfile(self):
    cfg = parse([f'--flagfile={REPO / "configs" / "ffhq_f.flags"}', '--data_dir=/d',
                 '--run_dir=/r', '--gamma=3', '--batch_size=8', '--grid=3x2', '--fmap_max=64'])
    self.assertEqual((cfg.loss.r1_gamma, cfg.batch_size, cfg.grid), (3, 8, (3, 2)))
    self.assertEqual((cfg.G.fmap_max, cfg.D.fmap_max), (64, 64))

  def test_required_and_bad_values(self):
    with self.assertRaisesRegex(ValueError, '--data_dir'):
      parse(['--run_dir=/r'])
    with self.assertRaisesRegex(ValueError, '--grid'):
      parse(['--run_dir=/r', '--data_dir=/d', '--grid=big'])
    with self.assertRaisesRegex(cli.UsageError, 'strategy'):
      parse(['--strategy=tpu'])


class TrainMainTest(tf.test.TestCase):

  def run_main(self, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    return subprocess.run([sys.executable, str(REPO / 'train_main.py'), *args], cwd=str(REPO),
                          capture_output=True, text=True, env=env, timeout=300, check=False)

  def test_usage_errors_before_any_work(self):
    run_dir = os.path.join(self.get_temp_dir(), 'run')
    proc = self.run_main('--data_dir=/nonexistent/ds', f'--run_dir={run_dir}')
    self.assertEqual(proc.returncode, 2, proc.stderr)  # a usage error
    self.assertLen(proc.stderr.strip().splitlines(), 1, proc.stderr)  # one line, once
    self.assertIn('--data_dir', proc.stderr)
    self.assertIn('/nonexistent/ds', proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)
    self.assertFalse(os.path.exists(run_dir))
    proc = self.run_main('--data_dir=/d', f'--run_dir={run_dir}', '--no_such_flag=1')
    self.assertEqual(proc.returncode, 2)
    self.assertIn('no_such_flag', proc.stderr)
    proc = self.run_main(f'--data_dir={tiny.make_dataset(os.path.join(self.get_temp_dir(), "d"), count=4, resolution=8)}',
                         f'--run_dir={run_dir}', '--batch_size=4', '--gamma=inf')
    self.assertEqual(proc.returncode, 2)
    self.assertEqual(proc.stderr.strip(), 'error: --gamma=inf must be a finite number.')
    self.assertFalse(os.path.exists(run_dir))


if __name__ == '__main__':
  tf.test.main()
