"""Tests for data/dataset_tool.py end to end: data/create.py, writer.py, export.py, fsutil.py."""

import gzip
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from unittest import mock

from absl.testing import parameterized
import numpy as np
import PIL.Image
import tensorflow as tf

from tests.testutil import official_levels
from sg2tf.dataset_tool import create
from sg2tf.dataset_tool import extract as export
from sg2tf.dataset_tool import writer as writer_lib
from sg2tf.dataset_info import DatasetError
from sg2tf.dataset_info import DatasetInfo
from sg2tf.dataset_info import parse_record

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO / '..' / 'shared' / 'datasets'
TOOL = str(REPO / 'data' / 'dataset_tool.py')


def read_level(tfrecord_dir, resolution):
  """All images of one resolution, uint8 [N, C, H, W], in record order."""
  path = DatasetInfo.from_dir(tfrecord_dir).file(resolution)
  return np.stack([parse_record(r) for r in tf.data.TFRecordDataset(path).as_numpy_iterator()])


def run_tool(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, env=env,
                        cwd=str(REPO), timeout=240, check=False)


class DatasetToolTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # tempfile, not create_tempdir(): absl flags are not parsed under pytest.
    self.tmp = pathlib.Path(tempfile.mkdtemp(prefix='dataset_tool_test_'))
    self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
    self.rng = np.random.default_rng(0)

  def make_images(self, folder, n=6, size=(16, 16), channels=3, ext='png'):
    """Random images folder/img_i.ext; returns them as uint8 [N, H, W, C]."""
    folder = self.tmp / folder
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    arr = self.rng.integers(0, 256, (n, h, w, channels), dtype=np.uint8)
    for i, a in enumerate(arr):
      mode = {1: 'L', 3: 'RGB', 4: 'RGBA'}[channels]
      PIL.Image.fromarray(a[..., 0] if channels == 1 else a, mode).save(folder / f'img_{i}.{ext}')
    return arr

  def opts(self, **kw):
    kw.setdefault('workers', 1)
    kw.setdefault('shuffle', False)
    return create.Options(**kw)

  # Round trips ---------------------------------------------------------------------------------

  @parameterized.named_parameters(('rgb_png', 3, 'png'), ('gray_png', 1, 'png'),
                                  ('rgb_bmp', 3, 'bmp'), ('gray_pgm', 1, 'pgm'),
                                  ('rgb_tiff', 3, 'tif'), ('rgb_webp_lossless', 3, 'webp'))
  def test_round_trip_every_resolution(self, channels, ext):
    if ext == 'webp':
      (self.tmp / 'src').mkdir()
      arr = self.rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
      for i, a in enumerate(arr):
        PIL.Image.fromarray(a).save(self.tmp / 'src' / f'img_{i}.webp', lossless=True)
    else:
      arr = self.make_images('src', n=4, channels=channels, ext=ext)
    out = create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    info = DatasetInfo.from_dir(out)
    self.assertEqual((info.count, info.channels, info.resolutions), (4, channels, [4, 8, 16]))
    chw = arr.transpose(0, 3, 1, 2)
    for res in info.resolutions:
      k = 16 // res
      want = np.stack([official_levels(x)[int(np.log2(k))] for x in chw])
      self.assertAllEqual(read_level(out, res), want)
    ex = self.tmp / 'png'
    self.assertEqual(export.extract(out, ex, resolution=8), 4)
    names = sorted(os.listdir(ex))
    self.assertEqual(names, [f'img{i:08d}.png' for i in range(4)])
    back = np.asarray(PIL.Image.open(ex / names[2]))
    self.assertAllEqual(back.reshape(8, 8, channels).transpose(2, 0, 1), read_level(out, 8)[2])

  def test_manifest_and_info(self):
    self.make_images('src', n=3)
    out = create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    m = json.loads((pathlib.Path(out) / 'manifest.json').read_text())
    self.assertEqual((m['count'], m['resolution'], m['channels'], m['label_dim']), (3, 16, 3, 0))
    self.assertEqual(m['source']['kind'], 'folder')
    self.assertLen(m['hash'], 64)
    self.assertCountEqual(m['files'], ['ds-r02.tfrecords', 'ds-r03.tfrecords',
                                       'ds-r04.tfrecords'])
    lines = []
    export.info_command(out, 'full', emit=lines.append)
    text = '\n'.join(lines)
    self.assertIn('images      3', text)
    self.assertIn('verified    full', text)
    with open(pathlib.Path(out) / 'ds-r03.tfrecords', 'r+b') as f:
      f.seek(40)
      b = f.read(1)
      f.seek(40)
      f.write(bytes([b[0] ^ 1]))
    with self.assertRaisesRegex(DatasetError, 'ds-r03.tfrecords'):
      export.info_command(out, 'full', emit=lines.append)

  def test_shuffle_is_seeded_and_matches_official_order(self):
    arr = self.make_images('src', n=10, size=(4, 4))
    out = create.create_from_images(self.tmp / 'ds', self.tmp / 'src',
                                    self.opts(shuffle=True, seed=123))
    order = np.arange(10)
    np.random.RandomState(123).shuffle(order)  # NVIDIA's choose_shuffled_order.
    names = sorted(f'img_{i}.png' for i in range(10))
    want = np.stack([arr[int(names[j][4:-4])] for j in order]).transpose(0, 3, 1, 2)
    self.assertAllEqual(read_level(out, 4), want)
    sub = create.create_from_images(self.tmp / 'ds2', self.tmp / 'src',
                                    self.opts(shuffle=True, seed=123, max_images=4))
    self.assertAllEqual(read_level(sub, 4), want[:4])

  # Geometry, channels, alpha -------------------------------------------------------------------

  def test_non_square_refused_then_cropped_or_resized(self):
    arr = self.make_images('src', n=2, size=(8, 12), channels=1)  # 8 wide, 12 high.
    with self.assertRaisesRegex(DatasetError, r'img_0.png is 8x12, not square.*--center-crop'
                                r'.*--resize'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    self.assertFalse((self.tmp / 'ds').exists())
    out = create.create_from_images(self.tmp / 'crop', self.tmp / 'src',
                                    self.opts(center_crop=True))
    self.assertAllEqual(read_level(out, 8)[:, 0], arr[:, 2:10, :, 0])
    out = create.create_from_images(self.tmp / 'rs', self.tmp / 'src',
                                    self.opts(resize=True, resolution=16))
    self.assertEqual(DatasetInfo.from_dir(out).resolution, 16)

  def test_small_images_upscaled_with_a_warning(self):
    self.make_images('src', n=3, size=(1, 1))
    self.make_images('src2', n=2, size=(8, 8))
    for i in range(2):
      shutil.copy(self.tmp / 'src2' / f'img_{i}.png', self.tmp / 'src' / f'big_{i}.png')
    with self.assertLogs('absl', 'WARNING') as logs:
      out = create.create_from_images(self.tmp / 'ds', self.tmp / 'src',
                                      self.opts(center_crop=True, resolution=8))
    self.assertRegex('\n'.join(logs.output), r'3 of 5 images are smaller than 8x8 \(e.g. '
                     r'.*img_0.png, 1x1\) and are upscaled')
    self.assertEqual(DatasetInfo.from_dir(out).count, 5)

  def test_wrong_size_square_needs_resize(self):
    self.make_images('src', n=2, size=(12, 12))
    with self.assertRaisesRegex(DatasetError, r'12x12, not a power of two.*pass --resize'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    self.make_images('src16', n=2, size=(16, 16))
    with self.assertRaisesRegex(DatasetError, r'is 16x16 but the dataset is 8x8.*--resize'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src16', self.opts(resolution=8))
    with self.assertRaisesRegex(DatasetError, '--resolution=12 is not a power of two'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src16', self.opts(resolution=12))

  def test_mixed_channels(self):
    gray = self.make_images('src', n=2, size=(4, 4), channels=1)
    rgb = np.full((4, 4, 3), [10, 200, 30], np.uint8)
    PIL.Image.fromarray(rgb).save(self.tmp / 'src' / 'z.png')
    with self.assertRaisesRegex(DatasetError, r'mixed channel counts: 2 grayscale .*1 colour.*'
                                r'--channels=1 or --channels=3'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    out = create.create_from_images(self.tmp / 'rgb', self.tmp / 'src', self.opts(channels=3))
    x = read_level(out, 4)
    self.assertAllEqual(x[0], np.repeat(gray[0].transpose(2, 0, 1), 3, axis=0))
    out = create.create_from_images(self.tmp / 'l', self.tmp / 'src', self.opts(channels=1))
    luma = (10 * 299 + 200 * 587 + 30 * 114) / 1000  # ITU-R 601-2.
    self.assertAllClose(read_level(out, 4)[2], np.full((1, 4, 4), luma), atol=1)

  # Bad input -------------------------------------------------------------------------------------

  def test_corrupt_images_skipped_or_strict(self):
    self.make_images('src', n=4, size=(4, 4))
    good = (self.tmp / 'src' / 'img_0.png').read_bytes()
    (self.tmp / 'src' / 'cut.png').write_bytes(good[:len(good) // 2])  # Decodes badly.
    (self.tmp / 'src' / 'junk.jpg').write_bytes(b'not a jpeg at all')  # Header fails.
    (self.tmp / 'src' / 'notes.txt').write_text('ignored')
    with self.assertLogs(level='WARNING') as logs:
      out = create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    text = '\n'.join(logs.output)
    self.assertIn('cut.png', text)
    self.assertIn('junk.jpg', text)
    info = DatasetInfo.from_dir(out)
    self.assertEqual(info.count, 4)
    self.assertEqual(info.manifest['skipped_count'], 2)
    with self.assertRaisesRegex(DatasetError, r'--strict.*junk.jpg'):
      create.create_from_images(self.tmp / 'ds2', self.tmp / 'src', self.opts(strict=True))
    (self.tmp / 'src' / 'junk.jpg').unlink()
    with self.assertRaisesRegex(DatasetError, r'--strict.*cut.png'):
      create.create_from_images(self.tmp / 'ds2', self.tmp / 'src', self.opts(strict=True))
    self.assertFalse((self.tmp / 'ds2').exists())

  def test_empty_and_missing_input(self):
    (self.tmp / 'empty').mkdir()
    (self.tmp / 'empty' / 'a.txt').write_text('x')
    with self.assertRaisesRegex(DatasetError, r'empty: no images found.*1 other files ignored'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'empty', self.opts())
    with self.assertRaisesRegex(DatasetError, 'nope: no such folder'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'nope', self.opts())

  def test_too_few_images(self):
    self.make_images('src', n=3, size=(4, 4))
    with self.assertRaisesRegex(DatasetError, '--max-images=5 but .* holds only 3'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts(max_images=5))
    good = (self.tmp / 'src' / 'img_0.png').read_bytes()
    (self.tmp / 'src' / 'img_9.png').write_bytes(good[:len(good) // 2])
    with self.assertRaisesRegex(DatasetError, r'only 3 readable images \(1 unreadable\)'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts(max_images=4))
    self.assertEmpty([p for p in os.listdir(self.tmp) if 'ds' in p])

  def test_interrupted_run_leaves_nothing(self):
    self.make_images('src', n=6, size=(8, 8))
    real = writer_lib.DatasetWriter.add_levels
    calls = []

    def failing(self_, levels):
      calls.append(1)
      if len(calls) == 3:
        raise KeyboardInterrupt  # As if Ctrl-C arrived mid-way.
      real(self_, levels)

    with mock.patch.object(writer_lib.DatasetWriter, 'add_levels', failing):
      with self.assertRaises(KeyboardInterrupt):
        create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    self.assertEqual(sorted(os.listdir(self.tmp)), ['src'])  # No ds, no .partial folder.
    # Also when the failure hits after the files are complete, while writing the manifest.
    with mock.patch.object(writer_lib.json, 'dump', side_effect=OSError('disk full')):
      with self.assertRaisesRegex(OSError, 'disk full'):
        create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    self.assertEqual(sorted(os.listdir(self.tmp)), ['src'])

  def test_existing_output(self):
    self.make_images('src', n=2, size=(4, 4))
    (self.tmp / 'ds').mkdir()
    (self.tmp / 'ds' / 'keep.txt').write_text('x')
    with self.assertRaisesRegex(DatasetError, 'ds exists and is not empty.*--overwrite'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts())
    create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts(overwrite=True))
    self.assertNotIn('keep.txt', os.listdir(self.tmp / 'ds'))

  # Labels, zip, arrays -------------------------------------------------------------------------

  def test_labels_from_subdirs_and_zip(self):
    for cls in ('cat', 'dog'):
      self.make_images(f'src/{cls}', n=2, size=(4, 4))
    zpath = self.tmp / 'src.zip'
    with zipfile.ZipFile(zpath, 'w') as z:
      for p in sorted((self.tmp / 'src').rglob('*.png')):
        z.write(p, p.relative_to(self.tmp / 'src').as_posix())
      z.writestr('__MACOSX/._x.png', b'junk')
    for src in (self.tmp / 'src', zpath):
      out = create.create_from_images(self.tmp / f'ds_{src.suffix[1:] or "dir"}', src,
                                      self.opts(labels_from_subdirs=True))
      info = DatasetInfo.from_dir(out)
      self.assertAllEqual(info.load_labels(), [[1, 0], [1, 0], [0, 1], [0, 1]])
      self.assertEqual(info.manifest['label_names'], ['cat', 'dog'])
    self.assertAllEqual(read_level(self.tmp / 'ds_zip', 4), read_level(self.tmp / 'ds_dir', 4))

  @parameterized.named_parameters(('json_map', 'json_map'), ('json_ada', 'json_ada'),
                                  ('csv', 'csv'))
  def test_label_files(self, kind):
    self.make_images('src', n=3, size=(4, 4))
    vals = {'img_0.png': 2, 'img_1.png': 0, 'img_2.png': 1}
    path = self.tmp / ('labels.csv' if kind == 'csv' else 'labels.json')
    if kind == 'json_map':
      path.write_text(json.dumps(vals))
    elif kind == 'json_ada':
      path.write_text(json.dumps({'labels': [[k, v] for k, v in vals.items()]}))
    else:
      path.write_text('filename,label\n' + ''.join(f'{k},{v}\n' for k, v in vals.items()))
    out = create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts(labels=str(path)))
    self.assertAllEqual(DatasetInfo.from_dir(out).load_labels(), np.eye(3)[[2, 0, 1]])
    # extract writes dataset.json that --labels reads back.
    export.extract(out, self.tmp / 'png')
    again = create.create_from_images(self.tmp / 'ds2', self.tmp / 'png',
                                      self.opts(labels=str(self.tmp / 'png' / 'dataset.json')))
    self.assertAllEqual(DatasetInfo.from_dir(again).load_labels(), np.eye(3)[[2, 0, 1]])

  def test_label_errors(self):
    self.make_images('src', n=2, size=(4, 4))
    path = self.tmp / 'l.json'
    path.write_text(json.dumps({'img_0.png': [0.5, 1.0]}))
    with self.assertRaisesRegex(DatasetError, r'no label for 1 of 2 images \(e.g. img_1.png\)'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts(labels=str(path)))
    path.write_text(json.dumps({'img_0.png': [0.5, 1.0], 'img_1.png': [1.0]}))
    with self.assertRaisesRegex(DatasetError, 'not in a class subfolder'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src',
                                self.opts(labels_from_subdirs=True))
    with self.assertRaisesRegex(DatasetError, 'either --labels or --labels_from_subdirs'):
      create.create_from_images(self.tmp / 'ds', self.tmp / 'src',
                                self.opts(labels_from_subdirs=True, labels=str(path)))
    self.assertFalse((self.tmp / 'ds').exists())

  def test_create_from_npy(self):
    arr = self.rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.save(self.tmp / 'a.npy', arr)
    np.save(self.tmp / 'l.npy', np.array([0, 1, 2, 1, 0]))
    out = create.create_from_npy(self.tmp / 'ds', self.tmp / 'a.npy',
                                 self.opts(labels=str(self.tmp / 'l.npy')))
    self.assertAllEqual(read_level(out, 8), arr.transpose(0, 3, 1, 2))
    self.assertAllEqual(DatasetInfo.from_dir(out).load_labels(), np.eye(3)[[0, 1, 2, 1, 0]])
    np.save(self.tmp / 'f.npy', arr.astype(np.float32))
    with self.assertRaisesRegex(DatasetError, 'dtype float32; convert the array to uint8'):
      create.create_from_npy(self.tmp / 'ds2', self.tmp / 'f.npy', self.opts())

  def test_create_from_mnist_idx(self):
    imgs = self.rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labs = np.array([3, 1, 4, 1, 5, 9], np.uint8)
    with gzip.open(self.tmp / 'train-images-idx3-ubyte.gz', 'wb') as f:
      f.write(struct.pack('>4B3I', 0, 0, 8, 3, 6, 28, 28) + imgs.tobytes())
    with gzip.open(self.tmp / 'train-labels-idx1-ubyte.gz', 'wb') as f:
      f.write(struct.pack('>4BI', 0, 0, 8, 1, 6) + labs.tobytes())
    out = create.create_from_mnist_idx(self.tmp / 'ds', self.tmp, None, self.opts())
    x = read_level(out, 32)
    self.assertAllEqual(x[:, 0, 2:30, 2:30], imgs)  # Zero-padded 28 -> 32, like create_mnist.
    self.assertEqual(int(x[:, :, :2].max()), 0)
    self.assertAllEqual(DatasetInfo.from_dir(out).load_labels(), np.eye(10)[labs])
    (self.tmp / 'bad.idx').write_bytes(b'\0\0\x0b\x03' + b'\0' * 20)
    with self.assertRaisesRegex(DatasetError, 'bad.idx: not an unsigned-byte IDX file'):
      create.create_from_mnist_idx(self.tmp / 'ds2', self.tmp / 'bad.idx', None, self.opts())

  def test_worker_threads(self):
    arr = self.make_images('src', n=8, size=(8, 8))
    with mock.patch.object(create, '_MIN_POOL_TASKS', 0):
      out = create.create_from_images(self.tmp / 'ds', self.tmp / 'src', self.opts(workers=2))
    self.assertAllEqual(read_level(out, 8), arr.transpose(0, 3, 1, 2))

  # Command line ---------------------------------------------------------------------------------

  def test_cli_create_info_extract(self):
    self.make_images('src', n=3, size=(8, 12))
    ds, png = str(self.tmp / 'ds'), str(self.tmp / 'png')
    r = run_tool('create_from_images', ds, str(self.tmp / 'src'), '--center-crop',
                 '--no-shuffle', '--max-images=2')
    self.assertEqual(r.returncode, 0, r.stderr)
    r = run_tool('info', ds)
    self.assertEqual(r.returncode, 0, r.stderr)
    self.assertIn('images      2', r.stdout)
    r = run_tool('extract', ds, png, '--resolution=4')
    self.assertEqual(r.returncode, 0, r.stderr)
    self.assertEqual(sorted(os.listdir(png)), ['img00000000.png', 'img00000001.png'])

  def test_cli_errors_are_one_line(self):
    self.make_images('src', n=2, size=(8, 12))
    r = run_tool('create_from_images', str(self.tmp / 'ds'), str(self.tmp / 'src'))
    self.assertEqual(r.returncode, 1)
    self.assertNotIn('Traceback', r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    self.assertRegex(last, r'^dataset_tool create_from_images: error: .*img_0.png is 8x12.*'
                     r'--center-crop')
    r = run_tool('info', str(self.tmp / 'missing'))
    self.assertEqual(r.returncode, 1)
    self.assertIn('does not exist', r.stderr.strip().splitlines()[-1])
    r = run_tool('frobnicate')
    self.assertEqual(r.returncode, 2)
    self.assertNotIn('Traceback', r.stderr)

  # Real data (skipped when ../shared/datasets is absent) ----------------------------------------

  def test_real_att_faces(self):
    src = SHARED / 'att_faces'
    if not src.is_dir():
      self.skipTest(f'{src} not present')
    with self.assertRaisesRegex(DatasetError, r'is 92x112, not square.*--center-crop'):
      create.create_from_images(self.tmp / 'no', src, self.opts(max_images=8))
    out = create.create_from_images(self.tmp / 'att', src,
                                    self.opts(center_crop=True, max_images=16, shuffle=True))
    info = DatasetInfo.from_dir(out)
    self.assertEqual((info.count, info.channels, info.resolution), (16, 1, 64))

  def test_real_fluent_emoji(self):
    src = SHARED / 'fluent-emoji-3d'
    if not src.is_dir():
      self.skipTest(f'{src} not present')
    # A few of the renders are 256x264, hence --center-crop; RGBA goes onto white.
    out = create.create_from_images(self.tmp / 'emoji', src,
                                    self.opts(center_crop=True, resolution=32, max_images=16,
                                              shuffle=True))
    info = DatasetInfo.from_dir(out)
    self.assertEqual((info.count, info.channels, info.resolution), (16, 3, 32))
    corners = read_level(out, 32)[:, :, 0, 0]
    self.assertGreater(np.mean(corners == 255), 0.9)  # Transparent corners became white.

  def test_real_fashion_mnist(self):
    src = SHARED / 'fashion-mnist'
    if not src.is_dir():
      self.skipTest(f'{src} not present')
    out = create.create_from_mnist_idx(self.tmp / 'fm', src / 't10k-images-idx3-ubyte.gz', None,
                                       self.opts(max_images=32, shuffle=True))
    info = DatasetInfo.from_dir(out)
    self.assertEqual((info.count, info.channels, info.resolution, info.label_dim),
                     (32, 1, 32, 10))
    self.assertAllEqual(info.load_labels().sum(axis=1), np.ones(32))


if __name__ == '__main__':
  tf.test.main()
