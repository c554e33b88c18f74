"""Writes a multi-resolution TFRecord dataset (NVIDIA's layout) all at once or not at all.

Everything goes into a hidden sibling folder `.<name>.partial-<pid>-<random>`; `commit()`
writes the labels and `manifest.json` there and only then renames the folder to its final
name. An exception (or Ctrl-C) inside `with DatasetWriter(...)` deletes the partial folder;
a killed process leaves only that hidden `.partial` folder, which no reader mistakes for a
dataset (safe to delete).
"""

import datetime
import hashlib
import json
import os
from typing import List, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from sg2tf.dataset_tool.staging import check_target
from sg2tf.dataset_tool.staging import make_partial_dir
from sg2tf.dataset_tool.staging import move_into_place
from sg2tf.dataset_tool.levels import build_levels
from sg2tf.dataset_tool.levels import num_levels
from sg2tf.dataset_info import DatasetError
from sg2tf.dataset_info import MANIFEST_NAME
from sg2tf.utils import files
from sg2tf.utils import files as fs  # `files` is a local name in _commit
from sg2tf.utils.files import sha256_file

TOOL_VERSION = 1


def serialize(level: np.ndarray) -> bytes:
  """uint8 [C, H, W] -> a serialized official-layout tf.train.Example."""
  return tf.train.Example(features=tf.train.Features(feature={
      'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=level.shape)),
      'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[level.tobytes()])),
  })).SerializeToString()


class DatasetWriter:
  """Collects images (highest resolution first in each pyramid) and commits a dataset.

  Usage:
    with DatasetWriter('datasets/faces', resolution=64, channels=3) as w:
      for img in images:            # uint8 [C, 64, 64]
        w.add_image(img)
      w.commit(labels=None, manifest={'source': ...})
  """

  def __init__(self, tfrecord_dir: str, resolution: int, channels: int,
               overwrite: bool = False):
    if resolution < 4 or resolution & (resolution - 1):
      raise DatasetError(f'resolution {resolution} is not a power of two >= 4.')
    if channels not in (1, 3):
      raise DatasetError(f'channels must be 1 or 3, got {channels}.')
    self.tfrecord_dir = os.fspath(tfrecord_dir).rstrip('/')
    if not files.is_remote(self.tfrecord_dir):
      self.tfrecord_dir = os.path.normpath(self.tfrecord_dir)
    check_target(self.tfrecord_dir, overwrite)
    self.overwrite = overwrite
    self.name = os.path.basename(self.tfrecord_dir)
    self.resolution = resolution
    self.channels = channels
    self.count = 0
    with files.writing('dataset', self.tfrecord_dir):
      self.tmp_dir = make_partial_dir(self.tfrecord_dir)
    log2 = int(np.log2(resolution))
    self.file_names = [f'{self.name}-r{log2 - k:02d}.tfrecords' for k in range(num_levels(
        resolution))]
    self._writers = []
    self._done = False
    try:
      with files.writing('dataset', self.tfrecord_dir):
        self._writers = [tf.io.TFRecordWriter(os.path.join(self.tmp_dir, n))
                         for n in self.file_names]
    except BaseException:
      self.abort()
      raise

  def add_image(self, img: np.ndarray) -> None:
    """uint8 [C, R, R]."""
    self.add_levels(build_levels(img))

  def add_levels(self, levels: List[np.ndarray]) -> None:
    """The output of build_levels for one image."""
    top = levels[0].shape
    if top != (self.channels, self.resolution, self.resolution) or len(levels) != len(
        self._writers):
      raise ValueError(f'image {self.count}: got levels from {top}, expected '
                       f'{(self.channels, self.resolution, self.resolution)}')
    with files.writing('dataset', self.tfrecord_dir):
      for writer, level in zip(self._writers, levels):
        writer.write(serialize(level))
    self.count += 1

  def _close_writers(self):
    writers, self._writers, first = self._writers, [], None
    for w in writers:  # close every one, even after a failure (disk full)
      try:
        w.close()
      except Exception as e:  # pylint: disable=broad-except
        first = first or e
    if first is not None:
      raise first

  def commit(self, labels: Optional[np.ndarray] = None, manifest: Optional[dict] = None):
    """Writes labels and manifest.json, then moves the dataset into place. Returns its path."""
    if self.count == 0:
      raise DatasetError(f'{self.tfrecord_dir}: no images were written.')
    with files.writing('dataset', self.tfrecord_dir):
      return self._commit(labels, manifest)

  def _commit(self, labels, manifest):
    self._close_writers()
    label_dim = 0
    files = list(self.file_names)
    if labels is not None:
      labels = np.asarray(labels, np.float32)
      if labels.ndim != 2 or labels.shape[0] != self.count:
        raise ValueError(f'labels {labels.shape} for {self.count} images')
      label_dim = labels.shape[1]
      fname = f'{self.name}-rxx.labels'
      with fs.open_file(os.path.join(self.tmp_dir, fname), 'wb') as f:
        np.save(f, labels)
      files.append(fname)
    entries = {}
    for fname in files:
      path = os.path.join(self.tmp_dir, fname)
      entries[fname] = {'bytes': fs.getsize(path), 'sha256': sha256_file(path)}
    digest = hashlib.sha256(''.join(f'{n}:{e["sha256"]}\n' for n, e in sorted(
        entries.items())).encode()).hexdigest()
    info = {
        'format': 'stylegan2-tfrecords',
        'tool': 'sg2tf data/dataset_tool.py',
        'tool_version': TOOL_VERSION,
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'name': self.name,
        'count': self.count,
        'resolution': self.resolution,
        'resolutions': [self.resolution >> k for k in range(len(self.file_names))],
        'channels': self.channels,
        'label_dim': label_dim,
        **(manifest or {}),
        'hash': digest,
        'files': entries,
    }
    with fs.open_file(os.path.join(self.tmp_dir, MANIFEST_NAME), 'w') as f:
      json.dump(info, f, indent=1)
    move_into_place(self.tmp_dir, self.tfrecord_dir, self.overwrite)
    self._done = True
    logging.info('Wrote %d images (%dx%d, %d channel(s), label_dim %d) to %s.', self.count,
                 self.resolution, self.resolution, self.channels, label_dim, self.tfrecord_dir)
    return self.tfrecord_dir

  def abort(self):
    """Drops everything written so far."""
    try:
      self._close_writers()
    except Exception:  # pylint: disable=broad-except
      pass  # The partial folder goes anyway; the caller reports the original error.
    finally:
      fs.rmtree(self.tmp_dir)
    self._done = True

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if not self._done:
      self.abort()
      if exc_type is None:
        raise RuntimeError('DatasetWriter closed without commit(); nothing was written.')
    return False
