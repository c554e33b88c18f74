"""sg2tf.utils.errors: NetworkLoadError is one class wherever it is raised, and a ValueError
(the tools' expected errors)."""

import unittest

from sg2tf import loading
from sg2tf import saved_model_generator
from sg2tf import tool_util
from sg2tf.utils import errors


class ErrorsTest(unittest.TestCase):

  def test_one_class(self):
    self.assertIs(loading.NetworkLoadError, errors.NetworkLoadError)
    self.assertIs(saved_model_generator.NetworkLoadError, errors.NetworkLoadError)
    self.assertTrue(issubclass(errors.NetworkLoadError, ValueError))
    self.assertIsInstance(errors.NetworkLoadError('x'), tool_util.expected_errors())


if __name__ == '__main__':
  unittest.main()
