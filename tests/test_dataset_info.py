"""Tests for sg2tf/dataset_info.py (inspecting and verifying dataset directories)."""

import json
import pathlib
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf import dataset_info
from sg2tf.dataset_info import DatasetError
from sg2tf.dataset_info import DatasetInfo
from tests.test_dataset import write_official


class DatasetInfoTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = pathlib.Path(tempfile.mkdtemp(prefix='dataset_info_test_'))
    self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
    self.images = np.random.default_rng(2).integers(0, 256, (10, 1, 8, 8), dtype=np.uint8)
    self.labels = np.eye(5, dtype=np.float32)[np.arange(10) % 5]
    self.levels = write_official(self.tmp / 'ds', self.images, self.labels)

  def test_official_layout(self):
    info = DatasetInfo.from_dir(self.tmp / 'ds')
    self.assertEqual(info.resolutions, [4, 8])
    self.assertEqual((info.count, info.channels, info.label_dim, info.name), (10, 1, 5, 'ds'))
    self.assertEqual(info.file(), str(self.tmp / 'ds' / 'ds-r03.tfrecords'))
    self.assertEqual(info.record_bytes(4), 16)
    self.assertIsNone(info.manifest)
    self.assertAllEqual(info.load_labels(), self.labels)
    info.verify(full=True)

  def test_parse_record_matches_tensorflow(self):
    path = str(self.tmp / 'ds' / 'ds-r02.tfrecords')
    for i, rec in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
      self.assertAllEqual(dataset_info.parse_record(rec), self.levels[1][i])
    # Unpacked int64 encoding and extra features are fine too; other shapes are not.
    ex = tf.train.Example()
    ex.features.feature['data'].bytes_list.value.append(bytes(range(12)))
    ex.features.feature['shape'].int64_list.value.extend([3, 2, 2])
    ex.features.feature['extra'].float_list.value.append(1.5)
    self.assertAllEqual(dataset_info.parse_record(ex.SerializeToString()),
                        np.arange(12).reshape(3, 2, 2))
    with self.assertRaisesRegex(DatasetError, r'f.tfr: record shape \[3, 2, 2\] does not match '
                                'its 5 data bytes'):
      ex.features.feature['data'].bytes_list.value[0] = b'12345'
      dataset_info.parse_record(ex.SerializeToString(), 'f.tfr')
    with self.assertRaisesRegex(DatasetError, 'not an official-layout tf.train.Example'):
      dataset_info.parse_record(b'\xff\xff\xff', 'f.tfr')

  def test_scan_records_and_crc(self):
    path = self.tmp / 'ds' / 'ds-r03.tfrecords'
    self.assertEqual(dataset_info.scan_records(str(path)), 10)
    data = path.read_bytes()
    length = data[:8]
    self.assertEqual(dataset_info.masked_crc32c(length),
                     int.from_bytes(data[8:12], 'little'))
    path.write_bytes(data + b'\0' * 5)
    with self.assertRaisesRegex(DatasetError, r'ds-r03.tfrecords: 5 stray bytes after record 10'):
      dataset_info.scan_records(str(path))
    bad = bytearray(data)
    bad[0] ^= 1
    path.write_bytes(bytes(bad))
    with self.assertRaisesRegex(DatasetError, 'bad header checksum of record 0'):
      dataset_info.scan_records(str(path))
    with self.assertRaisesRegex(DatasetError, 'bad header checksum of record 0'):
      DatasetInfo.from_dir(self.tmp / 'ds')

  def test_directory_errors(self):
    with self.assertRaisesRegex(DatasetError, 'nowhere does not exist.*create_from_images'):
      DatasetInfo.from_dir(self.tmp / 'nowhere')
    (self.tmp / 'empty').mkdir()
    with self.assertRaisesRegex(DatasetError, r'empty: no \*.tfrecords files'):
      DatasetInfo.from_dir(self.tmp / 'empty')
    with self.assertRaisesRegex(DatasetError, 'no 16x16 images; this dataset has resolutions '
                                '4, 8'):
      DatasetInfo.from_dir(self.tmp / 'ds').file(16)

  def test_inconsistent_files(self):
    ds = self.tmp / 'ds'
    shutil.copy(ds / 'ds-r02.tfrecords', ds / 'copy-r02.tfrecords')
    with self.assertRaisesRegex(DatasetError, 'two files hold 4x4 images'):
      DatasetInfo.from_dir(ds)
    (ds / 'copy-r02.tfrecords').unlink()
    shutil.copy(ds / 'ds-r02.tfrecords', ds / 'ds-r05.tfrecords')
    with self.assertRaisesRegex(DatasetError, 'ds-r05.tfrecords: the name says 32x32 but the '
                                'records are 4x4'):
      DatasetInfo.from_dir(ds)
    (ds / 'ds-r05.tfrecords').unlink()
    write_official(self.tmp / 'short', self.images[:4])
    shutil.copy(self.tmp / 'short' / 'short-r03.tfrecords', ds / 'ds-r03.tfrecords')
    with self.assertRaisesRegex(DatasetError, 'ds-r03.tfrecords: 4 records but .* has 10'):
      DatasetInfo.from_dir(ds).verify()
    with open(ds / 'ds-rxx.labels', 'wb') as f:
      np.save(f, np.zeros((3, 2), np.float32))
    with self.assertRaisesRegex(DatasetError, r'ds-rxx.labels: labels have shape \[3, 2\], '
                                r'expected \[10, label_dim\]'):
      DatasetInfo.from_dir(ds)

  def test_truncated_smallest_level_is_the_one_named(self):
    ds = self.tmp / 'ds'
    write_official(self.tmp / 'short', self.images[:4])
    shutil.copy(self.tmp / 'short' / 'short-r02.tfrecords', ds / 'ds-r02.tfrecords')
    # Cut at a record boundary, so the header walk alone cannot tell; the short file is named.
    with self.assertRaisesRegex(DatasetError, r'ds-r02.tfrecords: 4 records but .*ds-r03'
                                r'.tfrecords has 10; this file is truncated'):
      DatasetInfo.from_dir(ds).verify()
    (ds / 'manifest.json').write_text(json.dumps({'count': 10, 'resolution': 8, 'channels': 1}))
    with self.assertRaisesRegex(DatasetError, r'ds-r02.tfrecords: 4 records but .*manifest.json '
                                r'and .*ds-r03.tfrecords say 10; this file is truncated'):
      DatasetInfo.from_dir(ds)

  def test_bad_label_files(self):
    ds = self.tmp / 'ds'
    labels = np.zeros([10, 2], np.float32)
    labels[7, 1] = np.nan
    with open(ds / 'ds-rxx.labels', 'wb') as f:
      np.save(f, labels)
    with self.assertRaisesRegex(DatasetError, r'ds-rxx.labels: 1 label rows hold NaN or Inf '
                                r'\(the first is row 7\)'):
      DatasetInfo.from_dir(ds)
    for data, what in ((b'0 1\n1 0\n', "a text file \\(starting '0 1'\\)"),
                       (b'PK\x03\x04zz', 'a zip archive'), (b'', 'an empty file'),
                       (b'\x80\x04K\x01.', 'a Python pickle')):
      (ds / 'ds-rxx.labels').write_bytes(data)
      with self.assertRaisesRegex(DatasetError, rf'ds-rxx.labels: not a label array \(.npy\) '
                                  rf'\(a .npy file\); it is {what}'):
        DatasetInfo.from_dir(ds)
    with open(ds / 'ds-rxx.labels', 'wb') as f:
      np.save(f, np.array(['a'] * 10, dtype=object), allow_pickle=True)
    with self.assertRaisesRegex(DatasetError, 'Python objects, which sg2tf never unpickles'):
      DatasetInfo.from_dir(ds)

  def test_manifest_checked(self):
    ds = self.tmp / 'ds'
    # A count the records disagree with stops training at start-up (it used to be ignored).
    (ds / 'manifest.json').write_text(json.dumps({'count': 11, 'resolution': 8, 'channels': 1,
                                                   'label_dim': 5}))
    with self.assertRaisesRegex(DatasetError, 'manifest.json says 11 images but the files hold '
                                '10; the dataset was modified'):
      DatasetInfo.from_dir(ds)
    (ds / 'manifest.json').write_text(json.dumps({'count': 10, 'resolution': 8, 'channels': 3,
                                                   'label_dim': 5}))
    with self.assertRaisesRegex(DatasetError, 'manifest.json says count=10, resolution=8, '
                                'channels=3'):
      DatasetInfo.from_dir(ds).verify()
    (ds / 'manifest.json').write_text('{not json')
    with self.assertRaisesRegex(DatasetError, 'unreadable manifest'):
      DatasetInfo.from_dir(ds)


if __name__ == '__main__':
  tf.test.main()
