"""Mapping network: output layout, truncation (psi, cutoff), w_avg tracking, labels."""

import numpy as np
import tensorflow as tf

from sg2tf.networks import MappingNetwork


def _mapping(**kwargs):
  args = dict(z_dim=8, w_dim=6, num_ws=5, num_layers=2, layer_dim=7)
  args.update(kwargs)
  net = MappingNetwork(**args)
  net.build()
  return net


class MappingTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.z = np.random.RandomState(0).standard_normal([4, 8]).astype(np.float32)

  def test_broadcast_and_normalization(self):
    net = _mapping()
    ws = net(self.z).numpy()
    self.assertEqual(ws.shape, (4, 5, 6))
    self.assertAllClose(ws, np.repeat(ws[:, :1], 5, axis=1))
    self.assertAllClose(net(self.z * 7.0), ws, atol=1e-5)  # z is normalized first.

  def test_psi_zero_returns_w_avg_and_cutoff(self):
    net = _mapping()
    w_avg = np.arange(6, dtype=np.float32)
    net.w_avg.assign(w_avg)
    self.assertAllClose(net(self.z, truncation_psi=0.0), np.broadcast_to(w_avg, [4, 5, 6]))
    ws = net(self.z).numpy()
    got = net(self.z, truncation_psi=0.5, truncation_cutoff=2).numpy()
    self.assertAllClose(got[:, :2], w_avg + 0.5 * (ws[:, :2] - w_avg), atol=1e-5)
    self.assertAllClose(got[:, 2:], ws[:, 2:])
    self.assertAllClose(net(self.z, truncation_psi=tf.constant(0.0)),
                        np.broadcast_to(w_avg, [4, 5, 6]))

  def test_update_w_avg(self):
    net = _mapping(w_avg_beta=0.9)
    net.w_avg.assign(np.ones(6, np.float32))
    ws = net(self.z).numpy()
    net.update_w_avg(ws)
    want = ws[:, 0].mean(0) + (1.0 - ws[:, 0].mean(0)) * 0.9
    self.assertAllClose(net.w_avg, want, atol=1e-6)
    self.assertEqual(len(net.non_trainable_weights), 1)

  def test_lr_multiplier_scales_weights_and_biases(self):
    net = _mapping(num_layers=1)
    net.fc0.bias.assign(np.linspace(-100, 100, 6).astype(np.float32))
    x = self.z / np.sqrt(np.mean(self.z ** 2, axis=1, keepdims=True) + 1e-8)
    pre = x @ (net.fc0.weight.numpy() * 0.01 / np.sqrt(8)) + net.fc0.bias.numpy() * 0.01
    want = np.where(pre > 0, pre, 0.2 * pre) * np.sqrt(2)
    self.assertAllClose(net(self.z)[:, 0], want, atol=1e-5)

  def test_conditional(self):
    net = _mapping(c_dim=3)
    c = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    ws = net(self.z, c).numpy()
    self.assertEqual(ws.shape, (4, 5, 6))
    self.assertNotAllClose(ws[0], net(self.z, c[[1, 1, 2, 0]]).numpy()[0])
    self.assertEqual(net.fc0.weight.shape, (16, 7))  # Dense0 sees [z, embed(c)].
    with self.assertRaisesRegex(ValueError, 'conditional'):
      net(self.z)

  def test_bad_z_shape(self):
    with self.assertRaisesRegex(ValueError, r'z must be \[N, 8\]'):
      _mapping()(np.zeros([2, 5], np.float32))

  def test_config_round_trip(self):
    net = _mapping(c_dim=2)
    self.assertEqual(MappingNetwork.from_config(net.get_config()).get_config(), net.get_config())


if __name__ == '__main__':
  tf.test.main()
