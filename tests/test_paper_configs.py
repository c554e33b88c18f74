"""Named configs (Table 1 and Table 2) and the official parameter counts at 1024^2.

config-b .. config-d are the paper's rows with progressive growing now; the no-growing
networks these tests checked as config-b/c/d before are config-b-nogrow .. config-d-nogrow.
"""

import dataclasses
import gc

import numpy as np
import tensorflow as tf

from sg2tf import paper_configs as configs


def _count(variables):
  return int(sum(np.prod(v.shape) for v in variables))


class ConfigsTest(tf.test.TestCase):

  def test_old_module_name_is_this_module(self):
    import sg2tf.configs  # pylint: disable=g-import-not-at-top
    from sg2tf import configs as old  # pylint: disable=g-import-not-at-top
    self.assertIs(old, configs)
    self.assertIs(sg2tf.configs, configs)
    self.assertIs(old.get_config, configs.get_config)

  def test_names(self):
    want = {f'config-{c}' for c in 'abcdef'} | {f'config-{c}-nogrow' for c in 'bcd'} | {
        f'config-e-G{g}-D{d}' for g in ('orig', 'skip', 'resnet')
        for d in ('orig', 'skip', 'resnet')}
    self.assertEqual(set(configs.CONFIGS), want)
    for c in 'abcd':  # run_training.py: configs a-d grow, with networks that support it.
      cfg = configs.CONFIGS[f'config-{c}']
      self.assertTrue(cfg.growing)
      self.assertEqual(cfg.learning_rate, 0.001)
      self.assertEqual((cfg.G.network, cfg.D.network),
                       ('G_style', 'D_basic') if c == 'a' else
                       ('G_synthesis_stylegan_revised', 'D_stylegan'))
      self.assertEqual(cfg.G.fmap_base, 8192)
    for c in 'bcd':
      grow, nogrow = configs.CONFIGS[f'config-{c}'], configs.CONFIGS[f'config-{c}-nogrow']
      self.assertFalse(nogrow.growing)
      self.assertEqual(nogrow.G.network, 'G_synthesis_stylegan2')
      self.assertEqual((nogrow.G.architecture, nogrow.D.architecture), ('orig', 'orig'))
      for key in ('r1_gamma', 'lazy_regularization', 'pl_weight', 'style_mixing_prob'):
        self.assertEqual(getattr(grow, key), getattr(nogrow, key), (c, key))
    self.assertFalse(configs.CONFIGS['config-a'].lazy_regularization)
    self.assertEqual(configs.CONFIGS['config-a'].pl_weight, 0.0)
    self.assertEqual(configs.CONFIGS['config-a'].G.resample_filter, (1, 2, 1))
    self.assertFalse(configs.CONFIGS['config-e'].growing)
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
    # a-d: the counts of the official graphs, from tests/networks/official_counts.py (an
    # enumeration of the official build functions' variables, checked there against the
    # fixture manifest); b-d's G has the variables of config e's skip G, renamed.
    want = {'config-f': (30370060, 2101248, 29012513), 'config-e': (24900764, 2101248, 24038161),
            'config-b': (24900764, 2101248, 23087249), 'config-a': (26219627, 2101248, 23087249)}
    for name, (g_count, mapping_count, d_count) in want.items():
      G, D = configs.build_networks(configs.get_config(name))
      self.assertEqual(_count(G.trainable_weights), g_count, name)
      self.assertEqual(_count(G.mapping.trainable_weights), mapping_count, name)
      self.assertEqual(_count(D.trainable_weights), d_count, name)
      lod = 0 if name in ('config-e', 'config-f') else 1
      self.assertEqual(_count(G.non_trainable_weights),
                       512 + sum(int(np.prod(s)) for s in G.synthesis.noise_shapes) + lod)
      del G, D
      gc.collect()

  def test_every_config_builds_small(self):
    seen = set()
    for name, full in configs.CONFIGS.items():
      kind = (full.G.network, full.G.architecture, full.D.network, full.D.architecture)
      if kind in seen:
        continue  # Same networks at this size; only widths differ.
      seen.add(kind)
      cfg = configs.get_config(name, resolution=8, fmap_base=32, fmap_max=8)
      cfg = dataclasses.replace(cfg, G=dataclasses.replace(cfg.G, z_dim=8, w_dim=8,
                                                           mapping_dim=8))
      G, D = configs.build_networks(cfg)
      img = G(tf.random.normal([4, 8]), noise_mode='none')
      self.assertEqual(D(img).shape, [4, 1], name)


if __name__ == '__main__':
  tf.test.main()
