"""sg2tf.utils.images: the one float -> uint8 rule (NVIDIA's convert_images_to_uint8) in NumPy
and TF, its ties, the uint8 round trip, grids and image files."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import PIL.Image
import tensorflow as tf

from sg2tf.utils import images


def _official(x):
  """convert_images_to_uint8 written out: float32 x * 127.5 + (0.5 + 127.5), saturate_cast."""
  y = np.asarray(x, np.float32) * np.float32(127.5) + np.float32(128.0)
  return np.clip(np.trunc(y), 0, 255).astype(np.uint8)


class ToUint8Test(tf.test.TestCase, parameterized.TestCase):

  def test_range_and_clipping(self):
    x = [-2.0, -1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 3.0]
    self.assertAllEqual(images.to_uint8(x), [0, 0, 0, 128, 191, 255, 255, 255])
    self.assertAllEqual(images.to_uint8_tf(tf.constant(x)), images.to_uint8(x))

  def test_level_boundaries_round_up(self):
    # float32(-1 + (2k+1)/255) * 127.5 + 128 is exactly k + 1 in float32: the boundary
    # between levels k and k+1. The official rule gives k + 1; np.rint((x + 1) * 127.5)
    # (the official grid PNGs) gives k at about half of them (float32 rounding of (x + 1) *
    # 127.5 decides), which is why sg2tf has only one rule.
    k = np.arange(255)
    x = (-1 + (2 * k + 1) / 255.0).astype(np.float32)
    self.assertAllEqual(x * np.float32(127.5) + np.float32(128), k + 1)  # exact ties
    self.assertAllEqual(images.to_uint8(x), k + 1)
    self.assertAllEqual(images.to_uint8_tf(tf.constant(x)), k + 1)
    other = np.rint((x + np.float32(1)) * np.float32(127.5))
    self.assertGreater(np.sum(other == k), 100)
    self.assertTrue(np.all((other == k) | (other == k + 1)))
    self.assertEqual(images.to_uint8(np.float32(-1 + 1 / 255.0)), 1)
    self.assertEqual(images.to_uint8(0.0), 128)  # (0 + 1) * 127.5 = 127.5: half up

  def test_matches_the_official_formula_everywhere(self):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-1.05, 1.05, 20001, dtype=np.float32),
                        rng.uniform(-1, 1, 20000).astype(np.float32)])
    want = _official(x)
    self.assertAllEqual(images.to_uint8(x), want)
    self.assertAllEqual(images.to_uint8_tf(tf.constant(x)), want)

  def test_uint8_round_trip(self):
    u = np.arange(256, dtype=np.uint8)
    x = u.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)  # dataset.to_float
    self.assertAllEqual(images.to_uint8(x), u)
    self.assertAllEqual(images.to_uint8_tf(tf.constant(x)), u)


class GridAndFilesTest(tf.test.TestCase, parameterized.TestCase):

  def test_grid(self):
    imgs = np.stack([np.full([2, 3, 1], i + 1, np.uint8) for i in range(5)])
    g = images.grid(imgs, 3)  # rows as needed: 2
    self.assertEqual(g.shape, (4, 9, 1))
    self.assertEqual(g[0, 3, 0], 2)  # row 0, column 1
    self.assertEqual(g[2, 0, 0], 4)  # row 1, column 0
    self.assertEqual(g[2, 6, 0], 0)  # the missing sixth cell stays black
    fixed = images.grid(imgs, 2, 2)  # a fixed 2x2 grid leaves the fifth image out
    self.assertEqual(fixed.shape, (4, 6, 1))
    self.assertAllEqual(fixed[::2, ::3, 0], [[1, 2], [3, 4]])

  @parameterized.parameters(1, 3)
  def test_png_and_gif(self, channels):
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    img = np.random.default_rng(channels).integers(0, 256, [8, 8, channels], dtype=np.uint8)
    path = images.save_png(os.path.join(d, 'a.png'), img)
    self.assertEqual(os.listdir(d), ['a.png'])  # no temporary left
    with PIL.Image.open(path) as im:
      self.assertEqual(im.mode, 'L' if channels == 1 else 'RGB')
      self.assertAllEqual(np.asarray(im).reshape(8, 8, channels), img)
    gif = images.save_gif(os.path.join(d, 'a.gif'), [img, 255 - img], duration_ms=50)
    with PIL.Image.open(gif) as im:
      self.assertEqual(im.n_frames, 2)


if __name__ == '__main__':
  tf.test.main()
