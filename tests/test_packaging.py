"""The installable product: a wheel built from a clean checkout of HEAD, installed into a
fresh venv, gives working console scripts (sg2tf-train --help; sg2tf-dataset makes a tiny
dataset; sg2tf-train --preset=quickstart trains one tick on it) from a folder that is not the
repository.

The fresh venv borrows this environment's dependencies (TensorFlow, ...) through a .pth file
and installs the wheel with --no-deps --no-index: no network. Skipped where git or a wheel
build without network (setuptools + wheel in this environment) is not available.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import unittest

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
  return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                        timeout=300, **kw)


def _can_build_wheel():
  if shutil.which('git') is None or not (REPO / '.git').exists():
    return 'not a git checkout (or no git)'
  try:
    import setuptools  # pylint: disable=g-import-not-at-top,unused-import
    import wheel  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return 'setuptools / wheel missing: pip wheel --no-build-isolation cannot run'
  return None


class WheelTest(unittest.TestCase):

  def setUp(self):
    reason = _can_build_wheel()
    if reason:
      self.skipTest(reason)
    self.tmp = pathlib.Path(tempfile.mkdtemp(prefix='sg2tf_wheel_'))
    self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

  def _ok(self, proc, what):
    self.assertEqual(proc.returncode, 0, f'{what}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc

  def test_wheel_installs_working_tools(self):
    src, venv, work = self.tmp / 'src', self.tmp / 'venv', self.tmp / 'work'
    self._ok(_run(['git', 'clone', '-q', '--no-hardlinks', REPO, src]), 'git clone')
    proc = _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                 '-w', self.tmp / 'wheels', src])
    if proc.returncode != 0:
      self.skipTest(f'pip wheel cannot run here: {proc.stderr.strip()[-300:]}')
    wheels = list((self.tmp / 'wheels').glob('sg2tf-*.whl'))
    self.assertEqual(len(wheels), 1, wheels)
    self._ok(_run([sys.executable, '-m', 'venv', '--without-pip', venv]), 'venv')
    py = venv / 'bin' / 'python'
    site = pathlib.Path(_run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()'
                                        '["purelib"])']).stdout.strip())
    # This environment's packages, after the fresh venv's own (so the wheel's sg2tf wins).
    (site / 'borrowed_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    self._ok(_run([sys.executable, '-m', 'pip', '--python', py, 'install', '-q', '--no-deps',
                   '--no-index', wheels[0]]), 'pip install')
    work.mkdir()
    bin_dir = venv / 'bin'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'TF_CPP_MIN_LOG_LEVEL')}
    env.update(PATH=f'{bin_dir}{os.pathsep}{env.get("PATH", "")}', SG2TF_DISABLE_CUSTOM_OPS='1',
               SG2TF_CACHE_DIR=str(self.tmp / 'cache'), HOME=str(self.tmp))
    run = lambda *cmd: _run(cmd, cwd=work, env=env)  # pylint: disable=unnecessary-lambda-assignment
    where = self._ok(run(py, '-c', 'import sg2tf; print(sg2tf.__file__)'), 'import').stdout
    self.assertTrue(where.startswith(str(venv)), where)  # the wheel, not the checkout

    for tool in ('train', 'eval', 'dataset', 'generate', 'project', 'export', 'convert', 'doctor'):
      self.assertTrue((bin_dir / f'sg2tf-{tool}').is_file(), tool)
    helped = self._ok(run(bin_dir / 'sg2tf-train', '--help'), 'sg2tf-train --help').stdout
    self.assertIn('--run_dir (also --outdir)', helped)
    self.assertIn('quickstart', helped)  # the presets listed

    rng = np.random.default_rng(0)
    np.save(work / 'faces.npy', rng.integers(0, 256, [8, 8, 8], dtype=np.uint8))
    self._ok(run(bin_dir / 'sg2tf-dataset', 'create_from_npy', 'ds', 'faces.npy'), 'dataset')
    proc = self._ok(run(bin_dir / 'sg2tf-train', '--preset=quickstart', '--data_dir=ds',
                        '--outdir=run', '--resolution=8', '--fmap_base=64', '--fmap_max=16',
                        '--latent_dim=16', '--mapping_layers=2', '--batch_size=4',
                        '--total_kimg=0.004', '--tick_kimg=0.004', '--grid=2x2', '--impl=ref',
                        # Two phases to trace instead of four: seconds, not the point here.
                        '--nolazy_reg', '--pl_weight=0'),
                    'sg2tf-train')
    self.assertTrue((work / 'run' / 'config.json').is_file())
    self.assertTrue(list((work / 'run').glob('fakes*.png')), os.listdir(work / 'run'))
    self.assertRegex(proc.stderr, r'tick 0 +kimg 0.004')  # sg2tf's own progress lines stay
    # Quiet by default: none of TensorFlow's banners and INFO lines.
    for noise in ('oneDNN', 'cpu_feature_guard', 'Sharding callback', 'Assets written to',
                  'signature_serialization', 'absl::InitializeLog'):
      self.assertNotIn(noise, proc.stdout + proc.stderr)


if __name__ == '__main__':
  unittest.main()
