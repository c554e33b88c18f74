"""Perceptual path length (StyleGAN, Karras et al. 2019), the official ppl_* / ppl2_* protocols.

For each sample: draw two latents z0, z1 and t ~ U(0, 1) ('full') or t = 0 ('end');
interpolate to t and t + epsilon (slerp in Z, lerp in W after the mapping network),
synthesise both with constant noise, crop the face region (ppl_*, not ppl2_*), average-pool
down to 256 pixels when larger, scale [-1, 1] -> [0, 255], and take the perceptual distance
(LPIPS-VGG16) divided by epsilon^2. The metric is the mean of the distances between their
1st ('lower') and 99th ('higher') percentiles.

Difference from the TF1 code: it re-draws the constant noise inputs for each minibatch; here
the generator's stored constant noise is used for every minibatch (as NVIDIA's later
PyTorch code does), so the two images of a pair always share their noise either way.
"""

from typing import Callable

import numpy as np
import tensorflow as tf

from sg2tf.metrics import registry

# The protocol definitions are in the TF-free registry (flag validation needs them).
EPSILON = registry.PPL_EPSILON
PPLConfig = registry.PPLConfig


def normalize(v):
  return v / tf.sqrt(tf.reduce_sum(tf.square(v), axis=-1, keepdims=True))


def slerp(a, b, t):
  """Spherical interpolation of the directions of a and b [N, D] at t [N, 1]; unit output."""
  a, b = normalize(a), normalize(b)
  d = tf.reduce_sum(a * b, axis=-1, keepdims=True)
  p = t * tf.math.acos(d)
  c = normalize(b - d * a)
  return normalize(a * tf.math.cos(p) + c * tf.math.sin(p))


def lerp(a, b, t):
  return a + (b - a) * t


def crop_face(images):
  """The official face crop of [N, H, W, C]: rows 3H/8..7H/8, columns 2W/8..6W/8 (c = H // 8)."""
  c = images.shape[1] // 8
  return images[:, c * 3:c * 7, c * 2:c * 6, :]


def downsample_to_256(images):
  """Box-averages [N, H, W, C] by H // 256 when that factor is > 1 (VGG works near 224)."""
  _, h, w, ch = images.shape
  factor = h // 256
  if factor <= 1:
    return images
  x = tf.reshape(images, [-1, h // factor, factor, w // factor, factor, ch])
  return tf.reduce_mean(x, axis=[2, 4])


def filtered_mean(distances) -> float:
  """Mean of the distances within [1st percentile ('lower'), 99th percentile ('higher')]."""
  d = np.asarray(distances, dtype=np.float64).reshape(-1)
  if d.size == 0 or not np.all(np.isfinite(d)):
    raise ValueError(f'ppl: got {d.size} distances, some not finite; the generator or the '
                     'distance network produced nan/inf')
  lo = np.percentile(d, 1, method='lower')
  hi = np.percentile(d, 99, method='higher')
  return float(np.mean(d[(lo <= d) & (d <= hi)]))


def sample_inputs(rng_z: np.random.Generator, rng_t: np.random.Generator, batch_size: int,
                  z_dim: int, sampling: str):
  """Host-side random inputs of one batch: z01 [2B, z_dim] (pairs at 2i, 2i+1), t [B].

  Separate streams for z and t make the samples independent of the batch size.
  """
  z01 = rng_z.standard_normal([batch_size * 2, z_dim]).astype(np.float32)
  if sampling == 'full':
    t = rng_t.uniform(0.0, 1.0, [batch_size]).astype(np.float32)
  else:
    t = np.zeros([batch_size], np.float32)
  return z01, t


def make_distance_fn(generator, distance_net: Callable, config: PPLConfig,
                     truncation_psi: float = 1.0):
  """A function (z01 [2B, z_dim], t [B]) -> scaled distances [B] for one PPL protocol.

  Args:
    generator: has mapping(z, truncation_psi=...) -> [N, num_ws, w_dim] and
      synthesis(w, noise_mode=...) -> [N, H, W, C] in [-1, 1].
    distance_net: (img0, img1) NHWC float in [0, 255] -> [B] perceptual distances.
    config: the protocol.
    truncation_psi: 1 in the official protocol.
  """
  eps = config.epsilon

  def fn(z01, t):
    t = tf.convert_to_tensor(t)[:, tf.newaxis]  # [B, 1]
    if config.space == 'w':
      w01 = tf.cast(generator.mapping(z01, truncation_psi=truncation_psi), tf.float32)
      w0, w1 = w01[0::2], w01[1::2]  # [B, num_ws, w_dim]
      e0 = lerp(w0, w1, t[:, :, tf.newaxis])
      e1 = lerp(w0, w1, t[:, :, tf.newaxis] + eps)
      ws = tf.reshape(tf.stack([e0, e1], axis=1), tf.shape(w01))
    else:
      z0, z1 = z01[0::2], z01[1::2]
      e0 = slerp(z0, z1, t)
      e1 = slerp(z0, z1, t + eps)
      z_e01 = tf.reshape(tf.stack([e0, e1], axis=1), tf.shape(z01))
      ws = generator.mapping(z_e01, truncation_psi=truncation_psi)
    images = tf.cast(generator.synthesis(ws, noise_mode='const'), tf.float32)  # [2B, H, W, C]
    if config.crop:
      images = crop_face(images)
    images = downsample_to_256(images)
    if images.shape[-1] == 1:
      images = tf.tile(images, [1, 1, 1, 3])
    images = (images + 1.0) * (255.0 / 2.0)
    return distance_net(images[0::2], images[1::2]) * (1.0 / eps ** 2)

  return fn
