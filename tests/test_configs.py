"""Named configs (Table 1 and Table 2) and the official parameter counts at 1024^2."""

import dataclasses
import gc

import numpy as np
import tensorflow as tf

from sg2tf import configs


def _count(variables):
  return int(sum(np.prod(v.shape) for v in variables))


class ConfigsTest(tf.test.TestCase):

  def test_names(self):
    want = {f'config-{c}' for c in 'bcdef'} | {
        f'config-e-G{g}-D{d}' for g in ('orig', 'skip', 'resnet')
        for d in ('orig', 'skip', 'resnet')}
    self.assertEqual(set(configs.CONFIGS), want)
    self.assertEqual(configs.CONFIGS['config-e-Gresnet-Dskip'].G.architecture, 'resnet')
    self.assertEqual(configs.CONFIGS['config-e-Gresnet-Dskip'].D.architecture, 'skip')
    self.assertEqual(configs.CONFIGS['config-e'].r1_gamma, 100.0)
    self.assertFalse(configs.CONFIGS['config-b'].lazy_regularization)
    self.assertEqual(configs.CONFIGS['config-c'].pl_weight, 0.0)
    self.assertEqual(configs.CONFIGS['config-d'].pl_weight, 2.0)

  def test_frozen_and_overrides(self):
    cfg = configs.get_config('config-f', resolution=64, fmap_max=128)
    self.assertEqual((cfg.G.img_resolution, cfg.D.img_resolution), (64, 64))
    self.assertEqual((cfg.G.fmap_max, cfg.D.fmap_max), (128, 128))
    with self.assertRaises(dataclasses.FrozenInstanceError):
      cfg.G.fmap_base = 1
    with self.assertRaisesRegex(ValueError, 'unknown network config'):
      configs.get_config('config-g')
    with self.assertRaisesRegex(ValueError, 'z_dim'):
      configs.get_config('config-f', z_dim=3)

  def test_official_parameter_counts_at_1024(self):
    """Trainable parameters only (noise buffers and w_avg are non-trainable)."""
    want = {'config-f': (30370060, 2101248, 29012513), 'config-e': (24900764, 2101248, 24038161)}
    for name, (g_count, mapping_count, d_count) in want.items():
      G, D = configs.build_networks(configs.get_config(name))
      self.assertEqual(_count(G.trainable_weights), g_count, name)
      self.assertEqual(_count(G.mapping.trainable_weights), mapping_count, name)
      self.assertEqual(_count(D.trainable_weights), d_count, name)
      self.assertEqual(_count(G.non_trainable_weights),
                       512 + sum(int(np.prod(s)) for s in G.synthesis.noise_shapes))
      del G, D
      gc.collect()

  def test_every_config_builds_small(self):
    seen = set()
    for name, full in configs.CONFIGS.items():
      if (full.G.architecture, full.D.architecture) in seen:
        continue  # Same networks at this size; only widths differ.
      seen.add((full.G.architecture, full.D.architecture))
      cfg = configs.get_config(name, resolution=8, fmap_base=32, fmap_max=8)
      cfg = dataclasses.replace(cfg, G=dataclasses.replace(cfg.G, z_dim=8, w_dim=8,
                                                           mapping_dim=8))
      G, D = configs.build_networks(cfg)
      img = G(tf.random.normal([4, 8]), noise_mode='none')
      self.assertEqual(D(img).shape, [4, 1], name)


if __name__ == '__main__':
  tf.test.main()
