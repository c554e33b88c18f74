"""Official progressive-growing pickles (configs a-d): the 64x64 fixtures of
../shared/fixtures/official_growing reproduced key by key at every stored lod, with both
modulated-conv paths (configs b-d) and both op implementations; lod honoured and settable;
graph-mode (tf.function) lod switching; synthetic official-format pickles round-trip."""

import contextlib
import json
import os
import pickle
import unittest
from unittest import mock

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf import convert
from sg2tf import convert_growing
from sg2tf.networks import GrowingDiscriminator, GrowingGenerator
from sg2tf.networks import StyleGANDiscriminator, StyleGANGenerator
from tests import test_convert
from tests import testutil

FIXTURE = testutil.SHARED / 'fixtures' / 'official_growing'
IMG_ATOL = 1e-4   # The fixture README's tolerances: images and w ...
D_ATOL = 1e-5     # ... and D logits (std ~0.02-0.05).
# config-a: the stored w_psi05 / img_psi05 truncate layers 0-7 only (psi 0.5 with G_style's
# default cutoff 8), although the fixture README says "cutoff = number of layers" (10).
PSI05_CUTOFF = {'config-bcd': None, 'config-a': 8}


def _nchw(x):
  return np.transpose(np.asarray(x), [0, 3, 1, 2])


def _nhwc(x):
  return np.transpose(np.asarray(x), [0, 2, 3, 1])


def _key(lod):
  return '%03d' % int(round(float(lod) * 100))


def _load(name):
  path = FIXTURE / f'{name}_official_64.pkl'
  if not path.exists():
    raise unittest.SkipTest(f'fixture not found: {FIXTURE}')
  return convert.load_official_pkl(path), dict(np.load(FIXTURE / f'{name}_reference.npz'))


class _FixtureChecks:
  """Shared by the two fixture test cases (a mixin, so it is not collected itself)."""
  NAME = None

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    (cls.G, cls.D, cls.G_ema), cls.ref = _load(cls.NAME)

  def tearDown(self):
    for net in (self.G, self.D, self.G_ema):
      net.set_lod(float(self.ref['pkl_lod']))
    super().tearDown()

  def _impl(self, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
      return contextlib.nullcontext()
    return testutil.reference_ops()

  def check_all_keys(self, fused):
    """Every key of the reference file at every lod (G_ema, G and D)."""
    ref, z, G_ema = self.ref, self.ref['z'], self.G_ema
    cut = PSI05_CUTOFF[self.NAME]
    ws = G_ema.mapping(z)
    self.assertAllClose(ws, ref['w'], atol=IMG_ATOL)
    truncated = {'w_psi05': G_ema.truncate(ws, 0.5, cut),
                 'w_psi05_cut4': G_ema.truncate(ws, 0.5, 4), 'default': G_ema.truncate(ws)}
    self.assertAllClose(truncated['w_psi05'], ref['w_psi05'], atol=IMG_ATOL)
    self.assertAllClose(truncated['w_psi05_cut4'], ref['w_psi05_cut4'], atol=IMG_ATOL)
    # One synthesis call per lod for the four truncations (G has no cross-sample ops).
    stacked = tf.concat([ws, truncated['w_psi05'], truncated['w_psi05_cut4'],
                         truncated['default']], axis=0)
    kw = dict(noise_mode='const', fused_modconv=fused)
    checked = {'w', 'w_psi05', 'w_psi05_cut4', 'z', 'd_in', 'lods', 'pkl_lod'}
    for lod in ref['lods']:
      L = _key(lod)
      for net in (self.G, self.D, G_ema):
        net.set_lod(lod)
      imgs = np.split(_nchw(G_ema.synthesis(stacked, **kw)), 4)
      for img, key in zip(imgs, ('img_psi1', 'img_psi05', 'img_psi05_cut4', 'img_default')):
        self.assertAllClose(img, ref[f'{key}_lod{L}'], atol=IMG_ATOL, msg=f'{key}_lod{L}')
        checked.add(f'{key}_lod{L}')
      img_g = _nchw(self.G(z, truncation_psi=1.0, **kw))
      self.assertAllClose(img_g, ref[f'img_G_psi1_lod{L}'], atol=IMG_ATOL)
      self.assertAllClose(self.D(_nhwc(ref['d_in'])), ref[f'd_out_lod{L}'], atol=D_ATOL)
      self.assertAllClose(self.D(_nhwc(ref[f'img_psi1_lod{L}'])), ref[f'd_out_gen_lod{L}'],
                          atol=D_ATOL)
      checked |= {f'img_G_psi1_lod{L}', f'd_out_lod{L}', f'd_out_gen_lod{L}'}
    self.assertEqual(checked, set(ref))

  def test_stored_lod_and_call_defaults(self):
    """Loaded as saved (lod 1.5): G(z) with no truncation arguments uses the build
    function's own defaults; psi 0.5 alone keeps the default cutoff."""
    ref, z = self.ref, self.ref['z']
    self.assertAllClose(self.G_ema.lod, 1.5)
    self.assertAllClose(self.G.lod, 1.5)
    self.assertAllClose(self.D.lod, 1.5)
    img = self.G_ema(z, noise_mode='const')
    self.assertAllClose(_nchw(img), ref['img_default_lod150'], atol=IMG_ATOL)
    self.assertAllClose(_nchw(self.G_ema(z, truncation_psi=0.5, noise_mode='const')),
                        ref['img_psi05_lod150'], atol=IMG_ATOL)
    self.assertAllClose(self.D(_nhwc(ref['d_in'])), ref['d_out_lod150'], atol=D_ATOL)

  def test_graph_mode_follows_the_lod_variable(self):
    """Inside one tf.function (tf.switch_case over the levels) the lod set later is used."""
    ref, z = self.ref, self.ref['z']
    gen = tf.function(lambda z: self.G_ema(z, truncation_psi=1.0, noise_mode='const'))
    dis = tf.function(self.D)
    for lod in (2.5, 0.0, 4.0):
      self.G_ema.set_lod(lod)
      self.D.set_lod(lod)
      self.assertAllClose(_nchw(gen(z)), ref[f'img_psi1_lod{_key(lod)}'], atol=IMG_ATOL)
      self.assertAllClose(dis(_nhwc(ref['d_in'])), ref[f'd_out_lod{_key(lod)}'], atol=D_ATOL)

  def test_one_level_calls_equal_full_size_calls(self):
    """Training form: G at one level's resolution, nearest-upsampled, equals the full-size
    image; D on the level's images equals D on them nearest-upsampled to 64x64."""
    z = self.ref['z']
    for lod, res in ((1.5, 32), (3.0, 8), (2.0, 16)):
      self.G_ema.set_lod(lod)
      self.D.set_lod(lod)
      full = self.G_ema(z, truncation_psi=1.0, noise_mode='const')
      low = self.G_ema(z, truncation_psi=1.0, noise_mode='const', resolution=res)
      self.assertEqual(low.shape, [8, res, res, 3])
      up = np.repeat(np.repeat(np.asarray(low), 64 // res, axis=1), 64 // res, axis=2)
      self.assertAllClose(up, full, atol=1e-6)
      self.assertAllClose(self.D(low), self.D(up), atol=1e-6)
    with self.assertRaisesRegex(ValueError, 'need 0 <= lod <= 1'):  # lod is 2 here
      self.G_ema.synthesis(self.G_ema.mapping(z), resolution=64, noise_mode='const')
    with self.assertRaisesRegex(ValueError, 'need 3 <= lod <= 4'):
      self.D(tf.zeros([8, 8, 8, 3]))


class RevisedFixtureTest(_FixtureChecks, tf.test.TestCase, parameterized.TestCase):
  """Configs b-d: G_main + G_synthesis_stylegan_revised, D_stylegan."""
  NAME = 'config-bcd'

  def test_classes_and_manifest(self):
    self.assertIsInstance(self.G, GrowingGenerator)
    self.assertIsInstance(self.D, GrowingDiscriminator)
    _check_manifest(self, self.NAME)

  @parameterized.product(impl=['ref', 'custom'], fused=[False, True])
  def test_every_key(self, impl, fused):
    with self._impl(impl):
      self.check_all_keys(fused)


class StyleFixtureTest(_FixtureChecks, tf.test.TestCase, parameterized.TestCase):
  """Config a (and StyleGAN's pickles): G_style, D_basic."""
  NAME = 'config-a'

  def test_classes_and_manifest(self):
    self.assertIsInstance(self.G, StyleGANGenerator)
    self.assertIsInstance(self.D, StyleGANDiscriminator)
    self.assertEqual((self.G_ema.truncation_psi, self.G_ema.truncation_cutoff), (0.7, 8))
    _check_manifest(self, self.NAME)

  @parameterized.parameters('ref', 'custom')
  def test_every_key(self, impl):
    with self._impl(impl):
      self.check_all_keys(None)


def _check_manifest(test, name):
  """Every own variable of the pickle, by name and shape, is imported (official order)."""
  manifest = json.loads((FIXTURE / 'manifest.json').read_text())[name]
  g, d, gs = convert.read_pickle(FIXTURE / f'{name}_official_64.pkl')
  for stub, key in ((g, 'G'), (d, 'D'), (gs, 'Gs')):
    def flat(entry, prefix=''):
      out = [(prefix + n, tuple(s)) for n, s in entry['own_variables']]
      for comp, sub in entry.get('components', {}).items():
        out += flat(sub, prefix + comp + '/')
      return out
    want = flat(manifest[key])
    got = [(n, v.shape) for n, v in convert.flat_vars(stub).items()]
    test.assertEqual(sorted(got), sorted(want))
  G, D, _ = convert.load_official_pkl(FIXTURE / f'{name}_official_64.pkl')
  g_map = (convert_growing.style_generator_variable_map if name == 'config-a'
           else convert_growing.revised_generator_variable_map)(G)
  d_map = (convert_growing.basic_discriminator_variable_map if name == 'config-a'
           else convert_growing.growing_discriminator_variable_map)(D)
  lods = {'lod', 'synthesis/lod'}
  test.assertEqual(set(g_map), set(convert.flat_vars(g)) - lods)
  test.assertEqual(set(d_map), set(convert.flat_vars(d)) - lods)
  # Every network variable is an imported one (or lod): nothing is left at its init.
  mapped = {id(v) for v, _ in g_map.values()} | {id(G.lod)}
  test.assertEqual({id(v) for v in G.variables}, mapped)
  test.assertEqual({id(v) for v in D.variables}, {id(v) for v, _ in d_map.values()} | {id(D.lod)})


# --- Synthetic pickles in the official format, written from sg2tf networks. ---

def _write_growing_pickle(path, G, D, G_ema, g_func, synth_func, d_func, g_kwargs, d_kwargs,
                          g_map, d_map, lod):
  cls, restore = test_convert._official_class()  # pylint: disable=protected-access
  try:
    def gnet(name, g):
      vals = test_convert._official_values(g_map(g))  # pylint: disable=protected-access
      own = {'lod': np.float32(lod), 'dlatent_avg': vals.pop('dlatent_avg')}
      comp = {k: {n[len(k) + 1:]: v for n, v in vals.items() if n.startswith(k + '/')}
              for k in ('mapping', 'synthesis')}
      comp['synthesis'] = {'lod': np.float32(lod), **comp['synthesis']}
      comps = {
          'synthesis': test_convert._net(cls, 'G_synthesis', synth_func, g_kwargs,  # pylint: disable=protected-access
                                         comp['synthesis']),
          'mapping': test_convert._net(cls, 'G_mapping', 'G_mapping',  # pylint: disable=protected-access
                                       dict(g_kwargs, dlatent_broadcast=g.num_ws),
                                       comp['mapping'])}
      return test_convert._net(cls, name, g_func, g_kwargs, own, comps)  # pylint: disable=protected-access
    d_vals = {'lod': np.float32(lod), **test_convert._official_values(d_map(D))}  # pylint: disable=protected-access
    d = test_convert._net(cls, 'D', d_func, d_kwargs, d_vals)  # pylint: disable=protected-access
    with open(path, 'wb') as f:
      pickle.dump((gnet('G', G), d, gnet('Gs', G_ema)), f, protocol=4)
  finally:
    restore()


class SyntheticGrowingPickleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('revised', 0), ('revised', 3), ('style', 0), ('style', 2))
  def test_round_trip(self, family, c_dim):
    common = dict(c_dim=c_dim, img_resolution=16, fmap_base=32, fmap_max=8)
    gk = dict(z_dim=8, w_dim=8, mapping_dim=8, mapping_layers=2, **common)
    if family == 'revised':
      G, G_ema, D = GrowingGenerator(**gk), GrowingGenerator(**gk), GrowingDiscriminator(**common)
      funcs = ('G_main', 'G_synthesis_stylegan_revised', 'D_stylegan')
      maps = (convert_growing.revised_generator_variable_map,
              convert_growing.growing_discriminator_variable_map)
      extra_g = dict(synthesis_func='G_synthesis_stylegan_revised')
    else:
      G, G_ema, D = StyleGANGenerator(**gk), StyleGANGenerator(**gk), StyleGANDiscriminator(**common)
      funcs = ('G_style', 'G_synthesis', 'D_basic')
      maps = (convert_growing.style_generator_variable_map,
              convert_growing.basic_discriminator_variable_map)
      extra_g = {}
    rng = np.random.RandomState(0)
    for v in G.weights + G_ema.weights + D.weights:
      v.assign(rng.standard_normal(v.shape).astype(np.float32) * 0.5)
    g_kwargs = dict(latent_size=8, label_size=c_dim, dlatent_size=8, mapping_fmaps=8,
                    mapping_layers=2, resolution=16, num_channels=3, fmap_base=32, fmap_max=8,
                    **extra_g)
    d_kwargs = dict(label_size=c_dim, resolution=16, num_channels=3, fmap_base=32, fmap_max=8)
    path = os.path.join(self.get_temp_dir(), f'{family}{c_dim}.pkl')
    _write_growing_pickle(path, G, D, G_ema, *funcs, g_kwargs, d_kwargs, *maps, lod=0.75)
    G2, D2, G_ema2 = convert.load_official_pkl(path)
    self.assertAllClose(G_ema2.lod, 0.75)
    for net in (G, G_ema, D):
      net.set_lod(0.75)
    z = np.random.RandomState(1).standard_normal([4, 8]).astype(np.float32)
    c = np.eye(max(c_dim, 1), dtype=np.float32)[[0, 1, 0, 1]][:, :c_dim] if c_dim else None
    for a, b in ((G, G2), (G_ema, G_ema2)):
      self.assertAllClose(b(z, c, noise_mode='const', truncation_psi=0.7),
                          a(z, c, noise_mode='const', truncation_psi=0.7), atol=1e-5)
    img = G(z, c, noise_mode='const')
    self.assertAllClose(D2(img, c), D(img, c), atol=1e-5)

  def test_unsupported_variants_are_named(self):
    G = StyleGANGenerator(z_dim=8, w_dim=8, mapping_dim=8, mapping_layers=2, img_resolution=8,
                          fmap_base=16, fmap_max=8)
    D = StyleGANDiscriminator(img_resolution=8, fmap_base=16, fmap_max=8)
    base = dict(latent_size=8, dlatent_size=8, mapping_fmaps=8, mapping_layers=2, resolution=8,
                num_channels=3, fmap_base=16, fmap_max=8)
    path = os.path.join(self.get_temp_dir(), 'variant.pkl')
    maps = (convert_growing.style_generator_variable_map,
            convert_growing.basic_discriminator_variable_map)
    for bad, msg in ((dict(use_pixel_norm=True), 'use_pixel_norm=True'),
                     (dict(structure='fixed'), "structure='fixed'"),
                     (dict(nonlinearity='tanh'), "nonlinearity 'tanh'")):
      _write_growing_pickle(path, G, D, G, 'G_style', 'G_synthesis', 'D_basic', dict(base, **bad),
                            dict(resolution=8, num_channels=3, fmap_base=16, fmap_max=8), *maps,
                            lod=0.0)
      with self.assertRaisesRegex(convert.OfficialPickleError, msg):
        convert.load_official_pkl(path)
    # A synthesis component of another kind than G_main's synthesis_func says.
    _write_growing_pickle(path, G, D, G, 'G_main', 'G_synthesis', 'D_basic', base,
                          dict(resolution=8, num_channels=3), *maps, lod=0.0)
    with self.assertRaisesRegex(convert.OfficialPickleError, "built by 'G_synthesis'"):
      convert.load_official_pkl(path)


if __name__ == '__main__':
  tf.test.main()


class GrowingBadPickleTest(tf.test.TestCase, parameterized.TestCase):
  """The growing importers refuse absurd static kwargs from the shapes alone, before any
  network is built (as test_convert.BadPickleTest does for StyleGAN2 pickles)."""

  @parameterized.parameters('config-bcd', 'config-a')
  def test_huge_static_kwargs_are_refused_before_building(self, name):
    src = FIXTURE / f'{name}_official_64.pkl'
    if not src.exists():
      self.skipTest(f'fixture not found: {FIXTURE}')
    d = self.get_temp_dir()
    built = AssertionError('a network was built')
    cases = [({'resolution': 32768}, None, r'describe resolutions \[4, 8, .*, 32768\]'),
             ({'latent_size': 100000}, None,
              r"'mapping/Dense0/weight' has shape \[\d+, \d+\] but the static kwargs imply "
              r'\[100000, \d+\]'),
             (None, {'resolution': 1 << 15}, 'D: the static kwargs describe resolutions')]
    for i, (g_kwargs, d_kwargs, regex) in enumerate(cases):
      path = test_convert.rewrite_fixture(os.path.join(d, f'{i}.pkl'), g_kwargs, d_kwargs,
                                          source=src)
      with mock.patch.object(GrowingGenerator, '__init__', side_effect=built), \
          mock.patch.object(StyleGANGenerator, '__init__', side_effect=built), \
          mock.patch.object(GrowingDiscriminator, '__init__', side_effect=built), \
          mock.patch.object(StyleGANDiscriminator, '__init__', side_effect=built):
        with self.assertRaisesRegex(convert.OfficialPickleError, regex):
          convert.load_official_pkl(path)
