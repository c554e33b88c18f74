"""Losses and regularisers against independent computations on tiny networks."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf.training import losses
from tests.training.tiny import tiny_d
from tests.training.tiny import tiny_g


class LossesTest(tf.test.TestCase, parameterized.TestCase):

  def test_logistic_losses(self):
    real = tf.constant([[0.5], [-2.0]])
    fake = tf.constant([[1.0], [3.0]])
    sp = lambda x: np.log1p(np.exp(x))
    self.assertAllClose(losses.g_main_loss(fake), sp(-np.array([1.0, 3.0])))
    self.assertAllClose(losses.d_main_loss(real, fake),
                        sp(np.array([1.0, 3.0])) + sp(-np.array([0.5, -2.0])))

  @parameterized.parameters(1, 2)
  def test_r1_matches_jacobian_and_finite_differences(self, mbstd):
    tf.random.set_seed(1)
    D = tiny_d(mbstd)
    x = tf.random.normal([4, 8, 8, 1])
    _, gp = losses.r1_penalty(D, x)
    # Independent: the full Jacobian of every logit w.r.t. every input pixel. With minibatch
    # stddev the logits of a sample depend on the other samples of its group too, and R1
    # (official: gradient of the SUM of the scores) includes those cross terms.
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      y = D(x)[:, 0]
    # One backward pass per logit (4): far cheaper here than vectorising the gradient (pfor).
    jac = tape.jacobian(y, x, experimental_use_pfor=False).numpy()  # [N, N, 8, 8, 1]
    grad_of_sum = jac.sum(axis=0)
    self.assertAllClose(gp, np.square(grad_of_sum).sum(axis=(1, 2, 3)), rtol=1e-4, atol=1e-7)
    # And finite-difference directional derivatives of sum(D(x)), to within a few percent of
    # the typical size of <grad, v> (float32, lrelu kinks).
    typical = np.linalg.norm(grad_of_sum)
    for i in range(3):
      v = tf.random.normal(x.shape, seed=i)
      h = 1e-3
      fd = (tf.reduce_sum(D(x + h * v)) - tf.reduce_sum(D(x - h * v))) / (2 * h)
      self.assertAllClose(fd, np.sum(grad_of_sum * v.numpy()), rtol=0, atol=0.05 * typical)

  def test_path_length_matches_jacobian(self):
    tf.random.set_seed(2)
    G = tiny_g()
    n = 3
    ws = tf.random.normal([n, G.num_ws, G.w_dim])
    noise = [tf.random.normal([n] + list(s[1:])) for s in G.synthesis.noise_shapes]
    scale = losses.pl_noise_scale(8)
    self.assertAllClose(scale, 1 / 8)
    y = tf.random.normal([n, 8, 8, 1]) * scale
    synth = lambda w: G.synthesis(w, noise=noise, impl='ref')
    _, lengths = losses.path_lengths(synth, ws, y)
    with tf.GradientTape() as tape:
      tape.watch(ws)
      img = synth(ws)
    jac = tape.jacobian(img, ws).numpy()  # [n, 8, 8, 1, n, num_ws, w_dim]
    expected = []
    for i in range(n):
      jty = np.tensordot(y.numpy()[i], jac[i, :, :, :, i], axes=3)  # J_i^T y_i: [num_ws, w_dim]
      expected.append(np.sqrt(np.mean(np.sum(np.square(jty), axis=1))))
      # Samples do not interact in G: the off-diagonal blocks are zero.
      other = [j for j in range(n) if j != i]
      self.assertAllClose(jac[i, :, :, :, other], np.zeros_like(jac[i, :, :, :, other]))
    self.assertAllClose(lengths, expected, rtol=1e-4)

  def test_pl_penalty_update(self):
    lengths = tf.constant([1.0, 2.0, 4.0])
    penalty, new_mean = losses.pl_penalty(lengths, tf.constant(0.5), 0.01)
    a = 0.5 + 0.01 * (7.0 / 3 - 0.5)
    self.assertAllClose(new_mean, a)
    self.assertAllClose(penalty, (np.array([1.0, 2.0, 4.0]) - a) ** 2)

  def test_scale_to_global(self):
    self.assertAllClose(losses.scale_to_global(tf.constant([1.0, 3.0]), 8), 0.5)


if __name__ == '__main__':
  tf.test.main()
