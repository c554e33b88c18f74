"""Start-up self-check: custom and fused paths are proven against the reference (cached per
build + device); a faulty kernel (test hook: wrong values, or raising) is switched off with one
warning and the run's results equal the reference path's; an explicit request fails clearly."""

import os
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from sg2tf import custom_ops
from sg2tf import selfcheck
from sg2tf.custom_ops import policy
from sg2tf.training import distribute
from sg2tf.training import loop
from tests import testutil
from tests.training import tiny


def _reset():
  policy._reset_for_tests()  # pylint: disable=protected-access
  selfcheck._reset_for_tests()  # pylint: disable=protected-access


class SelfCheckTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    _reset()

  def tearDown(self):
    _reset()
    super().tearDown()

  def test_healthy_kernels_pass_and_a_second_run_pays_nothing(self):
    testutil.custom_ops_or_skip(self)
    results = selfcheck.ensure_trusted('test')
    self.assertEqual(sorted(results), ['bias_act', 'upfirdn2d'])
    for r in results.values():
      self.assertTrue(r['ok'], r)
      self.assertLess(max(r['max_error'].values()), selfcheck.TOLERANCE)
      self.assertEqual(sorted(r['max_error']), ['forward', 'grad', 'grad2'])
    selfcheck._reset_for_tests()  # pylint: disable=protected-access  # "A new process".
    with mock.patch.object(selfcheck, 'check_ops', side_effect=AssertionError('recomputed')):
      self.assertEqual(selfcheck.ensure_trusted('test'), results)  # Read from disk.

  def test_reference_policy_checks_nothing(self):
    with custom_ops.implementation('ref'), custom_ops.formulation('cpu'):
      with mock.patch.object(selfcheck, 'check_ops', side_effect=AssertionError('ran')):
        self.assertEqual(selfcheck.ensure_trusted('export'), {})

  def test_faulty_kernels_are_switched_off_with_one_warning(self):
    testutil.custom_ops_or_skip(self)
    with selfcheck.inject_fault_for_tests('bias_act', 'wrong'), \
         selfcheck.inject_fault_for_tests('upfirdn2d', 'raise'):
      with self.assertLogs('absl', level='WARNING') as logs:
        results = selfcheck.ensure_trusted('test')
        selfcheck.ensure_trusted('test')  # Warned once.
      x = tf.constant([[-1.0, 2.0]])
      self.assertAllClose(custom_ops.bias_act(x, act='lrelu'),
                          custom_ops.bias_act(x, act='lrelu', impl='ref'))  # No fault: ref.
    self.assertFalse(results['bias_act']['ok'])
    self.assertGreater(results['bias_act']['max_error']['forward'], 0.1)
    self.assertIn('injected kernel fault', results['upfirdn2d']['error'])
    self.assertEqual(sorted(policy.disabled()), ['bias_act', 'upfirdn2d'])
    self.assertEqual(policy.resolve_impl('auto', 'upfirdn2d'), 'ref')
    warnings = [r.getMessage() for r in logs.records if 'self-check' in r.getMessage()]
    self.assertLen(warnings, 1)
    for part in ('custom bias_act', 'max error', 'custom upfirdn2d', 'injected kernel fault',
                 'reference path'):
      self.assertIn(part, warnings[0])

  def test_explicit_custom_turns_a_failure_into_an_error(self):
    testutil.custom_ops_or_skip(self)
    with selfcheck.inject_fault_for_tests('bias_act', 'wrong'):
      with custom_ops.implementation('custom'):
        with self.assertRaisesRegex(selfcheck.SelfCheckError, 'bias_act.*explicitly'):
          selfcheck.ensure_trusted('training')
    self.assertEqual(policy.disabled(), {})

  def test_explicit_gpu_formulation_fails_clearly_on_cpu_without_xla(self):
    # A real failure, no hook: TF has no CPU gradient for grouped convolutions outside XLA.
    if policy._device.gpus_visible():  # pylint: disable=protected-access
      self.skipTest('a GPU is visible')
    with custom_ops.implementation('ref'), custom_ops.formulation('gpu'):
      # (TF reports "Gradients for grouped convolutions are not supported on CPU", or the
      # filter-gradient kernel's size error, depending on which op runs first.)
      with self.assertRaisesRegex(selfcheck.SelfCheckError,
                                  'fused_modconv.*InvalidArgumentError'):
        selfcheck.ensure_trusted('training')
      # Under XLA (a jit-compiled run) the same formulation passes.
      self.assertTrue(selfcheck.ensure_trusted('training', jit_compile=True)['fused_modconv']['ok'])

  def test_auto_fused_default_falls_back_when_it_mismatches(self):
    bad = {'fused_modconv': {'ok': False, 'max_error': {'forward': 0.5},
                             'error': 'up: max error 0.5'}}
    with custom_ops.implementation('ref'), \
         mock.patch.object(policy._device, 'gpus_visible', return_value=True), \
         mock.patch.object(policy._device, 'default_device', return_value='/CPU:0'), \
         mock.patch.object(selfcheck, 'check_fused_modconv', return_value=bad):
      self.assertTrue(custom_ops.fused_modconv())
      with self.assertLogs('absl', level='WARNING') as logs:
        selfcheck.ensure_trusted('evaluation')
      self.assertFalse(custom_ops.fused_modconv())  # Non-fused from now on.
    self.assertIn('fused modulated conv (up: max error 0.5)', logs.output[0])

  def test_fault_hook_by_environment(self):
    with mock.patch.dict(os.environ, {'SG2TF_TEST_INJECT_FAULT': 'bias_act:raise'}):
      faults = custom_ops._loader.active_faults()  # pylint: disable=protected-access
      self.assertEqual(faults, {'bias_act': 'raise'})


class TrainingFallsBackTest(tf.test.TestCase):
  """One tiny training step with faulty kernels equals the same step on the reference ops."""

  def setUp(self):
    super().setUp()
    _reset()
    testutil.custom_ops_or_skip(self)
    root = tempfile.mkdtemp()
    self.data = tiny.make_dataset(os.path.join(root, 'data'), count=8, resolution=8)
    self.root = root

  def tearDown(self):
    _reset()
    super().tearDown()

  def _trained(self, name, impl):
    cfg = tiny.tiny_config(os.path.join(self.root, name), self.data, resolution=8, impl=impl,
                           loss=dict(g_reg_interval=1, d_reg_interval=1))
    tr = loop.Trainer(cfg, distribute.make_strategy('default'))
    metrics = tr.train_step()
    return metrics, [v.numpy() for v in tr.G.variables + tr.D.variables]

  def test_fallback_results_equal_reference(self):
    with selfcheck.inject_fault_for_tests('bias_act', 'wrong'), \
         selfcheck.inject_fault_for_tests('upfirdn2d', 'raise'):
      with self.assertLogs('absl', level='WARNING') as logs:
        got_metrics, got = self._trained('faulty', 'auto')
    warnings = [r.getMessage() for r in logs.records if 'self-check' in r.getMessage()]
    self.assertLen(warnings, 1)
    self.assertIn('training continues on the reference path', warnings[0])
    _reset()
    want_metrics, want = self._trained('ref', 'ref')
    self.assertEqual(sorted(got_metrics), sorted(want_metrics))
    for k, v in want_metrics.items():
      self.assertAllClose(got_metrics[k], v, rtol=1e-6, atol=1e-7, msg=k)
    for a, b in zip(got, want):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)

  def test_explicit_custom_refuses_to_train_on_a_faulty_kernel(self):
    with selfcheck.inject_fault_for_tests('upfirdn2d', 'wrong'):
      cfg = tiny.tiny_config(os.path.join(self.root, 'strict'), self.data, resolution=8,
                             impl='custom')
      with self.assertRaisesRegex(selfcheck.SelfCheckError, 'upfirdn2d'):
        loop.Trainer(cfg, distribute.make_strategy('default'))


class ToolsRunTheSelfCheckTest(tf.test.TestCase):

  def test_eval_and_export_call_it_first(self):
    import eval_main  # pylint: disable=g-import-not-at-top
    from sg2tf import export  # pylint: disable=g-import-not-at-top
    from sg2tf import flags as sg2tf_flags  # pylint: disable=g-import-not-at-top
    err = selfcheck.SelfCheckError('self-check failed (test)')
    cfg = sg2tf_flags.EvalConfig(
        network='/nonexistent.pkl', data=None, metrics=('fid50k',), num_fakes=None,
        num_reals=None, feature_dir=None, download_features=False, cache_dir=None,
        output_dir=None, batch_per_replica=4, seed=0, truncation_psi=1.0, strategy='default')
    with mock.patch.object(selfcheck, 'ensure_trusted', side_effect=err) as hook:
      self.assertEqual(eval_main.run(cfg), 2)
      hook.assert_called_once_with('evaluation')
      with self.assertRaises(selfcheck.SelfCheckError):
        export.export_network('/nonexistent.pkl', tempfile.mkdtemp())
      self.assertEqual(hook.call_args[0][0], 'export')


if __name__ == '__main__':
  tf.test.main()
