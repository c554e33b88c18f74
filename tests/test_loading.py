"""sg2tf.loading: kinds, clear errors, the generator protocol check, official .pkl when
sg2tf.convert and the shared fixture are present."""

import importlib.util
import os
import pathlib
import tempfile

import tensorflow as tf

from sg2tf import loading
from tests.metrics import standins

_FIXTURE = (pathlib.Path(__file__).resolve().parents[1] / '..' / 'shared' / 'fixtures' /
            'official_pkl' / 'stylegan2_random_64.pkl')


class NetworkLoaderTest(tf.test.TestCase):

  def test_kinds(self):
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.assertEqual(loading.network_kind(d), 'run_dir')
    open(os.path.join(d, 'saved_model.pb'), 'wb').close()
    self.assertEqual(loading.network_kind(d), 'saved_model')
    self.assertEqual(loading.network_kind('x/net.pkl'), 'official_pkl')
    self.assertEqual(loading.network_kind('x/ckpt-12.index'), 'checkpoint')

  def test_errors_name_the_flag(self):
    with self.assertRaisesRegex(loading.NetworkLoadError, '--network=.*no such file'):
      loading.load_generator('/nonexistent/net.pkl')
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(loading.NetworkLoadError, f'--network={d}: '):
      loading.load_generator(d)  # an empty directory holds no network

  def test_protocol_check(self):
    loading.check_generator(standins.LinearGenerator())
    with self.assertRaisesRegex(loading.NetworkLoadError, 'lacks'):
      loading.check_generator(object())
    g = standins.LinearGenerator()
    g.c_dim = 10
    with self.assertRaisesRegex(loading.NetworkLoadError, 'conditional'):
      loading.check_generator(g)

  def test_run_dir_checkpoint_and_network_dir(self):
    import numpy as np  # pylint: disable=g-import-not-at-top
    from sg2tf import paper_configs as configs  # pylint: disable=g-import-not-at-top
    from sg2tf.networks import Discriminator, Generator  # pylint: disable=g-import-not-at-top
    from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
    from sg2tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
    run = tempfile.mkdtemp(dir=self.get_temp_dir())
    g_cfg = configs.GeneratorConfig(z_dim=8, w_dim=8, c_dim=2, img_resolution=8,
                                    mapping_layers=1, mapping_dim=8, fmap_base=16, fmap_max=8)
    config_lib.write_config(config_lib.TrainConfig(
        run_dir=run, data=config_lib.DataConfig(data_dir='unused'), G=g_cfg))
    G, G_ema = Generator(**g_cfg.kwargs()), Generator(**g_cfg.kwargs())
    D = Discriminator(c_dim=2, img_resolution=8, fmap_base=16, fmap_max=8)
    G_ema.mapping.w_avg.assign(np.arange(8, dtype=np.float32))
    step = tf.Variable(3, dtype=tf.int64)
    tf.train.CheckpointManager(tf.train.Checkpoint(G=G, D=D, G_ema=G_ema, step=step),
                               os.path.join(run, 'checkpoints'), 2).save(checkpoint_number=64)
    prefix = os.path.join(run, 'checkpoints', 'ckpt-64')
    z, c = np.ones([1, 8], np.float32), np.eye(2, dtype=np.float32)[:1]
    want = G_ema(z, c, noise_mode='const')
    for path in (run, prefix, prefix + '.index'):
      g = loading.load_generator(path, impl='ref', allow_conditional=True)
      self.assertAllClose(g(z, c, noise_mode='const'), want, msg=path)  # the EMA weights
    with self.assertRaisesRegex(loading.NetworkLoadError, 'conditional'):
      loading.load_generator(run, impl='ref')
    # A network directory, and a run directory with only snapshots.
    snaps = tempfile.mkdtemp(dir=self.get_temp_dir())
    serialization.save_networks(os.path.join(snaps, 'network-snapshot-000001'), G, D, G_ema)
    self.assertEqual(loading.network_kind(
        os.path.join(snaps, 'network-snapshot-000001')), 'network_dir')
    for path in (snaps, os.path.join(snaps, 'network-snapshot-000001')):
      g = loading.load_generator(path, impl='ref', allow_conditional=True)
      self.assertAllClose(g(z, c, noise_mode='const'), want, msg=path)
    # A config that does not match the checkpoint.
    config_lib.write_config(config_lib.TrainConfig(
        run_dir=run, data=config_lib.DataConfig(data_dir='unused'),
        G=configs.GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=2,
                                  mapping_dim=8, fmap_base=16, fmap_max=8)))
    with self.assertRaisesRegex(loading.NetworkLoadError, 'ckpt-64: the checkpoint does '
                                'not hold a G_ema matching'):
      loading.load_generator(run, impl='ref')
    lonely = tf.train.Checkpoint(G_ema=G_ema).write(os.path.join(snaps, 'lonely', 'ckpt-1'))
    with self.assertRaisesRegex(loading.NetworkLoadError, 'no config.json'):
      loading.load_generator(lonely + '.index')

  def test_output_dir(self):
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.assertEqual(loading.output_dir_for(d), d)
    self.assertEqual(loading.output_dir_for(os.path.join(d, 'n.pkl')), d)

  def test_official_pkl(self):
    if importlib.util.find_spec('sg2tf.convert') is None or not _FIXTURE.is_file():
      self.skipTest('needs sg2tf.convert and ../shared/fixtures/official_pkl')
    G = loading.load_generator(str(_FIXTURE), impl='ref')
    images = G(tf.random.normal([2, G.z_dim]), truncation_psi=1.0, noise_mode='const')
    self.assertEqual(images.shape, (2, 64, 64, 3))


if __name__ == '__main__':
  tf.test.main()
