"""sg2tf.metrics.registry: the metric names, their kinds and needs, without TensorFlow."""

import subprocess
import sys
import unittest

from sg2tf.metrics import registry


class RegistryTest(unittest.TestCase):

  def test_names_kinds_and_needs(self):
    self.assertEqual(list(registry.METRICS)[:4], ['fid50k', 'fid50k_full', 'is50k', 'pr50k3'])
    for name, spec in registry.METRICS.items():
      self.assertEqual(spec.name, name)
      self.assertIn(spec.kind, registry.KINDS)
      self.assertEqual(spec.ppl is not None, spec.kind == 'ppl')
    self.assertTrue(registry.needs_data('fid50k_full'))
    self.assertTrue(registry.needs_data('pr50k3'))
    self.assertFalse(registry.needs_data('is50k'))
    self.assertFalse(registry.needs_data('ppl2_wend'))
    self.assertEqual(registry.result_names('is50k'), ['is50k_mean', 'is50k_std'])
    self.assertEqual(registry.result_names('ppl_wend'), ['ppl_wend'])

  def test_check_metric_names(self):
    self.assertEqual(registry.check_metric_names([' fid50k', 'pr50k3 ', '']),
                     ['fid50k', 'pr50k3'])
    with self.assertRaisesRegex(ValueError, r"--metrics: unknown metric\(s\) \['fid51k'\]"):
      registry.check_metric_names(['fid51k'])
    with self.assertRaisesRegex(ValueError, r'\(none given\)'):
      registry.check_metric_names([])
    with self.assertRaisesRegex(ValueError, 'space must be z|w'):
      registry.PPLConfig('x', 'end', True)
    with self.assertRaisesRegex(ValueError, 'kind'):
      registry.MetricSpec('bogus', 'kid', 1)

  def test_validation_modules_do_not_import_tensorflow(self):
    # Flag and config validation must fail fast, before TensorFlow starts.
    code = ('import sys\n'
            'import sg2tf.metrics.registry, sg2tf.training.config, sg2tf.loading\n'
            'import sg2tf.conventions, sg2tf.paper_configs, sg2tf.configs\n'
            'from sg2tf.training import config\n'
            'config.metric_registry.check_metric_names(["fid50k"])\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in '
            '("tensorflow", "keras")))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, timeout=60)
    self.assertEqual(out.stdout.strip(), '[]', out.stderr)


if __name__ == '__main__':
  unittest.main()
