"""bias_act: reference vs NumPy, custom vs reference, first and second derivatives,
activation table defaults, bad input."""

import importlib
import math

import numpy as np
from absl.testing import parameterized
import tensorflow as tf

from sg2tf.custom_ops import _loader
from sg2tf.custom_ops import activation_funcs, bias_act
from tests import testutil
from tests.custom_ops.np_ref import np_bias_act

ACTS = sorted(activation_funcs)


class BiasActTest(tf.test.TestCase, parameterized.TestCase):

  def _x(self, shape=(2, 5, 3, 6), seed=0, scale=2.0):
    return (np.random.RandomState(seed).standard_normal(shape) * scale).astype(np.float32)

  def test_defaults_match_nvidias_table(self):
    # NVIDIA's table (stylegan2-ada-pytorch bias_act.py), as a literal: act -> (alpha, gain).
    s2 = math.sqrt(2)
    nvidia = {'linear': (None, 1), 'relu': (None, s2), 'lrelu': (0.2, s2), 'tanh': (None, 1),
              'sigmoid': (None, 1), 'elu': (None, 1), 'selu': (None, 1), 'softplus': (None, 1),
              'swish': (None, s2)}
    self.assertEqual(sorted(activation_funcs), sorted(nvidia))
    for act, (alpha, gain) in nvidia.items():
      self.assertAlmostEqual(activation_funcs[act].def_gain, gain, msg=act)
      if alpha is not None:
        self.assertAlmostEqual(activation_funcs[act].def_alpha, alpha, msg=act)
    # The defaults reach the op: bias_act(x) of a positive x is x * gain for these.
    x = tf.constant([[0.5, 2.0]])
    for act in ('linear', 'relu', 'lrelu'):
      self.assertAllClose(bias_act(x, act=act, impl='ref'), x * nvidia[act][1])
    self.assertAllClose(bias_act(x, act='swish', impl='ref'), x * tf.sigmoid(x) * s2)
    self.assertEqual(sorted(s.index for s in activation_funcs.values()), list(range(9)))

  @parameterized.product(act=ACTS, bias=[False, True], clamp=[None, 0.7], axis=[-1, 1])
  def test_forward_matches_numpy(self, act, bias, clamp, axis):
    x = self._x()
    b = np.linspace(-1, 1, x.shape[axis]).astype(np.float32) if bias else None
    want = np_bias_act(x, b, axis=axis, act=act, clamp=clamp)
    self.assertAllClose(bias_act(x, b, axis=axis, act=act, clamp=clamp, impl='ref'), want,
                        atol=1e-5, rtol=1e-5)
    testutil.custom_ops_or_skip(self)
    self.assertAllClose(bias_act(x, b, axis=axis, act=act, clamp=clamp, impl='custom'), want,
                        atol=1e-5, rtol=1e-5)

  def test_alpha_and_gain_override(self):
    x = self._x()
    for impl in _impls(self):
      y = bias_act(x, act='lrelu', alpha=0.1, gain=3.0, impl=impl)
      self.assertAllClose(y, np.where(x > 0, x, 0.1 * x) * 3.0, atol=1e-5)
      y = bias_act(x, act='elu', alpha=0.5, impl=impl)
      self.assertAllClose(y, np.where(x >= 0, x, 0.5 * np.expm1(x)), atol=1e-5)

  # Half precision: the kernel and the reference compute in float32 and round once, so they
  # agree to one ulp of the output dtype (relative 1e-3 for float16, 8e-3 for bfloat16).
  @parameterized.product(act=ACTS, dtype=[tf.float16, tf.bfloat16])
  def test_low_precision(self, act, dtype):
    testutil.custom_ops_or_skip(self)
    x = tf.cast(self._x(), dtype)
    b = tf.cast(np.linspace(-1, 1, 6), dtype)
    tol = 1e-3 if dtype == tf.float16 else 8e-3
    y_c = bias_act(x, b, act=act, clamp=5.0, impl='custom')
    y_r = bias_act(x, b, act=act, clamp=5.0, impl='ref')
    self.assertEqual(y_c.dtype, dtype)
    self.assertAllClose(tf.cast(y_c, tf.float32), tf.cast(y_r, tf.float32), rtol=tol, atol=tol)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = bias_act(x, b, act=act, impl='custom')
    g_c = tape.gradient(y, x)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = bias_act(x, b, act=act, impl='ref')
    g_r = tape.gradient(y, x)
    self.assertAllClose(tf.cast(g_c, tf.float32), tf.cast(g_r, tf.float32), rtol=4 * tol, atol=4 * tol)

  @parameterized.product(act=ACTS, impl=['ref', 'custom'], clamp=[None, 1.5])
  def test_gradient_numeric_vs_analytic(self, act, impl, clamp):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    # Keep samples away from the kinks (0 and +-clamp) where finite differences are wrong.
    x = self._x((2, 3, 4), seed=3)
    x = np.where(np.abs(x) < 0.1, x + 0.3, x)
    b = np.array([0.05, -0.1, 0.02, 0.0], np.float32)
    x = tf.constant(x)
    b = tf.constant(b)
    if clamp is not None:
      y = np_bias_act(x.numpy(), b.numpy(), act=act)
      near = np.abs(np.abs(y) - clamp) < 0.05
      x = tf.where(near, x + 0.2, x)
    fn = lambda t, bb: bias_act(t, bb, act=act, clamp=clamp, impl=impl)
    theoretical, numerical = tf.test.compute_gradient(fn, [x, b], delta=1e-3)
    for t, n in zip(theoretical, numerical):
      self.assertAllClose(t, n, atol=2e-2, rtol=2e-2)

  @parameterized.product(act=ACTS, clamp=[None, 2.0], axis=[-1, 1])
  def test_second_order_custom_matches_ref(self, act, clamp, axis):
    """The R1 pattern: the gradient of a gradient norm, through the op twice."""
    testutil.custom_ops_or_skip(self)
    x = tf.constant(self._x((2, 4, 3, 5), seed=5))
    b = tf.constant(np.linspace(-0.5, 0.5, x.shape[axis]).astype(np.float32))

    def penalty_grads(impl):
      with tf.GradientTape(persistent=True) as outer:
        outer.watch([x, b])
        with tf.GradientTape() as inner:
          inner.watch([x, b])
          y = bias_act(x, b, axis=axis, act=act, clamp=clamp, impl=impl)
          loss = tf.reduce_sum(y * tf.sin(y))
        gx, gb = inner.gradient(loss, [x, b])
        penalty = tf.reduce_sum(tf.square(gx)) + tf.reduce_sum(tf.square(gb))
      return outer.gradient(penalty, [x, b])

    for c, r in zip(penalty_grads('custom'), penalty_grads('ref')):
      self.assertAllClose(c, r, atol=1e-4, rtol=1e-4)

  def test_in_tf_function(self):
    testutil.custom_ops_or_skip(self)
    x = tf.constant(self._x())
    b = tf.constant(np.ones(6, np.float32))

    @tf.function
    def step(t):
      with tf.GradientTape() as tape:
        tape.watch(t)
        y = bias_act(t, b, act='lrelu', impl='custom')
        loss = tf.reduce_sum(y)
      return y, tape.gradient(loss, t)

    y, g = step(x)
    self.assertAllClose(y, np_bias_act(x.numpy(), b.numpy(), act='lrelu'), atol=1e-5)
    self.assertAllClose(g, np.where(x.numpy() + 1 > 0, 1.0, 0.2) * math.sqrt(2), atol=1e-5)

  @parameterized.parameters('ref', 'custom')
  def test_bad_input(self, impl):
    if impl == 'custom':
      testutil.custom_ops_or_skip(self)
    x = tf.zeros([2, 3, 4])
    cases = [
        (lambda: bias_act(tf.zeros([2, 3], tf.int32), impl=impl), 'must be float32'),
        (lambda: bias_act(x, tf.zeros([5]), impl=impl), 'b has 5 elements'),
        (lambda: bias_act(x, tf.zeros([4, 1]), impl=impl), 'b must be 1-D'),
        (lambda: bias_act(x, axis=3, impl=impl), 'out of range'),
    ]
    for fn, msg in cases:
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError, msg):
        fn()
    with self.assertRaisesRegex(ValueError, 'unknown act'):
      bias_act(x, act='gelu2', impl=impl)
    with self.assertRaisesRegex(ValueError, 'clamp must be'):
      bias_act(x, clamp=-1, impl=impl)
    with self.assertRaisesRegex(ValueError, 'impl must be'):
      bias_act(x, impl='fast')

  def test_raw_op_validates_bias_length(self):
    testutil.custom_ops_or_skip(self)
    lib = _loader.get_library()
    e = tf.zeros([0])
    with self.assertRaisesRegex((tf.errors.InvalidArgumentError, ValueError), '5'):
      lib.sg2tf_bias_act(tf.zeros([2, 4]), tf.zeros([5]), e, e, e, act=0, grad=0, axis=1,
                         alpha=0.0, gain=1.0, clamp=-1.0)
    with self.assertRaises((tf.errors.InvalidArgumentError, ValueError)):
      lib.sg2tf_bias_act(tf.zeros([2, 4]), e, e, e, e, act=42, grad=0, axis=1,
                         alpha=0.0, gain=1.0, clamp=-1.0)

  @parameterized.parameters(
      ((2, 5, 3, 6), -1, tf.float32),
      ((3, 70, 70, 37), -1, tf.float32),  # 17 shards; the 37-channel tile crosses blocks.
      ((3, 70, 70, 37), 1, tf.float32),   # Channel axis before others (inner > 1).
      ((4, 8, 8, 512), 3, tf.float16),
      ((5, 300), 1, tf.bfloat16),
      ((0, 7), 1, tf.float32),            # Empty: db is zeros.
      ((9,), 0, tf.float32))
  def test_reduce_op_sums_its_output(self, shape, axis, dtype):
    """Sg2tfBiasActReduce: y as Sg2tfBiasAct's, db = y summed over every axis but `axis`."""
    testutil.custom_ops_or_skip(self)
    lib = _loader.get_library()
    axis %= len(shape)
    rng = np.random.RandomState(7)
    x = tf.cast(rng.standard_normal(shape).astype(np.float32), dtype)
    y_ref = tf.cast(rng.standard_normal(shape).astype(np.float32), dtype)
    b = tf.cast(rng.standard_normal([shape[axis]]).astype(np.float32), dtype)
    e = tf.zeros([0], dtype)
    attrs = dict(act=activation_funcs['lrelu'].index, grad=1, axis=axis, alpha=0.2,
                 gain=math.sqrt(2), clamp=-1.0)
    y, db = lib.sg2tf_bias_act_reduce(x, b, e, y_ref, e, **attrs)
    self.assertEqual(db.dtype, dtype)
    self.assertEqual(db.shape, [shape[axis]])
    self.assertAllEqual(y, lib.sg2tf_bias_act(x, b, e, y_ref, e, **attrs))
    y64 = tf.cast(y, tf.float64).numpy()
    want = y64.sum(axis=tuple(i for i in range(len(shape)) if i != axis))
    count = max(1, y64.size // max(1, shape[axis]))
    tol = {tf.float32: 1e-6, tf.float16: 1e-3, tf.bfloat16: 8e-3}[dtype] * np.sqrt(count)
    self.assertAllClose(tf.cast(db, tf.float64), want, atol=tol, rtol=tol)

  def test_reduce_op_accuracy_on_long_channels(self):
    # 2M values per channel: float accumulators per block/shard, double across shards.
    testutil.custom_ops_or_skip(self)
    lib = _loader.get_library()
    x = tf.fill([2048, 1024, 2], 0.1)
    e = tf.zeros([0])
    _, db = lib.sg2tf_bias_act_reduce(x, tf.zeros([2]), e, e, e, act=0, grad=1, axis=2,
                                      alpha=0.0, gain=1.0, clamp=-1.0)
    exact = 2048 * 1024 * float(np.float32(0.1))
    self.assertAllClose(db, [exact, exact], rtol=2e-6, atol=0)

  @parameterized.product(act=['lrelu', 'swish', 'tanh'], axis=[-1, 1])
  def test_fused_bias_gradient_matches_separate_reduction(self, act, axis):
    """On CPU the bias gradient comes out of the gradient kernel itself; with a GPU (or when
    forced off here) it is a separate reduction. Both must agree, second order included."""
    testutil.custom_ops_or_skip(self)
    bias_act_module = importlib.import_module('sg2tf.custom_ops.bias_act')
    x = tf.constant(self._x((3, 4, 5, 6), seed=11))
    b = tf.constant(np.linspace(-0.5, 0.5, x.shape[axis]).astype(np.float32))

    def grads():
      @tf.function
      def fn():
        with tf.GradientTape() as outer:
          outer.watch([x, b])
          with tf.GradientTape() as inner:
            inner.watch([x, b])
            y = bias_act(x, b, axis=axis, act=act, impl='custom')
            loss = tf.reduce_sum(y * tf.cos(y))
          gx, gb = inner.gradient(loss, [x, b])
          penalty = tf.reduce_sum(tf.square(gx)) + tf.reduce_sum(tf.square(gb))
        return [gx, gb] + outer.gradient(penalty, [x, b])
      ops = {op.type for op in fn.get_concrete_function().graph.get_operations()}
      return fn(), 'Sg2tfBiasActReduce' in ops

    original = bias_act_module._fused_bias_grad
    fused, used = grads()
    self.assertEqual(used, not tf.config.list_logical_devices('GPU'))
    bias_act_module._fused_bias_grad = lambda: False
    try:
      separate, used = grads()
    finally:
      bias_act_module._fused_bias_grad = original
    self.assertFalse(used)
    for f, s in zip(fused, separate):
      self.assertAllClose(f, s, atol=1e-4, rtol=1e-5)


def _impls(testcase):
  try:
    _loader.get_library()
    return ['ref', 'custom']
  except _loader.CustomOpUnavailableError:
    testutil.custom_ops_or_skip(testcase)
    return ['ref']


if __name__ == '__main__':
  tf.test.main()
