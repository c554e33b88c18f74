"""Argument checks shared by the network classes (synthesis, discriminator, growing,
StyleGAN): each returns the normalised value or raises ValueError naming the class (`who`)."""

import numpy as np
import tensorflow as tf

from sg2tf.conventions import ARCHITECTURES

FP16_DTYPES = ('float16', 'bfloat16')


def check_resolution(resolution, who):
  r = int(resolution)
  if r < 4 or r & (r - 1):
    raise ValueError(f'{who}: resolution must be a power of two >= 4, got {resolution}')
  return r


def check_architecture(architecture, who):
  if architecture not in ARCHITECTURES:
    raise ValueError(f'{who}: architecture must be one of {ARCHITECTURES}, got {architecture!r}')
  return architecture


def check_mixed_precision(num_fp16_res, conv_clamp, who):
  """(num_fp16_res as an int >= 0, conv_clamp as a float or None)."""
  if int(num_fp16_res) < 0:
    raise ValueError(f'{who}: num_fp16_res must be >= 0, got {num_fp16_res}')
  return int(num_fp16_res), None if conv_clamp is None else float(conv_clamp)


def check_fp16_dtype(fp16_dtype, who):
  """The low-precision dtype name of the num_fp16_res blocks: float16 or bfloat16."""
  name = tf.as_dtype(fp16_dtype).name
  if name not in FP16_DTYPES:
    raise ValueError(f'{who}: fp16_dtype must be one of {FP16_DTYPES}, got {fp16_dtype!r}')
  return name


def fp16_resolution(img_resolution, num_fp16_res):
  """Lowest resolution computed in float16: the num_fp16_res highest ones, never below 8x8
  (StyleGAN2-ADA's rule); above img_resolution when num_fp16_res is 0."""
  log2 = int(np.log2(img_resolution))
  return max(2 ** (log2 + 1 - int(num_fp16_res)), 8)


def check_ws_and_noise(ws, noise, num_ws, w_dim, num_noise, who):
  """ws as a tensor, checked to be [N, num_ws, w_dim]; noise None or a list of num_noise
  entries (one per synthesis layer)."""
  ws = tf.convert_to_tensor(ws)
  if ws.shape.rank != 3 or ws.shape[1] != num_ws or (
      ws.shape[2] is not None and ws.shape[2] != w_dim):
    raise ValueError(f'{who}: ws must be [N, {num_ws}, {w_dim}], got shape {ws.shape}')
  if noise is not None and len(noise) != num_noise:
    raise ValueError(f'{who}: noise must list {num_noise} tensors (one per synthesis layer, '
                     f'None for the unused ones), got {len(noise)}')
  return ws
