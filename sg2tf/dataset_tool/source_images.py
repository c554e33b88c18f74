"""Finding, decoding and normalising source images (numpy + Pillow only, no TensorFlow).

The functions at the bottom (`probe_item`, `load_item`, `load_array_item`) run in the dataset
tool's worker threads: each takes one task and returns a result or an error string, never
raises for a bad image, so one corrupt file cannot stop the others.

Conversions, in this order:
  1. Decode. 16-bit images are scaled to 8 bits (v / 257, rounded). EXIF orientation is
     ignored (as NVIDIA's tool does).
  2. Alpha (RGBA, LA, palette or RGB/L with a transparent colour) is composited on the
     background colour: out = rgb * a + background * (1 - a), a = alpha / 255 (straight,
     i.e. non-premultiplied alpha, as PNG and WebP store it), rounded half to even.
  3. Channels: RGB -> 1 channel uses Pillow's ITU-R 601-2 luma (L = 0.299 R + 0.587 G +
     0.114 B); grayscale -> 3 channels repeats the plane.
  4. Geometry: `center_crop` cuts the central min(w, h) square (top-left corner at
     ((w - s) // 2, (h - s) // 2)); then, if the size is not the target, `resize` (or
     center_crop) resamples to resolution x resolution with Lanczos (Pillow's LANCZOS, what
     the official tool's ANTIALIAS is). `resize` alone stretches non-square images.
"""

import dataclasses
import io
import os
import threading
import zipfile
from typing import Optional, Tuple

import numpy as np
import PIL.Image

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.pgm', '.ppm', '.pbm', '.pnm',
                    '.tif', '.tiff')
_GRAY_MODES = ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16L', 'I;16B', 'I;16N', 'F')
_NAMED_COLORS = {'white': (255, 255, 255), 'black': (0, 0, 0), 'gray': (128, 128, 128),
                 'grey': (128, 128, 128)}


@dataclasses.dataclass(frozen=True)
class Convert:
  """How every image is brought to the dataset's format."""
  resolution: int
  channels: int
  center_crop: bool = False
  resize: bool = False
  background: Tuple[int, int, int] = (255, 255, 255)


def parse_background(text: str) -> Tuple[int, int, int]:
  """'white', 'black', 'gray', '#rrggbb' or 'R,G,B' (0-255) -> an RGB tuple."""
  t = text.strip().lower()
  if t in _NAMED_COLORS:
    return _NAMED_COLORS[t]
  try:
    if t.startswith('#') and len(t) == 7:
      return tuple(int(t[i:i + 2], 16) for i in (1, 3, 5))
    parts = [int(p) for p in t.split(',')]
    if len(parts) == 3 and all(0 <= p <= 255 for p in parts):
      return tuple(parts)
  except ValueError:
    pass
  raise ValueError(f'--background={text!r}: use white, black, gray, #rrggbb or R,G,B (0-255).')


def is_image_name(name: str) -> bool:
  base = os.path.basename(name)
  # Hidden files include macOS "._x.png" resource forks, which are not images.
  return not base.startswith('.') and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def list_images(source: str):
  """Image paths under a folder (recursive) or in a .zip, sorted, relative, '/'-separated.

  Returns:
    (is_zip, image paths, number of other files that were ignored).
  """
  names = []
  if os.path.isdir(source):
    for root, dirs, files in os.walk(source):
      dirs[:] = sorted(d for d in dirs if not d.startswith('.') and d != '__MACOSX')
      rel = os.path.relpath(root, source)
      for f in files:
        names.append(f if rel == '.' else os.path.join(rel, f).replace(os.sep, '/'))
    is_zip = False
  elif zipfile.is_zipfile(source):
    with zipfile.ZipFile(source) as z:
      names = [n for n in z.namelist() if not n.endswith('/') and not n.startswith('__MACOSX/')]
    is_zip = True
  else:
    raise FileNotFoundError(source)
  images = sorted(n for n in names if is_image_name(n))
  return is_zip, images, len(names) - len(images)


_zips = threading.local()  # One open ZipFile per worker thread and archive.


def _open(source: str, is_zip: bool, name: str) -> PIL.Image.Image:
  if not is_zip:
    return PIL.Image.open(os.path.join(source, name))
  cache = _zips.__dict__.setdefault('files', {})
  z = cache.get(source)
  if z is None:
    z = cache[source] = zipfile.ZipFile(source)
  return PIL.Image.open(io.BytesIO(z.read(name)))


def _mode(img: PIL.Image.Image) -> str:
  """The image mode, with palette images of a grayscale palette reported as 'P;L'."""
  if img.mode == 'P' and img.palette is not None and img.palette.mode == 'L':
    return 'P;L'
  return img.mode


def native_channels(mode: str) -> int:
  """1 for grayscale modes (alpha or not), 3 for colour ones."""
  return 1 if mode in _GRAY_MODES or mode == 'P;L' else 3


def _has_alpha(img: PIL.Image.Image) -> bool:
  return img.mode in ('RGBA', 'RGBa', 'LA', 'La', 'PA') or 'transparency' in img.info


def _to_array(img: PIL.Image.Image) -> np.ndarray:
  """Decoded image -> uint8 [H, W, C]: C = 1, 2 (gray + alpha), 3 or 4 (RGB + alpha)."""
  if img.mode.startswith('I') or img.mode == 'F':
    x = np.asarray(img, dtype=np.float64)
    # 'I;16*' is 16-bit by definition; Pillow also opens some 16-bit files as 'I'.
    if img.mode.startswith('I;16') or x.max(initial=0) > 255:
      x = x / 257.0
    return np.rint(x).clip(0, 255).astype(np.uint8)[..., np.newaxis]
  alpha = _has_alpha(img)
  if native_channels(_mode(img)) == 1:
    img = img.convert('LA' if alpha else 'L')
  else:
    img = img.convert('RGBA' if alpha else 'RGB')
  x = np.asarray(img, dtype=np.uint8)
  return x[..., np.newaxis] if x.ndim == 2 else x


def _luma(rgb):
  """Pillow's 'L' conversion (ITU-R 601-2) of [..., 3] uint8 values."""
  img = PIL.Image.fromarray(np.ascontiguousarray(rgb.reshape(-1, 1, 3)), 'RGB').convert('L')
  return np.asarray(img).reshape(rgb.shape[:-1] + (1,))


def convert_array(x: np.ndarray, cv: Convert) -> np.ndarray:
  """uint8 [H, W, C] (C = 1, 2, 3 or 4) -> uint8 [C', R, R] in the dataset's format."""
  if x.ndim == 2:
    x = x[..., np.newaxis]
  c = x.shape[-1]
  if c in (2, 4):  # Straight alpha, composited on the background.
    bg = np.asarray(cv.background, np.float32)
    if c == 2:
      bg = _luma(bg.astype(np.uint8)).astype(np.float32)
    a = x[..., -1:].astype(np.float32) * np.float32(1 / 255)
    x = np.rint(x[..., :-1].astype(np.float32) * a + bg * (1 - a)).clip(0, 255).astype(np.uint8)
    c -= 1
  if c != cv.channels:
    x = _luma(x) if cv.channels == 1 else np.repeat(x, 3, axis=-1)
  h, w = x.shape[:2]
  r = cv.resolution
  if cv.center_crop and h != w:
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[top:top + s, left:left + s]
    h = w = s
  if (h, w) != (r, r):
    if not (cv.resize or cv.center_crop):
      raise ValueError(f'is {w}x{h}, not {r}x{r}; pass --resize or --center-crop')
    mode = 'L' if cv.channels == 1 else 'RGB'
    img = PIL.Image.fromarray(np.ascontiguousarray(x[..., 0] if cv.channels == 1 else x), mode)
    x = np.asarray(img.resize((r, r), PIL.Image.Resampling.LANCZOS))
    if x.ndim == 2:
      x = x[..., np.newaxis]
  return np.ascontiguousarray(x.transpose(2, 0, 1))  # [C, R, R]


def probe_item(task) -> Tuple[str, Optional[Tuple[int, int]], Optional[str], Optional[str]]:
  """(name, (width, height), mode, error) from the image header, without decoding pixels."""
  source, is_zip, name = task
  try:
    with _open(source, is_zip, name) as img:
      return name, img.size, _mode(img), None
  except Exception as e:  # pylint: disable=broad-except
    return name, None, None, f'{type(e).__name__}: {e}'


def load_item(task):
  """(index, levels or None, error): decodes, converts and builds the resolution pyramid."""
  from sg2tf.dataset_tool.levels import build_levels  # pylint: disable=g-import-not-at-top
  index, source, is_zip, name, cv = task
  try:
    with _open(source, is_zip, name) as img:
      img.load()
      x = _to_array(img)
    return index, build_levels(convert_array(x, cv)), None
  except Exception as e:  # pylint: disable=broad-except
    return index, None, f'{type(e).__name__}: {e}'


def load_array_item(task):
  """Like load_item for one image of an array (in memory or a memory-mapped .npy)."""
  from sg2tf.dataset_tool.levels import build_levels  # pylint: disable=g-import-not-at-top
  index, x, cv = task
  try:
    return index, build_levels(convert_array(np.asarray(x), cv)), None
  except Exception as e:  # pylint: disable=broad-except
    return index, None, f'{type(e).__name__}: {e}'
