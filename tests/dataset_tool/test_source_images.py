"""Tests for data/images.py (decoding and conversion) and data/levels.py (the pyramid)."""

import pathlib
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import PIL.Image
import tensorflow as tf

from tests.testutil import official_levels
from sg2tf.dataset_tool import source_images as images_lib
from sg2tf.dataset_tool.levels import build_levels
from sg2tf.dataset_tool.levels import num_levels


class LevelsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((1, 4), (3, 8), (3, 64))
  def test_matches_official(self, channels, res):
    img = np.random.default_rng(res).integers(0, 256, (channels, res, res), dtype=np.uint8)
    levels = build_levels(img)
    self.assertLen(levels, num_levels(res))
    self.assertEqual(levels[-1].shape, (channels, 4, 4))
    for ours, ref in zip(levels, official_levels(img), strict=True):
      self.assertAllEqual(ours, ref)

  def test_rounds_half_to_even_without_intermediate_rounding(self):
    x = np.zeros((1, 16, 16), np.uint8)
    x[0, :2, :2] = [[0, 1], [0, 1]]  # mean 0.5 -> 0
    x[0, :2, 2:4] = [[1, 2], [1, 2]]  # mean 1.5 -> 2
    x[0, :2, 4:6] = [[2, 3], [2, 3]]  # mean 2.5 -> 2
    self.assertAllEqual(build_levels(x)[1][0, 0, :3], [0, 2, 2])
    # 4x4 block of mean 0.625: its 2x2 means are 0.5, 0.5, 0.5, 1.0 -> rounded first that
    # would give (0 + 0 + 0 + 1) / 4 = 0.25 -> 0; the float chain gives rint(0.625) = 1.
    y = np.zeros((1, 16, 16), np.uint8)
    y[0, :4, :4] = [[0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 1, 1], [0, 1, 1, 1]]
    levels = build_levels(y)
    self.assertEqual(levels[1][0, 0, 0], 0)  # 8x8: 0.5 -> 0.
    self.assertEqual(levels[2][0, 0, 0], 1)  # 4x4: 0.625 -> 1.

  def test_rejects_bad_shapes(self):
    with self.assertRaisesRegex(ValueError, 'square power-of-two'):
      build_levels(np.zeros((3, 8, 4), np.uint8))


class ConvertTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = pathlib.Path(tempfile.mkdtemp(prefix='images_test_'))
    self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
    self.rng = np.random.default_rng(0)

  def load(self, img, **cv):
    path = self.tmp / 'x.png'
    img.save(path)
    cv = images_lib.Convert(**{'resolution': img.size[0], 'channels': 3, **cv})
    _, levels, err = images_lib.load_item((0, str(self.tmp), False, 'x.png', cv))
    self.assertIsNone(err)
    return levels[0]

  @parameterized.named_parameters(('white', (255, 255, 255)), ('black', (0, 0, 0)),
                                  ('color', (16, 32, 48)))
  def test_alpha_composite(self, bg):
    rgba = self.rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)
    a = rgba[..., 3:].astype(np.float32) / 255
    want = np.rint(rgba[..., :3] * a + np.float32(bg) * (1 - a)).astype(np.uint8)
    got = self.load(PIL.Image.fromarray(rgba, 'RGBA'), background=bg)
    self.assertAllEqual(got, want.transpose(2, 0, 1))

  def test_gray_alpha_on_gray_background(self):
    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 1] = 0  # Fully transparent: the background's luma.
    got = self.load(PIL.Image.fromarray(la, 'LA'), channels=1, background=(255, 0, 0))
    self.assertAllEqual(got, np.full((1, 4, 4), 76))  # 0.299 * 255.

  def test_palette_with_transparency(self):
    p = PIL.Image.new('P', (4, 4), 0)
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info['transparency'] = 0
    got = self.load(p, background=(0, 255, 0))
    self.assertAllEqual(got[:, 0, 0], [0, 255, 0])  # Transparent red -> background.
    self.assertAllEqual(got[:, 1, 1], [0, 0, 255])

  def test_sixteen_bit(self):
    x = np.array([[0, 257 * 10], [65535, 257 * 200]], np.uint16)
    x = np.tile(x, (2, 2))
    got = self.load(PIL.Image.fromarray(x), channels=1)
    self.assertAllEqual(got[0, :2, :2], [[0, 10], [255, 200]])

  def test_channel_conversion(self):
    rgb = np.full((4, 4, 3), [10, 200, 30], np.uint8)
    got = images_lib.convert_array(rgb, images_lib.Convert(resolution=4, channels=1))
    want = np.asarray(PIL.Image.fromarray(rgb).convert('L'))
    self.assertAllEqual(got[0], want)
    gray = self.rng.integers(0, 256, (4, 4), dtype=np.uint8)
    got = images_lib.convert_array(gray, images_lib.Convert(resolution=4, channels=3))
    self.assertAllEqual(got, np.stack([gray] * 3))

  def test_center_crop_and_resize(self):
    x = self.rng.integers(0, 256, (12, 8, 1), dtype=np.uint8)  # 8 wide, 12 high.
    got = images_lib.convert_array(x, images_lib.Convert(resolution=8, channels=1,
                                                         center_crop=True))
    self.assertAllEqual(got[0], x[2:10, :, 0])
    got = images_lib.convert_array(x, images_lib.Convert(resolution=4, channels=1, resize=True))
    want = PIL.Image.fromarray(x[..., 0]).resize((4, 4), PIL.Image.Resampling.LANCZOS)
    self.assertAllEqual(got[0], np.asarray(want))
    with self.assertRaisesRegex(ValueError, 'is 8x12, not 8x8; pass --resize or --center-crop'):
      images_lib.convert_array(x, images_lib.Convert(resolution=8, channels=1))

  def test_parse_background(self):
    self.assertEqual(images_lib.parse_background('white'), (255, 255, 255))
    self.assertEqual(images_lib.parse_background('10, 20,30'), (10, 20, 30))
    self.assertEqual(images_lib.parse_background('#FF0080'), (255, 0, 128))
    for bad in ('blu', '1,2', '300,0,0', '#12345'):
      with self.assertRaisesRegex(ValueError, '--background'):
        images_lib.parse_background(bad)

  def test_list_images_and_errors(self):
    (self.tmp / 'a' / '.hidden').mkdir(parents=True)
    PIL.Image.new('RGB', (4, 4)).save(self.tmp / 'a' / 'B.PNG')
    PIL.Image.new('RGB', (4, 4)).save(self.tmp / 'a' / '.hidden' / 'c.png')
    (self.tmp / 'a' / '._B.png').write_bytes(b'resource fork')
    (self.tmp / 'a' / 'notes.txt').write_text('x')
    (self.tmp / 'bad.png').write_bytes(b'\x89PNG garbage')
    is_zip, names, ignored = images_lib.list_images(str(self.tmp))
    self.assertFalse(is_zip)
    self.assertEqual(names, ['a/B.PNG', 'bad.png'])
    self.assertEqual(ignored, 2)
    name, size, mode, err = images_lib.probe_item((str(self.tmp), False, 'a/B.PNG'))
    self.assertEqual((name, size, mode, err), ('a/B.PNG', (4, 4), 'RGB', None))
    _, size, _, err = images_lib.probe_item((str(self.tmp), False, 'bad.png'))
    self.assertIsNone(size)
    self.assertIn('UnidentifiedImageError', err)
    cv = images_lib.Convert(resolution=4, channels=3)
    _, levels, err = images_lib.load_item((0, str(self.tmp), False, 'bad.png', cv))
    self.assertIsNone(levels)
    self.assertIsNotNone(err)


if __name__ == '__main__':
  tf.test.main()
