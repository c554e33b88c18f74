"""Growing networks of configs b-d (GrowingGenerator / GrowingDiscriminator): official
variables (names, shapes, counts), closed forms of the level of detail, the training form,
mixed precision, config / save / export round trips."""

import json
import os

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf import convert_growing
from sg2tf import export
from sg2tf.networks import Discriminator, Generator, GrowingDiscriminator, GrowingGenerator
from sg2tf.networks import growing, serialization
from tests import testutil
from sg2tf import official_variables as official_counts

MANIFEST = testutil.SHARED / 'fixtures' / 'official_growing' / 'manifest.json'
SMALL = dict(img_resolution=32, fmap_base=64, fmap_max=16)
G_SMALL = dict(z_dim=8, w_dim=8, mapping_dim=8, mapping_layers=2, **SMALL)


def official_names(var_map, prefix=''):
  """{official name: official shape} of an sg2tf network (NCHW shapes where transposed)."""
  out = {}
  for name, (var, transform) in var_map.items():
    if name == 'dlatent_avg' or name.startswith('synthesis/noise') or not name.startswith(prefix):
      continue
    shape = tuple(var.shape)
    out[name[len(prefix):]] = (shape[0], shape[3], shape[1], shape[2]) if transform else shape
  return out


def copy_by_path(src, dst):
  """Assigns dst's variables from src's of the same path below the model name."""
  by_path = {v.path.split('/', 1)[1]: v for v in src.variables}
  for v in dst.variables:
    v.assign(by_path[v.path.split('/', 1)[1]])


def randomize(*nets, seed=0):
  rng = np.random.RandomState(seed)
  for net in nets:
    for v in net.variables:
      if 'lod' not in v.path:
        v.assign(rng.standard_normal(v.shape).astype(np.float32) * 0.3)


class OfficialVariablesTest(tf.test.TestCase):

  def test_enumeration_matches_the_official_manifest(self):
    """The independent enumeration (official_counts) equals the variables NVIDIA's code made
    for the fixture pickle (trainables: no lod, dlatent_avg, noise buffers)."""
    if not MANIFEST.exists():
      self.skipTest('fixture not found')
    m = json.loads(MANIFEST.read_text())['config-bcd']
    own = lambda e: sorted((n, tuple(s)) for n, s in e['own_variables']
                           if n not in ('lod', 'dlatent_avg') and not n.startswith('noise'))
    self.assertEqual(own(m['G']['components']['synthesis']),
                     sorted(official_counts.revised_synthesis(64, 56, 512, 48)))
    self.assertEqual(own(m['G']['components']['mapping']),
                     sorted(official_counts.mapping(40, 56, 40, 3)))
    self.assertEqual(own(m['D']), sorted(official_counts.d_stylegan(64, 512, 48)))

  def test_names_and_shapes_at_256(self):
    """Every trainable of the sg2tf networks, under its official name, with the official shape
    (configs b-d widths; 1024^2 counts: tests/test_configs.py)."""
    G = GrowingGenerator(img_resolution=256, fmap_base=8192, c_dim=3)
    D = GrowingDiscriminator(img_resolution=256, fmap_base=8192, c_dim=3)
    g_map = convert_growing.revised_generator_variable_map(G)
    self.assertEqual(official_names(g_map, 'synthesis/'),
                     dict(official_counts.revised_synthesis(256, 512, 8192)))
    self.assertEqual(official_names(g_map, 'mapping/'), dict(official_counts.mapping(c=3)))
    self.assertEqual(official_names(convert_growing.growing_discriminator_variable_map(D)),
                     dict(official_counts.d_stylegan(256, 8192, c=3)))
    n_official = official_counts.count(official_counts.revised_synthesis(256, 512, 8192)) + \
        official_counts.count(official_counts.mapping(c=3))
    self.assertEqual(sum(int(np.prod(v.shape)) for v in G.trainable_variables), n_official)


class LevelOfDetailTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.G = GrowingGenerator(**G_SMALL)
    cls.D = GrowingDiscriminator(**SMALL)
    randomize(cls.G, cls.D)
    cls.z = np.random.RandomState(1).standard_normal([4, 8]).astype(np.float32)
    cls.x = np.random.RandomState(2).uniform(-1, 1, [4, 32, 32, 3]).astype(np.float32)

  def image(self, lod, **kw):
    self.G.set_lod(lod)
    return self.G(self.z, truncation_psi=1.0, noise_mode='const', **kw).numpy()

  @parameterized.parameters((0, 0.25), (1, 0.5), (2, 0.75))
  def test_a_fade_is_the_lerp_of_the_neighbouring_lods(self, k, f):
    lo, hi = self.image(k), self.image(k + 1)
    self.assertAllClose(self.image(k + f), lo + (hi - lo) * f, atol=2e-6)

  @parameterized.parameters(1, 2, 3)
  def test_an_integer_lod_is_the_nearest_upsampled_lower_level(self, k):
    """lod k equals StyleGAN2's 'orig' networks at 32 / 2**k with the same weights (the
    fixture-checked sg2tf.networks.Generator / Discriminator), nearest-upsampled for G and
    on the 2**k box-downsampled image for D."""
    res = 32 >> k
    small_g = Generator(architecture='orig', **dict(G_SMALL, img_resolution=res))
    small_d = Discriminator(architecture='orig', **dict(SMALL, img_resolution=max(res, 8)))
    copy_by_path(self.G, small_g)
    img = small_g(self.z, noise_mode='const').numpy()
    self.assertAllClose(self.image(k), np.repeat(np.repeat(img, 2 ** k, 1), 2 ** k, 2),
                        atol=1e-6)
    if res >= 8:  # sg2tf's D needs >= 8x8; the 4x4 level is D's fromrgb4 + epilogue.
      copy_by_path(self.D, small_d)
      self.D.set_lod(k)
      low = growing.box_downsample(self.x, 2 ** k)
      self.assertAllClose(self.D(self.x), small_d(low), atol=1e-6)
      self.assertAllClose(self.D(low), small_d(low), atol=1e-6)

  def test_out_of_range_lods(self):
    """Below 0: as 0; above the 4x4 level: as the 4x4 level (official recursion)."""
    self.assertAllClose(self.image(-0.5), self.image(0.0))
    self.assertAllClose(self.image(3.5), self.image(3.0), atol=1e-6)

  def test_training_form_gradients(self):
    """One level (what training runs): G at 16x16 and D on 16x16 reals inside tf.function,
    with the second-order R1 gradient, match the full-size graph's values."""
    for net in (self.G, self.D):
      net.set_lod(1.4)
    reals = tf.constant(growing.box_downsample(self.x, 2))

    @tf.function
    def step(reals):
      with tf.GradientTape() as outer:
        img = self.G.synthesis(self.G.mapping(self.z), noise_mode='const', resolution=16)
        with tf.GradientTape() as inner:
          inner.watch(reals)
          real_logits = self.D(reals)
          total = tf.reduce_sum(real_logits)
        r1 = tf.reduce_sum(tf.square(inner.gradient(total, reals)))
        loss = tf.reduce_sum(self.D(img)) + r1
      grads = outer.gradient(loss, self.G.trainable_variables + self.D.trainable_variables)
      return img, real_logits, grads

    img, real_logits, grads = step(reals)
    self.assertEqual(img.shape, [4, 16, 16, 3])
    self.assertAllClose(np.repeat(np.repeat(img, 2, 1), 2, 2), self.image(1.4), atol=1e-6)
    self.assertAllClose(real_logits, self.D(np.repeat(np.repeat(reals, 2, 1), 2, 2)), atol=1e-6)
    names = [v.path for v in self.G.trainable_variables + self.D.trainable_variables]
    used = {n for n, g in zip(names, grads) if g is not None and np.any(np.asarray(g) != 0)}
    for n in names:  # Exactly the layers of the 16x16 and 8x8 levels take part.
      in_level = '/b32/' not in n and 'fromrgb4' not in n and '/b4/torgb/' not in n
      self.assertEqual(n in used, in_level, n)

  def test_mixed_precision(self):
    G16 = GrowingGenerator(num_fp16_res=2, conv_clamp=256, **G_SMALL)
    D16 = GrowingDiscriminator(num_fp16_res=2, conv_clamp=256, **SMALL)
    copy_by_path(self.G, G16)
    copy_by_path(self.D, D16)
    for net in (G16, D16, self.D):
      net.set_lod(0.5)
    img16 = G16(self.z, truncation_psi=1.0, noise_mode='const')
    self.assertAllClose(img16, self.image(0.5), rtol=2e-2, atol=2e-2)
    self.assertAllClose(D16(self.x), self.D(self.x), rtol=2e-2, atol=2e-2)

  def test_config_save_and_export_round_trip(self):
    self.G.set_lod(1.25)
    self.D.set_lod(1.25)
    out = os.path.join(self.get_temp_dir(), 'nets')
    G_ema = GrowingGenerator(**serialization.network_kwargs(self.G.get_config()))
    serialization.copy_weights(self.G, G_ema, 'G_ema')
    serialization.save_networks(out, self.G, self.D, G_ema, overwrite=True)
    G2, D2, G_ema2 = serialization.load_networks(out)
    self.assertIsInstance(G_ema2, GrowingGenerator)
    self.assertIsInstance(D2, GrowingDiscriminator)
    self.assertAllClose(G2.lod, 1.25)
    want = self.image(1.25)
    self.assertAllClose(G_ema2(self.z, truncation_psi=1.0, noise_mode='const'), want)
    self.assertAllClose(D2(self.x), self.D(self.x))
    saved = export.export_generator(G_ema2, os.path.join(self.get_temp_dir(), 'sm'),
                                    overwrite=True)
    sm = tf.saved_model.load(saved)
    got = sm.signatures['generate'](z=tf.constant(self.z), truncation_psi=tf.constant(1.0))
    self.assertAllClose(got['images'], want, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
