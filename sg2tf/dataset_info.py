"""What a multi-resolution TFRecord dataset directory holds, and whether it is intact.

The layout is NVIDIA's (StyleGAN/StyleGAN2 `dataset_tool.py`): one file per log2 resolution,
`<name>-rNN.tfrecords` (02 = 4x4 ... 10 = 1024x1024), each record a `tf.train.Example` with
`shape` (int64 [C, H, W]) and `data` (raw uint8 bytes, CHW), the same images in the same order
in every file, lower resolutions being 2x2 box-filtered copies of the level above. Optional
labels: `<name>-rxx.labels`, a .npy float32 array [N, label_dim] in record order. Datasets made
by `data/dataset_tool.py` add `manifest.json` (count, resolution, channels, label_dim, source,
sha256 of every file); NVIDIA's datasets have none and are read the same way.

`DatasetInfo.from_dir(path)` inspects a directory without reading image data: it opens the
first record of every file (for its shape) and walks the record headers of the smallest file
(for the count), so it is cheap even for FFHQ. Problems raise `DatasetError` with the path and
what to do. TensorFlow is imported only by `verify(full=True)`, so inspecting a dataset is
quick (no seconds-long TensorFlow import for `dataset_tool.py info`).
"""

import dataclasses
import json
import os
import re
import struct
from typing import Dict, Mapping, Optional

import numpy as np

from sg2tf.utils.files import sha256_file
from sg2tf.utils import files as fs

MANIFEST_NAME = 'manifest.json'
_TFRECORD_RE = re.compile(r'^(?P<name>.*)-r(?P<log2>\d\d)\.tfrecords$')
# A record is [uint64 length][uint32 masked crc32c(length)][data][uint32 masked crc32c(data)].
_HEADER = struct.Struct('<QI')
_FOOTER_BYTES = 4
_READ_WHOLE_BYTES = 64 << 20


class DatasetError(ValueError):
  """A dataset (or its source) is missing, malformed or inconsistent; the text says what to do."""


def _crc32c_table():
  table = []
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
  return table


_CRC_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked CRC-32C; pure Python, meant for the 8-byte length headers only."""
  crc = 0xFFFFFFFF
  for b in data:
    crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _corrupt(path, what):
  return DatasetError(
      f'{path}: {what}; the file is truncated or corrupt (an interrupted copy or download?). '
      f'Copy it again or re-create the dataset with data/dataset_tool.py.')


def scan_records(path: str) -> int:
  """Counts the records of a TFRecord file by walking its headers (data is not read).

  Checks that every length header carries a valid CRC and that the last record ends exactly at
  the end of the file, which catches truncation and most corruption in O(records) small reads.
  Data CRCs are checked by TensorFlow when the records are read.
  """
  size = fs.getsize(path)
  count, offset = 0, 0
  with fs.open_file(path, 'rb') as f:
    whole = f.read() if size <= _READ_WHOLE_BYTES else None
    while offset < size:
      if size - offset < _HEADER.size:
        raise _corrupt(path, f'{size - offset} stray bytes after record {count} at byte {offset}')
      if whole is not None:
        header = whole[offset:offset + _HEADER.size]
      else:
        f.seek(offset)
        header = f.read(_HEADER.size)
      length, length_crc = _HEADER.unpack(header)
      if masked_crc32c(header[:8]) != length_crc:
        raise _corrupt(path, f'bad header checksum of record {count} at byte {offset}')
      end = offset + _HEADER.size + length + _FOOTER_BYTES
      if end > size:
        raise _corrupt(path, f'record {count} at byte {offset} needs {end} bytes but the file '
                       f'has {size}')
      offset = end
      count += 1
  return count


def read_first_record(path: str) -> bytes:
  with fs.open_file(path, 'rb') as f:
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
      raise _corrupt(path, 'no complete record (empty or cut short)')
    length, length_crc = _HEADER.unpack(header)
    if masked_crc32c(header[:8]) != length_crc:
      raise _corrupt(path, 'bad header checksum of record 0')
    data = f.read(length)
    if len(data) < length:
      raise _corrupt(path, 'record 0 is cut short')
  return data


def _varint(buf, pos):
  result = shift = 0
  while True:
    b = buf[pos]
    pos += 1
    result |= (b & 0x7F) << shift
    if not b & 0x80:
      return result, pos
    shift += 7


def _fields(buf, start, end):
  """Protobuf wire format: yields (field number, wire type, int or (start, end) of bytes)."""
  pos = start
  while pos < end:
    key, pos = _varint(buf, pos)
    field, wire = key >> 3, key & 7
    if wire == 0:
      value, pos = _varint(buf, pos)
    elif wire == 2:
      n, pos = _varint(buf, pos)
      value = (pos, pos + n)
      pos += n
    elif wire in (1, 5):
      value = None
      pos += 8 if wire == 1 else 4
    else:
      raise ValueError(f'unsupported wire type {wire}')
    if pos > end:
      raise ValueError('message cut short')
    yield field, wire, value


def _example_features(buf):
  """A serialized tf.train.Example -> {name: (kind, (start, end))}, kind 1 bytes, 3 int64."""
  out = {}
  for f, w, features in _fields(buf, 0, len(buf)):
    if f != 1 or w != 2:
      continue
    for f2, w2, entry in _fields(buf, *features):
      if f2 != 1 or w2 != 2:
        continue
      key, feature = None, None
      for f3, w3, v in _fields(buf, *entry):
        if f3 == 1 and w3 == 2:
          key = bytes(buf[v[0]:v[1]]).decode('utf-8')
        elif f3 == 2 and w3 == 2:
          feature = v
      if key is None or feature is None:
        continue
      for kind, w4, lst in _fields(buf, *feature):
        if w4 == 2:
          out[key] = (kind, lst)
  return out


def parse_record(record: bytes, path: str = '<record>'):
  """Parses one official-layout Example into a uint8 array [C, H, W].

  A small protobuf reader rather than tf.train.Example, so that inspecting a dataset does not
  need TensorFlow (its import costs seconds).
  """
  buf = memoryview(record)
  try:
    feats = _example_features(buf)
    kind, (s, e) = feats['shape']
    shape = []
    for f, w, v in _fields(buf, s, e):  # Int64List.value: packed or not.
      if kind != 3 or f != 1:
        raise ValueError('`shape` is not an int64 list')
      if w == 0:
        shape.append(v)
      else:
        pos = v[0]
        while pos < v[1]:
          x, pos = _varint(buf, pos)
          shape.append(x)
    kind, (s, e) = feats['data']
    values = [v for f, w, v in _fields(buf, s, e) if f == 1 and w == 2]
    if kind != 1 or len(values) != 1:
      raise ValueError('`data` is not a single bytes value')
    data = buf[values[0][0]:values[0][1]]
  except (ValueError, KeyError, IndexError) as e:
    raise DatasetError(f'{path}: a record is not an official-layout tf.train.Example with '
                       f'`shape` and `data` features ({type(e).__name__}: {e})') from None
  if len(shape) != 3 or len(data) != int(np.prod(shape)):
    raise DatasetError(f'{path}: record shape {shape} does not match its {len(data)} data bytes')
  return np.frombuffer(data, np.uint8).reshape(shape)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """A dataset directory: files per resolution, image count and format, labels.

  Attributes:
    tfrecord_dir: the directory.
    name: the file prefix (`<name>-rNN.tfrecords`).
    files: resolution in pixels -> path of its TFRecord file.
    count: number of images (records per file).
    channels: 1 (grayscale) or 3 (RGB).
    label_dim: width of the label vectors; 0 without a labels file.
    labels_path: the `.labels` file, or None.
    manifest: the parsed manifest.json, or None (e.g. NVIDIA's datasets).
  """
  tfrecord_dir: str
  name: str
  files: Mapping[int, str]
  count: int
  channels: int
  label_dim: int
  labels_path: Optional[str]
  manifest: Optional[dict]

  @property
  def resolutions(self):
    return sorted(self.files)

  @property
  def resolution(self):
    """The highest resolution."""
    return max(self.files)

  def file(self, resolution: Optional[int] = None) -> str:
    """The TFRecord file of `resolution` (pixels; None = the highest)."""
    if resolution is None:
      resolution = self.resolution
    if resolution not in self.files:
      raise DatasetError(
          f'{self.tfrecord_dir}: no {resolution}x{resolution} images; this dataset has '
          f'resolutions {", ".join(map(str, self.resolutions))}. Pick one of those, or re-create '
          f'the dataset at a higher resolution.')
    return self.files[resolution]

  def record_bytes(self, resolution: Optional[int] = None) -> int:
    res = self.resolution if resolution is None else resolution
    return self.channels * res * res

  def load_labels(self) -> np.ndarray:
    """Labels [count, label_dim] float32 in record order ([count, 0] without a labels file)."""
    if self.labels_path is None:
      return np.zeros([self.count, 0], np.float32)
    return _load_labels(self.labels_path, self.count)

  @classmethod
  def from_dir(cls, tfrecord_dir: str) -> 'DatasetInfo':
    """Inspects a dataset directory; raises DatasetError when it is not a usable dataset."""
    tfrecord_dir = os.fspath(tfrecord_dir)
    if not fs.isdir(tfrecord_dir):
      what = 'is not a directory' if fs.exists(tfrecord_dir) else 'does not exist'
      raise DatasetError(f'dataset directory {tfrecord_dir} {what}; create one with '
                         f'`python data/dataset_tool.py create_from_images {tfrecord_dir} '
                         f'<image_dir>`.')
    names = sorted(n for n in fs.listdir(tfrecord_dir) if n.endswith('.tfrecords'))
    if not names:
      raise DatasetError(f'{tfrecord_dir}: no *.tfrecords files (expected <name>-rNN.tfrecords '
                         f'as written by data/dataset_tool.py or NVIDIA\'s dataset_tool.py).')
    files: Dict[int, str] = {}
    shapes = {}
    for n in names:
      path = os.path.join(tfrecord_dir, n)
      shape = parse_record(read_first_record(path), path).shape
      c, h, w = shape
      if h != w or h < 4 or h & (h - 1) or c not in (1, 3):
        raise DatasetError(f'{path}: images are {c}x{h}x{w} (CHW); expected 1 or 3 channels and '
                           f'a square power-of-two size.')
      m = _TFRECORD_RE.match(n)
      if m and 2 ** int(m.group('log2')) != h:
        raise DatasetError(f'{path}: the name says {2 ** int(m.group("log2"))}x'
                           f'{2 ** int(m.group("log2"))} but the records are {h}x{w}.')
      if h in files:
        raise DatasetError(f'{tfrecord_dir}: two files hold {h}x{h} images ({files[h]} and '
                           f'{path}); keep one dataset per directory.')
      files[h] = path
      shapes[h] = shape
    channels = {s[0] for s in shapes.values()}
    if len(channels) > 1:
      raise DatasetError(f'{tfrecord_dir}: files disagree on the channel count ({shapes}).')
    top = max(files)
    m = _TFRECORD_RE.match(os.path.basename(files[top]))
    name = m.group('name') if m else os.path.splitext(os.path.basename(files[top]))[0]

    manifest = None
    manifest_path = os.path.join(tfrecord_dir, MANIFEST_NAME)
    if fs.isfile(manifest_path):
      try:
        manifest = fs.read_json(manifest_path)
      except (OSError, ValueError) as e:
        raise DatasetError(f'{manifest_path}: unreadable manifest ({e}); delete it or re-create '
                           f'the dataset.') from None
    smallest = files[min(files)]
    count = scan_records(smallest)
    if count == 0:
      raise DatasetError(f'{smallest}: holds no records.')
    if manifest is not None and isinstance(manifest.get('count'), int) and (
        manifest['count'] != count):
      _manifest_mismatch(tfrecord_dir, manifest['count'], files, count)

    labels_path = os.path.join(tfrecord_dir, f'{name}-rxx.labels')
    if not fs.isfile(labels_path):
      # NVIDIA's reader takes any *.labels file in the directory.
      others = sorted(n for n in fs.listdir(tfrecord_dir) if n.endswith('.labels'))
      labels_path = os.path.join(tfrecord_dir, others[0]) if others else None
    label_dim = 0
    if labels_path is not None:
      label_dim = _load_labels(labels_path, count).shape[1]
    return cls(tfrecord_dir=tfrecord_dir, name=name, files=dict(sorted(files.items())),
               count=count, channels=channels.pop(), label_dim=label_dim,
               labels_path=labels_path, manifest=manifest)

  def verify(self, full: bool = False) -> None:
    """Checks every file: record count and structure, and (`full`) checksums and content.

    The quick check walks the record headers of every file. The full one also compares sha256
    sums with the manifest (when there is one) and parses every record through TensorFlow,
    which checks the data CRCs and each record's shape.
    """
    counts = {path: scan_records(path) for path in self.files.values()}
    most = max(counts.values())
    for path, n in counts.items():
      if n != most:
        other = next(p for p, k in counts.items() if k == most)
        raise DatasetError(f'{path}: {n} records but {other} has {most}; this file is '
                           f'truncated (cut at a record boundary). Copy it again or re-create '
                           f'the dataset.')
    if self.manifest is not None:
      m = self.manifest
      if m.get('count') != self.count or m.get('channels') != self.channels or (
          m.get('resolution') != self.resolution) or m.get('label_dim', 0) != self.label_dim:
        raise DatasetError(f'{self.tfrecord_dir}: {MANIFEST_NAME} says count={m.get("count")}, '
                           f'resolution={m.get("resolution")}, channels={m.get("channels")}, '
                           f'label_dim={m.get("label_dim")} but the files hold count='
                           f'{self.count}, resolution={self.resolution}, channels='
                           f'{self.channels}, label_dim={self.label_dim}.')
    if not full:
      return
    if self.manifest is not None:
      for fname, entry in self.manifest.get('files', {}).items():
        path = os.path.join(self.tfrecord_dir, fname)
        if not fs.isfile(path):
          raise DatasetError(f'{path}: listed in {MANIFEST_NAME} but missing.')
        if sha256_file(path) != entry.get('sha256'):
          raise DatasetError(f'{path}: sha256 differs from {MANIFEST_NAME}; the file was '
                             f'modified or damaged. Re-create the dataset.')
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    for res, path in self.files.items():
      expected = (self.channels, res, res)
      try:
        for i, rec in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
          shape = parse_record(rec, path).shape
          if shape != expected:
            raise DatasetError(f'{path}: record {i} has shape {list(shape)}, expected '
                               f'{list(expected)}.')
      except tf.errors.OpError as e:
        raise _corrupt(path, e.message.split('[Op:')[0].split('}}')[-1].strip()) from None


def _manifest_mismatch(tfrecord_dir, expected, files, count):
  """Raises the DatasetError for a manifest count that the records disagree with, naming
  the file that is short (a truncated copy) or saying that the manifest is stale."""
  top = files[max(files)]
  top_count = scan_records(top) if top != files[min(files)] else count
  manifest = os.path.join(tfrecord_dir, MANIFEST_NAME)
  if top_count == expected:
    raise DatasetError(f'{files[min(files)]}: {count} records but {manifest} and {top} say '
                       f'{expected}; this file is truncated (cut at a record boundary). Copy it '
                       f'again or re-create the dataset.')
  raise DatasetError(f'{manifest} says {expected} images but the files hold {top_count}; the '
                     f'dataset was modified after it was made (training would not use the '
                     f'manifest\'s count). Re-create the dataset, or delete {MANIFEST_NAME} to use '
                     f'the files as they are.')


def _load_labels(path, count):
  from sg2tf.utils import safe_pickle  # pylint: disable=g-import-not-at-top
  try:
    labels = safe_pickle.load_npy(path, 'label array (.npy)')
  except (OSError, ValueError) as e:
    raise DatasetError(f'{e} Re-create the dataset\'s labels with data/dataset_tool.py.') from None
  if labels.ndim == 1:
    labels = labels[:, np.newaxis]
  if labels.ndim != 2 or labels.shape[0] < count:
    raise DatasetError(f'{path}: labels have shape {list(labels.shape)}, expected [{count}, '
                       f'label_dim] (one row per image).')
  # NVIDIA's reader also accepts more label rows than images and uses the first ones.
  labels = labels[:count].astype(np.float32)
  bad = np.flatnonzero(~np.all(np.isfinite(labels), axis=1))
  if bad.size:
    raise DatasetError(f'{path}: {bad.size} label rows hold NaN or Inf (the first is row '
                       f'{bad[0]}); training on them would produce garbage. Re-create the '
                       f'dataset with valid labels.')
  return labels
