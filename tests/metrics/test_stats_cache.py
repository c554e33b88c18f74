"""stats_cache: reuse, keying, atomic writes, damaged entries."""

import os
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from sg2tf.metrics import stats_cache

KEY = {'stat': 'mean_cov', 'dataset': 'abc', 'num_reals': 10, 'net': 'x.pb:123'}


class StatsCacheTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.calls = 0

  def _compute(self):
    self.calls += 1
    return {'mu': np.arange(3.0), 'sigma': np.eye(3)}

  def test_second_call_reuses(self):
    a = stats_cache.get_or_compute(self.dir, KEY, 'fid', self._compute)
    b = stats_cache.get_or_compute(self.dir, KEY, 'fid', self._compute)
    self.assertEqual(self.calls, 1)
    self.assertAllEqual(a['mu'], b['mu'])
    self.assertEqual(sorted(b), ['mu', 'sigma'])

  def test_key_changes_recompute(self):
    stats_cache.get_or_compute(self.dir, KEY, 'fid', self._compute)
    for change in ({'dataset': 'abd'}, {'num_reals': 11}, {'net': 'y.pb:1'}):
      stats_cache.get_or_compute(self.dir, dict(KEY, **change), 'fid', self._compute)
    self.assertEqual(self.calls, 4)

  def test_interrupted_write_leaves_nothing(self):
    with mock.patch.object(np, 'savez', side_effect=KeyboardInterrupt):
      with self.assertRaises(KeyboardInterrupt):
        stats_cache.get_or_compute(self.dir, KEY, 'fid', self._compute)
    self.assertEqual(os.listdir(self.dir), [])

  def test_damaged_entry_is_recomputed(self):
    path = stats_cache.entry_path(self.dir, KEY, 'fid')
    os.makedirs(self.dir, exist_ok=True)
    with open(path, 'wb') as f:
      f.write(b'PK\x03\x04 not really a zip')
    with self.assertLogs(level='WARNING'):
      stats_cache.get_or_compute(self.dir, KEY, 'fid', self._compute)
    self.assertEqual(self.calls, 1)
    self.assertIsNotNone(stats_cache.load(path))

  def test_unwritable_cache_still_returns(self):
    blocker = os.path.join(self.dir, 'file')
    with open(blocker, 'w') as f:
      f.write('x')
    with self.assertLogs(level='WARNING'):
      out = stats_cache.get_or_compute(os.path.join(blocker, 'sub'), KEY, 'fid', self._compute)
    self.assertAllEqual(out['sigma'], np.eye(3))

  def test_env_default_dir(self):
    with mock.patch.dict(os.environ, {stats_cache.CACHE_ENV: self.dir}):
      self.assertTrue(stats_cache.entry_path(None, KEY).startswith(self.dir))


if __name__ == '__main__':
  tf.test.main()
