"""Labels for the dataset tool: from a JSON/CSV/.npy file, from subfolder names, from IDX.

Whatever the source, labels end up as NVIDIA's `<name>-rxx.labels`: float32 [N, label_dim]
in record order. Class labels (integers or class-name strings) become one-hot vectors, as
NVIDIA's tool writes them; label_dim is the number of classes (max class index + 1, or the
number of distinct names, counted over the whole label source, not just the images kept).
Vector labels (lists of numbers) are stored as they are.

Label files:
  JSON: {"a/img1.png": 3, ...}, or StyleGAN2-ADA's {"labels": [["a/img1.png", 3], ...]}, or
        a list of [path, label] pairs; a label is an int, a class name or a list of numbers.
  CSV:  `path,label` or `path,v1,v2,...` per row; a first row whose path is not an image
        name (e.g. `filename,label`) is a header.
  .npy: (create_from_npy only) [N] class indices or [N, D] vectors in array order.
Paths are relative to the image folder (or zip), with '/' separators; shorter paths (e.g. base
names) match when they are unambiguous.
"""

import collections
import csv
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sg2tf.dataset_tool.source_images import is_image_name
from sg2tf.dataset_info import DatasetError
from sg2tf.utils import safe_pickle


def _norm(path: str) -> str:
  p = path.replace('\\', '/')
  while p.startswith('./'):
    p = p[2:]
  return p


def _number(text: str):
  try:
    v = float(text)
  except ValueError:
    return None
  return int(v) if v.is_integer() and '.' not in text and 'e' not in text.lower() else v


def read_label_file(path: str) -> Dict[str, object]:
  """A JSON or CSV label file -> {relative image path: label}."""
  if not os.path.isfile(path):
    raise DatasetError(f'--labels={path}: no such file.')
  ext = os.path.splitext(path)[1].lower()
  try:
    if ext == '.json':
      with open(path, encoding='utf-8') as f:
        data = json.load(f)
      if isinstance(data, dict) and 'labels' in data and not isinstance(data['labels'], (int, str)):
        data = data['labels']
      if data is None:
        raise DatasetError(f'--labels={path}: "labels" is null (the dataset has no labels).')
      pairs = data.items() if isinstance(data, dict) else [tuple(p) for p in data]
    elif ext in ('.csv', '.txt'):
      with open(path, newline='', encoding='utf-8') as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
      if rows and not is_image_name(rows[0][0].strip()):
        rows = rows[1:]  # Header.
      pairs = []
      for r in rows:
        vals = [_number(c.strip()) if _number(c.strip()) is not None else c.strip()
                for c in r[1:]]
        pairs.append((r[0].strip(), vals[0] if len(vals) == 1 else vals))
    else:
      raise DatasetError(f'--labels={path}: use a .json or .csv file.')
  except (ValueError, TypeError) as e:
    raise DatasetError(f'--labels={path}: cannot read it ({e}).') from None
  out = {}
  for p in pairs:
    if len(p) != 2:
      raise DatasetError(f'--labels={path}: expected [path, label] pairs, got {p!r}.')
    out[_norm(str(p[0]))] = p[1]
  if not out:
    raise DatasetError(f'--labels={path}: holds no labels.')
  return out


def match_labels(mapping: Dict[str, object], names: Sequence[str], source: str) -> List[object]:
  """The label of every image name, in order; every image must have one.

  A label path matches an image whose path is that path or ends with it after a '/' (so
  'cat/1.png' matches 'animals/cat/1.png' in a zip with a top folder, '1.png' matches
  'cat/1.png'), as long as no two images match the same shortened path.
  """
  out, missing, users = [], [], collections.defaultdict(list)
  for n in names:
    parts = n.split('/')
    for k in range(len(parts)):
      key = '/'.join(parts[k:])
      if key in mapping:
        out.append(mapping[key])
        if k:
          users[key].append(n)
        break
    else:
      missing.append(n)
  if missing:
    raise DatasetError(f'{source}: no label for {len(missing)} of {len(names)} images (e.g. '
                       f'{", ".join(missing[:3])}). Add them, or remove those images.')
  clash = next(((k, v) for k, v in users.items() if len(v) > 1), None)
  if clash:
    raise DatasetError(f'{source}: label path {clash[0]!r} matches several images '
                       f'({", ".join(clash[1][:3])}); use paths relative to the image folder.')
  return out


def from_subdirs(names: Sequence[str]) -> Tuple[List[int], List[str]]:
  """Class index of every image from its first folder level, classes sorted by name."""
  # A single folder around everything (a zip of 'animals/cat/...') is not a class.
  while names and all(n.count('/') >= 2 for n in names) and len(
      {n.split('/', 1)[0] for n in names}) == 1:
    names = [n.split('/', 1)[1] for n in names]
  top = [n.split('/', 1)[0] if '/' in n else None for n in names]
  loose = [n for n, t in zip(names, top) if t is None]
  if loose:
    raise DatasetError(f'--labels_from_subdirs: {len(loose)} images are not in a class '
                       f'subfolder (e.g. {loose[0]}); put every image in <class>/ folders.')
  classes = sorted(set(top))
  index = {c: i for i, c in enumerate(classes)}
  return [index[t] for t in top], classes


def to_matrix(values: Sequence[object], source: str) -> Tuple[np.ndarray, Optional[List[str]]]:
  """Labels -> (float32 [N, D], class names or None); classes become one-hot rows."""
  if all(isinstance(v, (list, tuple)) for v in values):
    dims = {len(v) for v in values}
    if len(dims) != 1:
      raise DatasetError(f'{source}: label vectors of different lengths {sorted(dims)}.')
    try:
      matrix = np.asarray(values, np.float32).reshape(len(values), dims.pop())
    except (ValueError, TypeError):
      raise DatasetError(f'{source}: label vectors must hold numbers only.') from None
    return check_finite(matrix, source), None
  if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
    idx = np.asarray(values, np.int64)
    if idx.min(initial=0) < 0:
      raise DatasetError(f'{source}: class indices must be >= 0, got {idx.min()}.')
    return one_hot(idx, int(idx.max(initial=0)) + 1), None
  if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
    # Scalar (non-class) values.
    return check_finite(np.asarray(values, np.float32)[:, np.newaxis], source), None
  if all(isinstance(v, str) for v in values):
    names = sorted(set(values))
    index = {c: i for i, c in enumerate(names)}
    return one_hot(np.asarray([index[v] for v in values]), len(names)), names
  raise DatasetError(f'{source}: labels must be all class indices, all class names or all '
                     f'lists of numbers.')


def one_hot(idx: np.ndarray, num_classes: int) -> np.ndarray:
  out = np.zeros([len(idx), num_classes], np.float32)
  out[np.arange(len(idx)), idx] = 1.0
  return out


def from_npy(path: str, count: int) -> np.ndarray:
  """A .npy label array for create_from_npy -> float32 [count, D]."""
  try:
    arr = safe_pickle.load_npy(path, 'label array')
  except safe_pickle.NumpyFileError as e:
    raise DatasetError(f'--labels={e}') from None
  except OSError as e:
    raise DatasetError(f'--labels={path}: cannot read it ({e.strerror or e}).') from None
  if arr.shape[:1] != (count,) or arr.ndim > 2:
    raise DatasetError(f'--labels={path}: shape {list(arr.shape)}, expected [{count}] class '
                       f'indices or [{count}, label_dim] vectors (one row per image).')
  if arr.ndim == 1:
    if not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0:
      raise DatasetError(f'--labels={path}: a 1-D label array must hold class indices >= 0.')
    return one_hot(arr.astype(np.int64), int(arr.max(initial=0)) + 1)
  return check_finite(arr.astype(np.float32), f'--labels={path}')


def check_finite(labels: np.ndarray, source: str) -> np.ndarray:
  """labels, or a DatasetError naming the first row with a NaN or Inf (which would train a
  network on garbage: conditional D and G multiply by the labels)."""
  bad = np.flatnonzero(~np.all(np.isfinite(labels), axis=tuple(range(1, labels.ndim))))
  if bad.size:
    raise DatasetError(f'{source}: {bad.size} label rows hold NaN or Inf (the first is row '
                       f'{bad[0]}: {labels[bad[0]].tolist()}); fix or remove them.')
  return labels
