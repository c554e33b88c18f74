"""The GPU formulation (fused modulated conv: one grouped conv per layer, grouped
conv2d_transpose for the up-conv), executed on this CPU before any GPU runs it.

TF compiles grouped convolutions and their gradients on CPU under XLA, so the exact graph GPUs
run is compared here with the non-fused formulation: forward, first and second order, for
up, down and no resampling at two resolutions (XLA, reference ops), and one G+D training step
with R1 and path length. Without XLA the CPU has no grouped-convolution gradients and no
grouped conv2d_transpose (measured with TF 2.21): tests/test_selfcheck.py checks that an
explicit 'gpu' formulation then fails clearly.
"""

from unittest import mock

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from sg2tf import custom_ops
from sg2tf import layers
from sg2tf import selfcheck
from sg2tf.networks import serialization
from sg2tf.training import config as config_lib
from sg2tf.training import phases
from tests.training import tiny

TOL = 1e-4  # max |fused - non-fused| / max(1, max |non-fused|); measured ~1e-6.


class FormulationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(case=['none', 'up', 'down'], resolution=[8, 16])
  def test_fused_matches_non_fused_under_xla(self, case, resolution):
    errors = selfcheck.compare_modconv(case, resolution, second_order=True, jit_compile=True)
    self.assertEqual(sorted(errors), ['forward', 'grad', 'grad2'])
    for k, v in errors.items():
      self.assertLess(v, TOL, f'{case} {resolution}: {k}')

  def test_gpu_formulation_uses_the_grouped_conv2d_transpose(self):
    lyr = layers.ModulatedConv2D(5, 3, w_dim=8, up=2)
    lyr.build([None, 8, 8, 6])
    rng = np.random.RandomState(0)
    x = rng.standard_normal([3, 8, 8, 6]).astype(np.float32)
    w = rng.standard_normal([3, 8]).astype(np.float32)
    calls = []
    real = tf.nn.conv2d_transpose

    def spy(*args, **kwargs):
      calls.append(args[1].shape)
      return real(*args, **kwargs)
    with custom_ops.formulation('gpu'), custom_ops.implementation('ref'):
      self.assertTrue(custom_ops.fused_modconv())
      with mock.patch.object(tf.nn, 'conv2d_transpose', spy):
        fused = tf.function(lambda: lyr(x, w), jit_compile=True)()
    self.assertEqual(calls, [tf.TensorShape([3, 3, 5, 18])])  # One grouped conv, 3 groups.
    with custom_ops.formulation('cpu'):
      self.assertAllClose(fused, lyr(x, w), atol=1e-5)
    # Without XLA TF 2.21 has no CPU kernel for it (its Conv2DBackpropInput refuses groups).
    with custom_ops.formulation('gpu'), custom_ops.implementation('ref'):
      with self.assertRaises(tf.errors.InvalidArgumentError):
        lyr(x, w)


class TrainingStepTest(tf.test.TestCase):
  """G step with path length, D step with R1: the GPU formulation under XLA equals the
  non-fused one (plain SGD, so weights differ only as the gradients do)."""

  def _step(self, formulation, jit, g0, d0):
    keras.utils.set_random_seed(0)
    G, G_ema, D = tiny.tiny_g(), tiny.tiny_g(), tiny.tiny_d()
    for src, dst in ((g0, G), (g0, G_ema), (d0, D)):
      serialization.copy_weights(src, dst, 'copy')
    g_opt, d_opt = keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01)
    g_opt.build(G.trainable_variables)
    d_opt.build(D.trainable_variables)
    # Without lazy regularisation R1 and path length join Gmain / Dmain: two phases to
    # compile instead of four, the same terms.
    loss = config_lib.LossConfig(r1_gamma=10.0, pl_weight=2.0, lazy_regularization=False,
                                 style_mixing_prob=0.9)
    ph = phases.Phases(tf.distribute.get_strategy(), G, D, G_ema, g_opt, d_opt,
                       tf.Variable(0.0), tf.random.Generator.from_seed(1), global_batch=4,
                       loss_cfg=loss, impl='ref', jit_compile=jit)
    reals = tf.random.stateless_uniform([4, 8, 8, 1], [3, 4], -1.0, 1.0)
    with custom_ops.formulation(formulation):
      metrics = {}
      metrics.update(ph.g_main())
      metrics.update(ph.d_main(reals, None, tf.constant(0.9)))
    return ({k: float(v) for k, v in metrics.items()},
            [v.numpy() for v in G.variables + D.variables])

  def test_one_g_and_d_step_with_r1_and_path_length(self):
    g0, d0 = tiny.tiny_g(), tiny.tiny_d()
    got_metrics, got = self._step('gpu', True, g0, d0)
    # Both under XLA: its random numbers differ from TF's own for the same seeds.
    want_metrics, want = self._step('cpu', True, g0, d0)
    for k in ('Loss/G/loss', 'Loss/pl_penalty', 'Loss/D/loss', 'Loss/r1_penalty'):
      self.assertIn(k, want_metrics)
      self.assertAllClose(got_metrics[k], want_metrics[k], rtol=1e-4, atol=1e-5, msg=k)
    moved = [not np.allclose(a, b) for a, b in zip(want, [v.numpy() for v in
                                                         g0.variables + d0.variables])]
    self.assertTrue(any(moved))  # The step did train.
    for a, b in zip(got, want):
      self.assertAllClose(a, b, rtol=1e-4, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
