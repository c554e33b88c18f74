"""sg2tf.export: the SavedModel's signatures equal the Keras generator, it loads in a process
where sg2tf cannot be imported and no custom-op library is loaded (only standard TF ops in
the graph), conditional networks take labels, the optional .keras file, atomic output, the CLI."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf import export
from sg2tf.networks import Discriminator, serialization
from tests.tiny_generator import tiny_generator

_REPO = pathlib.Path(__file__).resolve().parents[1]
_FIXTURE = _REPO / '..' / 'shared' / 'fixtures' / 'official_pkl' / 'stylegan2_random_64.pkl'


def _latents(n, z_dim=16, seed=1):
  return np.random.RandomState(seed).randn(n, z_dim).astype(np.float32)


def _uint8(images):
  return np.clip(np.asarray(images) * 127.5 + 128, 0, 255).astype(np.uint8)


# Runs in a fresh interpreter: -I (no PYTHONPATH, no user site, no cwd on sys.path), a minimal
# environment, cwd = a temp dir, and a finder that refuses sg2tf in case it is pip-installed.
_CLEAN_LOAD = r'''
import importlib.abc, os, sys
class _NoSg2tf(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name == 'sg2tf' or name.startswith('sg2tf.'):
      raise ModuleNotFoundError(f'No module named {name!r} (blocked)')
    return None
sys.meta_path.insert(0, _NoSg2tf())
try:
  import sg2tf  # noqa
  raise SystemExit('FAIL: sg2tf is importable')
except ImportError:
  pass
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry
export_dir, io_path = sys.argv[1], sys.argv[2]
sm = saved_model_pb2.SavedModel()
with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as f:
  sm.ParseFromString(f.read())
ops = set()
for mg in sm.meta_graphs:
  ops |= {n.op for n in mg.graph_def.node}
  for fn in mg.graph_def.library.function:
    ops |= {n.op for n in fn.node_def}
unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
assert not unknown, f'ops not in the standard registry: {unknown}'
assert not [op for op in ops if op.lower().startswith('sg2tf')], ops
m = tf.saved_model.load(export_dir)
inputs = dict(np.load(io_path))
out = {}
for name in ('serving_default', 'generate'):
  r = m.signatures[name](z=tf.constant(inputs['z']), truncation_psi=tf.constant(0.7))
  out[name + '_images'] = r['images'].numpy()
  out[name + '_uint8'] = r['images_uint8'].numpy()
out['w'] = m.signatures['mapping'](z=tf.constant(inputs['z']),
                                   truncation_psi=tf.constant(0.7))['w'].numpy()
out['synthesis'] = m.signatures['synthesis'](w=tf.constant(out['w']))['images'].numpy()
out['batch1'] = m.signatures['generate'](z=tf.constant(inputs['z'][:1]),
                                         truncation_psi=tf.constant(1.0))['images'].numpy()
assert 'sg2tf' not in sys.modules
maps = '/proc/self/maps'
if os.path.exists(maps):
  with open(maps) as f:
    libs = [l for l in f if 'sg2tf' in l.lower() or 'custom_ops' in l]
  assert not libs, libs
np.savez(io_path + '.out.npz', **out)
print('CLEAN_LOAD_OK', len(ops))
'''


class ExportTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='test_export_')
    cls.G = tiny_generator()
    cls.out = export.export_generator(cls.G, os.path.join(cls.tmp, 'saved'))

  def test_signatures_equal_keras(self):
    m = tf.saved_model.load(self.out)
    self.assertCountEqual(m.signatures.keys(),
                          ['serving_default', 'generate', 'mapping', 'synthesis'])
    for n, psi in ((1, 1.0), (3, 0.5)):  # dynamic batch
      z = _latents(n)
      want = self.G(z, truncation_psi=psi, noise_mode='const').numpy()
      for name in ('serving_default', 'generate'):
        got = m.signatures[name](z=tf.constant(z), truncation_psi=tf.constant(psi))
        self.assertAllClose(got['images'], want, atol=1e-5, rtol=1e-5)
        self.assertEqual(got['images_uint8'].dtype, tf.uint8)
        self.assertAllEqual(got['images_uint8'], _uint8(got['images']))
      w = m.signatures['mapping'](z=tf.constant(z), truncation_psi=tf.constant(psi))['w']
      self.assertAllClose(w, self.G.mapping(z, truncation_psi=psi), atol=1e-5)
      img = m.signatures['synthesis'](w=w)['images']
      self.assertAllClose(img, self.G.synthesis(w, noise_mode='const'), atol=1e-5, rtol=1e-5)
    with open(os.path.join(self.out, export.INFO_FILE)) as f:
      info = json.load(f)
    self.assertEqual(info['noise_mode'], 'const')
    self.assertNotIn('impl', info['generator'])  # The op choice is no part of a network.

  def test_loads_where_sg2tf_cannot_be_imported(self):
    z = _latents(3)
    io_path = os.path.join(self.tmp, 'io.npz')
    np.savez(io_path, z=z)
    env = {k: os.environ[k] for k in ('PATH', 'HOME', 'LANG', 'TMPDIR') if k in os.environ}
    env['TF_CPP_MIN_LOG_LEVEL'] = '2'
    work = tempfile.mkdtemp(dir=self.tmp)
    proc = subprocess.run([sys.executable, '-I', '-c', textwrap.dedent(_CLEAN_LOAD), self.out,
                           io_path], capture_output=True, text=True, env=env, cwd=work,
                          timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr[-4000:])
    self.assertIn('CLEAN_LOAD_OK', proc.stdout)
    got = np.load(io_path + '.out.npz')
    want = self.G(z, truncation_psi=0.7, noise_mode='const').numpy()
    for name in ('serving_default', 'generate'):
      self.assertAllClose(got[name + '_images'], want, atol=1e-5, rtol=1e-5)
      self.assertAllEqual(got[name + '_uint8'], _uint8(got[name + '_images']))
    self.assertAllClose(got['w'], self.G.mapping(z, truncation_psi=0.7), atol=1e-5)
    self.assertAllClose(got['synthesis'], want, atol=1e-5, rtol=1e-5)
    self.assertAllClose(got['batch1'], self.G(z[:1], noise_mode='const'), atol=1e-5, rtol=1e-5)

  def test_conditional_network_takes_labels(self):
    G = tiny_generator(c_dim=3, seed=2)
    out = export.export_generator(G, os.path.join(self.tmp, 'cond'), keras_file=True)
    m = tf.saved_model.load(out)
    spec = m.signatures['generate'].structured_input_signature[1]
    self.assertEqual(spec['c'].shape.as_list(), [None, 3])
    z, c = _latents(3), np.eye(3, dtype=np.float32)
    got = m.signatures['generate'](z=tf.constant(z), truncation_psi=tf.constant(0.8),
                                   c=tf.constant(c))['images']
    self.assertAllClose(got, G(z, c, truncation_psi=0.8, noise_mode='const'), atol=1e-5,
                        rtol=1e-5)
    # The .keras file (needs sg2tf to load) holds the same network.
    K = export.load_keras(os.path.join(out, export.KERAS_FILE))
    self.assertAllClose(K(z, c, truncation_psi=0.8, noise_mode='const'),
                        G(z, c, truncation_psi=0.8, noise_mode='const'), atol=1e-5)

  def test_noise_mode_none_and_cutoff(self):
    out = export.export_generator(self.G, os.path.join(self.tmp, 'none'), noise_mode='none',
                                  truncation_cutoff=2)
    z = _latents(2)
    got = tf.saved_model.load(out).signatures['generate'](
        z=tf.constant(z), truncation_psi=tf.constant(0.5))['images']
    want = self.G(z, truncation_psi=0.5, truncation_cutoff=2, noise_mode='none')
    self.assertAllClose(got, want, atol=1e-5, rtol=1e-5)

  def test_output_is_atomic(self):
    busy = os.path.join(self.tmp, 'busy')
    os.makedirs(busy)
    open(os.path.join(busy, 'x'), 'w').close()
    with self.assertRaisesRegex(FileExistsError, 'not empty.*--overwrite'):
      export.export_generator(self.G, busy)
    fresh = os.path.join(self.tmp, 'fails', 'out')
    with mock.patch.object(tf.saved_model, 'save', side_effect=RuntimeError('disk full')):
      with self.assertRaisesRegex(RuntimeError, 'disk full'):
        export.export_generator(self.G, fresh)
    self.assertEqual(os.listdir(os.path.dirname(fresh)), [])  # no temp dir, no output
    with self.assertRaisesRegex(ValueError, 'noise_mode'):
      export.export_generator(self.G, fresh, noise_mode='bogus')
    with self.assertRaisesRegex(ValueError, 'truncation_cutoff'):
      export.export_generator(self.G, fresh, truncation_cutoff=99)

  def test_cli(self):
    nets = os.path.join(self.tmp, 'nets')
    D = Discriminator(img_resolution=16, fmap_base=64, fmap_max=16)
    serialization.save_networks(nets, self.G, D, export.rebuild_with_ref_ops(self.G))
    env = dict(os.environ, PYTHONPATH=str(_REPO), TF_CPP_MIN_LOG_LEVEL='2')
    out = os.path.join(self.tmp, 'cli')
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.export', f'--network={nets}',
                           f'--out={out}', '--version=3'], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
    self.assertEqual(os.listdir(out), ['3'])  # TF Serving: <model>/<version>/saved_model.pb
    self.assertTrue(os.path.isfile(os.path.join(out, '3', 'saved_model.pb')))
    z = _latents(2)
    got = tf.saved_model.load(os.path.join(out, '3')).signatures['generate'](
        z=tf.constant(z), truncation_psi=tf.constant(0.6))['images']
    self.assertAllClose(got, self.G(z, truncation_psi=0.6, noise_mode='const'), atol=1e-5,
                        rtol=1e-5)
    # Bad input: one line, no traceback, non-zero exit.
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.export', '--network=/nonexistent.pkl',
                           f'--out={out}2'], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    self.assertNotEqual(proc.returncode, 0)
    self.assertNotIn('Traceback', proc.stderr)
    self.assertRegex(proc.stderr.strip().splitlines()[-1],
                     r'^error: --network=/nonexistent.pkl: no such file')
    self.assertFalse(os.path.exists(out + '2'))

  def test_official_pickle(self):
    if not _FIXTURE.is_file():
      self.skipTest(f'{_FIXTURE} not present')
    from sg2tf import loading  # pylint: disable=g-import-not-at-top
    out = export.export_network(str(_FIXTURE), os.path.join(self.tmp, 'pkl'))
    G = loading.load_generator(str(_FIXTURE), impl='ref')
    z = _latents(2, G.z_dim)
    got = tf.saved_model.load(out).signatures['generate'](
        z=tf.constant(z), truncation_psi=tf.constant(0.5))['images']
    self.assertAllClose(got, G(z, truncation_psi=0.5, noise_mode='const'), atol=1e-4,
                        rtol=1e-4)


if __name__ == '__main__':
  tf.test.main()
