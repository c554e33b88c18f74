"""sg2tf.project: appendix D's schedules and noise regulariser, a tiny generator's own image
is recovered (far closer than a real-like image), the noise regulariser keeps the noise maps
uncorrelated (its terms go down; without it signal sneaks in), outputs, attribution, the
command line and its errors.

LPIPS uses stand-in weights in the published file formats (tests/metrics/standins.py) with
16-channel VGG stages: with the 4..8 channels of the metrics' stand-ins many feature vectors
are almost zero, LPIPS's channel normalisation makes the loss surface rough, and even a
generated image is not found again.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from absl import flags
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf import export
from sg2tf import project
from sg2tf import tool_util
from sg2tf.networks import Discriminator, serialization
from tests.metrics import standins
from tests.tiny_generator import tiny_generator

_REPO = pathlib.Path(__file__).resolve().parents[1]
_WIDTHS = (16, 16, 16, 16, 16)


def write_lpips_standins(folder):
  os.makedirs(folder, exist_ok=True)
  standins.write_torch_state_dict(os.path.join(folder, 'vgg16.pth'),
                                  standins.vgg16_state(widths=_WIDTHS))
  standins.write_torch_state_dict(os.path.join(folder, 'lpips_vgg_v0.1.pth'),
                                  standins.lpips_state(widths=_WIDTHS))
  return folder


def real_like_image(res=16, seed=5):
  """Blocky colour regions plus pixel noise: nothing the tiny generator makes."""
  rnd = np.random.RandomState(seed)
  low = rnd.uniform(0, 255, [4, 4, 3]).repeat(res // 4, 0).repeat(res // 4, 1)
  return np.clip(low + rnd.normal(0, 20, [res, res, 3]), 0, 255).astype(np.uint8)


def _np_regularization(maps, gain=2.0):
  total = 0.0
  for v in maps:
    x = np.asarray(v, np.float64)[0, :, :, 0]
    while True:
      total += np.mean(x * np.roll(x, 1, axis=1)) ** 2 + np.mean(x * np.roll(x, 1, axis=0)) ** 2
      if x.shape[0] <= 8:
        break
      n = x.shape[0] // 2
      x = x.reshape(n, 2, n, 2).mean(axis=(1, 3)) * gain
  return total


class ProjectMathTest(tf.test.TestCase):

  def test_schedule_is_appendix_d(self):
    cfg = project.ProjectorConfig()
    lr = lambda s: project.schedule(s, cfg)[0]
    noise = lambda s: project.schedule(s, cfg)[1]
    self.assertEqual(lr(0), 0.0)
    self.assertAllClose([lr(25), lr(50), lr(500), lr(750)], [0.05, 0.1, 0.1, 0.1])
    self.assertAllClose(lr(875), 0.05)  # half-way down the cosine
    self.assertLess(lr(999), 1e-4)
    self.assertAllClose([noise(0), noise(375), noise(750), noise(900)],
                        [0.05, 0.05 * 0.25, 0.0, 0.0])
    short = project.ProjectorConfig(num_steps=100)  # ramps scale with num_steps
    self.assertAllClose(project.schedule(5, short)[0], 0.1)

  def test_noise_regularization(self):
    ones = np.ones([1, 16, 16, 1], np.float32)
    # 16x16: (1)^2 * 2; its 8x8 pyramid level holds 2s: (2*2)^2 * 2.
    self.assertAllClose(project.noise_regularization([ones]), 2 + 32)
    self.assertAllClose(project.noise_regularization([ones], gain=1.0), 4)  # official code
    checker = (np.indices([8, 8]).sum(0) % 2 * 2 - 1).astype(np.float32)[None, :, :, None]
    self.assertAllClose(project.noise_regularization([checker]), 2.0)  # wraps at the edges
    rnd = np.random.RandomState(0)
    maps = [rnd.randn(1, r, r, 1).astype(np.float32) for r in (4, 8, 16, 32)]
    self.assertAllClose(project.noise_regularization(maps), _np_regularization(maps), rtol=1e-4)

  def test_downsample_area(self):
    x = np.arange(2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    y = project.downsample_area(tf.constant(x), 4)
    self.assertAllClose(y, x.reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4)))
    self.assertIs(project.downsample_area(x, 8), x)


class ProjectorTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='test_project_')
    cls.feature_dir = write_lpips_standins(os.path.join(cls.tmp, 'features'))
    cls.lpips = project.load_lpips(cls.feature_dir)
    # A fresh generator's noise strengths are 0: this is about finding w.
    cls.G = tiny_generator(noise_strength=0.0)
    z = tool_util.z_from_seed(1, 16)[np.newaxis]
    # Float target, unclipped: a random network's images exceed [-1, 1] and clipping would
    # make them unreachable.
    cls.generated = (cls.G(z, noise_mode='const').numpy()[0] + 1) * 127.5
    cls.config = project.ProjectorConfig(num_steps=150, w_avg_samples=1000, num_snapshots=4)
    projector = project.Projector(cls.G, cls.lpips, cls.config)
    cls.result_gen = projector.project(cls.generated)
    cls.result_real = projector.project(real_like_image())

  def test_recovers_a_generated_image(self):
    gen, real = self.result_gen, self.result_real
    self.assertLess(gen.distance, 0.25 * real.distance)
    self.assertLess(gen.distance, 0.1)
    self.assertLess(gen.distance, 0.1 * gen.history['distance'][0])
    self.assertEqual(gen.w.shape, (1, self.G.num_ws, 16))
    self.assertAllEqual(gen.w[:, :1].repeat(self.G.num_ws, 1), gen.w)  # one w for all layers
    self.assertEqual([n.shape for n in gen.noise], list(self.G.synthesis.noise_shapes))
    # The returned image is G's output for the returned w and noise.
    self.assertAllClose(gen.image, self.G.synthesis(gen.w, noise=gen.noise)[0], atol=1e-5)
    self.assertEqual([s for s, _ in gen.snapshots], [37, 74, 111, 148, 150])
    self.assertTrue(project.attribute(gen.distance, threshold=0.1))
    self.assertFalse(project.attribute(real.distance, threshold=0.1))

  def test_noise_regularization_keeps_noise_uncorrelated(self):
    # With strong noise inputs, the optimiser would hide image signal in the noise maps.
    G = tiny_generator(noise_strength=0.5)
    target = (G(tool_util.z_from_seed(1, 16)[np.newaxis], noise_mode='const')[0] + 1) * 127.5
    finals = {}
    for alpha in (1e5, 0.0):
      cfg = project.ProjectorConfig(num_steps=50, w_avg_samples=200,
                                    regularize_noise_weight=alpha)
      result = project.Projector(G, self.lpips, cfg).project(target.numpy())
      reg = result.history['noise_reg']
      finals[alpha] = reg[-1]
      if alpha:
        self.assertLess(reg[-1], 0.05 * reg[0])
      for n in result.noise:  # renormalised after every step
        self.assertAllClose([n.mean(), n.std()], [0.0, 1.0], atol=1e-4)
      self.assertAllClose(project.noise_regularization(result.noise), reg[-1], rtol=0.2)
    self.assertGreater(finals[0.0], 20 * finals[1e5])

  def test_write_outputs(self):
    out = os.path.join(self.tmp, 'out')
    target = tool_util.to_uint8(self.generated / 127.5 - 1)
    project.write_outputs(out, target, self.result_gen, {'note': 1})
    self.assertCountEqual(os.listdir(out), ['projected_w.npy', 'noise.npz', 'proj.png',
                                            'target.png', 'progress.png', 'result.json'])
    self.assertAllEqual(np.load(os.path.join(out, 'projected_w.npy')), self.result_gen.w)
    noise = np.load(os.path.join(out, 'noise.npz'))
    self.assertLen(noise.files, len(self.result_gen.noise))
    self.assertAllEqual(noise['noise3'], self.result_gen.noise[3])
    strip = tool_util.read_image(os.path.join(out, 'progress.png'))
    self.assertEqual(strip.size, (16 * 6, 16))  # target + 5 snapshots
    with open(os.path.join(out, 'result.json')) as f:
      info = json.load(f)
    self.assertAllClose(info['lpips_distance'], self.result_gen.distance)
    self.assertEqual(info['note'], 1)

  def _flags(self, *args):
    fv = flags.FlagValues()
    project.define_flags(fv)
    fv(['project'] + list(args))
    return fv

  def test_run_from_flags(self):
    nets = os.path.join(self.tmp, 'nets')
    D = Discriminator(img_resolution=16, fmap_base=64, fmap_max=16)
    serialization.save_networks(nets, self.G, D, export.rebuild_with_ref_ops(self.G))
    gen_png = tool_util.save_png(os.path.join(self.tmp, 'gen.png'),
                                 tool_util.to_uint8(self.G(tool_util.z_from_seed(
                                     2, 16)[None], noise_mode='const')[0]))
    out = os.path.join(self.tmp, 'run')
    fv = self._flags(f'--network={nets}', f'--target={gen_png}', f'--outdir={out}',
                     '--num_steps=10', '--w_avg_samples=50', f'--feature_dir={self.feature_dir}',
                     '--nodownload_features', '--attribute', '--threshold=0.5', '--impl=ref')
    results = project.run(project.config_from_flags(fv))
    self.assertLen(results, 1)
    with open(os.path.join(out, 'gen', 'result.json')) as f:
      info = json.load(f)
    self.assertEqual(info['attribution']['threshold'], 0.5)
    self.assertEqual(info['attribution']['generated_by_network'], info['lpips_distance'] < 0.5)
    self.assertEqual(info['num_steps'], 10)
    # Bad input: errors that name the file and say what is wrong.
    small = tool_util.save_png(os.path.join(self.tmp, 'small.png'), np.zeros([8, 8, 3], np.uint8))
    bogus = os.path.join(self.tmp, 'bogus.png')
    with open(bogus, 'w') as f:
      f.write('not an image')
    empty = tempfile.mkdtemp(dir=self.tmp)
    for args, pattern in (
        ([f'--target={small}'], r'small.png: the image is 8x8 but the network makes 16x16'),
        ([f'--target={bogus}'], 'bogus.png: not a readable image'),
        ([f'--target={gen_png}', f'--feature_dir={empty}'], 'projector needs LPIPS.*vgg16')):
      fv = self._flags(f'--network={nets}', f'--outdir={out}2', '--nodownload_features',
                       f'--feature_dir={self.feature_dir}', *args)
      with self.assertRaisesRegex(tool_util.expected_errors(), pattern):
        project.run(project.config_from_flags(fv))
    self.assertFalse(os.path.exists(out + '2'))

  def test_command_line_error_is_one_line(self):
    env = dict(os.environ, PYTHONPATH=str(_REPO), TF_CPP_MIN_LOG_LEVEL='2')
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.project', '--network=/nonexistent.pkl',
                           '--target=x.png', f'--outdir={self.tmp}/cli'], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    self.assertNotEqual(proc.returncode, 0)
    self.assertEqual(proc.stderr.strip(),
                     'error: --network=/nonexistent.pkl: no such file or directory.')


if __name__ == '__main__':
  tf.test.main()
