"""sg2tf.conventions: the architecture names and noise modes, defined once and used by the
networks, the paper configs, the flags and the tools."""

import unittest

from sg2tf import conventions


class ConventionsTest(unittest.TestCase):

  def test_values(self):
    self.assertEqual(conventions.ARCHITECTURES, ('orig', 'skip', 'resnet'))
    self.assertEqual(conventions.NOISE_MODES, ('const', 'random', 'none'))
    self.assertEqual(conventions.NOISE_MODES[0], 'const')  # the tools' default

  def test_one_definition(self):
    # Every user holds this very tuple, not a copy of it (imports only: no TF here).
    from sg2tf import flags as sg2tf_flags  # pylint: disable=g-import-not-at-top
    from sg2tf import paper_configs  # pylint: disable=g-import-not-at-top
    from sg2tf.training import config  # pylint: disable=g-import-not-at-top
    self.assertIs(sg2tf_flags.ARCHITECTURES, conventions.ARCHITECTURES)
    self.assertIs(paper_configs.ARCHITECTURES, conventions.ARCHITECTURES)
    self.assertIs(config.ARCHITECTURES, conventions.ARCHITECTURES)
    self.assertEqual({n for n in paper_configs.CONFIGS if n.startswith('config-e-G')},
                     {f'config-e-G{g}-D{d}' for g in conventions.ARCHITECTURES
                      for d in conventions.ARCHITECTURES})


if __name__ == '__main__':
  unittest.main()
