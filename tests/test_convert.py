"""Official pickle import: the 64x64 fixture (README in ../shared/fixtures/official_pkl) for
both modconv paths and both op impls; unsafe pickles are refused and run nothing; synthetic
official-format pickles of other architectures; static kwargs; the CLI."""

import hashlib
import os
import pathlib
import pickle
import subprocess
import sys
import time
import types
import unittest
from unittest import mock

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf import convert
from sg2tf.networks import Discriminator, Generator, serialization
from sg2tf.networks import discriminator as discriminator_lib
from sg2tf.networks import generator as generator_lib
from tests import testutil

FIXTURE = testutil.SHARED / 'fixtures' / 'official_pkl'
PKL = FIXTURE / 'stylegan2_random_64.pkl'
ATOL = 1e-4  # The fixture README's acceptance; do not loosen (mbstd mistakes are ~1e-3).


def _nchw(x):
  return np.transpose(np.asarray(x), [0, 3, 1, 2])


def _nhwc(x):
  return np.transpose(np.asarray(x), [0, 2, 3, 1])


class FixtureTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if not PKL.exists():
      raise unittest.SkipTest(f'fixture not found: {FIXTURE}')
    cls.G, cls.D, cls.G_ema = convert.load_official_pkl(PKL, impl='ref')
    cls.ref = dict(np.load(FIXTURE / 'reference.npz'))

  def _impl(self, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)

  def test_variables_match_manifest(self):
    g, d, gs = convert.read_pickle(PKL)
    self.assertLen(convert.flat_vars(gs), 93)
    self.assertLen(convert.flat_vars(d), 28)
    self.assertEqual(self.G_ema.num_ws, 10)
    self.assertEqual(self.G_ema.synthesis.b64.conv1.conv.weight.shape, (3, 3, 10, 10))
    self.assertEqual(g.build_func_name, 'G_main')

  @parameterized.product(impl=['ref', 'custom'], fused=[False, True])
  def test_generator(self, impl, fused):
    self._impl(impl)
    z, ref = self.ref['z'], self.ref
    self.assertAllClose(self.G_ema.mapping(z, truncation_psi=1.0, impl=impl), ref['w'], atol=ATOL)
    self.assertAllClose(self.G_ema.mapping(z, truncation_psi=0.5, impl=impl), ref['w_psi05'],
                        atol=ATOL)
    kw = dict(noise_mode='const', fused_modconv=fused, impl=impl)
    self.assertAllClose(_nchw(self.G_ema(z, truncation_psi=1.0, **kw)), ref['img_psi1'], atol=ATOL)
    self.assertAllClose(_nchw(self.G_ema(z, truncation_psi=0.5, **kw)), ref['img_psi05'],
                        atol=ATOL)
    self.assertAllClose(_nchw(self.G(z, truncation_psi=1.0, **kw)), ref['img_G_psi1'], atol=ATOL)
    self.assertAllClose(_nchw(self.G_ema.synthesis(ref['w'], **kw)), ref['img_psi1'], atol=ATOL)

  @parameterized.parameters('ref', 'custom')
  def test_discriminator(self, impl):
    self._impl(impl)
    self.assertAllClose(self.D(_nhwc(self.ref['d_in']), impl=impl), self.ref['d_out'], atol=ATOL)
    self.assertAllClose(self.D(_nhwc(self.ref['img_psi1']), impl=impl), self.ref['d_out_gen'],
                        atol=ATOL)

  def test_cli_writes_a_loadable_checkpoint(self):
    out = os.path.join(self.get_temp_dir(), 'converted')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(testutil.REPO))
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.convert', f'--pkl={PKL}', f'--out={out}',
                           '--impl=ref'], capture_output=True, text=True, env=env, check=False,
                          cwd=str(testutil.REPO), timeout=300)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    G, D, G_ema = serialization.load_networks(out)
    img = G_ema(self.ref['z'], noise_mode='const', fused_modconv=False)
    self.assertAllClose(_nchw(img), self.ref['img_psi1'], atol=ATOL)
    self.assertAllClose(D(_nhwc(self.ref['d_in'])), self.ref['d_out'], atol=ATOL)
    self.assertAllEqual(G.mapping.w_avg, self.G.mapping.w_avg)
    self.assertEqual(serialization.load_network_config(out)['source']['sha256'],
                     hashlib.sha256(pathlib.Path(PKL).read_bytes()).hexdigest())


class _Evil:

  def __init__(self, func, arg):
    self.func, self.arg = func, arg

  def __reduce__(self):
    return (self.func, (self.arg,))


class UnsafePickleTest(tf.test.TestCase):

  def _check_refused(self, payload, marker, forbidden):
    path = os.path.join(self.get_temp_dir(), 'evil.pkl')
    with open(path, 'wb') as f:
      f.write(payload)
    with self.assertRaisesRegex(convert.OfficialPickleError, f'forbidden global {forbidden}'):
      convert.load_official_pkl(path)
    self.assertFalse(os.path.exists(marker), 'the pickle ran code')

  def test_os_system_is_refused(self):
    marker = os.path.join(self.get_temp_dir(), 'pwned_system')
    payload = pickle.dumps((_Evil(os.system, f'touch {marker}'), 1, 2), protocol=4)
    self._check_refused(payload, marker, os.system.__module__ + '.system')

  def test_builtins_eval_is_refused(self):
    marker = os.path.join(self.get_temp_dir(), 'pwned_eval')
    payload = pickle.dumps(_Evil(eval, f'open({marker!r}, "w").close()'), protocol=4)
    self._check_refused(payload, marker, 'builtins.eval')

  def test_not_a_pickle(self):
    path = os.path.join(self.get_temp_dir(), 'junk.pkl')
    with open(path, 'wb') as f:
      f.write(b'not a pickle at all')
    with self.assertRaisesRegex(convert.OfficialPickleError, 'junk.pkl'):
      convert.load_official_pkl(path)
    with self.assertRaisesRegex(FileNotFoundError, 'missing.pkl'):
      convert.load_official_pkl(os.path.join(self.get_temp_dir(), 'missing.pkl'))


# --- Synthetic pickles in the official format, written from sg2tf networks. ---

def _official_class():
  """A class that pickles as the global dnnlib.tflib.network.Network."""
  names = ['dnnlib', 'dnnlib.tflib', 'dnnlib.tflib.network']
  saved = {n: sys.modules.get(n) for n in names}
  mod = types.ModuleType('dnnlib.tflib.network')
  network = type('Network', (), {'__module__': 'dnnlib.tflib.network'})
  mod.Network = network
  for n in names:
    sys.modules[n] = mod if n == names[-1] else types.ModuleType(n)

  def restore():
    for n, m in saved.items():
      if m is None:
        sys.modules.pop(n, None)
      else:
        sys.modules[n] = m
  return network, restore


def _official_values(var_map):
  out = {}
  for name, (var, transform) in var_map.items():
    v = var.numpy()
    out[name] = np.transpose(v, [0, 3, 1, 2]) if transform is not None else v
  return out


def _net(cls, name, func, kwargs, variables, components=None, src='pass'):
  obj = cls.__new__(cls)
  obj.__dict__.update(version=4, name=name, static_kwargs=dict(kwargs),
                      components=components or {}, build_module_src=src,
                      build_func_name=func, variables=list(variables.items()))
  return obj


def write_official_pickle(path, G, D, G_ema, g_kwargs, d_kwargs, src='pass'):
  cls, restore = _official_class()
  try:
    def gnet(name, g):
      vals = _official_values(convert.generator_variable_map(g))
      own = {'lod': np.float32(0), 'dlatent_avg': vals.pop('dlatent_avg')}
      comp = {k: {n[len(k) + 1:]: v for n, v in vals.items() if n.startswith(k + '/')}
              for k in ('mapping', 'synthesis')}
      comps = {
          'synthesis': _net(cls, 'G_synthesis', 'G_synthesis_stylegan2', g_kwargs,
                            comp['synthesis'], src=src),
          'mapping': _net(cls, 'G_mapping', 'G_mapping',
                          dict(g_kwargs, dlatent_broadcast=g.num_ws), comp['mapping'], src=src)}
      return _net(cls, name, 'G_main', g_kwargs, own, comps, src=src)
    d = _net(cls, 'D', 'D_stylegan2', d_kwargs,
             _official_values(convert.discriminator_variable_map(D)), src=src)
    with open(path, 'wb') as f:
      pickle.dump((gnet('G', G), d, gnet('Gs', G_ema)), f, protocol=4)
  finally:
    restore()


class SyntheticPickleTest(tf.test.TestCase, parameterized.TestCase):

  def _nets(self, g_arch, d_arch, c_dim):
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, mapping_dim=8, img_resolution=16,
                  architecture=g_arch, fmap_base=32, fmap_max=8)
    G_ema = Generator.from_config(G.get_config())
    D = Discriminator(c_dim=c_dim, img_resolution=16, architecture=d_arch, fmap_base=32,
                      fmap_max=8)
    rng = np.random.RandomState(0)
    for v in G_ema.weights + G.weights:
      v.assign(rng.standard_normal(v.shape).astype(np.float32) * 0.5)
    g_kwargs = dict(latent_size=8, label_size=c_dim, dlatent_size=8, mapping_fmaps=8,
                    resolution=16, num_channels=3, architecture=g_arch, fmap_base=32, fmap_max=8)
    d_kwargs = dict(label_size=c_dim, resolution=16, num_channels=3, architecture=d_arch,
                    fmap_base=32, fmap_max=8)
    return G, D, G_ema, g_kwargs, d_kwargs

  @parameterized.parameters(('resnet', 'skip', 0), ('orig', 'orig', 3), ('skip', 'resnet', 2))
  def test_round_trip(self, g_arch, d_arch, c_dim):
    G, D, G_ema, gk, dk = self._nets(g_arch, d_arch, c_dim)
    path = os.path.join(self.get_temp_dir(), f'{g_arch}_{d_arch}.pkl')
    marker = os.path.join(self.get_temp_dir(), f'src_ran_{g_arch}')
    write_official_pickle(path, G, D, G_ema, gk, dk, src=f'open({marker!r}, "w").close()')
    G2, D2, G_ema2 = convert.load_official_pkl(path, impl='ref')
    self.assertFalse(os.path.exists(marker), 'build_module_src was executed')
    z = np.random.RandomState(1).standard_normal([4, 8]).astype(np.float32)
    c = np.eye(max(c_dim, 1), dtype=np.float32)[[0, 1, 0, 1]][:, :c_dim] if c_dim else None
    for a, b in ((G, G2), (G_ema, G_ema2)):
      self.assertAllClose(b(z, c, noise_mode='const', truncation_psi=0.7),
                          a(z, c, noise_mode='const', truncation_psi=0.7), atol=1e-5)
    img = G(z, c, noise_mode='const')
    self.assertAllClose(D2(img, c), D(img, c), atol=1e-5)

  def test_static_kwargs_errors(self):
    G, D, G_ema, gk, dk = self._nets('skip', 'resnet', 0)
    path = os.path.join(self.get_temp_dir(), 'kw.pkl')
    write_official_pickle(path, G, D, G_ema, dict(gk, fancy_option=1, other=2), dk)
    with self.assertRaisesRegex(convert.OfficialPickleError,
                                r"unknown static kwargs \['fancy_option', 'other'\]"):
      convert.load_official_pkl(path)
    write_official_pickle(path, G, D, G_ema, gk, dict(dk, fmap_max=16))
    with self.assertRaisesRegex(convert.OfficialPickleError, r'Conv1_down/weight.* has shape'):
      convert.load_official_pkl(path)
    revised = dict(gk, synthesis_func='G_synthesis_stylegan_revised')
    write_official_pickle(path, G, D, G_ema, revised, dk)
    with self.assertRaisesRegex(convert.OfficialPickleError, 'G_synthesis_stylegan_revised'):
      convert.load_official_pkl(path)

  def test_convert_refuses_existing_output(self):
    G, D, G_ema, gk, dk = self._nets('skip', 'resnet', 0)
    path = os.path.join(self.get_temp_dir(), 'ok.pkl')
    write_official_pickle(path, G, D, G_ema, gk, dk)
    out = os.path.join(self.get_temp_dir(), 'taken')
    os.makedirs(out)
    with open(os.path.join(out, 'keep'), 'w') as f:
      f.write('x')
    with self.assertRaisesRegex(FileExistsError, 'taken'):
      convert.convert(path, out, impl='ref')
    self.assertEqual(os.listdir(out), ['keep'])


def _stub_to_official(cls, stub):
  comps = {k: _stub_to_official(cls, v) for k, v in stub.components.items()}
  return _net(cls, stub.name, stub.build_func_name, stub.static_kwargs, dict(stub.variables),
              comps)


def rewrite_fixture(path, g_kwargs=None, d_kwargs=None, variable=None, source=None):
  """The fixture pickle (or `source`) with static kwargs updated (in G, Gs and their
  components, so they agree) or one variable of G replaced: variable = (name, value)."""
  g, d, gs = convert.read_pickle(source or PKL)
  for net in (g, gs):
    for n in (net, net.components['mapping'], net.components['synthesis']):
      n.static_kwargs.update(g_kwargs or {})
  d.static_kwargs.update(d_kwargs or {})
  if variable is not None:
    name, value = variable
    g.components['synthesis'].variables = [
        (k, value if k == name else v) for k, v in g.components['synthesis'].variables]
  cls, restore = _official_class()
  try:
    with open(path, 'wb') as f:
      pickle.dump(tuple(_stub_to_official(cls, n) for n in (g, d, gs)), f, protocol=4)
  finally:
    restore()
  return path


class BadPickleTest(tf.test.TestCase):
  """Damaged or hostile pickles are refused with one clear error, before anything is built."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if not PKL.exists():
      raise unittest.SkipTest(f'fixture not found: {FIXTURE}')

  def _refused(self, path, regex):
    # Patched so that building a network fails the test: refusals must come first.
    # (convert imports the classes when it builds them, from their modules.)
    with mock.patch.object(generator_lib, 'Generator', side_effect=AssertionError('G was built')), \
        mock.patch.object(discriminator_lib, 'Discriminator',
                          side_effect=AssertionError('D was built')):
      start = time.perf_counter()
      with self.assertRaisesRegex(convert.OfficialPickleError, regex):
        convert.load_official_pkl(path)
      return time.perf_counter() - start

  def test_huge_static_kwargs_are_refused_before_building(self):
    d = self.get_temp_dir()
    self._refused(rewrite_fixture(os.path.join(d, 'r32768.pkl'), {'resolution': 32768}),
                  r'describe resolutions \[4, 8, .*, 32768\] but the variables are for '
                  r'\[4, 8, 16, 32, 64\]')
    self._refused(rewrite_fixture(os.path.join(d, 'z1e9.pkl'), {'latent_size': 1e9}),
                  r'latent_size=1000000000.0 is not an integer in \[1, 1048576\]')
    self._refused(rewrite_fixture(os.path.join(d, 'z1e5.pkl'), {'latent_size': 100000}),
                  r"'mapping/Dense0/weight' has shape \[32, 32\] but the static kwargs imply "
                  r'\[100000, 32\]')
    self._refused(rewrite_fixture(os.path.join(d, 'fmaps.pkl'), {'fmap_max': 4096}),
                  r"'synthesis/4x4/Const/const' has shape \[1, 96, 4, 4\] but the static "
                  r'kwargs imply \[1, 160, 4, 4\]')
    self._refused(rewrite_fixture(os.path.join(d, 'd.pkl'), d_kwargs={'resolution': 1 << 15}),
                  'D: the static kwargs describe resolutions')

  def test_resolution_63_and_bad_values(self):
    d = self.get_temp_dir()
    self._refused(rewrite_fixture(os.path.join(d, 'r63.pkl'), {'resolution': 63}),
                  'resolution=63 is not a power of two')
    self._refused(rewrite_fixture(os.path.join(d, 'str.pkl'), {'resolution': 'big'}),
                  "resolution='big' is not an integer")

  def test_nan_and_inf_weights(self):
    g, _, _ = convert.read_pickle(PKL)
    name, value = g.components['synthesis'].variables[3]
    for bad in (np.nan, np.inf):
      broken = np.array(value, copy=True)
      broken.flat[0] = bad
      path = rewrite_fixture(os.path.join(self.get_temp_dir(), 'nan.pkl'), variable=(name, broken))
      self._refused(path, f"variable '{name}' holds NaN or Inf values")

  def test_files_that_are_not_pickles(self):
    d = self.get_temp_dir()
    text = os.path.join(d, 'notes.pkl')
    with open(text, 'w') as f:
      f.write('these are my notes\n')
    self._refused(text, "not a network pickle: it is a text file \\(starting 'these are my")
    zipped = os.path.join(d, 'model.pkl')
    import zipfile  # pylint: disable=g-import-not-at-top
    with zipfile.ZipFile(zipped, 'w') as zf:
      zf.writestr('archive/data.pkl', b'x')
    self._refused(zipped, 'not a network pickle: it is a zip archive')
    with open(PKL, 'rb') as f:
      data = f.read()
    cut = os.path.join(d, 'cut.pkl')
    with open(cut, 'wb') as f:
      f.write(data[:len(data) // 2])
    self._refused(cut, 'not a readable network pickle .* truncated or damaged')


if __name__ == '__main__':
  tf.test.main()
