"""Tests for data/labels.py."""

import json
import pathlib
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf.dataset_tool import labels as labels_lib
from sg2tf.dataset_info import DatasetError


class LabelsTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = pathlib.Path(tempfile.mkdtemp(prefix='labels_test_'))
    self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

  def write(self, name, text):
    path = self.tmp / name
    path.write_text(text)
    return str(path)

  @parameterized.named_parameters(
      ('json_map', 'l.json', json.dumps({'a/x.png': 1, './b.png': 0})),
      ('json_ada', 'l.json', json.dumps({'labels': [['a/x.png', 1], ['b.png', 0]]})),
      ('json_pairs', 'l.json', json.dumps([['a/x.png', 1], ['b.png', 0]])),
      ('csv_header', 'l.csv', 'file,label\na/x.png,1\nb.png,0\n'),
      ('csv_plain', 'l.csv', 'a/x.png,1\n\nb.png,0\n'))
  def test_read_label_file(self, name, text):
    mapping = labels_lib.read_label_file(self.write(name, text))
    self.assertEqual(mapping, {'a/x.png': 1, 'b.png': 0})

  def test_csv_vectors_and_names(self):
    m = labels_lib.read_label_file(self.write('v.csv', 'x.png,0.5,1\ny.png,2,3.25\n'))
    mat, names = labels_lib.to_matrix(labels_lib.match_labels(m, ['x.png', 'y.png'], 's'), 's')
    self.assertIsNone(names)
    self.assertAllClose(mat, [[0.5, 1], [2, 3.25]])
    m = labels_lib.read_label_file(self.write('n.csv', 'x.png,dog\ny.png,cat\nz.png,dog\n'))
    mat, names = labels_lib.to_matrix(list(m.values()), 's')
    self.assertEqual(names, ['cat', 'dog'])
    self.assertAllEqual(mat, [[0, 1], [1, 0], [0, 1]])

  def test_to_matrix(self):
    mat, _ = labels_lib.to_matrix([0, 3, 1], 's')
    self.assertAllEqual(mat, np.eye(4)[[0, 3, 1]])  # max + 1 classes, like NVIDIA's tool.
    mat, _ = labels_lib.to_matrix([0.5, 1, 2.5], 's')
    self.assertAllClose(mat, [[0.5], [1], [2.5]])
    with self.assertRaisesRegex(DatasetError, 'different lengths'):
      labels_lib.to_matrix([[1, 2], [3]], 's')
    with self.assertRaisesRegex(DatasetError, '>= 0'):
      labels_lib.to_matrix([-1, 2], 's')
    with self.assertRaisesRegex(DatasetError, 'all class indices'):
      labels_lib.to_matrix([1, 'cat'], 's')

  def test_nan_and_garbage_labels(self):
    with self.assertRaisesRegex(DatasetError, r's: 1 label rows hold NaN or Inf \(the first is '
                                r'row 1: \[nan, 1.0\]\)'):
      labels_lib.to_matrix([[0.5, 1.0], [float('nan'), 1.0]], 's')
    with self.assertRaisesRegex(DatasetError, 'hold NaN or Inf'):
      labels_lib.to_matrix([0.5, float('inf')], 's')
    path = self.write('l.json', '{"a.png": [NaN, 1]}')  # Python's json reads NaN
    with self.assertRaisesRegex(DatasetError, 'l.json: 1 label rows hold NaN'):
      labels_lib.to_matrix(list(labels_lib.read_label_file(path).values()), path)
    garbage = self.write('g.npy', 'not an array at all')
    with self.assertRaisesRegex(DatasetError, r"--labels=.*g.npy: not a label array \(a .npy "
                                r"file\); it is a text file \(starting 'not an array"):
      labels_lib.from_npy(garbage, 2)
    with self.assertRaisesRegex(DatasetError, r'--labels=.*l.json: cannot read it'):
      labels_lib.read_label_file(self.write('l.json', '{garbage'))

  def test_match_labels(self):
    m = {'x.png': 1, 'y.png': 2, 'cat/z.png': 3}
    self.assertEqual(labels_lib.match_labels(m, ['d1/x.png', 'd2/y.png', 'top/cat/z.png'], 's'),
                     [1, 2, 3])
    with self.assertRaisesRegex(DatasetError, r's: no label for 1 of 2 images \(e.g. w.png\)'):
      labels_lib.match_labels(m, ['x.png', 'w.png'], 's')
    # Shortened paths must be unambiguous.
    with self.assertRaisesRegex(DatasetError, "'x.png' matches several images"):
      labels_lib.match_labels(m, ['d1/x.png', 'd2/x.png'], 's')

  def test_from_subdirs(self):
    idx, names = labels_lib.from_subdirs(['b/1.png', 'a/2.png', 'b/c/3.png'])
    self.assertEqual((idx, names), ([1, 0, 1], ['a', 'b']))
    idx, names = labels_lib.from_subdirs(['top/b/1.png', 'top/a/2.png'])  # Zip's top folder.
    self.assertEqual((idx, names), ([1, 0], ['a', 'b']))
    self.assertEqual(labels_lib.from_subdirs(['top/b/1.png'])[1], ['b'])
    with self.assertRaisesRegex(DatasetError, 'not in a class subfolder'):
      labels_lib.from_subdirs(['a/1.png', '2.png'])

  def test_from_npy(self):
    np.save(self.tmp / 'i.npy', np.array([2, 0]))
    self.assertAllEqual(labels_lib.from_npy(str(self.tmp / 'i.npy'), 2), np.eye(3)[[2, 0]])
    np.save(self.tmp / 'v.npy', np.ones((2, 5), np.float64))
    self.assertEqual(labels_lib.from_npy(str(self.tmp / 'v.npy'), 2).dtype, np.float32)
    with self.assertRaisesRegex(DatasetError, r'shape \[2, 5\], expected \[3\]'):
      labels_lib.from_npy(str(self.tmp / 'v.npy'), 3)

  def test_bad_files(self):
    with self.assertRaisesRegex(DatasetError, 'no such file'):
      labels_lib.read_label_file(str(self.tmp / 'none.json'))
    with self.assertRaisesRegex(DatasetError, 'use a .json or .csv'):
      labels_lib.read_label_file(self.write('l.yaml', 'a: 1'))
    with self.assertRaisesRegex(DatasetError, 'cannot read it'):
      labels_lib.read_label_file(self.write('l.json', '{broken'))
    with self.assertRaisesRegex(DatasetError, 'holds no labels'):
      labels_lib.read_label_file(self.write('e.json', '{}'))


if __name__ == '__main__':
  tf.test.main()
