"""The resolution pyramid of one image, exactly as NVIDIA's dataset tool computes it.

Each level is the 2x2 mean of the level above, carried in float32 without intermediate
rounding (so level k is the mean of a 2^k x 2^k block), and every level is stored rounded
half-to-even (np.rint), clipped to [0, 255] and cast to uint8. Only numpy (it runs in the
dataset tool's worker threads).
"""

import numpy as np


def num_levels(resolution: int) -> int:
  """Levels from resolution x resolution down to 4x4."""
  return int(np.log2(resolution)) - 1


def build_levels(img: np.ndarray):
  """uint8 [C, R, R] -> list of uint8 [C, R/2^k, R/2^k], k = 0 .. log2(R) - 2 (down to 4x4)."""
  c, h, w = img.shape
  if h != w or h < 4 or h & (h - 1):
    raise ValueError(f'build_levels needs a square power-of-two image >= 4, got {img.shape}')
  levels = [np.ascontiguousarray(img, dtype=np.uint8)]
  x = img.astype(np.float32)
  while x.shape[1] > 4:
    r = x.shape[1] // 2
    q = x.reshape(c, r, 2, r, 2)  # [C, y, dy, x, dx]
    # Same float32 additions in the same order as the official tool, hence the same rounding.
    x = (q[:, :, 0, :, 0] + q[:, :, 0, :, 1] + q[:, :, 1, :, 0] + q[:, :, 1, :, 1]) * 0.25
    levels.append(np.rint(x).clip(0, 255).astype(np.uint8))
  return levels
