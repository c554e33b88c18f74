"""Loading the library: 'auto' falls back with ONE warning that says why; 'custom' raises."""

import os
from unittest import mock

import tensorflow as tf

from sg2tf.custom_ops import _loader, bias_act, policy, upfirdn2d


class LoaderTest(tf.test.TestCase):

  def tearDown(self):
    _loader._reset_for_tests()  # pylint: disable=protected-access
    super().tearDown()

  def test_auto_falls_back_with_one_warning(self):
    _loader._reset_for_tests()  # pylint: disable=protected-access
    with mock.patch.dict(os.environ, {'SG2TF_DISABLE_CUSTOM_OPS': '1'}):
      with self.assertLogs('absl', level='WARNING') as logs:
        y = bias_act(tf.ones([2, 3]), act='relu', impl='auto')
        upfirdn2d(tf.ones([1, 4, 4, 1]), [1.0, 1.0], impl='auto')
        bias_act(tf.ones([2, 3]), impl='auto')
    self.assertAllClose(y, tf.ones([2, 3]) * 2 ** 0.5)
    warnings = [r for r in logs.records if 'Falling back' in r.getMessage()]
    self.assertLen(warnings, 1)
    self.assertIn('SG2TF_DISABLE_CUSTOM_OPS', warnings[0].getMessage())

  def test_custom_raises_clear_error(self):
    _loader._reset_for_tests()  # pylint: disable=protected-access
    with mock.patch.dict(os.environ, {'SG2TF_DISABLE_CUSTOM_OPS': '1'}):
      with self.assertRaisesRegex(_loader.CustomOpUnavailableError, 'impl="ref"'):
        bias_act(tf.ones([2, 3]), impl='custom')

  def test_build_failure_is_reported_not_raised_for_auto(self):
    from sg2tf.custom_ops import build  # pylint: disable=g-import-not-at-top
    _loader._reset_for_tests()  # pylint: disable=protected-access
    err = build.BuildError('g++: internal compiler error (simulated)')
    with mock.patch.object(build, 'build', side_effect=err), \
         mock.patch.object(build, 'find_built', return_value=None):
      with self.assertLogs('absl', level='WARNING') as logs:
        self.assertEqual(policy.resolve_impl('auto'), 'ref')
    self.assertTrue(any('simulated' in r.getMessage() for r in logs.records))

  def test_unknown_impl(self):
    with self.assertRaisesRegex(ValueError, 'impl must be one of'):
      policy.resolve_impl('cuda')


if __name__ == '__main__':
  tf.test.main()
