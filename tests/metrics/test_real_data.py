"""real_data: the private TFRecord reader (official layout) and the dataset identity."""

import os
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf.metrics import real_data
from tests.metrics import standins


class RealDataTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    rng = np.random.default_rng(0)
    self.images = rng.integers(0, 256, [10, 8, 8, 3], dtype=np.uint8)
    standins.write_tfrecord_dataset(self.dir, self.images[:, ::2, ::2])  # r02 (4x4)
    self.path = standins.write_tfrecord_dataset(self.dir, self.images)  # r03 (8x8)

  def test_picks_the_highest_resolution(self):
    path, shape = real_data.find_tfrecord(self.dir)
    self.assertEqual((path, shape), (self.path, (3, 8, 8)))

  def test_batches_in_record_order(self):
    got = list(real_data.real_image_batches(self.dir, 4, None))
    self.assertEqual([b.shape[0] for b in got], [4, 4, 2])
    self.assertEqual(got[0].dtype, np.uint8)
    self.assertAllEqual(np.concatenate(got), self.images)

  def test_cycles_a_small_dataset(self):
    with self.assertLogs(level='WARNING') as logs:
      got = np.concatenate(list(real_data.real_image_batches(self.path, 4, 23)))
    self.assertAllEqual(got, np.concatenate([self.images] * 3)[:23])
    self.assertIn('cycling', '\n'.join(logs.output))
    self.assertLen(np.concatenate(list(real_data.real_image_batches(self.path, 4, 6))), 6)

  def test_grayscale(self):
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    gray = self.images[..., :1]
    standins.write_tfrecord_dataset(d, gray)
    self.assertAllEqual(np.concatenate(list(real_data.real_image_batches(d, 3, None))), gray)

  def test_hash_follows_content(self):
    h = real_data.dataset_hash(self.path)
    self.assertEqual(h, real_data.dataset_hash(self.path))
    other = tempfile.mkdtemp(dir=self.get_temp_dir())
    changed = self.images.copy()
    changed[3, 0, 0, 0] ^= 1
    self.assertNotEqual(h, real_data.dataset_hash(standins.write_tfrecord_dataset(other, changed)))

  def test_bad_paths(self):
    with self.assertRaisesRegex(real_data.RealDataError, 'no such file'):
      real_data.find_tfrecord(os.path.join(self.dir, 'nope'))
    empty = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(real_data.RealDataError, 'no \\*.tfrecords'):
      real_data.find_tfrecord(empty)
    junk = os.path.join(empty, 'junk-r03.tfrecords')
    with open(junk, 'wb') as f:
      f.write(b'garbage' * 10)
    with self.assertRaisesRegex(real_data.RealDataError, 'junk-r03.tfrecords'):
      real_data.find_tfrecord(empty)


if __name__ == '__main__':
  tf.test.main()
