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

DEFAULT_ROW_BATCH = 10000
DEFAULT_COL_BATCH = 10000


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
  """The kk smallest of [best | dist(u, v)] per row, ascending: [R, kk]."""
  d = tf.concat([best, _sq_distances(u, v)], axis=1)  # [R, kk + C]
  kk = tf.minimum(kk, tf.shape(d)[1])
  neg, _ = tf.math.top_k(-d, k=kk, sorted=True)
  return -neg


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2 +
             [tf.TensorSpec([None], tf.float32)])
def _inside_any(u, v, radii):
  """[R] bool: row of u lies within radii[j] of some row j of v."""
  return tf.reduce_any(_sq_distances(u, v) <= radii[tf.newaxis, :], axis=1)


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
                     col_batch_size: int = DEFAULT_COL_BATCH) -> Tuple[float, float]:
  """k-NN precision and recall of fake features against real features.

  Args:
    real_features: [N_real, D] array.
    fake_features: [N_fake, D] array.
    k: neighbourhood size (3 in pr50k3), the sample itself excluded.
    row_batch_size, col_batch_size: block sizes of the distance computation; peak memory is
      about 3 * row * col * 4 bytes besides the features.
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
  real_radii = knn_radii(real, k, row_batch_size, col_batch_size)
  fake_radii = knn_radii(fake, k, row_batch_size, col_batch_size)
  precision = inside_manifold(fake, real, real_radii, row_batch_size, col_batch_size).mean()
  recall = inside_manifold(real, fake, fake_radii, row_batch_size, col_batch_size).mean()
  return float(precision), float(recall)
