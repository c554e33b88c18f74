"""Gradient accumulation (NVIDIA's minibatch_gpu / --batch-gpu): a replica's share of the
minibatch is processed in chunks, one after the other, and their gradients are summed.

Every loss term is already divided by the GLOBAL batch (losses.scale_to_global), so the sum
over chunks (and replicas) is the gradient of the global-batch mean: the learning rate, the
regularisation weights and the lazy intervals keep their meaning. Chunks run inside a
`tf.while_loop` with one iteration at a time, so only one chunk's activations are alive at
once (an unrolled Python loop would let TF run the chunks' forward passes side by side).
Random inputs are drawn for the whole minibatch first (sampling.py) and sliced per chunk, so
each sample sees the same latents, noise and augmentation with or without accumulation.
"""

import tensorflow as tf


def rows(struct, start, size: int):
  """Rows [start, start + size) of every tensor of rank >= 1 in a nest; scalars and None kept.

  `start` may be a tensor; the result has the static leading size `size`.
  """
  def take(t):
    if t is None or not isinstance(t, tf.Tensor) or t.shape.rank == 0:
      return t
    begin = tf.stack([tf.cast(start, tf.int32)] + [0] * (t.shape.rank - 1))
    return tf.slice(t, begin, [size] + list(t.shape[1:]))
  return tf.nest.map_structure(take, struct)


@tf.autograph.experimental.do_not_convert
def sum_over_chunks(num_chunks: int, fn):
  """sum_i fn(i) for i in [0, num_chunks): fn returns a nest of tensors of fixed shapes.

  fn(0) runs first; the others run in a while loop that starts after it and executes one
  iteration at a time.
  """
  total = fn(tf.constant(0, tf.int32))
  if num_chunks == 1:
    return total

  def body(i, acc):
    return i + 1, tf.nest.map_structure(tf.add, acc, fn(i))
  _, total = tf.while_loop(lambda i, _: i < num_chunks, body, (tf.constant(1, tf.int32), total),
                           parallel_iterations=1)
  return total


def gradients(tape, loss, variables):
  """tape.gradient with zeros for variables the loss does not depend on.

  Like the official optimizer, a variable a term does not reach (e.g. the last biases under
  R1 / path length) gets a zero gradient, so Adam's moments still decay; dense tensors also
  keep the accumulation loop's structure fixed.
  """
  grads = tape.gradient(loss, variables)
  return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
          for g, v in zip(grads, variables)]
