"""Random inputs of one training phase, identical for any number of replicas.

Each phase draws one seed from the run's `tf.random.Generator` (checkpointed) in
cross-replica context. Every replica then generates the random tensors of the WHOLE global
minibatch with stateless ops keyed by that seed and keeps its own slice, so sample i gets
the same latents, noise maps, mixing cutoff and labels whether the minibatch runs on one
device or is split over eight, and a resumed run continues the same random stream.
Generating the global tensors costs num_replicas times the (cheap) random-number work.

The generator forward pass of training (official G_main with is_training=True): mapping,
batch mean of w for the w_avg update, style mixing with one crossover layer per minibatch
(probability 0.9), synthesis with fresh per-pixel noise. Mixing and the w_avg rule are the
Generator's own (`G.mixing_cutoff`, `G.style_mix`, `G.mapping.batch_mean`; phases.py applies
`G.mapping.moved_w_avg`); only the random numbers are drawn here.
"""

import dataclasses
from typing import List, Optional

import tensorflow as tf

from sg2tf.training import distribute

# Sub-stream keys: each kind of random tensor of a phase has its own.
_Z, _Z2, _MIX, _MIX_LAYER, _LABELS, _PL_NOISE, _NOISE0 = range(7)


def fold(seed, key: int):
  """A new stateless seed [2] from seed [2] and an integer key."""
  return tf.random.experimental.stateless_fold_in(seed, key)


def _local(x, global_n):
  """This replica's rows of a global-batch tensor."""
  rid, n_rep = distribute.replica_slice()
  if n_rep == 1:
    return x
  n = global_n // n_rep
  return x[rid * n:(rid + 1) * n]


def replica_rows(x, global_n):
  """This replica's rows of a tensor drawn for the whole global batch (e.g. augmentation)."""
  return _local(x, global_n)


def global_normal(seed, key, global_n, shape, dtype=tf.float32):
  """This replica's slice of N(0, 1) [global_n, *shape]."""
  x = tf.random.stateless_normal([global_n] + list(shape), seed=fold(seed, key), dtype=dtype)
  return _local(x, global_n)


@dataclasses.dataclass
class GeneratorInputs:
  z: tf.Tensor                    # [n, z_dim]
  z2: Optional[tf.Tensor]         # [n, z_dim], second latents for style mixing (or None)
  cutoff: Optional[tf.Tensor]     # int32 scalar: layers >= cutoff come from z2
  noise: List[Optional[tf.Tensor]]  # one [n, R, R, 1] map per synthesis layer (None: unused)
  labels: Optional[tf.Tensor]     # [n, c_dim] or None
  resolution: Optional[int] = None  # Progressive growing: the level G synthesises.


def generator_inputs(G, seed, global_n, style_mixing_prob, label_table=None, resolution=None):
  """Latents, mixing cutoff, noise maps and (random dataset) labels for one phase.

  resolution (progressive growing): G runs at that level; noise is drawn only for the layers
  up to it and the mixing crossover is drawn over that level's layers (official cur_layers
  = num_ws - 2 * floor(lod)).
  """
  z = global_normal(seed, _Z, global_n, [G.z_dim])
  z2 = cutoff = None
  if style_mixing_prob > 0:
    z2 = global_normal(seed, _Z2, global_n, [G.z_dim])
    cutoff = G.mixing_cutoff(style_mixing_prob, seed=(fold(seed, _MIX), fold(seed, _MIX_LAYER)),
                             resolution=resolution)
  noise = [global_normal(seed, _NOISE0 + i, global_n, shape[1:])
           if resolution is None or shape[1] <= resolution else None
           for i, shape in enumerate(G.synthesis.noise_shapes)]
  labels = None
  if label_table is not None:
    labels = random_labels(seed, global_n, label_table)
  return GeneratorInputs(z=z, z2=z2, cutoff=cutoff, noise=noise, labels=labels,
                         resolution=resolution)


def random_labels(seed, global_n, label_table):
  """Labels of random dataset images (official get_random_labels_tf), this replica's slice."""
  count = tf.shape(label_table)[0]
  idx = tf.random.stateless_uniform([global_n], seed=fold(seed, _LABELS), maxval=count,
                                    dtype=tf.int32)
  return _local(tf.gather(label_table, idx), global_n)


def pl_noise(seed, global_n, resolution, channels, scale):
  """Path-length y: this replica's slice of N(0, 1) [global_n, R, R, C] * scale."""
  return global_normal(seed, _PL_NOISE, global_n, [resolution, resolution, channels]) * scale


def mapping(G, inputs: GeneratorInputs):
  """(ws [n, num_ws, w_dim] after style mixing, batch-mean w [w_dim] before mixing).

  The batch mean feeds the w_avg update, which the official G_main applies to the mapping
  output of every training call before mixing.
  """
  ws = G.mapping(inputs.z, inputs.labels)
  w_mean = G.mapping.batch_mean(ws)
  if inputs.z2 is not None:
    ws = G.style_mix(ws, inputs.labels, z2=inputs.z2, cutoff=inputs.cutoff)
  return ws, w_mean


def synthesis(G, ws, inputs: GeneratorInputs):
  if inputs.resolution is not None:
    return G.synthesis(ws, noise=inputs.noise, resolution=inputs.resolution)
  return G.synthesis(ws, noise=inputs.noise)


def generate(G, inputs: GeneratorInputs):
  """(images [n, R, R, C], ws, batch-mean w)."""
  ws, w_mean = mapping(G, inputs)
  return synthesis(G, ws, inputs), ws, w_mean
