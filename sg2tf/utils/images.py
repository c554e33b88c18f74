"""Images: the one float -> uint8 rule, image grids, PNG and GIF files (written atomically).

Generator output is float NHWC, nominally in [-1, 1]. Every uint8 image sg2tf makes (files
of generate and project, the exported `images_uint8`, the metrics' inputs, training's
snapshot grids, dataset round trips) uses ONE rule:

    uint8 = clip(floor(x * 127.5 + 128), 0, 255)     computed in float32

which is NVIDIA's `dnnlib.tflib.convert_images_to_uint8` (StyleGAN/StyleGAN2 TF code:
`x * scale + (0.5 - drange[0] * scale)` then `tf.saturate_cast` to uint8, scale = 127.5):
the value the official metrics (FID, IS, PR, PPL) feed the feature networks and
run_generator.py writes. A level boundary rounds UP: x = float32(-1 + 1/255) gives exactly
1.0 here, so 1. The official snapshot grids (`training/misc.py` convert_to_pil_image:
`np.rint` of (x + 1) * 127.5) differ from this only there, by one level (0 for that x).
uint8 -> float is `u * (2 / 255) - 1` (sg2tf.dataset.to_float), and this rule maps it
back to u exactly.

No TensorFlow at import: `to_uint8_tf` imports it when called.
"""

from typing import Optional, Sequence

import numpy as np

from sg2tf.utils import files

_SCALE = 127.5
_OFFSET = 128.0  # 0.5 (rounding) + 127.5 (the -1 end of the range)


def to_uint8(images) -> np.ndarray:
  """Float [-1, 1] (any shape) -> uint8 [0, 255] by the rule above (NumPy)."""
  x = np.asarray(images, np.float32) * np.float32(_SCALE) + np.float32(_OFFSET)
  return np.clip(np.floor(x), 0, 255).astype(np.uint8)


def to_uint8_tf(images):
  """The same rule on a tensor (inside tf.function and SavedModel signatures)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = tf.cast(images, tf.float32) * _SCALE + _OFFSET
  return tf.cast(tf.clip_by_value(tf.floor(x), 0.0, 255.0), tf.uint8)


def grid(images: np.ndarray, cols: int, rows: Optional[int] = None) -> np.ndarray:
  """uint8 [N, H, W, C] -> one [rows * H, cols * W, C] image, row-major, missing cells black.

  rows: default as many as the N images need; with fewer, the images beyond rows * cols are
  left out (as the official snapshot grid of a fixed size)."""
  images = np.asarray(images)
  n, h, w, c = images.shape
  cols = int(cols)
  rows = -(-n // cols) if rows is None else int(rows)
  canvas = np.zeros([rows * h, cols * w, c], images.dtype)
  for i in range(min(n, rows * cols)):
    y, x = divmod(i, cols)
    canvas[y * h:(y + 1) * h, x * w:(x + 1) * w] = images[i]
  return canvas


def _pil(image: np.ndarray):
  import PIL.Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(image, np.uint8)
  return PIL.Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)


def save_png(path: str, image: np.ndarray) -> str:
  """Writes uint8 [H, W, C] (C = 1 or 3) atomically; returns path."""
  return files.atomic_write(path, lambda tmp: _pil(image).save(tmp, format='PNG'), what='image')


def save_gif(path: str, frames: Sequence[np.ndarray], duration_ms: int = 80,
             loop: bool = True) -> str:
  """Animated GIF of uint8 [H, W, C] frames (Pillow; 256 colours per frame)."""
  pil = [_pil(f) for f in frames]
  kwargs = dict(format='GIF', save_all=True, append_images=pil[1:], duration=int(duration_ms))
  if loop:
    kwargs['loop'] = 0
  return files.atomic_write(path, lambda tmp: pil[0].save(tmp, **kwargs), what='animation')
