"""A tiny generator for the export / generate / project tests (milliseconds per image)."""

import numpy as np
import tensorflow as tf

from sg2tf.networks import Generator


def tiny_generator(c_dim=0, seed=0, noise_strength=0.3, resolution=16):
  """16x16, z/w 16-d, 6 w layers. Noise strength and w_avg are set to non-zero values so
  that noise modes and truncation change the output (fresh networks have zeros there)."""
  tf.keras.utils.set_random_seed(seed)
  G = Generator(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=resolution, mapping_layers=2,
                mapping_dim=16, fmap_base=64, fmap_max=16)
  for lyr in G.synthesis.synthesis_layers:
    lyr.noise_strength.assign(noise_strength)
  G.mapping.w_avg.assign(np.random.RandomState(seed).randn(16).astype(np.float32))
  return G
