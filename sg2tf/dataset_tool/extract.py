"""The dataset tool's `info` and `extract` commands."""

import json
import os
import shutil
from typing import Optional

from absl import logging
import numpy as np
import PIL.Image

from sg2tf.utils.progress import Progress
from sg2tf.dataset_tool.staging import check_target
from sg2tf.dataset_tool.staging import make_partial_dir
from sg2tf.dataset_tool.staging import move_into_place
from sg2tf.dataset_info import DatasetInfo


def _size(n):
  for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
    if n < 1024 or unit == 'TiB':
      return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
    n /= 1024


def describe(info: DatasetInfo) -> str:
  """A human-readable summary of a dataset."""
  lines = [
      f'dataset     {info.tfrecord_dir}',
      f'name        {info.name}',
      f'images      {info.count}',
      f'resolution  {info.resolution}x{info.resolution} (also '
      f'{", ".join(str(r) for r in info.resolutions[:-1][::-1])})',
      f'channels    {info.channels} ({"grayscale" if info.channels == 1 else "RGB"})',
      f'labels      {f"{info.label_dim}-d, {info.labels_path}" if info.label_dim else "none"}',
  ]
  m = info.manifest
  if m is None:
    lines.append('manifest    none (e.g. made by NVIDIA\'s dataset_tool.py)')
  else:
    src = m.get('source', {})
    lines.append(f'source      {src.get("kind", "?")} {src.get("path", "?")}')
    lines.append(f'created     {m.get("created", "?")}  hash {m.get("hash", "?")[:16]}...')
    if m.get('label_names'):
      names = m['label_names']
      lines.append(f'classes     {", ".join(names[:10])}{" ..." if len(names) > 10 else ""}')
    if m.get('skipped_count'):
      lines.append(f'skipped     {m["skipped_count"]} unreadable source images')
  lines.append('files')
  for res in info.resolutions[::-1]:
    path = info.files[res]
    lines.append(f'  {os.path.basename(path):32s} {res:5d}x{res:<5d} '
                 f'{_size(os.path.getsize(path)):>10s}')
  return '\n'.join(lines)


def info_command(tfrecord_dir: str, verify: str = 'quick', emit=print) -> None:
  """Prints what a dataset holds, then verifies it (DatasetError if it is broken)."""
  info = DatasetInfo.from_dir(tfrecord_dir)
  emit(describe(info))
  if verify != 'none':
    info.verify(full=verify == 'full')
    emit(f'verified    {verify}: ' + ('record counts and headers of every file' if verify ==
                                     'quick' else 'checksums, every record parsed'))


def _label_entry(row):
  """A label row as written into dataset.json: the class index for one-hot rows."""
  if row.size and np.count_nonzero(row) == 1 and row.max() == 1.0:
    return int(np.argmax(row))
  return [float(v) for v in row]


def extract(tfrecord_dir: str, out_dir: str, resolution: Optional[int] = None,
            max_images: Optional[int] = None, overwrite: bool = False) -> int:
  """Writes the images as out_dir/img00000000.png ... in record order; returns the count.

  With labels, also writes out_dir/dataset.json ({"labels": [[file, label], ...]}: class
  index for one-hot labels, else the vector), which `create_from_images --labels` reads back.
  The folder appears only when complete.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from sg2tf import dataset  # pylint: disable=g-import-not-at-top
  info = DatasetInfo.from_dir(tfrecord_dir)
  path = info.file(resolution)
  res = resolution or info.resolution
  out_dir = os.path.normpath(out_dir)
  check_target(out_dir, overwrite)
  total = info.count if max_images is None else min(max_images, info.count)
  tmp = make_partial_dir(out_dir)
  try:
    ds = tf.data.TFRecordDataset(path).take(total).batch(64)
    shape = [-1, info.channels, res, res]
    ds = ds.map(lambda s: tf.reshape(dataset.decode_records(s), shape))  # [B, C, H, W]
    progress = Progress(total, f'Extracting {path}', unit='img', every_s=5.0)
    idx = 0
    with dataset.translate_errors(info, res):
      for batch in ds.as_numpy_iterator():
        for img in batch:
          img = img[0] if info.channels == 1 else img.transpose(1, 2, 0)
          PIL.Image.fromarray(img, 'L' if info.channels == 1 else 'RGB').save(
              os.path.join(tmp, f'img{idx:08d}.png'), compress_level=1)
          idx += 1
        progress.update(idx)
    if info.label_dim:
      labels = info.load_labels()[:idx]
      with open(os.path.join(tmp, 'dataset.json'), 'w', encoding='utf-8') as f:
        json.dump({'labels': [[f'img{i:08d}.png', _label_entry(r)] for i, r in
                              enumerate(labels)]}, f)
    move_into_place(tmp, out_dir, overwrite)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  logging.info('Extracted %d images (%dx%d) to %s.', idx, res, res, out_dir)
  return idx
