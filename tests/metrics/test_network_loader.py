"""network_loader: kinds, clear errors, the generator protocol check, official .pkl when
sg2tf.convert and the shared fixture are present."""

import importlib.util
import os
import pathlib
import tempfile

import tensorflow as tf

from sg2tf.metrics import network_loader
from tests.metrics import standins

_FIXTURE = (pathlib.Path(__file__).resolve().parents[2] / '..' / 'shared' / 'fixtures' /
            'official_pkl' / 'stylegan2_random_64.pkl')


class NetworkLoaderTest(tf.test.TestCase):

  def test_kinds(self):
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.assertEqual(network_loader.network_kind(d), 'run_dir')
    open(os.path.join(d, 'saved_model.pb'), 'wb').close()
    self.assertEqual(network_loader.network_kind(d), 'saved_model')
    self.assertEqual(network_loader.network_kind('x/net.pkl'), 'official_pkl')
    self.assertEqual(network_loader.network_kind('x/ckpt-12.index'), 'checkpoint')

  def test_errors_name_the_flag(self):
    with self.assertRaisesRegex(network_loader.NetworkLoadError, '--network=.*no such file'):
      network_loader.load_generator('/nonexistent/net.pkl')
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(network_loader.NetworkLoadError, f'--network={d}: '):
      network_loader.load_generator(d)  # an empty directory holds no network

  def test_protocol_check(self):
    network_loader.check_generator(standins.LinearGenerator())
    with self.assertRaisesRegex(network_loader.NetworkLoadError, 'lacks'):
      network_loader.check_generator(object())
    g = standins.LinearGenerator()
    g.c_dim = 10
    with self.assertRaisesRegex(network_loader.NetworkLoadError, 'conditional'):
      network_loader.check_generator(g)

  def test_output_dir(self):
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.assertEqual(network_loader.output_dir_for(d), d)
    self.assertEqual(network_loader.output_dir_for(os.path.join(d, 'n.pkl')), d)

  def test_official_pkl(self):
    if importlib.util.find_spec('sg2tf.convert') is None or not _FIXTURE.is_file():
      self.skipTest('needs sg2tf.convert and ../shared/fixtures/official_pkl')
    G = network_loader.load_generator(str(_FIXTURE), impl='ref')
    images = G(tf.random.normal([2, G.z_dim]), truncation_psi=1.0, noise_mode='const')
    self.assertEqual(images.shape, (2, 64, 64, 3))


if __name__ == '__main__':
  tf.test.main()
