"""conv2d_resample against the zero-insertion formulation (fixture README section 8) and
across op implementations and groups."""

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf.custom_ops import conv2d_resample, setup_filter
from tests import testutil
from tests.custom_ops.np_ref import np_upfirdn2d

K = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0


def _conv_valid(x, w, stride=1):
  return tf.nn.conv2d(x.astype(np.float32), w, stride, 'VALID').numpy()


class Conv2dResampleTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(0)
    self.x = rng.standard_normal([2, 6, 5, 4]).astype(np.float32)
    self.w3 = rng.standard_normal([3, 3, 4, 3]).astype(np.float32)
    self.w1 = rng.standard_normal([1, 1, 4, 3]).astype(np.float32)
    self.f = setup_filter([1, 3, 3, 1])

  @parameterized.parameters('ref', 'custom')
  def test_up_is_zero_insert_then_correlate_then_fir(self, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    got = conv2d_resample(self.x, self.w3, f=self.f, up=2, padding=1, impl=impl)
    z = np_upfirdn2d(self.x, [[1.0]], up=(2, 2), pad=(2, 1, 2, 1))  # 2H-1 samples + 2 each side.
    want = np_upfirdn2d(_conv_valid(z, self.w3), K, pad=(1, 1, 1, 1), gain=4)
    self.assertEqual(got.shape, [2, 12, 10, 3])
    self.assertAllClose(got, want, atol=1e-4)

  @parameterized.parameters('ref', 'custom')
  def test_down_is_fir_then_strided_conv(self, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    got = conv2d_resample(self.x, self.w3, f=self.f, down=2, padding=1, impl=impl)
    want = _conv_valid(np_upfirdn2d(self.x, K, pad=(2, 2, 2, 2)), self.w3, 2)
    self.assertAllClose(got, want, atol=1e-4)
    got1 = conv2d_resample(self.x, self.w1, f=self.f, down=2, impl=impl)
    want1 = _conv_valid(np_upfirdn2d(self.x, K, pad=(1, 1, 1, 1)), self.w1, 2)
    self.assertAllClose(got1, want1, atol=1e-4)

  def test_plain_same_conv(self):
    got = conv2d_resample(self.x, self.w3, padding=1, impl='ref')
    self.assertAllClose(got, tf.nn.conv2d(self.x, self.w3, 1, 'SAME'), atol=1e-5)

  def test_flip_weight_false_is_true_convolution(self):
    got = conv2d_resample(self.x, self.w3, padding=1, flip_weight=False, impl='ref')
    self.assertAllClose(got, tf.nn.conv2d(self.x, self.w3[::-1, ::-1], 1, 'SAME'), atol=1e-5)
    up_t = conv2d_resample(self.x, self.w3, f=self.f, up=2, padding=1, flip_weight=False, impl='ref')
    up_c = conv2d_resample(self.x, self.w3[::-1, ::-1].copy(), f=self.f, up=2, padding=1, impl='ref')
    self.assertAllClose(up_t, up_c, atol=1e-5)

  @parameterized.product(updown=[(1, 1), (2, 1), (1, 2)], ksize=[1, 3])
  def test_groups_equal_per_group_convs(self, updown, ksize):
    up, down = updown
    rng = np.random.RandomState(1)
    x = rng.standard_normal([1, 5, 5, 6]).astype(np.float32)
    w = rng.standard_normal([ksize, ksize, 3, 4]).astype(np.float32)
    pad = ksize // 2
    got = conv2d_resample(x, w, f=self.f, up=up, down=down, padding=pad, groups=2, impl='ref')
    parts = [conv2d_resample(x[..., 3 * g:3 * g + 3], w[..., 2 * g:2 * g + 2], f=self.f, up=up,
                             down=down, padding=pad, impl='ref') for g in range(2)]
    self.assertAllClose(got, tf.concat(parts, -1), atol=1e-4)

  def test_gradient_custom_matches_ref(self):
    testutil.custom_ops_or_skip(self)
    x = tf.constant(self.x)
    out = {}
    for impl in ('ref', 'custom'):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = conv2d_resample(x, self.w3, f=self.f, up=2, padding=1, impl=impl)
        y = conv2d_resample(y, self.w3[:, :, :3, :], f=self.f, down=2, padding=1, impl=impl)
        loss = tf.reduce_sum(y * y)
      out[impl] = tape.gradient(loss, x)
    self.assertAllClose(out['custom'], out['ref'], atol=1e-3, rtol=1e-4)

  def test_bad_input(self):
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'channels'):
      conv2d_resample(self.x, self.w3[:, :, :3], impl='ref')
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'up and down'):
      conv2d_resample(self.x, self.w3, up=0, impl='ref')


if __name__ == '__main__':
  tf.test.main()
