"""eval_main.py and the eval flags: config from flags, a full run, clean errors (no stack
traces) from the command line."""

import contextlib
import importlib.util
import io
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import flagsaver
import numpy as np
import tensorflow as tf

import eval_main
from sg2tf import flags as sg2tf_flags
from sg2tf import loading
from tests import testutil
from tests.metrics import standins

_FIXTURE = (pathlib.Path(__file__).resolve().parents[2] / '..' / 'shared' / 'fixtures' /
            'official_pkl' / 'stylegan2_random_64.pkl')


def _parse(*args):
  sg2tf_flags.define_eval_flags()  # Idempotent; eval_main did it at import.
  sg2tf_flags.FLAGS.unparse_flags()
  sg2tf_flags.FLAGS(['eval_main'] + list(args))
  return sg2tf_flags.eval_config_from_flags()


class EvalMainTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.features = standins.write_feature_dir(os.path.join(cls.root, 'features'))
    cls.data = os.path.join(cls.root, 'data')
    rng = np.random.default_rng(0)
    standins.write_tfrecord_dataset(cls.data, rng.integers(0, 256, [12, 32, 32, 3], np.uint8))

  @flagsaver.flagsaver
  def test_config_from_flags(self):
    cfg = _parse('--network=n.pkl', '--metrics=fid50k, pr50k3', '--num_fakes=100',
                 '--feature_dir=/f', '--eval_batch_size=4')
    self.assertEqual(cfg.metrics, ('fid50k', 'pr50k3'))
    self.assertEqual((cfg.num_fakes, cfg.feature_dir, cfg.batch_per_replica), (100, '/f', 4))
    with self.assertRaises(Exception):  # frozen
      cfg.num_fakes = 3
    with self.assertRaisesRegex(ValueError, '--network is required'):
      _parse('--metrics=fid50k')

  @flagsaver.flagsaver
  def test_run_writes_table_and_jsonl(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    cfg = _parse('--network=lin.pkl', f'--data={self.data}', '--metrics=fid50k,is50k',
                 '--num_fakes=10', '--num_reals=10', f'--feature_dir={self.features}',
                 f'--cache_dir={out}/cache', f'--output_dir={out}', '--nodownload_features')
    stdout = io.StringIO()
    with mock.patch.object(loading, 'load_generator',
                           return_value=standins.LinearGenerator(resolution=32)):
      with contextlib.redirect_stdout(stdout):
        self.assertEqual(eval_main.run(cfg), 0)
    text = stdout.getvalue()
    self.assertIn('fid50k', text)
    self.assertIn('REDUCED', text)
    with open(os.path.join(out, 'metrics.jsonl')) as f:
      self.assertEqual([json.loads(l)['metric'] for l in f], ['fid50k', 'is50k'])

  @flagsaver.flagsaver
  def test_run_reports_bad_input_without_traceback(self):
    stderr = io.StringIO()
    cfg = _parse('--network=x.pkl', '--metrics=fid50k')
    with contextlib.redirect_stderr(stderr):
      self.assertEqual(eval_main.run(cfg), 2)
    self.assertIn('--data is required for fid50k', stderr.getvalue())
    cfg = _parse('--network=x.pkl', '--metrics=fid5k')
    with contextlib.redirect_stderr(stderr):
      self.assertEqual(eval_main.run(cfg), 2)
    self.assertIn('unknown metric', stderr.getvalue())

  @flagsaver.flagsaver
  def test_missing_feature_file_says_what_to_fetch(self):
    empty = tempfile.mkdtemp(dir=self.get_temp_dir())
    cfg = _parse('--network=lin.pkl', '--metrics=is50k', f'--feature_dir={empty}',
                 '--nodownload_features', f'--output_dir={empty}')
    stderr = io.StringIO()
    with mock.patch.object(loading, 'load_generator',
                           return_value=standins.LinearGenerator(resolution=32)):
      with contextlib.redirect_stderr(stderr):
        self.assertEqual(eval_main.run(cfg), 2)
    self.assertIn('Fetch http://download.tensorflow.org/models/image/imagenet/'
                  'inception-2015-12-05.tgz', stderr.getvalue())
    self.assertIn(os.path.join(empty, 'inception-2015-12-05.tgz'), stderr.getvalue())

  def _cli(self, *args, env=None):
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', SG2TF_DISABLE_CUSTOM_OPS='1',
             PYTHONPATH=str(testutil.REPO), **(env or {}))
    return subprocess.run([sys.executable, str(testutil.REPO / 'eval_main.py')] + list(args),
                          capture_output=True, text=True, env=e, timeout=300, check=False)

  def test_command_line(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    proc = self._cli('--network=/nonexistent/net.pkl', '--metrics=is50k')
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertIn('--network=/nonexistent/net.pkl: no such file', proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)
    if importlib.util.find_spec('sg2tf.convert') is None or not _FIXTURE.is_file():
      return  # the rest needs an official pickle and its loader
    proc = self._cli(f'--network={_FIXTURE}', '--metrics=is50k', '--num_fakes=10',
                     f'--feature_dir={self.features}', '--nodownload_features',
                     f'--output_dir={out}', '--eval_batch_size=5')
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('is50k_mean', proc.stdout)


if __name__ == '__main__':
  tf.test.main()
