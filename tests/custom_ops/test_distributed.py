"""Both ops inside tf.function under MirroredStrategy on 2 logical CPU devices, custom vs ref.
Logical devices must be configured before TF initialises, hence a fresh process."""

import tensorflow as tf

from tests import testutil

_CODE = r"""
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from sg2tf.custom_ops import bias_act, setup_filter, upsample2d, downsample2d, resolve_impl
assert resolve_impl('custom') == 'custom'
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices('CPU')])
assert strategy.num_replicas_in_sync == 2
f = setup_filter([1, 3, 3, 1])
x_all = tf.constant(np.random.RandomState(0).standard_normal([4, 8, 8, 3]).astype(np.float32))
with strategy.scope():
    b = tf.Variable(np.linspace(-1, 1, 3).astype(np.float32))

def make_step(impl):
    @tf.function
    def step(x):
        def replica_fn(x):
            with tf.GradientTape() as outer:
                outer.watch(x)
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = downsample2d(bias_act(upsample2d(x, f, impl=impl), b, act='lrelu', impl=impl), f, impl=impl)
                    loss = tf.reduce_sum(y * y)
                g = tape.gradient(loss, x)
                r1 = tf.reduce_sum(tf.square(g))
            return outer.gradient(r1, [b])[0], tf.reduce_sum(y)
        gb, s = strategy.run(replica_fn, args=(x,))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, gb, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None))
    return step

dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x_all))
x_dist = next(iter(dist))
out = {impl: make_step(impl)(x_dist) for impl in ('ref', 'custom')}
np.testing.assert_allclose(out['custom'][1], out['ref'][1], rtol=1e-4)
np.testing.assert_allclose(out['custom'][0], out['ref'][0], rtol=1e-3, atol=1e-3)
print('OK', float(out['custom'][1]))
"""


class DistributedTest(tf.test.TestCase):

  def test_mirrored_strategy_two_logical_cpus(self):
    testutil.custom_ops_or_skip(self)
    out = testutil.run_python(_CODE)
    self.assertIn('OK', out)


if __name__ == '__main__':
  tf.test.main()
