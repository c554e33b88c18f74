"""sg2tf.networks.checks: the argument checks the network classes share."""

from absl.testing import parameterized
import tensorflow as tf

from sg2tf import conventions
from sg2tf.networks import checks
from sg2tf.networks import discriminator
from sg2tf.networks import synthesis


class ChecksTest(tf.test.TestCase, parameterized.TestCase):

  def test_valid_values_come_back_normalised(self):
    self.assertEqual(checks.check_resolution('64', 'X'), 64)
    self.assertEqual(checks.check_architecture('skip', 'X'), 'skip')
    self.assertEqual(checks.check_mixed_precision('2', 256, 'X'), (2, 256.0))
    self.assertEqual(checks.check_mixed_precision(0, None, 'X'), (0, None))
    self.assertEqual(checks.check_fp16_dtype(tf.bfloat16, 'X'), 'bfloat16')
    self.assertIs(checks.ARCHITECTURES, conventions.ARCHITECTURES)

  @parameterized.parameters(
      (checks.check_resolution, (48,), 'Net: resolution must be a power of two >= 4'),
      (checks.check_resolution, (2,), 'power of two'),
      (checks.check_architecture, ('dense',), "Net: architecture must be one of .*'dense'"),
      (checks.check_mixed_precision, (-1, None), 'Net: num_fp16_res must be >= 0'),
      (checks.check_fp16_dtype, ('float32',), 'Net: fp16_dtype must be one of'))
  def test_errors_name_the_class(self, fn, args, pattern):
    with self.assertRaisesRegex(ValueError, pattern):
      fn(*args, 'Net')

  def test_fp16_resolution(self):
    self.assertEqual(checks.fp16_resolution(256, 0), 512)  # above the image: none in fp16
    self.assertEqual(checks.fp16_resolution(256, 2), 128)
    self.assertEqual(checks.fp16_resolution(256, 9), 8)  # never below 8x8

  def test_networks_use_these(self):
    for module in (synthesis, discriminator):
      self.assertIs(module.check_architecture, checks.check_architecture)
      self.assertIs(module.fp16_resolution, checks.fp16_resolution)


if __name__ == '__main__':
  tf.test.main()
