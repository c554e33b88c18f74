"""Native save/load: tf.train.Checkpoint + networks.json round-trip, atomic output, errors."""

import json
import os

import numpy as np
import tensorflow as tf

from sg2tf.networks import Discriminator, Generator, serialization


def _nets():
  kw = dict(img_resolution=8, fmap_base=32, fmap_max=8)
  G = Generator(z_dim=8, w_dim=8, mapping_dim=8, mapping_layers=2, architecture='resnet',
                **kw)
  G_ema = Generator.from_config(G.get_config())
  D = Discriminator(architecture='skip', **kw)
  G.mapping.w_avg.assign(np.arange(8, dtype=np.float32))  # Non-trainable state is saved too.
  return G, D, G_ema


class SerializationTest(tf.test.TestCase):

  def test_round_trip(self):
    G, D, G_ema = _nets()
    out = os.path.join(self.get_temp_dir(), 'nets')
    serialization.save_networks(out, G, D, G_ema, metadata={'note': 'x'})
    with open(os.path.join(out, 'networks.json')) as f:
      self.assertEqual(json.load(f)['note'], 'x')
    G2, D2, G_ema2 = serialization.load_networks(out)
    for a, b in ((G, G2), (D, D2), (G_ema, G_ema2)):
      self.assertEqual(serialization.network_kwargs(a.get_config()),
                       serialization.network_kwargs(b.get_config()))
      for va, vb in zip(a.weights, b.weights):
        self.assertAllEqual(va, vb, msg=va.path)
    z = np.random.RandomState(0).standard_normal([4, 8]).astype(np.float32)
    img = G2(z, noise_mode='const')
    self.assertAllClose(img, G(z, noise_mode='const'))
    self.assertAllClose(D2(img), D(img))
    self.assertEqual(len(serialization.load_networks(out, impl='ref')), 3)  # still accepted

  def test_saved_networks_record_nothing_about_the_machine(self):
    G, D, G_ema = _nets()
    out = os.path.join(self.get_temp_dir(), 'nets_machine')
    serialization.save_networks(out, G, D, G_ema)
    with open(os.path.join(out, 'networks.json')) as f:
      saved = json.load(f)
    self.assertNotIn('impl', saved['G'])
    self.assertNotIn('impl', saved['D'])
    self.assertNotIn('impl', json.dumps(G.get_config()) + json.dumps(D.get_config()))
    # networks.json files of older sg2tf versions carry "impl": loading ignores it.
    saved['G']['impl'], saved['D']['impl'] = 'custom', 'ref'
    with open(os.path.join(out, 'networks.json'), 'w') as f:
      json.dump(saved, f)
    G2, D2, _ = serialization.load_networks(out)
    z = np.random.RandomState(0).standard_normal([2, 8]).astype(np.float32)
    self.assertAllClose(G2(z, noise_mode='const'), G(z, noise_mode='const'))
    self.assertNotIn('impl', G2.get_config())

  def test_training_checkpoint_can_start_from_it(self):
    G, D, G_ema = _nets()
    out = os.path.join(self.get_temp_dir(), 'nets2')
    serialization.save_networks(out, G, D, G_ema)
    G2, D2, G_ema2 = _nets()
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(G=G2, D=D2, G_ema=G_ema2, step=step)
    ckpt.restore(tf.train.latest_checkpoint(out)).expect_partial()
    self.assertAllEqual(G2.synthesis.b8.conv0.conv.weight, G.synthesis.b8.conv0.conv.weight)

  def test_refuses_to_overwrite_and_reports_missing(self):
    G, D, G_ema = _nets()
    out = os.path.join(self.get_temp_dir(), 'nets3')
    serialization.save_networks(out, G, D, G_ema)
    with self.assertRaisesRegex(FileExistsError, 'not empty'):
      serialization.save_networks(out, G, D, G_ema)
    serialization.save_networks(out, G, D, G_ema, overwrite=True)
    self.assertEqual(sorted(os.listdir(self.get_temp_dir())).count('nets3'), 1)
    self.assertFalse([n for n in os.listdir(self.get_temp_dir()) if '.tmp-' in n or '.old-' in n])
    with self.assertRaisesRegex(FileNotFoundError, 'networks.json'):
      serialization.load_networks(self.get_temp_dir())


class CopyWeightsTest(tf.test.TestCase):

  def test_copy_and_mismatch(self):
    kw = dict(z_dim=8, w_dim=8, mapping_layers=2, mapping_dim=8, img_resolution=8,
              img_channels=1, fmap_base=32, fmap_max=8)
    a, b = Generator(**kw), Generator(**kw)
    serialization.copy_weights(a, b, 'G')
    for x, y in zip(a.variables, b.variables):
      self.assertAllEqual(x, y)
    c = Generator(**dict(kw, fmap_max=4))
    with self.assertRaisesRegex(ValueError, 'G: variable .* does not match'):
      serialization.copy_weights(a, c, 'G')


if __name__ == '__main__':
  tf.test.main()
