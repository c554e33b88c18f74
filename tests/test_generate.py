"""sg2tf.generate: seed images are deterministic and official-style, the style-mixing figure,
truncation sweep and interpolation strip/GIF have the right content, the CLI and its errors."""

import os
import pathlib
import subprocess
import sys

from absl.testing import parameterized
import numpy as np
import PIL.Image
import tensorflow as tf

from sg2tf import export
from sg2tf import generate
from sg2tf import tool_util
from sg2tf.networks import Discriminator, serialization
from tests.tiny_generator import tiny_generator

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _read_png(path):
  img = np.asarray(PIL.Image.open(path))
  return img if img.ndim == 3 else img[:, :, np.newaxis]


class GenerateTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.G = tiny_generator()  # 16x16, num_ws 6, noise strengths 0.3

  @parameterized.parameters('const', 'random', 'none')
  def test_seed_images_are_deterministic(self, noise_mode):
    gen = generate.ImageGenerator(self.G, noise_mode=noise_mode, batch_size=2)
    a = gen.from_seeds([3, 5, 7], truncation_psi=0.7)
    self.assertEqual(a.shape, (3, 16, 16, 3))
    self.assertEqual(a.dtype, np.uint8)
    self.assertAllEqual(a, gen.from_seeds([3, 5, 7], truncation_psi=0.7))
    # Batch composition does not matter (up to one level of float rounding).
    self.assertAllClose(a[1:2].astype(int), gen.from_seeds([5], 0.7).astype(int), atol=1)
    # The official recipe: z = RandomState(seed).randn(z_dim), noise after z.
    z = np.random.RandomState(5).randn(1, 16).astype(np.float32)
    ws = self.G.mapping(z, truncation_psi=0.7)
    if noise_mode == 'random':
      noise = tool_util.noise_from_seed(5, 16, self.G.synthesis.noise_shapes)
      want = self.G.synthesis(ws, noise=noise)
    else:
      want = self.G.synthesis(ws, noise_mode=noise_mode)
    self.assertAllClose(a[1].astype(int), tool_util.to_uint8(want[0]).astype(int), atol=1)

  def test_noise_modes_differ(self):
    imgs = [generate.ImageGenerator(self.G, noise_mode=m).from_seeds([1]).astype(int)
            for m in ('const', 'random', 'none')]
    self.assertGreater(np.abs(imgs[0] - imgs[1]).max(), 2)
    self.assertGreater(np.abs(imgs[0] - imgs[2]).max(), 2)

  def test_seed_files(self):
    out = self.get_temp_dir()
    gen = generate.ImageGenerator(self.G, batch_size=2)
    paths = generate.generate_seed_images(gen, [0, 1, 12], 1.0, out)
    self.assertEqual([os.path.basename(p) for p in paths],
                     ['seed0000.png', 'seed0001.png', 'seed0012.png'])
    self.assertAllEqual(_read_png(paths[2]), gen.from_seeds([12])[0])

  def test_truncation_sweep(self):
    gen = generate.ImageGenerator(self.G)
    grid = generate.truncation_sweep(gen, [1, 2, 3], [0.0, 0.5, 1.0])
    self.assertEqual(grid.shape, (3 * 16, 3 * 16, 3))
    cells = grid.reshape(3, 16, 3, 16, 3).transpose(0, 2, 1, 3, 4)  # [row, col, R, R, C]
    # psi = 0 maps every seed to w_avg: the first column is one image three times.
    self.assertAllEqual(cells[0, 0], cells[1, 0])
    self.assertAllEqual(cells[0, 0], cells[2, 0])
    self.assertGreater(np.abs(cells[0, 2].astype(int) - cells[1, 2]).max(), 2)
    self.assertAllClose(cells[1, 2].astype(int), gen.from_seeds([2])[0].astype(int), atol=1)

  def test_style_mixing_figure(self):
    gen = generate.ImageGenerator(self.G)
    rows, cols = [1, 2], [3, 4, 5]
    fig = generate.style_mixing_figure(gen, rows, cols, range(6))  # all layers from the cols
    self.assertEqual(fig.shape, (3 * 16, 4 * 16, 3))
    cell = lambda r, c: fig[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16].astype(int)
    self.assertAllEqual(cell(0, 0), np.zeros([16, 16, 3]))
    for c, seed in enumerate(cols):
      self.assertAllClose(cell(0, c + 1), gen.from_seeds([seed])[0], atol=1)
      self.assertAllClose(cell(2, c + 1), cell(0, c + 1), atol=1)  # every layer from the col
    self.assertAllClose(cell(2, 0), gen.from_seeds([2])[0], atol=1)
    partial = generate.style_mixing_figure(gen, rows, cols, [0, 1])
    mixed = partial[16:32, 16:32].astype(int)
    self.assertGreater(np.abs(mixed - cell(0, 1)).max(), 2)  # neither parent
    self.assertGreater(np.abs(mixed - cell(1, 0)).max(), 2)
    with self.assertRaisesRegex(tool_util.ToolError, r'layers \[6\] do not exist'):
      generate.style_mixing_figure(gen, rows, cols, [0, 6])

  @parameterized.parameters('w', 'z')
  def test_interpolation(self, space):
    gen = generate.ImageGenerator(self.G)
    frames = generate.interpolation_frames(gen, [1, 2, 3], 4, space=space)
    self.assertEqual(frames.shape, (2 * 4 + 1, 16, 16, 3))
    ends = gen.from_seeds([1, 2, 3]).astype(int)
    self.assertAllClose(frames[0], ends[0], atol=1)
    self.assertAllClose(frames[4], ends[1], atol=1)
    self.assertAllClose(frames[8], ends[2], atol=1)
    with self.assertRaisesRegex(tool_util.ToolError, 'at least two seeds'):
      generate.interpolation_frames(gen, [1], 4)

  def test_conditional_needs_class(self):
    G = tiny_generator(c_dim=3)
    with self.assertRaisesRegex(tool_util.ToolError, 'conditional.*--class_idx'):
      generate.ImageGenerator(G)
    a = generate.ImageGenerator(G, class_idx=0).from_seeds([1]).astype(int)
    b = generate.ImageGenerator(G, class_idx=2).from_seeds([1]).astype(int)
    self.assertGreater(np.abs(a - b).max(), 2)

  def test_cli(self):
    tmp = self.get_temp_dir()
    nets = os.path.join(tmp, 'nets')
    D = Discriminator(img_resolution=16, fmap_base=64, fmap_max=16)
    serialization.save_networks(nets, self.G, D, export.rebuild_with_ref_ops(self.G))
    # No TF_CPP_MIN_LOG_LEVEL: the tool itself must keep TensorFlow quiet.
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    env['PYTHONPATH'] = str(_REPO)
    out = os.path.join(tmp, 'out')

    def run(*args):
      return subprocess.run([sys.executable, '-m', 'sg2tf.generate', *args],
                            capture_output=True, text=True, env=env, timeout=300, check=False)

    proc = run(f'--network={nets}', f'--outdir={out}', '--impl=ref', '--seeds=0-1', '--trunc=0.7',
               '--style_mixing_rows=1,2', '--style_mixing_cols=3', '--style_mixing_styles=0-2',
               '--interpolate=1,2', '--interpolation_frames=3')
    self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
    for noise in ('oneDNN', 'cpu_feature_guard', 'Sharding callback', 'Assets written to',
                  'signature_serialization', 'absl::InitializeLog', 'I0000', 'W0000'):
      self.assertNotIn(noise, proc.stdout + proc.stderr)
    self.assertEqual(proc.stdout.strip(), f'Wrote 5 file(s) to {out}')
    self.assertCountEqual(os.listdir(out), ['seed0000.png', 'seed0001.png', 'style-mixing.png',
                                            'interpolation.png', 'interpolation.gif'])
    gen = generate.ImageGenerator(self.G)
    self.assertAllClose(_read_png(os.path.join(out, 'seed0001.png')).astype(int),
                        gen.from_seeds([1], 0.7)[0].astype(int), atol=1)
    self.assertEqual(_read_png(os.path.join(out, 'style-mixing.png')).shape, (48, 32, 3))
    self.assertEqual(_read_png(os.path.join(out, 'interpolation.png')).shape, (16, 64, 3))
    with PIL.Image.open(os.path.join(out, 'interpolation.gif')) as gif:
      self.assertEqual(gif.n_frames, 4)
    for args, pattern in (
        ([f'--network={nets}', f'--outdir={out}', '--seeds=1-x'], r'--seeds=1-x: .1-x. is not'),
        ([f'--network={nets}.missing', f'--outdir={out}', '--seeds=1'], 'no such file'),
        ([f'--network={nets}', f'--outdir={out}'], 'nothing to do')):
      proc = run(*args)
      self.assertNotEqual(proc.returncode, 0)
      self.assertNotIn('Traceback', proc.stderr)
      self.assertRegex(proc.stderr.strip().splitlines()[-1], '^error: .*' + pattern)


if __name__ == '__main__':
  tf.test.main()
