"""Full and read-only disks: training, export, convert, dataset creation and generate end with
one clear DiskWriteError (what, where, why, free space); partial outputs are removed and the
last good checkpoint / export / dataset stays intact. Uses a small tmpfs per test (skipped,
with the reason, where mounting is not allowed)."""

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import types

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf import export as export_lib
from sg2tf import generate
from sg2tf.networks import serialization
from sg2tf.training import checkpointing
from sg2tf.training import distribute
from sg2tf.training import loop
from sg2tf.utils import files
from tests import testutil
from tests.training import tiny

_REASONS = {'full': 'No space left on device', 'readonly': 'Read-only file system'}


_tree = tiny.file_digests


def _temporaries(folder):
  """Hidden temporary entries (tmp/old/partial) anywhere below folder."""
  found = []
  for root, dirs, names in os.walk(folder):
    for n in dirs + names:
      if n != '.filler' and (files.LEFTOVER_RE.match(n) or '.partial-' in n or
                             n.endswith('_temp')):
        found.append(os.path.join(root, n))
  return found


class DiskErrorsTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.data = tiny.make_dataset(os.path.join(cls.root, 'data'), count=8, resolution=8)
    cls.G, cls.D = tiny.tiny_g(), tiny.tiny_d()
    cls.G_ema = tiny.tiny_g()

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _break(self, fs, how):
    if how == 'full':
      testutil.fill_filesystem(fs)
    else:
      testutil.remount_readonly(self, fs)

  def _assert_one_clear_line(self, e, what, where, how):
    msg = str(e)
    self.assertNotIn('\n', msg)
    self.assertRegex(msg, rf'^could not write {what} {where}')
    self.assertIn(_REASONS[how], msg)
    self.assertRegex(msg, r'\d+(\.\d)? (bytes|KiB|MiB|GiB) free there')

  @parameterized.parameters('full', 'readonly')
  def test_training(self, how):
    fs = testutil.small_filesystem(self, '8m')
    cfg = tiny.tiny_config(os.path.join(fs, 'run'), self.data, resolution=8, total_kimg=0.016,
                           checkpoint_ticks=1, exact_data_resume=False)
    tr = loop.Trainer(cfg, distribute.make_strategy('default'))
    tr.run(max_steps=1)  # tick 0: images and ckpt-4 written
    good = os.path.join(cfg.run_dir, 'checkpoints', 'ckpt-4')
    self.assertIsNone(checkpointing.verify(good))
    before = _tree(os.path.join(cfg.run_dir, 'checkpoints'))
    tr.train_step()
    if how == 'readonly':  # a file system with files open for writing cannot be remounted
      tr.monitor.close()
      tr.monitor._writer = None  # pylint: disable=protected-access
      tr._lock.release()  # pylint: disable=protected-access
    self._break(fs, how)
    with self.assertRaises(files.DiskWriteError) as cm:
      tr.save_checkpoint()
    self._assert_one_clear_line(cm.exception, 'checkpoint', r'.*/checkpoints/ckpt-8', how)
    self.assertIn(f'the last good checkpoint ({good}) is intact', str(cm.exception))
    self.assertEqual(_tree(os.path.join(cfg.run_dir, 'checkpoints')), before)
    self.assertEqual(_temporaries(cfg.run_dir), [])
    with self.assertRaises(files.DiskWriteError) as cm:
      tr.image_snapshot()
    self._assert_one_clear_line(cm.exception, 'image', r'.*/fakes000000\.png', how)
    self.assertEqual(_temporaries(cfg.run_dir), [])
    self.assertIsNone(checkpointing.verify(good))
    tr.close()
    if how == 'full':  # the partial files just removed gave some space back
      testutil.fill_filesystem(fs)
    # A new run into that directory stops at start-up, before building anything.
    with self.assertRaises(files.DiskWriteError) as cm:
      loop.Trainer(dataclasses.replace(cfg, total_kimg=0.024),
                   distribute.make_strategy('default'))
    self._assert_one_clear_line(cm.exception, r'the run directory \(--run_dir\)', cfg.run_dir,
                                how)

  @parameterized.parameters('full', 'readonly')
  def test_export_convert_and_network_dirs(self, how):
    fs = testutil.small_filesystem(self, '8m')
    old_export = export_lib.export_generator(self.G, os.path.join(fs, 'export'))
    old_nets = serialization.save_networks(os.path.join(fs, 'nets'), self.G, self.D, self.G_ema)
    kept = {p: _tree(p) for p in (old_export, old_nets)}
    self._break(fs, how)
    with self.assertRaises(files.DiskWriteError) as cm:
      export_lib.export_generator(self.G, old_export, overwrite=True)
    self._assert_one_clear_line(cm.exception, 'SavedModel export', old_export, how)
    with self.assertRaises(files.DiskWriteError) as cm:
      serialization.save_networks(os.path.join(fs, 'new_nets'), self.G, self.D, self.G_ema)
    self._assert_one_clear_line(cm.exception, 'network directory', r'.*/new_nets', how)
    with self.assertRaises(files.DiskWriteError) as cm:
      serialization.save_networks(old_nets, self.G, self.D, self.G_ema, overwrite=True)
    self.assertEqual({p: _tree(p) for p in kept}, kept)  # the last good outputs
    self.assertFalse(os.path.exists(os.path.join(fs, 'new_nets')))
    self.assertEqual(_temporaries(fs), [])

  def test_convert_cli(self):
    fs = testutil.small_filesystem(self, '1m')
    from tests import test_convert as tc  # pylint: disable=g-import-not-at-top
    pkl = os.path.join(self.root, 'tiny.pkl')
    from sg2tf.networks import Discriminator, Generator  # pylint: disable=g-import-not-at-top
    kw = dict(latent_size=8, dlatent_size=8, mapping_fmaps=8, resolution=8, num_channels=1,
              fmap_base=32, fmap_max=8)
    G = Generator(z_dim=8, w_dim=8, mapping_dim=8, img_resolution=8, img_channels=1,
                  fmap_base=32, fmap_max=8)
    D = Discriminator(img_resolution=8, img_channels=1, fmap_base=32, fmap_max=8)
    tc.write_official_pickle(pkl, G, D, G, kw, dict(resolution=8, num_channels=1,
                                                      fmap_base=32, fmap_max=8))
    testutil.fill_filesystem(fs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', SG2TF_DISABLE_CUSTOM_OPS='1')
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.convert', f'--pkl={pkl}',
                           f'--out={os.path.join(fs, "out")}', '--impl=ref'], cwd=testutil.REPO,
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('could not write network directory', proc.stderr)
    self.assertIn('No space left on device', proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)
    self.assertEqual(_temporaries(fs), [])
    self.assertFalse(os.path.exists(os.path.join(fs, 'out')))

  @parameterized.parameters('full', 'readonly')
  def test_dataset_creation(self, how):
    from sg2tf.dataset_tool import create  # pylint: disable=g-import-not-at-top
    fs = testutil.small_filesystem(self, '2m')
    arr = np.random.RandomState(0).randint(0, 255, [16, 32, 32, 3]).astype(np.uint8)
    npy = os.path.join(self.root, f'images_{how}.npy')
    np.save(npy, arr)
    first = create.create_from_npy(os.path.join(fs, 'first'), npy, create.Options())
    kept = _tree(first)
    self._break(fs, how)
    with self.assertRaises(files.DiskWriteError) as cm:
      create.create_from_npy(os.path.join(fs, 'second'), npy, create.Options())
    self._assert_one_clear_line(cm.exception, 'dataset', r'.*/second', how)
    with self.assertRaises(files.DiskWriteError):
      create.create_from_npy(first, npy, create.Options(overwrite=True))
    self.assertEqual(_tree(first), kept)
    self.assertFalse(os.path.exists(os.path.join(fs, 'second')))
    self.assertEqual(_temporaries(fs), [])

  @parameterized.parameters('full', 'readonly')
  def test_generate(self, how):
    nets = serialization.save_networks(os.path.join(self.root, f'gen_nets_{how}'), self.G,
                                       self.D, self.G_ema)
    fs = testutil.small_filesystem(self, '1m')
    out = os.path.join(fs, 'out')
    flags = types.SimpleNamespace(
        network=nets, outdir=out, seeds='0-1', trunc=1.0, truncation_cutoff=None,
        noise_mode='const', class_idx=None, style_mixing_rows=None, style_mixing_cols=None,
        style_mixing_styles='0-6', truncation_sweep=None, interpolate=None,
        interpolation_frames=2, interpolation_space='w', gif=False, gif_ms=80, batch_size=2,
        impl='ref')
    first = generate.run(generate.config_from_flags(flags))
    kept = _tree(out)
    self._break(fs, how)
    with self.assertRaises(files.DiskWriteError) as cm:
      generate.run(generate.config_from_flags(types.SimpleNamespace(**dict(vars(flags), seeds='2-3'))))
    self._assert_one_clear_line(cm.exception, 'image', r'.*/seed0002\.png', how)
    self.assertEqual(_tree(out), kept)
    self.assertLen(first, 2)
    self.assertEqual(_temporaries(fs), [])


class TrainMainDiskTest(tf.test.TestCase):

  def test_read_only_run_dir_is_refused_before_tensorflow_starts(self):
    data = tiny.make_dataset(os.path.join(self.get_temp_dir(), 'data'), count=8, resolution=8)
    fs = testutil.small_filesystem(self, '1m')
    testutil.remount_readonly(self, fs)
    run_dir = os.path.join(fs, 'run')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    # -X importtime lists every import on stderr: TensorFlow must not be among them.
    proc = subprocess.run([sys.executable, '-X', 'importtime', str(testutil.REPO / 'train_main.py'),
                           f'--data_dir={data}', f'--run_dir={run_dir}', '--batch_size=4'],
                          cwd=testutil.REPO,
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
    lines = [l for l in proc.stderr.splitlines() if not l.startswith('import time:')]
    self.assertEqual(len(lines), 1, lines)
    self.assertRegex(lines[0], r'^error: could not write the run directory \(--run_dir\) '
                     rf'{run_dir}: Read-only file system; .* free there\.$')
    self.assertIn('import time:', proc.stderr)
    self.assertNotRegex(proc.stderr, r'(?m)^import time:.*\|\s+tensorflow$')


if __name__ == '__main__':
  tf.test.main()
