"""Training-time metrics: --metrics at network snapshots run sg2tf.metrics on G_ema and append
to the run's metrics.jsonl (stand-in Inception weights in the real file format)."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf.training import distribute, loop
from tests.metrics import standins
from tests.training import tiny


class TrainMetricsTest(tf.test.TestCase):

  def test_fid_at_network_snapshots(self):
    tmp = tempfile.mkdtemp()
    data = tiny.make_dataset(f'{tmp}/data', count=16, resolution=16)
    features = standins.write_feature_dir(f'{tmp}/features')
    cfg = tiny.tiny_config(f'{tmp}/run', data, metrics=('fid50k',), metrics_num_fakes=16,
                           feature_dir=features)
    loop.train(cfg, distribute.make_strategy('default'))
    with open(os.path.join(cfg.run_dir, 'metrics.jsonl')) as f:
      rows = [json.loads(line) for line in f]
    # Snapshots at the first tick and at the end (16 images = 4 minibatches of 4).
    self.assertEqual([r['step'] for r in rows], [4, 16])
    for row in rows:
      self.assertEqual(row['metric'], 'fid50k')
      self.assertEqual((row['num_fakes'], row['num_reals']), (16, 16))
      self.assertFalse(row['official_sample_counts'])
      self.assertTrue(np.isfinite(row['results']['fid50k']))


if __name__ == '__main__':
  tf.test.main()
