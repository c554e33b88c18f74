"""sg2tf.tool_util: seed/flag parsing, official latents and noise, labels, image files
(atomic writes, clear errors), grids, GIFs, progress logging, one-line exits."""

import os
from unittest import mock

from absl.testing import parameterized
import numpy as np
import PIL.Image
import tensorflow as tf

from sg2tf import tool_util


class ToolUtilTest(tf.test.TestCase, parameterized.TestCase):

  def test_parse_lists(self):
    self.assertEqual(tool_util.parse_int_list('0-3,7, 9', 'seeds'), [0, 1, 2, 3, 7, 9])
    self.assertEqual(tool_util.parse_float_list('-1,0.5,1', 'psi'), [-1.0, 0.5, 1.0])
    for bad in ('a', '3-1', '-2', '1-'):
      with self.assertRaisesRegex(tool_util.ToolError, f'--seeds={bad}'):
        tool_util.parse_int_list(bad, 'seeds')
    with self.assertRaisesRegex(tool_util.ToolError, '--seeds is empty'):
      tool_util.parse_int_list(',', 'seeds')
    with self.assertRaisesRegex(tool_util.ToolError, 'not a number'):
      tool_util.parse_float_list('0.5,x', 'psi')

  def test_official_latents_and_noise(self):
    self.assertAllEqual(tool_util.z_from_seed(7, 5),
                        np.random.RandomState(7).randn(5).astype(np.float32))
    rnd = np.random.RandomState(7)
    rnd.randn(1, 5)
    want = [rnd.randn(1, 4, 4, 1), rnd.randn(1, 8, 8, 1)]
    got = tool_util.noise_from_seed(7, 5, [(1, 4, 4, 1), (1, 8, 8, 1)])
    for g, w in zip(got, want):
      self.assertAllClose(g, w)

  def test_labels(self):
    self.assertIsNone(tool_util.labels_for(0, None, 2))
    self.assertAllEqual(tool_util.labels_for(3, 1, 2), [[0, 1, 0], [0, 1, 0]])
    with self.assertRaisesRegex(tool_util.ToolError, r'c_dim=3.*--class_idx=<0\.\.2>'):
      tool_util.labels_for(3, None, 1)
    with self.assertRaisesRegex(tool_util.ToolError, '--class_idx=3 is out of range'):
      tool_util.labels_for(3, 3, 1)

  def test_image_and_progress_names_are_the_one_home(self):
    from sg2tf.utils import images, progress  # pylint: disable=g-import-not-at-top
    for name in ('to_uint8', 'grid', 'save_png', 'save_gif'):
      self.assertIs(getattr(tool_util, name), getattr(images, name))
    self.assertIs(tool_util.Progress, progress.Progress)
    self.assertIs(tool_util.format_time, progress.format_time)

  @parameterized.parameters(1, 3)
  def test_image_round_trip(self, channels):
    d = self.get_temp_dir()
    img = np.random.RandomState(0).randint(0, 256, [8, 8, channels]).astype(np.uint8)
    path = tool_util.save_png(os.path.join(d, f'a{channels}.png'), img)
    self.assertAllEqual(tool_util.load_image(path, 8, channels), img)
    self.assertFalse([f for f in os.listdir(d) if f.startswith('.')])  # no temp files left
    with self.assertRaisesRegex(tool_util.ToolError, r'is 8x8 but the network makes 16x16'):
      tool_util.load_image(path, 16, channels)

  def test_image_errors(self):
    d = self.get_temp_dir()
    with self.assertRaisesRegex(tool_util.ToolError, 'missing.png: no such image file'):
      tool_util.load_image(os.path.join(d, 'missing.png'), 8, 3)
    bogus = os.path.join(d, 'bogus.png')
    with open(bogus, 'w') as f:
      f.write('text')
    with self.assertRaisesRegex(tool_util.ToolError, 'bogus.png: not a readable image'):
      tool_util.load_image(bogus, 8, 3)

  def test_gif_and_arrays(self):
    d = self.get_temp_dir()
    frames = [np.full([4, 4, 3], v, np.uint8) for v in (0, 128, 255)]
    path = tool_util.save_gif(os.path.join(d, 'a.gif'), frames, duration_ms=50)
    with PIL.Image.open(path) as gif:
      self.assertEqual(gif.n_frames, 3)
    tool_util.save_npy(os.path.join(d, 'w.npy'), np.ones([1, 2, 3], np.float32))
    self.assertEqual(np.load(os.path.join(d, 'w.npy')).shape, (1, 2, 3))
    tool_util.save_npz(os.path.join(d, 'n.npz'), noise0=np.zeros([2]))
    self.assertEqual(np.load(os.path.join(d, 'n.npz')).files, ['noise0'])

  def test_network_path(self):
    with self.assertRaisesRegex(tool_util.ToolError, 'no such file'):
      tool_util.check_network_path('/nonexistent/x.pkl')


if __name__ == '__main__':
  tf.test.main()
