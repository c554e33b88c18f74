"""The quickstart's data: real LFW faces from the installed scikit-image (skips without it)."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf.dataset_tool import quickstart
from tests import testutil


class QuickstartTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    try:
      import skimage  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      self.skipTest('scikit-image not installed (pip install -e ".[quickstart]")')

  def test_faces(self):
    faces = quickstart.lfw_faces()
    self.assertEqual((faces.shape, faces.dtype), ((100, 25, 25), np.uint8))
    self.assertGreater(faces.std(), 20)  # real images, not a constant

  def test_main_writes_npy(self):
    out = os.path.join(tempfile.mkdtemp(), 'sub', 'faces.npy')
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.dataset_tool.quickstart', out],
                          cwd=str(testutil.REPO), capture_output=True, text=True, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertEqual(np.load(out).shape, (100, 25, 25))
    self.assertEqual(os.listdir(os.path.dirname(out)), ['faces.npy'])


if __name__ == '__main__':
  tf.test.main()
