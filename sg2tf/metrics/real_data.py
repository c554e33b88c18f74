"""Real images for the metrics: uint8 batches from an official-layout TFRecord dataset.

A small reader of its own, so the metrics depend only on the file format
(`<name>-rNN.tfrecords`, tf.train.Example with `shape` [C, H, W] int64 and `data` raw
uint8 CHW): `real_image_batches` is the one function to swap for `sg2tf.dataset`.

Protocol: images in record order at the highest resolution, no mirroring (the TF1 code
mirrored a random half when the training run used mirror_augment; that is random, so it is
left out); when the dataset has fewer images than requested it is cycled, as the official
`repeat=True` reader does, with a warning.
"""

import hashlib
import os
from typing import Iterator, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from sg2tf.utils import files as fs

_HASH_BYTES = 4 << 20


class RealDataError(ValueError):
  """The dataset path is unusable; the message names it and says what to do."""


def _first_shape(path: str) -> Tuple[int, int, int]:
  try:
    for rec in tf.data.TFRecordDataset(path).take(1).as_numpy_iterator():
      ex = tf.train.Example.FromString(rec)
      shape = tuple(ex.features.feature['shape'].int64_list.value)
      if len(shape) != 3:
        raise RealDataError(f'{path}: records have no [C, H, W] `shape` feature; not an '
                            f'official-layout dataset.')
      return shape
  except tf.errors.OpError as e:
    raise RealDataError(f'{path}: unreadable TFRecord file ({e.message.splitlines()[0]})') from None
  raise RealDataError(f'{path}: holds no records.')


def find_tfrecord(data: str) -> Tuple[str, Tuple[int, int, int]]:
  """(path of the highest-resolution .tfrecords file, its [C, H, W]) for a dir or a file."""
  data = os.fspath(data)
  if fs.isfile(data):
    files = [data]
  elif fs.isdir(data):
    files = fs.glob(os.path.join(data, '*.tfrecords'))
    if not files:
      raise RealDataError(f'--data={data}: no *.tfrecords files in this directory; expected a '
                          f'dataset made by data/dataset_tool.py (<name>-rNN.tfrecords).')
  else:
    raise RealDataError(f'--data={data}: no such file or directory.')
  shapes = {f: _first_shape(f) for f in files}
  best = max(files, key=lambda f: np.prod(shapes[f]))
  return best, shapes[best]


def dataset_hash(path: str) -> str:
  """A cheap identity of a TFRecord file: name, size and sha256 of its first and last 4 MiB.

  Hashing whole 100 GB files would take longer than the evaluation it saves.
  """
  h = hashlib.sha256()
  size = fs.getsize(path)
  h.update(f'{os.path.basename(path)}:{size}'.encode())
  with fs.open_file(path, 'rb') as f:
    h.update(f.read(_HASH_BYTES))
    if size > _HASH_BYTES:
      f.seek(max(_HASH_BYTES, size - _HASH_BYTES))
      h.update(f.read(_HASH_BYTES))
  return h.hexdigest()[:16]


def _parse(serialized, shape):
  feats = tf.io.parse_example(serialized, {'data': tf.io.FixedLenFeature([], tf.string)})
  x = tf.io.decode_raw(feats['data'], tf.uint8)  # [B, C*H*W]
  x = tf.reshape(x, [-1] + list(shape))  # [B, C, H, W]
  return tf.transpose(x, [0, 2, 3, 1])  # [B, H, W, C]


def real_image_batches(data: str, batch_size: int, max_images: Optional[int]
                       ) -> Iterator[np.ndarray]:
  """uint8 [B, H, W, C] batches of real images in record order.

  Args:
    data: dataset directory (highest resolution used) or one .tfrecords file.
    batch_size: images per batch (the last batch may be smaller).
    max_images: stop after this many (cycling a smaller dataset); None = one full pass.
  """
  path, shape = find_tfrecord(data)
  emitted, passes = 0, 0
  while max_images is None or emitted < max_images:
    got_any = False
    ds = tf.data.TFRecordDataset(path, buffer_size=16 << 20).batch(batch_size)
    ds = ds.map(lambda s: _parse(s, shape)).prefetch(2)
    try:
      for images in ds.as_numpy_iterator():
        got_any = True
        if max_images is not None:
          images = images[:max_images - emitted]
        emitted += images.shape[0]
        yield images
        if max_images is not None and emitted >= max_images:
          return
    except tf.errors.OpError as e:
      raise RealDataError(f'{path}: damaged record ({e.message.splitlines()[0]}); re-create the '
                          f'dataset.') from None
    passes += 1
    if max_images is None or not got_any:
      return
    if passes == 1:
      logging.warning('%s holds only %d images but %d were requested; cycling through it '
                      'again (as the official reader does).', path, emitted, max_images)
