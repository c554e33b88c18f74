"""feature_files: lookup order, aliases, missing-file message, verified atomic download."""

import dataclasses
import os
import tempfile
from unittest import mock

import tensorflow as tf

from sg2tf.metrics import feature_files


class FeatureFilesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.cache = tempfile.mkdtemp(dir=self.get_temp_dir())
    env = {feature_files.FEATURE_CACHE_ENV: self.cache, feature_files.FEATURE_DIR_ENV: ''}
    patcher = mock.patch.dict(os.environ, env)
    patcher.start()
    self.addCleanup(patcher.stop)

  def _write(self, folder, name, data=b'x'):
    path = os.path.join(folder, name)
    with open(path, 'wb') as f:
      f.write(data)
    return path

  def test_lookup_order_and_aliases(self):
    explicit = tempfile.mkdtemp(dir=self.get_temp_dir())
    env_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    in_cache = self._write(self.cache, 'lpips_vgg_v0.1.pth')
    self.assertEqual(feature_files.locate('lpips_vgg'), in_cache)
    in_env = self._write(env_dir, 'vgg.pth')  # the alias
    with mock.patch.dict(os.environ, {feature_files.FEATURE_DIR_ENV: env_dir}):
      self.assertEqual(feature_files.locate('lpips_vgg'), in_env)
      in_explicit = self._write(explicit, 'lpips_vgg_v0.1.pth')
      self.assertEqual(feature_files.locate('lpips_vgg', feature_dir=explicit), in_explicit)

  def test_missing_file_says_what_to_fetch_and_where(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaises(feature_files.FeatureFileMissingError) as cm:
      feature_files.locate('inception', feature_dir=folder)
    msg = str(cm.exception)
    self.assertIn('inception-2015-12-05.tgz', msg)
    self.assertIn(feature_files.FEATURE_FILES['inception'].url, msg)
    self.assertIn(os.path.join(folder, 'inception-2015-12-05.tgz'), msg)
    self.assertIn('--feature_dir', msg)
    self.assertIn('fid50k', msg)
    with self.assertRaisesRegex(feature_files.FeatureFileMissingError, 'not a directory'):
      feature_files.locate('inception', feature_dir=os.path.join(folder, 'nope'))

  def test_download_is_verified_and_atomic(self):
    src = self._write(tempfile.mkdtemp(dir=self.get_temp_dir()), 'weights.bin', b'abc' * 1000)
    digest = feature_files.sha256_file(src)
    good = dataclasses.replace(feature_files.FEATURE_FILES['lpips_vgg'], url='file://' + src,
                               sha256=digest)
    with mock.patch.dict(feature_files.FEATURE_FILES, {'lpips_vgg': good}):
      path = feature_files.locate('lpips_vgg', download=True)
    self.assertEqual(path, os.path.join(self.cache, 'lpips_vgg_v0.1.pth'))
    os.remove(path)
    bad = dataclasses.replace(good, sha256='0' * 64)
    with mock.patch.dict(feature_files.FEATURE_FILES, {'lpips_vgg': bad}):
      with self.assertRaisesRegex(feature_files.FeatureFileMissingError,
                                  'Downloading it failed.*sha256'):
        feature_files.locate('lpips_vgg', download=True)
    self.assertEqual(os.listdir(self.cache), [])  # no partial or unverified file left
    unreachable = dataclasses.replace(good, url='file:///nonexistent/weights.bin')
    with mock.patch.dict(feature_files.FEATURE_FILES, {'lpips_vgg': unreachable}):
      with self.assertRaisesRegex(feature_files.FeatureFileMissingError, 'Fetch file:///'):
        feature_files.locate('lpips_vgg', download=True)

  def test_torchvision_name_promises_a_sha256_prefix(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    self._write(folder, 'vgg16-397923af.pth', b'not the real weights')
    with self.assertRaisesRegex(ValueError, 'does not start with 397923af'):
      feature_files.locate('vgg16', feature_dir=folder)

  def test_readme_table_lists_every_file(self):
    table = feature_files.readme_table()
    for spec in feature_files.FEATURE_FILES.values():
      self.assertIn(spec.filename, table)
      self.assertIn(spec.url, table)


if __name__ == '__main__':
  tf.test.main()
