"""Synthesis network: shapes for every architecture and several resolutions, w/noise order,
explicit noise inputs, bad input."""

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf.networks import SynthesisNetwork


def _synthesis(resolution=16, architecture='skip', **kwargs):
  net = SynthesisNetwork(w_dim=8, img_resolution=resolution, img_channels=3, fmap_base=64,
                         fmap_max=16, architecture=architecture, **kwargs)
  net.build()
  return net


class SynthesisTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(architecture=['orig', 'skip', 'resnet'], resolution=[4, 8, 32])
  def test_shapes(self, architecture, resolution):
    net = _synthesis(resolution, architecture)
    self.assertEqual(net.num_ws, 2 * int(np.log2(resolution)) - 2)
    ws = tf.random.normal([2, net.num_ws, 8])
    self.assertEqual(net(ws, noise_mode='none').shape, [2, resolution, resolution, 3])
    shapes = [(1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), 1) for i in range(net.num_ws - 1)]
    self.assertEqual(net.noise_shapes, shapes)  # Official noise{i} order.
    torgbs = [b for b in net.blocks if b.has_torgb]
    self.assertLen(torgbs, len(net.blocks) if architecture == 'skip' else 1)

  def test_channels_follow_nf(self):
    net = _synthesis(32)
    # Block 2**k has nf(k-1) = clip(64 / 2**(k-1), 1, 16) channels.
    self.assertEqual([b.out_channels for b in net.blocks], [16, 16, 8, 4])

  def test_w_index_per_layer(self):
    """Changing w[:, i] changes only what official layer i (and ToRGB using it) touches."""
    net = _synthesis(8, 'orig')  # Layers: 0 = 4x4 conv, 1 = 8x8 conv0, 2 = conv1 / 3 = ToRGB.
    ws = np.random.RandomState(0).standard_normal([1, 4, 8]).astype(np.float32)
    base = net(ws, noise_mode='none').numpy()
    for i in range(4):
      ws2 = ws.copy()
      ws2[:, i] += 1.0
      self.assertNotAllClose(net(ws2, noise_mode='none'), base, msg=f'w[{i}] unused')

  def test_explicit_noise(self):
    net = _synthesis(8)
    for lyr in net.synthesis_layers:
      lyr.noise_strength.assign(1.0)
    ws = tf.random.normal([2, net.num_ws, 8])
    const = [lyr.noise_const for lyr in net.synthesis_layers]
    self.assertAllClose(net(ws, noise=const), net(ws, noise_mode='const'))
    zeros = [tf.zeros(s) for s in net.noise_shapes]
    self.assertAllClose(net(ws, noise=zeros), net(ws, noise_mode='none'))
    with self.assertRaisesRegex(ValueError, 'noise must list 3'):
      net(ws, noise=zeros[:2])

  def test_bad_input(self):
    net = _synthesis(8)
    with self.assertRaisesRegex(ValueError, r'ws must be \[N, 4, 8\]'):
      net(tf.zeros([2, 3, 8]))
    with self.assertRaisesRegex(ValueError, 'power of two'):
      SynthesisNetwork(img_resolution=48)
    with self.assertRaisesRegex(ValueError, 'architecture'):
      SynthesisNetwork(img_resolution=8, architecture='dense')


if __name__ == '__main__':
  tf.test.main()
