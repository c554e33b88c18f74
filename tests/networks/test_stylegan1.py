"""The StyleGAN baseline of config a (StyleGANGenerator / StyleGANDiscriminator): official
variables, closed forms of the level of detail, the fused up/down convolutions, layer
details (instance norm, style modulation) and what is refused."""

import json

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf import paper_configs as configs
from sg2tf import convert_growing
from sg2tf.networks import StyleGANDiscriminator, StyleGANGenerator, growing, stylegan1
from tests import testutil
from sg2tf import official_variables as official_counts
from tests.networks.test_growing import copy_by_path, official_names, randomize

MANIFEST = testutil.SHARED / 'fixtures' / 'official_growing' / 'manifest.json'
SMALL = dict(img_resolution=32, fmap_base=64, fmap_max=16)
G_SMALL = dict(z_dim=8, w_dim=8, mapping_dim=8, mapping_layers=2, **SMALL)


class OfficialVariablesTest(tf.test.TestCase):

  def test_enumeration_matches_the_official_manifest(self):
    if not MANIFEST.exists():
      self.skipTest('fixture not found')
    m = json.loads(MANIFEST.read_text())['config-a']
    own = lambda e: sorted((n, tuple(s)) for n, s in e['own_variables']
                           if n not in ('lod', 'dlatent_avg') and not n.startswith('noise'))
    self.assertEqual(own(m['G']['components']['synthesis']),
                     sorted(official_counts.style_synthesis(64, 40, 256, 40)))
    self.assertEqual(own(m['G']['components']['mapping']),
                     sorted(official_counts.mapping(24, 40, 40, 8)))
    self.assertEqual(own(m['D']), sorted(official_counts.d_basic(64, 256, 40)))

  def test_names_and_shapes_at_256(self):
    G = StyleGANGenerator(img_resolution=256, c_dim=2)
    D = StyleGANDiscriminator(img_resolution=256, c_dim=2)
    g_map = convert_growing.style_generator_variable_map(G)
    self.assertEqual(official_names(g_map, 'synthesis/'),
                     dict(official_counts.style_synthesis(256)))
    self.assertEqual(official_names(g_map, 'mapping/'), dict(official_counts.mapping(c=2)))
    self.assertEqual(official_names(convert_growing.basic_discriminator_variable_map(D)),
                     dict(official_counts.d_basic(256, c=2)))
    self.assertEqual(len(G.synthesis.noise_shapes), G.num_ws)  # One buffer per layer.
    self.assertEqual(G.synthesis.b4.conv0.const.numpy().tolist(),
                     np.ones([1, 4, 4, 512]).tolist())  # Official init: ones.


class LevelOfDetailTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.G = StyleGANGenerator(**G_SMALL)
    cls.D = StyleGANDiscriminator(**SMALL)
    randomize(cls.G, cls.D)
    cls.z = np.random.RandomState(1).standard_normal([4, 8]).astype(np.float32)
    cls.x = np.random.RandomState(2).uniform(-1, 1, [4, 32, 32, 3]).astype(np.float32)

  def image(self, lod, G=None):
    G = G or self.G
    G.set_lod(lod)
    return G(self.z, truncation_psi=1.0, noise_mode='const').numpy()

  @parameterized.parameters((0, 0.5), (1, 0.25), (2, 0.9))
  def test_a_fade_is_the_lerp_of_the_neighbouring_lods(self, k, f):
    lo, hi = self.image(k), self.image(k + 1)
    self.assertAllClose(self.image(k + f), lo + (hi - lo) * f, atol=5e-6)

  @parameterized.parameters(1, 2, 3)
  def test_an_integer_lod_is_the_nearest_upsampled_lower_level(self, k):
    """lod k equals the same networks built at 32 / 2**k (lod 0) with the same weights:
    nearest-upsampled (G), on the 2**k box-downsampled image (D)."""
    res = 32 >> k
    small_g = StyleGANGenerator(**dict(G_SMALL, img_resolution=res))
    copy_by_path(self.G, small_g)
    img = self.image(0, small_g)
    self.assertAllClose(self.image(k), np.repeat(np.repeat(img, 2 ** k, 1), 2 ** k, 2),
                        atol=2e-6)
    if res >= 8:
      small_d = StyleGANDiscriminator(**dict(SMALL, img_resolution=res))
      copy_by_path(self.D, small_d)
      small_d.set_lod(0)
      self.D.set_lod(k)
      low = growing.box_downsample(self.x, 2 ** k)
      self.assertAllClose(self.D(self.x), small_d(low), atol=1e-6)

  def test_truncation_defaults_and_mixing_range(self):
    """No arguments: psi 0.7 on layers 0-7 (G_style); the mixing crossover stays within the
    layers of the current lod (official cur_layers = num_ws - 2 floor(lod))."""
    self.G.set_lod(0.0)
    ws = self.G.mapping(self.z)
    want = self.G.mapping.truncate(ws, 0.7, 8)
    self.assertAllClose(self.G.truncate(ws), want)
    self.assertAllClose(self.G.truncate(ws, truncation_psi=0.5),
                        self.G.mapping.truncate(ws, 0.5, 8))
    self.assertAllEqual(self.G.truncate(ws, truncation_psi=None), ws)
    self.G.set_lod(2.5)
    self.assertEqual(int(self.G.active_num_ws()), self.G.num_ws - 4)
    self.assertEqual(self.G.active_num_ws(resolution=8), 4)


class LayersTest(tf.test.TestCase, parameterized.TestCase):

  def test_fused_up_conv_is_the_transposed_conv_of_the_official_kernel(self):
    """fused: conv2d_transpose with the padded, shift-summed kernel; that equals nearest 2x
    upsampling + a SAME conv with the spatially FLIPPED 3x3 kernel (TF's transposed conv
    convolves). Non-fused: upsampling + the kernel as stored. Down: both forms agree."""
    x = tf.random.normal([2, 8, 8, 3], seed=1)
    fused = stylegan1.StyleGANConv2D(4, 3, resample='up', fused_scale=True)
    plain = stylegan1.StyleGANConv2D(4, 3, resample='up', fused_scale=False)
    fused.build(x.shape)
    plain.build(x.shape)
    plain.weight.assign(fused.weight.numpy()[::-1, ::-1])
    self.assertAllClose(fused(x), plain(x), atol=1e-5)
    w = fused.weight.numpy() * fused.weight_gain
    up = np.repeat(np.repeat(x.numpy(), 2, 1), 2, 2)
    ref = tf.nn.conv2d(up, w, 1, 'SAME').numpy()  # non-fused by hand
    plain.weight.assign(fused.weight)
    self.assertAllClose(plain(x), ref, atol=1e-5)
    down_f = stylegan1.StyleGANConv2D(4, 3, resample='down', fused_scale=True)
    down_p = stylegan1.StyleGANConv2D(4, 3, resample='down', fused_scale=False)
    down_f.build(x.shape)
    down_p.build(x.shape)
    down_p.weight.assign(down_f.weight)
    self.assertAllClose(down_f(x), down_p(x), atol=1e-5)
    conv = tf.nn.conv2d(x, down_f.weight * down_f.weight_gain, 1, 'SAME').numpy()
    self.assertAllClose(down_p(x), conv.reshape([2, 4, 2, 4, 2, 4]).mean(axis=(2, 4)), atol=1e-5)

  def test_fused_scale_auto_threshold(self):
    """Official 'auto': fused for up-convs to >= 128 and down-convs from >= 128."""
    G = StyleGANGenerator(img_resolution=128, fmap_base=64, fmap_max=8, z_dim=8, w_dim=8,
                          mapping_dim=8)
    self.assertFalse(G.synthesis.b64.conv0.conv.fused)
    self.assertTrue(G.synthesis.b128.conv0.conv.fused)
    D = StyleGANDiscriminator(img_resolution=128, fmap_base=64, fmap_max=8)
    self.assertTrue(D.b128_conv1.conv.fused)
    self.assertFalse(D.b64_conv1.conv.fused)

  def test_synthesis_layer_epilogue(self):
    """noise * per-channel weight, + bias, lrelu (no gain), instance norm, then
    x * (s0 + 1) + s1 with s = w @ W / sqrt(w_dim) + b."""
    lyr = stylegan1.StyleGANSynthesisLayer(3, 4, 4, kind='conv')
    x = tf.random.normal([2, 4, 4, 5], seed=2)
    lyr.build(x.shape)
    randomize(lyr)
    w = tf.random.normal([2, 4], seed=3)
    y = lyr(x, w, noise_mode='const').numpy()
    h = tf.nn.conv2d(x, lyr.conv.weight * lyr.conv.weight_gain, 1, 'SAME').numpy()
    h = h + lyr.noise_const.numpy() * lyr.noise_weight.numpy() + lyr.bias.numpy()
    h = np.where(h >= 0, h, 0.2 * h)
    h = h - h.mean(axis=(1, 2), keepdims=True)
    h = h / np.sqrt((h ** 2).mean(axis=(1, 2), keepdims=True) + 1e-8)
    s = w.numpy() @ (lyr.style.weight.numpy() / 2.0) + lyr.style.bias.numpy()
    want = h * (s[:, None, None, :3] + 1) + s[:, None, None, 3:]
    self.assertAllClose(y, want, atol=1e-5)

  def test_refusals(self):
    cfg = configs.get_config('config-a', resolution=8, fmap_base=32, fmap_max=8)
    with self.assertRaisesRegex(ValueError, 'mixed precision is not supported .*config-a'):
      configs.build_generator(cfg.G, num_fp16_res=2, conv_clamp=256.0)
    with self.assertRaisesRegex(ValueError, 'nonlinearity must be one of'):
      StyleGANDiscriminator(img_resolution=8, activation='swish')


if __name__ == '__main__':
  tf.test.main()
