"""Shared pieces of the command-line tools (export, generate, project): seeds, latents,
labels, reading images, one-line errors.

Images (the float -> uint8 rule, grids, PNG/GIF files) live in sg2tf.utils.images, progress
and time formatting in sg2tf.utils.progress, file writing in sg2tf.utils.files; the tools
reach them through the names re-exported here.
"""

import os
import re
import sys
from typing import List, Optional, Sequence

from absl import logging
import numpy as np

from sg2tf.utils import files
from sg2tf.utils import images
from sg2tf.utils import progress


class ToolError(ValueError):
  """Bad input to a tool (flag, file, size); the message names it and says what to do."""


# ------------------------------------------------------------------ flags and latents

def parse_int_list(text: str, flag: str) -> List[int]:
  """'0-3,7' -> [0, 1, 2, 3, 7] (non-negative; ranges inclusive). ToolError names the flag."""
  out = []
  for part in str(text).replace(' ', '').split(','):
    if not part:
      continue
    m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
    if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
      raise ToolError(f'--{flag}={text}: {part!r} is not a non-negative integer or a range '
                      f'like 0-7.')
    lo = int(m.group(1))
    out.extend(range(lo, int(m.group(2) or lo) + 1))
  if not out:
    raise ToolError(f'--{flag} is empty; give integers and ranges, e.g. --{flag}=0-3,7.')
  return out


def parse_float_list(text: str, flag: str) -> List[float]:
  out = []
  for part in str(text).replace(' ', '').split(','):
    if part:
      try:
        out.append(float(part))
      except ValueError:
        raise ToolError(f'--{flag}={text}: {part!r} is not a number.') from None
  if not out:
    raise ToolError(f'--{flag} is empty; give comma-separated numbers, e.g. 0.5,0.7,1.')
  return out


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
  """The official latent of a seed: np.random.RandomState(seed).randn(z_dim), float32."""
  return np.random.RandomState(int(seed)).randn(int(z_dim)).astype(np.float32)


def noise_from_seed(seed: int, z_dim: int, noise_shapes: Sequence[Sequence[int]]):
  """Per-layer noise maps the way the official run_generator.py draws them: from the same
  RandomState as the latent, after it. noise_shapes: NHWC [1, R, R, 1] per conv layer."""
  rnd = np.random.RandomState(int(seed))
  rnd.randn(1, int(z_dim))
  return [rnd.randn(*shape).astype(np.float32) for shape in noise_shapes]


def labels_for(c_dim: int, class_idx: Optional[int], n: int) -> Optional[np.ndarray]:
  """One-hot labels [n, c_dim] for conditional networks; None for unconditional ones."""
  if not c_dim:
    if class_idx is not None:
      logging.warning('--class_idx=%d ignored: the network is unconditional.', class_idx)
    return None
  if class_idx is None:
    raise ToolError(f'the network is conditional (c_dim={c_dim}); pass --class_idx=<0..'
                    f'{c_dim - 1}>.')
  if not 0 <= class_idx < c_dim:
    raise ToolError(f'--class_idx={class_idx} is out of range; the network has {c_dim} classes '
                    f'(0..{c_dim - 1}).')
  c = np.zeros([n, c_dim], np.float32)
  c[:, class_idx] = 1
  return c


# ------------------------------------------------------------------ images

# Re-exported from their one home each (not copies).
atomic_write = files.atomic_write
sha256_file = files.sha256_file
to_uint8 = images.to_uint8
grid = images.grid
save_png = images.save_png
save_gif = images.save_gif
Progress = progress.Progress
format_time = progress.format_time


def save_npy(path: str, array: np.ndarray) -> str:
  return files.write_npy(path, array)


def save_npz(path: str, **arrays) -> str:
  return files.write_npz(path, arrays)


def save_text(path: str, text: str) -> str:
  return files.write_text(path, text)


def read_image(path: str):
  """The decoded PIL image of a file; ToolError if missing or unreadable."""
  import io  # pylint: disable=g-import-not-at-top
  import PIL.Image  # pylint: disable=g-import-not-at-top
  if not files.isfile(path):
    raise ToolError(f'{path}: no such image file.')
  try:
    with PIL.Image.open(io.BytesIO(files.read_bytes(path)) if files.is_remote(path) else
                        path) as img:
      img.load()
      return img.copy()
  except (OSError, ValueError, SyntaxError) as e:
    raise ToolError(f'{path}: not a readable image ({type(e).__name__}: {e}).') from None


def image_array(img, path: str, resolution: int, channels: int) -> np.ndarray:
  """uint8 [R, R, channels] of a PIL image; ToolError if it is not resolution^2."""
  if img.size != (resolution, resolution):
    raise ToolError(f'{path}: the image is {img.size[0]}x{img.size[1]} but the network makes '
                    f'{resolution}x{resolution} images; crop/resize it to {resolution}x'
                    f'{resolution} first.')
  x = np.asarray(img.convert('L' if channels == 1 else 'RGB'), np.uint8)
  return x.reshape(resolution, resolution, channels)


def load_image(path: str, resolution: int, channels: int) -> np.ndarray:
  """uint8 [R, R, channels] from an image file; ToolError if unreadable or the wrong size."""
  return image_array(read_image(path), path, resolution, channels)


# ------------------------------------------------------------------ errors

def check_network_path(path: str) -> None:
  """Fails fast (before TensorFlow is imported for local paths) on a --network that does not
  exist. http(s) URLs are checked when they are fetched; a malformed #sha256= fails here."""
  if not path:
    raise ToolError('--network is required.')
  if files.is_url(path):
    try:
      files.split_url(path)
    except ValueError as e:
      raise ToolError(f'--network={path}: {e}') from None
    return
  if not files.exists(path) and not files.isfile(str(path) + '.index'):
    raise ToolError(f'--network={path}: no such file or directory.')


def expected_errors():
  """The exception types that mean bad input (not a bug) for the tools. NetworkLoadError is a
  ValueError and FeatureFileMissingError a FileNotFoundError, so nothing heavy is imported;
  DiskWriteError is a disk that refused an output (full, read-only)."""
  return (ToolError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
          files.DiskWriteError, files.DownloadError)
