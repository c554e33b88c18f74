"""GAN metrics with the official StyleGAN2 protocols: FID, IS, precision/recall, PPL.

Stable interface (NumPy in, Python floats out):

    frechet_distance(mu1, sigma1, mu2, sigma2) -> float
    precision_recall(real_features, fake_features, k=3) -> (precision, recall)

The evaluation driver is `sg2tf.metrics.runner.evaluate` (used by eval_main.py and training);
the metric names and what each needs are in `sg2tf.metrics.registry` (no TensorFlow).
Importing this package imports nothing heavy: the names below load their module on first use
(PEP 562), so `sg2tf.metrics.registry` stays usable before TensorFlow starts.
"""

import importlib

_EXPORTS = {
    'FeatureStats': 'fid', 'frechet_distance': 'fid', 'inception_score': 'iscore',
    'filtered_mean': 'ppl', 'precision_recall': 'pr',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted(list(globals()) + __all__)
