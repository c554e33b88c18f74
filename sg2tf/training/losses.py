"""StyleGAN2 losses and regularisers (official training/loss.py), per replica.

Every function works on one replica's slice of the minibatch and returns per-sample values;
the loop turns them into a scalar with `sum / global_batch`, so that the gradients that
tf.distribute sums over replicas equal the gradient of the global-batch mean (the official
code averages per-GPU means, the same thing for equal per-GPU batches).

- G: non-saturating logistic, softplus(-D(G(z))).
- D: logistic, softplus(D(G(z))) + softplus(-D(x)).
- R1 on reals: gamma / 2 * ||dD(x)/dx||^2 (per sample, summed over pixels and channels).
- Path length: |J_w^T y| with y ~ N(0, I) / sqrt(H * W), averaged over the w layers,
  penalised as (|J_w^T y| - a)^2 with a an exponential moving average (decay 0.01) of the
  batch-mean length across ALL replicas; the gradient flows through a as in the official
  code (it is not stopped).
"""

import math

import tensorflow as tf

from sg2tf.training import distribute


def g_main_loss(fake_logits):
  """[N, 1] -> [N]: -log(sigmoid(D(G(z))))."""
  return tf.nn.softplus(-tf.cast(fake_logits[:, 0], tf.float32))


def d_main_loss(real_logits, fake_logits):
  """[N, 1], [N, 1] -> [N]: -log(sigmoid(D(x))) - log(1 - sigmoid(D(G(z))))."""
  real = tf.cast(real_logits[:, 0], tf.float32)
  fake = tf.cast(fake_logits[:, 0], tf.float32)
  return tf.nn.softplus(fake) + tf.nn.softplus(-real)


def r1_penalty(D, reals, labels=None):
  """(real logits [N, 1], ||dD(x)/dx||^2 [N]) on the real images [N, H, W, C].

  Must run under an outer GradientTape for D's weights: the penalty's gradient is a second
  derivative through D. Multiply by gamma / 2 for the R1 term.
  """
  reals = tf.convert_to_tensor(reals)
  with tf.GradientTape() as tape:
    tape.watch(reals)
    logits = D(reals, labels)
    total = tf.reduce_sum(tf.cast(logits, tf.float32))
  grads = tf.cast(tape.gradient(total, reals), tf.float32)  # [N, H, W, C]
  return logits, tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])


def pl_noise_scale(resolution: int) -> float:
  """The 1 / sqrt(H * W) that makes the path-length weight resolution-independent."""
  return 1.0 / math.sqrt(resolution * resolution)


def path_lengths(synthesis_fn, ws, pl_noise):
  """|J_w^T y| per sample: sqrt(mean over w layers of sum over w_dim of (dL/dw)^2).

  Args:
    synthesis_fn: ws [N, num_ws, w_dim] -> images [N, H, W, C].
    ws: the (style-mixed) ws that were synthesised.
    pl_noise: y, [N, H, W, C] random images already scaled by pl_noise_scale.
  Returns:
    (images, lengths [N]). Run under an outer tape to get gradients w.r.t. the weights.
  """
  with tf.GradientTape() as tape:
    tape.watch(ws)
    images = synthesis_fn(ws)
    total = tf.reduce_sum(tf.cast(images, tf.float32) * pl_noise)
  grads = tf.cast(tape.gradient(total, ws), tf.float32)  # [N, num_ws, w_dim]
  lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=2), axis=1))
  return images, lengths


def pl_penalty(lengths, pl_mean, decay):
  """((lengths - a')^2 [N], a') with a' = a + decay * (mean over ALL replicas - a).

  The cross-replica mean makes a' identical on every replica, so the tracked a does not
  depend on how the minibatch is split (the official code tracks it per GPU).
  """
  batch_mean = distribute.all_reduce_mean(tf.reduce_mean(lengths))
  new_mean = pl_mean + decay * (batch_mean - pl_mean)
  return tf.square(lengths - new_mean), new_mean


def scale_to_global(per_sample, global_batch):
  """Sum of this replica's per-sample values / the global batch; replicas sum to the mean."""
  return tf.reduce_sum(per_sample) / float(global_batch)
