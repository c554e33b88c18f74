"""upfirdn2d: reference vs NumPy, custom vs reference, gradients, graph/distributed use,
bad input."""

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf.custom_ops import _loader
from sg2tf.custom_ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from tests import testutil
from tests.custom_ops.np_ref import np_upfirdn2d
from tests.custom_ops.sweeps import upfirdn2d_sweep


class Upfirdn2dTest(tf.test.TestCase, parameterized.TestCase):

  def _inputs(self, n, h, w, c, fshape, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal([n, h, w, c]).astype(np.float32)
    f = rng.standard_normal(fshape).astype(np.float32)
    return x, f

  @parameterized.named_parameters(*upfirdn2d_sweep())
  def test_ref_and_custom_match_numpy(self, n, h, w, c, up, down, fshape, pad, flip, gain):
    x, f = self._inputs(n, h, w, c, fshape)
    want = np_upfirdn2d(x, f, up, down, pad, flip, gain)
    got_ref = upfirdn2d(x, f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain, impl='ref')
    self.assertAllClose(got_ref, want, atol=1e-4, rtol=1e-4)
    testutil.custom_ops_or_skip(self)
    got = upfirdn2d(x, f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain, impl='custom')
    self.assertAllClose(got, want, atol=1e-4, rtol=1e-4)

  # float16 keeps ~11 bits: relative tolerance 2e-3 of the output scale; bfloat16 ~8 bits: 2e-2.
  @parameterized.parameters((tf.float16, 2e-3), (tf.bfloat16, 2e-2))
  def test_low_precision_dtypes(self, dtype, rel_tol):
    testutil.custom_ops_or_skip(self)
    x, _ = self._inputs(2, 9, 7, 6, (4,))
    f = setup_filter([1, 3, 3, 1])
    xl = tf.cast(x, dtype)
    for impl in ('ref', 'custom'):
      for kw in (dict(up=2, padding=[2, 1, 2, 1]), dict(down=2, padding=1), dict(padding=[2, 1, 1, 2])):
        y = upfirdn2d(xl, f, impl=impl, **kw)
        self.assertEqual(y.dtype, dtype)
        want = np_upfirdn2d(tf.cast(xl, tf.float32).numpy(), f.numpy(),
                            [kw.get('up', 1)] * 2, [kw.get('down', 1)] * 2,
                            _pad(kw['padding']))
        scale = np.abs(want).max()
        self.assertAllClose(tf.cast(y, tf.float32), want, atol=rel_tol * scale, rtol=0)

  @parameterized.product(
      kwargs=[dict(up=2, padding=[2, 1, 2, 1]), dict(down=2, padding=1),
              dict(up=[2, 1], down=[1, 4], padding=[3, 0, -1, 2], flip_filter=True),
              dict(padding=[1, 2, 2, 1], gain=3.0)],
      impl=['ref', 'custom'])
  def test_gradient_numeric_vs_analytic(self, kwargs, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    x, f = self._inputs(2, 5, 6, 3, (4, 3))
    fn = lambda t: upfirdn2d(t, f, impl=impl, **kwargs)
    # The op is linear, so central differences are exact up to float32 rounding.
    theoretical, numerical = tf.test.compute_gradient(fn, [tf.constant(x)], delta=1e-2)
    self.assertAllClose(theoretical[0], numerical[0], atol=2e-2, rtol=2e-2)

  @parameterized.named_parameters(
      ('up2', dict(up=2, padding=[2, 1, 2, 1])),
      ('down2', dict(down=2, padding=1)),
      ('asym', dict(up=[1, 2], down=[2, 1], padding=[0, 1, 3, -1])),
  )
  def test_second_order_custom_matches_ref(self, kwargs):
    testutil.custom_ops_or_skip(self)
    x, _ = self._inputs(2, 6, 5, 3, (4,))
    f = setup_filter([1, 3, 3, 1])  # Normalised, as in the networks: well-conditioned values.
    x = tf.constant(x)

    def grad_norm_grad(impl):
      with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
          inner.watch(x)
          y = upfirdn2d(tf.sin(x), f, impl=impl, **kwargs)
          loss = tf.reduce_sum(tf.square(y) * tf.cos(y))
        g = inner.gradient(loss, x)
        penalty = tf.reduce_sum(tf.square(g))
      return outer.gradient(penalty, x)

    want = grad_norm_grad('ref')
    # Both are float32 against float64 truth to ~1e-5 relative; compare at 1e-4 of the scale.
    self.assertAllClose(grad_norm_grad('custom'), want, rtol=1e-4,
                        atol=1e-4 * float(tf.reduce_max(tf.abs(want))))

  def test_in_tf_function(self):
    testutil.custom_ops_or_skip(self)
    x, _ = self._inputs(2, 8, 8, 4, (4,))
    f = setup_filter([1, 3, 3, 1])

    @tf.function
    def step(t):
      with tf.GradientTape() as tape:
        tape.watch(t)
        y = upsample2d(t, f, impl='custom')
        loss = tf.reduce_sum(y * y)
      return y, tape.gradient(loss, t)

    y, g = step(tf.constant(x))
    y_ref = upsample2d(x, f, impl='ref')
    self.assertAllClose(y, y_ref, atol=1e-5)
    self.assertAllClose(g, 2 * upfirdn2d(y_ref, f, down=2, padding=[1, 2, 1, 2], gain=4,
                                         flip_filter=True, impl='ref'), atol=1e-4)

  def test_helpers_shapes(self):
    x = tf.zeros([1, 8, 6, 2])
    f = setup_filter([1, 3, 3, 1])
    for impl in ['ref'] + (['custom'] if _custom_available() else []):
      self.assertEqual(upsample2d(x, f, impl=impl).shape, [1, 16, 12, 2])
      self.assertEqual(downsample2d(x, f, impl=impl).shape, [1, 4, 3, 2])
      self.assertEqual(filter2d(x, f, impl=impl).shape, [1, 8, 6, 2])
      self.assertEqual(upsample2d(x, f, up=4, impl=impl).shape, [1, 32, 24, 2])

  def test_setup_filter(self):
    f = setup_filter([1, 3, 3, 1])
    self.assertAllClose(f, np.array([1, 3, 3, 1]) / 8)
    f2 = setup_filter([1, 3, 3, 1], separable=False, gain=4)
    self.assertAllClose(f2, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64 * 4)
    self.assertAllClose(setup_filter([[1, 2], [3, 4]], flip_filter=True), np.array([[4, 3], [2, 1]]) / 10)

  def test_smoothing_preserves_constant(self):
    x = tf.ones([1, 8, 8, 3])
    f = setup_filter([1, 3, 3, 1])
    self.assertAllClose(upsample2d(x, f, impl='ref')[:, 2:-2, 2:-2], tf.ones([1, 12, 12, 3]))
    self.assertAllClose(downsample2d(x, f, impl='ref')[:, 1:-1, 1:-1], tf.ones([1, 2, 2, 3]))

  @parameterized.parameters('ref', 'custom')
  def test_bad_input(self, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    x = tf.zeros([1, 4, 4, 2])
    f = setup_filter([1, 3, 3, 1])
    cases = [
        (lambda: upfirdn2d(tf.zeros([4, 4, 2]), f, impl=impl), 'must be 4-D'),
        (lambda: upfirdn2d(tf.zeros([1, 4, 4, 2], tf.int32), f, impl=impl), 'must be float32'),
        (lambda: upfirdn2d(x, tf.zeros([2, 2, 2]), impl=impl), '1-D'),
        (lambda: upfirdn2d(x, f, up=0, impl=impl), 'up must be >= 1'),
        (lambda: upfirdn2d(x, f, down=[1, 0], impl=impl), 'down must be >= 1'),
        (lambda: upfirdn2d(x, f, padding=-3, impl=impl), 'would be empty'),
        (lambda: upfirdn2d(x, f, padding=[1, 2, 3], impl=impl), 'padding must be'),
    ]
    for fn, msg in cases:
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError, msg):
        fn()

  def test_raw_op_validates(self):
    """The compiled op checks its own input (for callers that bypass the Python API)."""
    testutil.custom_ops_or_skip(self)
    lib = _loader.get_library()
    ok = dict(upx=1, upy=1, downx=1, downy=1, padx0=0, padx1=0, pady0=0, pady1=0, flip_filter=False)
    with self.assertRaises((tf.errors.InvalidArgumentError, ValueError)):
      lib.sg2tf_upfirdn2d(tf.zeros([4, 4, 2]), tf.ones([2, 2]), **ok)
    with self.assertRaises((tf.errors.InvalidArgumentError, ValueError)):
      lib.sg2tf_upfirdn2d(tf.zeros([1, 4, 4, 2]), tf.ones([2, 2, 1]), **ok)
    with self.assertRaises((tf.errors.InvalidArgumentError, ValueError)):
      lib.sg2tf_upfirdn2d(tf.zeros([1, 2, 2, 2]), tf.ones([4, 4]), **ok)
    with self.assertRaises((tf.errors.InvalidArgumentError, ValueError)):
      lib.sg2tf_upfirdn2d(tf.zeros([1, 4, 4, 2]), tf.ones([2, 2]), **dict(ok, upx=0))


def _pad(p):
  if isinstance(p, int):
    return [p] * 4
  return p


def _custom_available():
  try:
    _loader.get_library()
    return True
  except _loader.CustomOpUnavailableError:
    return False


if __name__ == '__main__':
  tf.test.main()
