"""Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

The official protocol (pr50k3): the manifold of a feature set is the union of balls around
each sample whose radius is the distance to its k-th nearest neighbour in the same set
(k=3, the sample itself excluded). Precision = share of fakes inside the real manifold;
recall = share of reals inside the fake manifold.

Distances are computed block by block (row block x column block), so memory is
O(row_batch_size * col_batch_size) whatever N: the k-NN search keeps only the k+1 smallest
distances per row between column blocks. The official code uses float16 features and
distances on the GPU; this uses float32 (borderline samples may flip, ~1e-4 of the value).
"""

from typing import Tuple

import numpy as np
import tensorflow as tf

# The official code uses 10000 x 10000 blocks on the GPU. Block sizes change only memory and
# speed, not the result; 5000 keeps the peak near 1 GiB (fp32, measured in bench/metrics.py).
DEFAULT_ROW_BATCH = 5000
DEFAULT_COL_BATCH = 5000


def _check_features(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim != 2 or x.shape[0] == 0:
    raise ValueError(f'precision_recall: {name} must be a non-empty [N, D] array, got shape '
                     f'{x.shape}')
  if not np.issubdtype(x.dtype, np.number):
    raise ValueError(f'precision_recall: {name} must be numeric, got {x.dtype}')
  x = np.ascontiguousarray(x, dtype=np.float32)
  if not np.all(np.isfinite(x)):
    raise ValueError(f'precision_recall: {name} contains nan or inf')
  return x


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2)
def _sq_distances(u, v):
  """Squared Euclidean distances [R, C] between rows of u [R, D] and v [C, D]."""
  norm_u = tf.reduce_sum(tf.square(u), axis=1, keepdims=True)  # [R, 1]
  norm_v = tf.reduce_sum(tf.square(v), axis=1)[tf.newaxis, :]  # [1, C]
  return tf.maximum(norm_u - 2.0 * tf.matmul(u, v, transpose_b=True) + norm_v, 0.0)


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)] * 3 +
             [tf.TensorSpec([], tf.int32)])
def _merge_smallest(best, u, v, kk):
  """The kk smallest of [best | dist(u, v)] per row, ascending: [R, kk].

  The block's own kk smallest are taken first, so only [R, C] distances and [R, 2 kk]
  candidates are ever live (no concatenated copy of the block).
  """
  neg_d = -_sq_distances(u, v)  # [R, C]
  block, _ = tf.math.top_k(neg_d, k=tf.minimum(kk, tf.shape(neg_d)[1]), sorted=False)
  cand = tf.concat([-best, block], axis=1)  # [R, <= 2 kk]
  neg, _ = tf.math.top_k(cand, k=tf.minimum(kk, tf.shape(cand)[1]), sorted=True)
  return -neg


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2 +
             [tf.TensorSpec([None], tf.float32)])
def _inside_any(u, v, radii):
  """[R] bool: row of u lies within radii[j] of some row j of v."""
  return tf.reduce_any(_sq_distances(u, v) <= radii[tf.newaxis, :], axis=1)


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2 +
             [tf.TensorSpec([None], tf.float32)] * 2)
def _cross_hits(u, v, radii_v, radii_u):
  """([R] u inside some ball of v, [C] v inside some ball of u) from one distance block."""
  d = _sq_distances(u, v)  # [R, C]
  return (tf.reduce_any(d <= radii_v[tf.newaxis, :], axis=1),
          tf.reduce_any(d <= radii_u[:, tf.newaxis], axis=0))


def knn_radii(features, k: int = 3, row_batch_size: int = DEFAULT_ROW_BATCH,
              col_batch_size: int = DEFAULT_COL_BATCH) -> np.ndarray:
  """Squared distance from each sample to its k-th nearest neighbour, itself excluded.

  The sample's distance to itself (0) is the smallest, so this is entry k (0-based) of the
  ascending distances, as in the official code. [N] float32.
  """
  x = _check_features(features, 'features')
  n = x.shape[0]
  if not 1 <= k < n:
    raise ValueError(f'precision_recall: k={k} needs 1 <= k < number of samples ({n})')
  kk = k + 1
  radii = np.empty([n], np.float32)
  for r0 in range(0, n, row_batch_size):
    rows = tf.constant(x[r0:r0 + row_batch_size])
    best = tf.fill([rows.shape[0], 0], np.float32(np.inf))
    for c0 in range(0, n, col_batch_size):
      best = _merge_smallest(best, rows, tf.constant(x[c0:c0 + col_batch_size]),
                             tf.constant(kk, tf.int32))
    radii[r0:r0 + rows.shape[0]] = best.numpy()[:, k]
  return radii


def inside_manifold(eval_features, ref_features, ref_radii,
                    row_batch_size: int = DEFAULT_ROW_BATCH,
                    col_batch_size: int = DEFAULT_COL_BATCH) -> np.ndarray:
  """[N_eval] bool: each eval sample lies inside the ball of at least one reference sample."""
  ev = _check_features(eval_features, 'eval_features')
  ref = _check_features(ref_features, 'ref_features')
  radii = np.asarray(ref_radii, np.float32)
  if ev.shape[1] != ref.shape[1] or radii.shape != (ref.shape[0],):
    raise ValueError(f'precision_recall: shapes do not match: eval {ev.shape}, ref {ref.shape}, '
                     f'radii {radii.shape}')
  out = np.zeros([ev.shape[0]], bool)
  for r0 in range(0, ev.shape[0], row_batch_size):
    rows = tf.constant(ev[r0:r0 + row_batch_size])
    hit = np.zeros([rows.shape[0]], bool)
    for c0 in range(0, ref.shape[0], col_batch_size):
      hit |= _inside_any(rows, tf.constant(ref[c0:c0 + col_batch_size]),
                         tf.constant(radii[c0:c0 + col_batch_size])).numpy()
      if hit.all():  # the rest of the columns cannot change anything
        break
    out[r0:r0 + rows.shape[0]] = hit
  return out


def precision_recall(real_features, fake_features, k: int = 3,
                     row_batch_size: int = DEFAULT_ROW_BATCH,
                     col_batch_size: int = DEFAULT_COL_BATCH,
                     real_radii=None) -> Tuple[float, float]:
  """k-NN precision and recall of fake features against real features.

  Args:
    real_features: [N_real, D] array.
    fake_features: [N_fake, D] array.
    k: neighbourhood size (3 in pr50k3), the sample itself excluded.
    row_batch_size, col_batch_size: block sizes of the distance computation; memory is
      O(row * col + (row + col) * D) whatever N (about 1 GiB at 5000 x 5000, D = 4096).
    real_radii: knn_radii(real_features, k) when already known (cached with the reals).
  Returns:
    (precision, recall) as Python floats in [0, 1].
  """
  real = _check_features(real_features, 'real_features')
  fake = _check_features(fake_features, 'fake_features')
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f'precision_recall: real and fake features differ in width '
                     f'({real.shape[1]} vs {fake.shape[1]})')
  if row_batch_size < 1 or col_batch_size < 1:
    raise ValueError('precision_recall: block sizes must be >= 1')
  if real_radii is None:
    real_radii = knn_radii(real, k, row_batch_size, col_batch_size)
  real_radii = np.asarray(real_radii, np.float32)
  if real_radii.shape != (real.shape[0],):
    raise ValueError(f'precision_recall: real_radii must be [{real.shape[0]}], got '
                     f'{real_radii.shape}')
  fake_radii = knn_radii(fake, k, row_batch_size, col_batch_size)
  # Precision and recall share the fake x real distances: one pass over the blocks.
  fake_in = np.zeros([fake.shape[0]], bool)
  real_in = np.zeros([real.shape[0]], bool)
  for r0 in range(0, fake.shape[0], row_batch_size):
    rows = tf.constant(fake[r0:r0 + row_batch_size])
    r_rows = tf.constant(fake_radii[r0:r0 + row_batch_size])
    for c0 in range(0, real.shape[0], col_batch_size):
      a, b = _cross_hits(rows, tf.constant(real[c0:c0 + col_batch_size]),
                         tf.constant(real_radii[c0:c0 + col_batch_size]), r_rows)
      fake_in[r0:r0 + rows.shape[0]] |= a.numpy()
      real_in[c0:c0 + col_batch_size] |= b.numpy()
  return float(fake_in.mean()), float(real_in.mean())
