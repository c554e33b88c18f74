"""runner.evaluate end to end: stand-in feature files through the real loaders, a tiny
official-layout dataset, a linear generator; values cross-checked against the library
functions on independently computed features; reporting, caching, replicas."""

import json
import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from sg2tf import metrics
from sg2tf.metrics import feature_nets
from sg2tf.metrics import ppl as ppl_lib
from sg2tf.metrics import real_data
from sg2tf.metrics import registry
from sg2tf.metrics import runner
from sg2tf.utils import images
from tests import testutil
from tests.metrics import standins

NUM = 16


class RunnerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.features = standins.write_feature_dir(os.path.join(cls.root, 'features'))
    rng = np.random.default_rng(0)
    cls.reals = rng.integers(0, 256, [20, 32, 32, 3], dtype=np.uint8)
    cls.data = os.path.join(cls.root, 'data')
    standins.write_tfrecord_dataset(cls.data, cls.reals)
    cls.G = standins.LinearGenerator(resolution=32, scale=0.3)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _options(self, **kw):
    args = dict(feature_dir=self.features, cache_dir=os.path.join(self.root, 'cache'),
                download=False, num_fakes=NUM, num_reals=NUM, batch_per_replica=6)
    args.update(kw)
    return runner.Options(**args)

  def _fake_images(self, name, n):
    z = runner._rng(runner.Options(), name).standard_normal([n, self.G.z_dim])
    return images.to_uint8_tf(self.G(z.astype(np.float32)))

  def test_values_match_the_library_on_the_same_features(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    res = runner.evaluate(self.G, ['fid50k', 'pr50k3', 'is50k'], self.data, self._options(),
                          network_name='lin', output_dir=out, step=12)
    by = {r.metric: r for r in res}
    inc = feature_nets.get('inception', self.features)
    vgg = feature_nets.get('vgg16', self.features)
    real_f = inc.features(self.reals[:NUM]).numpy()
    fake_f, fake_l = [t.numpy() for t in inc(self._fake_images('fid50k', NUM))]
    expected_fid = metrics.frechet_distance(fake_f.mean(0), np.cov(fake_f, rowvar=False),
                                            real_f.mean(0), np.cov(real_f, rowvar=False))
    self.assertAllClose(by['fid50k'].value, expected_fid, rtol=1e-6)
    expected_pr = metrics.precision_recall(vgg.features(self.reals[:NUM]).numpy(),
                                           vgg.features(self._fake_images('pr50k3', NUM)))
    self.assertAllClose([by['pr50k3'].results['pr50k3_precision'],
                         by['pr50k3'].results['pr50k3_recall']], expected_pr)
    _, is_l = inc(self._fake_images('is50k', NUM))
    self.assertAllClose(by['is50k'].results['is50k_mean'],
                        metrics.inception_score(tf.nn.softmax(is_l).numpy())[0], rtol=1e-6)
    del fake_l

    # Reporting: one JSON line per metric, TensorBoard scalars, reduced counts said loudly.
    with open(os.path.join(out, 'metrics.jsonl')) as f:
      lines = [json.loads(line) for line in f]
    self.assertEqual([l['metric'] for l in lines], ['fid50k', 'pr50k3', 'is50k'])
    for key in ('value', 'network', 'dataset', 'num_fakes', 'num_reals', 'seconds', 'step',
                'official_sample_counts', 'feature_net', 'time'):
      self.assertIn(key, lines[0])
    self.assertEqual((lines[0]['num_fakes'], lines[0]['num_reals'], lines[0]['step']),
                     (NUM, NUM, 12))
    self.assertFalse(lines[0]['official_sample_counts'])
    self.assertIn('REDUCED', lines[0]['note'])
    tags = set()
    for name in os.listdir(out):
      if 'tfevents' in name:
        for ev in tf.compat.v1.train.summary_iterator(os.path.join(out, name)):
          tags.update(v.tag for v in ev.summary.value)
    self.assertLen([n for n in os.listdir(out) if 'tfevents' in n], 1)
    self.assertEqual(tags, {'Metrics/fid50k', 'Metrics/pr50k3_precision',
                            'Metrics/pr50k3_recall', 'Metrics/is50k_mean', 'Metrics/is50k_std'})
    table = runner.format_table(res)
    self.assertIn('REDUCED', table)
    self.assertIn('pr50k3_recall', table)

  def test_second_evaluation_reuses_real_statistics(self):
    opt = self._options(cache_dir=tempfile.mkdtemp(dir=self.get_temp_dir()))
    first = runner.evaluate(self.G, ['fid50k', 'pr50k3'], self.data, opt)
    with mock.patch.object(real_data, 'real_image_batches', side_effect=AssertionError('read')):
      second = runner.evaluate(self.G, ['fid50k', 'pr50k3'], self.data, opt)
    self.assertEqual([r.results for r in first], [r.results for r in second])

  def test_ppl_and_full_dataset(self):
    res = runner.evaluate(self.G, ['ppl_zfull', 'fid50k_full'], self.data,
                          self._options(num_reals=None, num_fakes=8))
    for r in res:
      self.assertTrue(np.isfinite(r.value) and r.value > 0, r)
    self.assertEqual(res[1].num_reals, 20)  # all of the dataset
    self.assertEqual(res[0].num_reals, 0)

  def test_counts(self):
    spec = runner.METRICS['pr50k3']
    self.assertEqual(runner._counts(spec, runner.Options()), (50000, 50000, True))
    self.assertEqual(runner._counts(spec, runner.Options(num_fakes=100)), (100, 100, False))
    fid = runner.METRICS['fid50k']
    self.assertEqual(runner._counts(fid, runner.Options(num_fakes=100)), (100, 50000, False))
    full = runner.METRICS['fid50k_full']
    self.assertEqual(runner._counts(full, runner.Options()), (50000, None, True))

  def test_notes_state_the_counts_used(self):
    fid, full, pr, ppl = (runner.METRICS[n] for n in ('fid50k', 'fid50k_full', 'pr50k3',
                                                        'ppl_zfull'))
    self.assertEqual(runner.sample_note(fid, 50000, 50000, 50000), (True, ''))
    self.assertEqual(runner.sample_note(full, 50000, None, 70000), (True, ''))
    self.assertEqual(runner.sample_note(ppl, 50000, 0, 0), (True, ''))
    # A 100-image dataset: the 100 reals used, not the 50000 asked for.
    self.assertEqual(runner.sample_note(fid, 100, 50000, 100),
                     (False, 'REDUCED sample counts: 100 fakes (protocol: 50000), 100 reals '
                             '(protocol: 50000; the dataset holds only 100 images)'))
    self.assertEqual(runner.sample_note(fid, 50000, 50000, 100)[1],
                     'REDUCED sample counts: 100 reals (protocol: 50000; the dataset holds '
                     'only 100 images)')
    self.assertEqual(runner.sample_note(pr, 64, 64, 64)[1],
                     'REDUCED sample counts: 64 fakes (protocol: 50000), 64 reals (protocol: '
                     '50000)')
    self.assertEqual(runner.sample_note(full, 50000, 30, 30)[1],
                     'REDUCED sample counts: 30 reals (protocol: the whole dataset)')
    self.assertEqual(runner.result_names('pr50k3'), ['pr50k3_precision', 'pr50k3_recall'])
    self.assertEqual(runner.result_names('fid50k'), ['fid50k'])
    # One registry (sg2tf.metrics.registry, TF-free), used here and by the PPL protocol.
    self.assertIs(runner.METRICS, registry.METRICS)
    self.assertIs(ppl_lib.PPLConfig, registry.PPLConfig)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, 'unknown metric.*fid50k'):
      runner.evaluate(self.G, ['fid5k'], self.data, self._options())
    with self.assertRaisesRegex(ValueError, '--data'):
      runner.evaluate(self.G, ['fid50k'], None, self._options())

  def test_replicas_give_the_same_numbers(self):
    # Two logical CPU devices need a fresh process (devices are fixed at TF start-up).
    code = f'''
      import numpy as np, tensorflow as tf
      cpu = tf.config.list_physical_devices('CPU')[0]
      tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      from sg2tf.metrics import runner
      from tests.metrics import standins
      G = standins.LinearGenerator(resolution=32, scale=0.3)
      opt = runner.Options(feature_dir={self.features!r}, cache_dir=None, download=False,
                           num_fakes=10, num_reals=10, batch_per_replica=4)
      names = ['fid50k', 'ppl_wfull']
      strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
      two = runner.evaluate(G, names, {self.data!r}, opt, strategy=strategy)
      one = runner.evaluate(G, names, {self.data!r}, opt)
      for a, b in zip(two, one):
        np.testing.assert_allclose(list(a.results.values()), list(b.results.values()), rtol=1e-5)
      print('OK', strategy.num_replicas_in_sync)
    '''
    cache = tempfile.mkdtemp(dir=self.get_temp_dir())
    out = testutil.run_python(code, env_extra={'SG2TF_METRICS_CACHE': cache}, timeout=300)
    self.assertIn('OK 2', out)


if __name__ == '__main__':
  tf.test.main()
