"""Frechet distance between Gaussians fitted to features, and streaming feature statistics.

FID (Heusel et al. 2017) as the official StyleGAN2 code computes it:
`|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))`, covariances with the N-1 normalisation of
`np.cov`, the matrix square root from `scipy.linalg.sqrtm` in float64, real part taken.
"""

from typing import Optional, Tuple
import warnings

from absl import logging
import numpy as np
import scipy.linalg

# sqrtm's own error estimate: above this relative residual the result is not trusted and the
# covariances are regularised (the official code has no such guard; a nan FID helps nobody).
_MAX_SQRTM_RESIDUAL = 1e-3
# Imaginary parts this large (relative to the trace) mean the product had clearly negative
# eigenvalues, i.e. a broken covariance rather than round-off.
_MAX_RELATIVE_IMAG = 1e-3


def _as_mean_cov(mu, sigma, which: str) -> Tuple[np.ndarray, np.ndarray]:
  mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
  sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
  if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
    raise ValueError(f'frechet_distance: {which} must be a mean [D] and a covariance [D, D]; '
                     f'got shapes {mu.shape} and {sigma.shape}.')
  if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
    raise ValueError(f'frechet_distance: {which} contains nan or inf (features of a diverged '
                     'network, or too few samples for a covariance).')
  return mu, sigma


def _sqrtm(a: np.ndarray) -> Tuple[np.ndarray, float]:
  """(sqrtm(a), relative residual |X X - A|_F / |A|_F)."""
  with warnings.catch_warnings():  # singular input is detected and handled below
    warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)
    x = scipy.linalg.sqrtm(a)
  if isinstance(x, tuple):  # scipy < 1.16 with disp=False style returns; be tolerant
    x = x[0]
  if not np.all(np.isfinite(x)):
    return x, np.inf
  norm = np.linalg.norm(a)
  residual = np.linalg.norm(x @ x - a) / norm if norm > 0 else 0.0
  return x, float(residual)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

  Args:
    mu1, mu2: means [D].
    sigma1, sigma2: covariances [D, D].
    eps: when sqrtm(sigma1 sigma2) fails (near-singular covariances, e.g. fewer samples than
      dimensions), eps * I is added to both covariances and the square root retried.
  Returns:
    The distance as a Python float (>= 0 up to round-off).
  """
  mu1, sigma1 = _as_mean_cov(mu1, sigma1, 'mu1/sigma1')
  mu2, sigma2 = _as_mean_cov(mu2, sigma2, 'mu2/sigma2')
  if mu1.shape != mu2.shape:
    raise ValueError(f'frechet_distance: the two feature sets have different widths '
                     f'({mu1.shape[0]} and {mu2.shape[0]}); were they made by the same network?')
  covmean, residual = _sqrtm(sigma1 @ sigma2)
  if residual > _MAX_SQRTM_RESIDUAL:
    logging.warning('frechet_distance: sqrtm(sigma1 sigma2) is inaccurate (relative residual '
                    '%.3g; near-singular covariances); adding %g to the diagonals.', residual, eps)
    offset = np.eye(mu1.shape[0]) * eps
    covmean, residual = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if not np.all(np.isfinite(covmean)):
      raise FloatingPointError('frechet_distance: the matrix square root failed even after '
                               'regularisation; the covariances are degenerate.')
  if np.iscomplexobj(covmean):
    scale = max(1.0, abs(np.trace(covmean.real)))
    imag = float(np.max(np.abs(covmean.imag)))
    if imag > _MAX_RELATIVE_IMAG * scale:
      logging.warning('frechet_distance: sqrtm has an imaginary component of %.3g; taking the '
                      'real part as the official code does.', imag)
    covmean = covmean.real
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


class FeatureStats:
  """Accumulates features batch by batch: running mean/covariance and/or all features.

  The sums are kept in float64 around a shift (the first batch's mean) so 50k x 2048
  Inception features give the same covariance as `np.cov` to ~1e-12 relative.
  """

  def __init__(self, capture_mean_cov: bool = True, capture_all: bool = False,
               max_items: Optional[int] = None):
    self.capture_mean_cov = capture_mean_cov
    self.capture_all = capture_all
    self.max_items = max_items
    self.num_items = 0
    self.num_features = None
    self._shift = None
    self._sum = None
    self._sum_outer = None
    self._all = []

  def is_full(self) -> bool:
    return self.max_items is not None and self.num_items >= self.max_items

  def append(self, x) -> None:
    """x: [N, D] features; anything past max_items is dropped."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
      raise ValueError(f'FeatureStats.append: features must be [N, D], got shape {x.shape}')
    if self.max_items is not None:
      x = x[:max(0, self.max_items - self.num_items)]
    if x.shape[0] == 0:
      return
    if self.num_features is None:
      self.num_features = x.shape[1]
    elif x.shape[1] != self.num_features:
      raise ValueError(f'FeatureStats.append: got {x.shape[1]} features, expected '
                       f'{self.num_features}')
    if self.capture_mean_cov:
      x64 = x.astype(np.float64)
      if self._shift is None:
        self._shift = x64.mean(axis=0)
        self._sum = np.zeros_like(self._shift)
        self._sum_outer = np.zeros([x.shape[1]] * 2, dtype=np.float64)
      centered = x64 - self._shift
      self._sum += centered.sum(axis=0)
      self._sum_outer += centered.T @ centered
    if self.capture_all:
      self._all.append(x)
    self.num_items += x.shape[0]

  def get_all(self) -> np.ndarray:
    """All captured features [N, D] float32."""
    if not self.capture_all:
      raise ValueError('FeatureStats: features were not captured (capture_all=False)')
    if not self._all:
      return np.zeros([0, self.num_features or 0], np.float32)
    return np.concatenate(self._all, axis=0)

  def get_mean_cov(self) -> Tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D]) in float64, covariance normalised by N - 1 like np.cov."""
    if not self.capture_mean_cov:
      raise ValueError('FeatureStats: mean/cov were not captured (capture_mean_cov=False)')
    n = self.num_items
    if n < 2:
      raise ValueError(f'FeatureStats: a covariance needs at least 2 samples, got {n}')
    mean_c = self._sum / n
    cov = (self._sum_outer - n * np.outer(mean_c, mean_c)) / (n - 1)
    return mean_c + self._shift, cov
