"""GAN metrics with the official StyleGAN2 protocols: FID, IS, precision/recall, PPL.

Stable interface (NumPy in, Python floats out):

    frechet_distance(mu1, sigma1, mu2, sigma2) -> float
    precision_recall(real_features, fake_features, k=3) -> (precision, recall)

The evaluation driver is `sg2tf.metrics.runner.evaluate` (used by eval_main.py and training).
"""

from sg2tf.metrics.fid import FeatureStats
from sg2tf.metrics.fid import frechet_distance
from sg2tf.metrics.iscore import inception_score
from sg2tf.metrics.ppl import filtered_mean
from sg2tf.metrics.pr import precision_recall

__all__ = ['FeatureStats', 'filtered_mean', 'frechet_distance', 'inception_score',
           'precision_recall']
