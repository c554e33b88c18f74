"""Exported SavedModels as --network (sg2tf.saved_model_generator), TF Serving versions
(export --version), portable export metadata, batch sizes 0 and 1, generate --projected_w."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np
import PIL.Image
import tensorflow as tf

from sg2tf import export
from sg2tf import generate
from sg2tf import tool_util
from sg2tf import loading
from sg2tf.networks import Discriminator, serialization
from sg2tf.saved_model_generator import SavedModelGenerator
from tests.tiny_generator import tiny_generator

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _flags(**kw):
  base = dict(network=None, outdir=None, seeds=None, trunc=1.0, truncation_cutoff=None,
              noise_mode='const', class_idx=None, style_mixing_rows=None,
              style_mixing_cols=None, style_mixing_styles='0-6', truncation_sweep=None,
              interpolate=None, interpolation_frames=2, interpolation_space='w', gif=False,
              gif_ms=80, batch_size=8, impl='ref', projected_w=None)
  base.update(kw)
  return types.SimpleNamespace(**base)


def _png(path):
  img = np.asarray(PIL.Image.open(path)).astype(int)
  return img if img.ndim == 3 else img[:, :, np.newaxis]


def _strings(obj):
  if isinstance(obj, dict):
    return [s for v in obj.values() for s in _strings(v)]
  if isinstance(obj, list):
    return [s for v in obj for s in _strings(v)]
  return [obj] if isinstance(obj, str) else []


class SavedModelGeneratorTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='test_smg_')
    cls.G = tiny_generator()  # 16x16, num_ws 6, noise strength 0.3, w_avg != 0
    cls.models = os.path.join(cls.tmp, 'models', 'tiny')
    meta = {'training': {'run_dir': os.path.join(cls.tmp, 'run'),
                         'config': {'data_dir': '/data/ffhq', 'resume_pkl': 'https://h/x.pkl',
                                    'feature_dir': '~/features'}},
            'source_network': 'gs://bucket/nets/snap'}
    cls.v1 = export.export_generator(cls.G, cls.models, version='next', metadata=meta)
    cls.v2 = export.export_generator(cls.G, cls.models, version='next', truncation_cutoff=2)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_versions(self):
    self.assertEqual(self.v1, os.path.join(self.models, '1'))
    self.assertEqual(self.v2, os.path.join(self.models, '2'))
    self.assertTrue(os.path.isfile(os.path.join(self.v2, 'saved_model.pb')))
    self.assertEqual(export.versions(self.models), [1, 2])
    self.assertEqual(export.version_dir(self.models, 'next'), os.path.join(self.models, '3'))
    self.assertEqual(export.version_dir(self.models, '7'), os.path.join(self.models, '7'))
    self.assertEqual(export.version_dir(self.models, 'none'), self.models)
    with self.assertRaisesRegex(ValueError, r'--version=v2: use a non-negative integer'):
      export.version_dir(self.models, 'v2')
    with self.assertRaisesRegex(FileExistsError, r'--outdir=.*/1 exists and is not empty'):
      export.export_generator(self.G, self.models, version=1)
    with self.assertRaisesRegex(FileExistsError, r'holds a SavedModel itself'):
      export.version_dir(self.v1, 'next')
    # TF Serving's model directory loads as its highest version.
    self.assertEqual(loading.saved_model_dir(self.models), self.v2)
    self.assertEqual(loading.network_kind(self.models), 'saved_model')

  def test_no_absolute_paths_exported(self):
    with open(os.path.join(self.v1, export.INFO_FILE), encoding='utf-8') as f:
      info = json.load(f)
    strings = _strings(info)
    self.assertFalse([s for s in strings if s.startswith(('/', '~')) or '://' in s and
                      not s.startswith('https://')])
    self.assertNotIn(self.tmp, json.dumps(info))
    self.assertEqual(info['training']['run_dir'], 'run')
    self.assertEqual(info['training']['config']['data_dir'], 'ffhq')
    self.assertEqual(info['training']['config']['resume_pkl'], 'https://h/x.pkl')
    self.assertEqual(info['source_network'], 'snap')

  def test_batch_sizes_zero_and_one(self):
    m = tf.saved_model.load(self.v1)
    for n in (0, 1):
      z = tf.zeros([n, 16])
      out = m.signatures['serving_default'](z=z, truncation_psi=tf.constant(0.5))
      self.assertEqual(out['images_uint8'].shape, (n, 16, 16, 3))
      w = m.signatures['mapping'](z=z, truncation_psi=tf.constant(1.0))['w']
      self.assertEqual(m.signatures['synthesis'](w=w)['images'].shape, (n, 16, 16, 3))

  def test_generate_matches_the_network(self):
    sm = SavedModelGenerator(self.v1)
    self.assertEqual((sm.z_dim, sm.num_ws, sm.w_dim, sm.c_dim), (16, 6, 16, 0))
    ours, ref = generate.ImageGenerator(sm), generate.ImageGenerator(self.G)
    for psi in (1.0, 0.6):
      self.assertAllClose(ours.from_seeds([1, 2], psi).astype(int),
                          ref.from_seeds([1, 2], psi).astype(int), atol=1)
    self.assertAllClose(generate.style_mixing_figure(ours, [1], [2], [0, 1], 0.7).astype(int),
                        generate.style_mixing_figure(ref, [1], [2], [0, 1], 0.7).astype(int),
                        atol=1)
    cut = generate.ImageGenerator(SavedModelGenerator(self.v2), truncation_cutoff=2)
    self.assertAllClose(cut.from_seeds([3], 0.5).astype(int),
                        generate.ImageGenerator(self.G, truncation_cutoff=2).from_seeds(
                            [3], 0.5).astype(int), atol=1)

  def test_what_the_signatures_cannot_do(self):
    sm = SavedModelGenerator(self.v2)
    for kwargs, pattern in ((dict(noise_mode='random'), r'--noise_mode=random: .*no noise'),
                            (dict(noise_mode='none'), r'exported with noise_mode=const'),
                            (dict(truncation_cutoff=3), r'exported with truncation_cutoff=2')):
      with self.assertRaisesRegex(tool_util.ToolError, pattern):
        generate.ImageGenerator(sm, **kwargs)
    # The projector and the metrics need the network itself.
    with self.assertRaisesRegex(loading.NetworkLoadError,
                                r'SavedModel .*no noise inputs.*sg2tf.generate accepts it'):
      loading.load_generator(self.models)

  def test_projected_w(self):
    w = self.G.mapping(np.random.RandomState(0).randn(2, 16).astype(np.float32),
                       truncation_psi=0.7).numpy()  # [2, num_ws, w_dim]
    want = tool_util.to_uint8(self.G.synthesis(w, noise_mode='const').numpy())
    tool_util.save_npy(os.path.join(self.tmp, 'projected_w.npy'), w[:1])
    tool_util.save_npz(os.path.join(self.tmp, 'projected_w.npz'), w=w)
    nets = os.path.join(self.tmp, 'nets')
    D = Discriminator(img_resolution=16, fmap_base=64, fmap_max=16)
    serialization.save_networks(nets, self.G, D, export.rebuild_with_ref_ops(self.G))
    out = os.path.join(self.tmp, 'proj_npy')
    written = generate.run(generate.config_from_flags(_flags(network=nets, outdir=out,
                                  projected_w=os.path.join(self.tmp, 'projected_w.npy'))))
    self.assertEqual(written, [os.path.join(out, 'proj00.png')])
    self.assertAllClose(_png(written[0]), want[0].astype(int), atol=1)
    # stylegan2-ada-pytorch's .npz (w [N, num_ws, w_dim]) through the CLI, on a SavedModel.
    env = dict(os.environ, PYTHONPATH=str(_REPO), TF_CPP_MIN_LOG_LEVEL='2')
    out = os.path.join(self.tmp, 'proj_cli')
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.generate', f'--network={self.models}',
                           f'--outdir={out}', '--seeds=1',
                           f'--projected_w={os.path.join(self.tmp, "projected_w.npz")}'],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
    self.assertCountEqual(os.listdir(out), ['proj00.png', 'proj01.png', 'seed0001.png'])
    for i in range(2):
      self.assertAllClose(_png(os.path.join(out, f'proj{i:02d}.png')), want[i].astype(int),
                          atol=1)
    bad = os.path.join(self.tmp, 'bad_w.npy')
    tool_util.save_npy(bad, np.zeros([1, 5, 16], np.float32))
    with self.assertRaisesRegex(tool_util.ToolError, r'--projected_w=.*bad_w.npy: shape '
                                r'\[1, 5, 16\].*\[N, 6, 16\]'):
      generate.run(generate.config_from_flags(_flags(network=self.models, outdir=out, projected_w=bad)))


if __name__ == '__main__':
  tf.test.main()
