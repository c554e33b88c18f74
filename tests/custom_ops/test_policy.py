"""The op-level policy: one place decides the implementation and the formulation."""

import os
import sys
import threading
from unittest import mock

import tensorflow as tf

from sg2tf import custom_ops
from sg2tf.custom_ops import _device, _loader, policy
from tests import testutil


class PolicyTest(tf.test.TestCase):

  def tearDown(self):
    policy._reset_for_tests()  # pylint: disable=protected-access
    super().tearDown()

  def test_scope_nesting_and_per_call_override(self):
    self.assertEqual(policy.current_implementation(), 'auto')
    with custom_ops.implementation('ref'):
      self.assertEqual(policy.resolve_impl(), 'ref')
      self.assertEqual(policy.requested_impl('custom'), 'custom')  # The call's choice wins.
      with custom_ops.implementation('auto'):
        self.assertEqual(policy.current_implementation(), 'auto')
      with custom_ops.implementation(None):  # None leaves the policy as it is.
        self.assertEqual(policy.current_implementation(), 'ref')
      self.assertEqual(policy.current_implementation(), 'ref')
    self.assertEqual(policy.current_implementation(), 'auto')
    with self.assertRaisesRegex(ValueError, 'impl must be one of'):
      custom_ops.implementation('cuda')

  def test_scope_reaches_the_ops_through_networks(self):
    bias_act_module = sys.modules['sg2tf.custom_ops.bias_act']
    calls = []
    real = bias_act_module._bias_act_ref  # pylint: disable=protected-access

    def spy(*args):
      calls.append(1)
      return real(*args)
    from sg2tf.networks import MappingNetwork  # pylint: disable=g-import-not-at-top
    m = MappingNetwork(z_dim=4, w_dim=4, num_ws=2, num_layers=2, layer_dim=4)
    with mock.patch.object(bias_act_module, '_bias_act_ref', spy):
      with custom_ops.implementation('ref'):
        m(tf.ones([2, 4]))
    self.assertLen(calls, 2)

  def test_process_default_and_threads(self):
    old = custom_ops.set_implementation('ref')
    self.assertEqual(old, 'auto')
    seen = []
    with custom_ops.implementation('custom'):
      # tf.distribute runs replica functions in other threads: they see the scope.
      t = threading.Thread(target=lambda: seen.append(policy.current_implementation()))
      t.start()
      t.join()
    self.assertEqual(seen, ['custom'])
    self.assertEqual(policy.current_implementation(), 'ref')

  def test_formulation_default_comes_from_the_one_device_check(self):
    for gpu, want in ((True, 'gpu'), (False, 'cpu')):
      with mock.patch.object(_device, 'gpus_visible', return_value=gpu):
        self.assertEqual(policy.resolve_formulation(), want)
        self.assertEqual(custom_ops.fused_modconv(), gpu)
        self.assertFalse(custom_ops.fused_modconv(False))  # The call's choice wins.
        with custom_ops.formulation('cpu' if gpu else 'gpu'):
          self.assertEqual(policy.resolve_formulation(), 'cpu' if gpu else 'gpu')
    with mock.patch.object(_device, 'gpus_visible', return_value=True):
      policy.disable('fused_modconv', 'self-check mismatch (test)')
      self.assertEqual(policy.resolve_formulation(), 'cpu')
      with custom_ops.formulation('gpu'):  # An explicit choice is not overridden.
        self.assertEqual(policy.resolve_formulation(), 'gpu')

  def test_disabled_path_falls_back_for_auto_only(self):
    testutil.custom_ops_or_skip(self)
    policy.disable('bias_act', 'test')
    self.assertEqual(policy.resolve_impl('auto', 'bias_act'), 'ref')
    self.assertEqual(policy.resolve_impl('auto', 'upfirdn2d'), 'custom')
    self.assertEqual(policy.resolve_impl('custom', 'bias_act'), 'custom')

  def test_disabled_by_environment(self):
    _loader._reset_for_tests()  # pylint: disable=protected-access
    try:
      with mock.patch.dict(os.environ, {'SG2TF_DISABLE_CUSTOM_OPS': '1'}):
        self.assertEqual(policy.resolve_impl('auto', 'bias_act'), 'ref')
        with self.assertRaisesRegex(custom_ops.CustomOpUnavailableError,
                                    'SG2TF_DISABLE_CUSTOM_OPS'):
          policy.resolve_impl('custom')
    finally:
      _loader._reset_for_tests()  # pylint: disable=protected-access


if __name__ == '__main__':
  tf.test.main()
