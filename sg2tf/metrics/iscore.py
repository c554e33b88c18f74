"""Inception Score (Salimans et al. 2016), the official is50k definition.

IS = exp(E_x KL(p(y|x) || p(y))) per split of the samples (10 splits), reported as the mean
and standard deviation over the splits; p(y) is the mean prediction within the split.
"""

from typing import Tuple

import numpy as np


def inception_score(probs, num_splits: int = 10) -> Tuple[float, float]:
  """(mean, std) of the Inception Score over `num_splits` consecutive splits.

  Args:
    probs: [N, num_classes] class probabilities (softmax outputs), rows summing to 1.
    num_splits: number of splits; split i is rows [i*N//s, (i+1)*N//s).
  """
  p = np.asarray(probs, dtype=np.float64)
  if p.ndim != 2 or p.shape[0] < num_splits or num_splits < 1:
    raise ValueError(f'inception_score: need [N, classes] probabilities with N >= num_splits '
                     f'({num_splits}), got shape {p.shape}')
  if np.any(p < 0) or not np.all(np.isfinite(p)):
    raise ValueError('inception_score: probabilities must be finite and >= 0')
  n = p.shape[0]
  scores = []
  for i in range(num_splits):
    part = p[i * n // num_splits:(i + 1) * n // num_splits]
    marginal = part.mean(axis=0, keepdims=True)
    # p log(p / q) with the 0 log 0 = 0 convention (a float32 softmax can underflow to 0).
    with np.errstate(divide='ignore', invalid='ignore'):
      kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
    scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
  return float(np.mean(scores)), float(np.std(scores))
