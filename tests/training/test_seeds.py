"""sg2tf.training.seeds: the stream offsets stay what existing runs were drawn with, and the
path-length key collides with no other sub-stream key of a phase."""

import unittest

from sg2tf.training import seeds


class SeedsTest(unittest.TestCase):

  def test_values_are_fixed(self):
    # Changing them changes the numbers of every run (resumes, snapshot grids).
    self.assertEqual(seeds.PL_IN_G_MAIN_KEY, 99)
    self.assertEqual(seeds.GRID_SEED_OFFSET, 1000)

  def test_pl_key_is_its_own_stream(self):
    import ast  # pylint: disable=g-import-not-at-top
    import pathlib  # pylint: disable=g-import-not-at-top
    # The other keys: sampling.py's `_Z, ... = range(7)` and phases.py's _AUG_* (read from
    # the sources, so a new key that reuses 99 fails here).
    keys = set()
    root = pathlib.Path(seeds.__file__).parent
    for name in ('sampling.py', 'phases.py'):
      for node in ast.parse((root / name).read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple) and all(
            isinstance(t, ast.Name) and t.id.startswith('_') and t.id.isupper()
            for t in node.targets[0].elts):
          keys.update(ast.literal_eval(node.value) if not isinstance(node.value, ast.Call)
                      else range(*[ast.literal_eval(a) for a in node.value.args]))
    self.assertGreaterEqual(len(keys), 11)
    self.assertNotIn(seeds.PL_IN_G_MAIN_KEY, keys)


if __name__ == '__main__':
  unittest.main()
