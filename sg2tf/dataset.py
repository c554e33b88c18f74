"""tf.data input pipeline for multi-resolution TFRecord datasets (NVIDIA's layout).

Reads datasets made by `data/dataset_tool.py` and by NVIDIA's StyleGAN/StyleGAN2 dataset tool
(see `sg2tf.dataset_info` for the layout) at any resolution they hold.

    info = DatasetInfo.from_dir('datasets/ffhq')     # resolutions, count, channels, label_dim
    ds = make_dataset(info, batch_size=32, resolution=256, mirror_augment=True, seed=0)
    for images in ds: ...                             # float32 [32, 256, 256, 3] in [-1, 1]

    ds = make_dataset(info, 32, with_labels=True)     # (images, labels [32, label_dim])

    strategy = tf.distribute.MirroredStrategy()
    dist = distribute(strategy, info, global_batch_size=32, mirror_augment=True)
    with translate_errors(info):                      # DataLossError -> DatasetError(file)
      for images in dist: strategy.run(step, (images,))

Per element: shard (one slice of the records per input pipeline, `input_context`), shuffle
(`shuffle_buffer` records, seeded), repeat, batch, then the whole batch is parsed at once:
raw uint8 CHW -> optional x-flip of a random half of the images (the official
`mirror_augment`: each image flipped with probability 1/2) -> NHWC float32 scaled like the
official `adjust_dynamic_range([0, 255] -> [-1, 1])`, i.e. x * (2/255) - 1. Batches are
`batch_size` images (drop_remainder by default, so shapes are static). Labels are zipped with
the records before sharding/shuffling, so they stay paired with their images.

Determinism: the same seed gives the same batches, flips included (flips use stateless
random numbers keyed by seed, input pipeline and batch index; the shuffle uses TF's op seed,
so a different `tf.random.set_seed` also changes the order).

Speed (bench/data.py): about 0.25-0.3 ms of CPU per 256x256 RGB image, i.e. several thousand
images/s on 2 cores, with one replica or with several replicas on CPU devices (there each
replica gets its own host pipeline and shard; see `distribute`).

Errors: a missing directory or resolution raises `DatasetError` at once (listing the
resolutions there are); `verify=True` walks the record headers first, so a truncated file is
reported by name before training starts. Corruption found while reading (bad data CRC) comes
out of TensorFlow as a DataLossError without the file name: iterate under
`translate_errors(info)` to get a `DatasetError` that names it.
"""

import contextlib
import os
from typing import Optional, Union

from absl import logging
import tensorflow as tf

from sg2tf.dataset_info import DatasetError
from sg2tf.dataset_info import DatasetInfo
from sg2tf.dataset_info import scan_records
from sg2tf.utils import images as image_lib

__all__ = ['DatasetError', 'DatasetInfo', 'make_dataset', 'distribute', 'translate_errors',
           'decode_records', 'to_float', 'to_uint8']

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_MB = 512
_READ_BUFFER_BYTES = 16 << 20

InfoLike = Union[str, os.PathLike, DatasetInfo]


def _as_info(info: InfoLike) -> DatasetInfo:
  return info if isinstance(info, DatasetInfo) else DatasetInfo.from_dir(info)


def default_shuffle_buffer(info: DatasetInfo, resolution: int, shuffle_mb=DEFAULT_SHUFFLE_MB):
  """Records that fit in `shuffle_mb` MiB (at least 1, at most the whole dataset)."""
  per = info.record_bytes(resolution) + 64
  return int(max(1, min(info.count, (shuffle_mb << 20) // per)))


def decode_records(serialized):
  """Serialized Examples [B] -> their raw uint8 data [B, C*H*W]."""
  feats = tf.io.parse_example(serialized, {'data': tf.io.FixedLenFeature([], tf.string)})
  return tf.io.decode_raw(feats['data'], tf.uint8)


def _flips(key, batch):
  """Which images of a batch to flip: each with probability 1/2 (the official mirror_augment).

  Drawn outside XLA on purpose: XLA's stateless RNG gives other numbers than TF's kernels.
  """
  return tf.random.stateless_uniform([batch], seed=key) < 0.5  # [B]


def _to_images(x, flip, shape):
  """Raw uint8 [B, C*H*W] -> float32 [B, H, W, C] in [-1, 1]; images with flip[i] mirrored."""
  c, h, w = shape
  x = tf.reshape(x, [-1, c, h, w])  # [B, C, H, W]
  if flip is not None:
    x = tf.where(flip[:, tf.newaxis, tf.newaxis, tf.newaxis], tf.reverse(x, axis=[3]), x)
  x = tf.transpose(x, [0, 2, 3, 1])  # [B, H, W, C]
  return to_float(x)


# TF's own transpose of a uint8 [B, 3, H, W] batch into NHWC runs at ~1.5k img/s at 256^2
# on one core; XLA fuses flip, transpose and scaling into one loop that is ~10x faster.
_to_images_xla = tf.function(_to_images, jit_compile=True, reduce_retracing=True)
_xla_ok = None


def _xla_works():
  global _xla_ok
  if _xla_ok is None:
    try:
      _to_images_xla(tf.zeros([1, 48], tf.uint8), tf.constant([True]), (3, 4, 4))
      _xla_ok = True
    except (tf.errors.OpError, NotImplementedError, ValueError) as e:
      logging.warning('XLA is not usable here (%s); the input pipeline uses plain TF ops, '
                      'which are several times slower at high resolutions.', e)
      _xla_ok = False
  return _xla_ok


def to_float(x):
  """uint8 [0, 255] -> float32 [-1, 1], like the official adjust_dynamic_range."""
  return tf.cast(x, tf.float32) * (2.0 / 255.0) - 1.0


# float [-1, 1] -> uint8: sg2tf's one rule (sg2tf.utils.images), the inverse of to_float.
to_uint8 = image_lib.to_uint8_tf


def make_dataset(info: InfoLike,
                 batch_size: int,
                 resolution: Optional[int] = None,
                 *,
                 shuffle_buffer: Optional[int] = None,
                 repeat: bool = True,
                 mirror_augment: bool = False,
                 seed: int = 0,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 with_labels: bool = False,
                 drop_remainder: bool = True,
                 cache: bool = False,
                 verify: bool = True,
                 jit_compile: bool = True,
                 prefetch: Optional[int] = AUTOTUNE) -> tf.data.Dataset:
  """Batches of float32 NHWC images in [-1, 1] from a dataset directory.

  Args:
    info: a dataset directory or its DatasetInfo.
    batch_size: images per batch (per replica when used through `distribute`).
    resolution: pixels (e.g. 256); None = the highest the dataset holds.
    shuffle_buffer: records in the shuffle buffer; None = as many as fit in 512 MiB, 0 = no
      shuffling (record order).
    repeat: loop forever (one continuous shuffle across epochs) instead of one pass.
    mirror_augment: flip a random half of the images left-right.
    seed: seeds the shuffle and the flips.
    input_context: from `distribute_datasets_from_function`; each input pipeline reads every
      `num_input_pipelines`-th record starting at `input_pipeline_id`.
    with_labels: yield (images, labels [B, label_dim] float32); label_dim may be 0.
    drop_remainder: drop a last partial batch (keeps shapes static).
    cache: keep the serialized records in memory after the first pass.
    verify: walk the record headers first, so a truncated file fails here with its name.
    jit_compile: convert the batches with an XLA-compiled function (same values, far faster;
      falls back to plain TF ops, with a warning, where XLA is unavailable).
    prefetch: batches to prefetch (None = none).
  Returns:
    A tf.data.Dataset of images [B, H, W, C] or of (images, labels).
  """
  info = _as_info(info)
  path = info.file(resolution)
  res = resolution or info.resolution
  if batch_size < 1:
    raise DatasetError(f'batch_size must be >= 1, got {batch_size}.')
  if verify:
    n = scan_records(path)
    if n != info.count:
      raise DatasetError(f'{path}: {n} records, but the dataset has {info.count} images; the '
                         f'file is incomplete. Re-create the dataset.')
  num_pipes, pipe_id = 1, 0
  if input_context is not None:
    num_pipes, pipe_id = input_context.num_input_pipelines, input_context.input_pipeline_id
  if info.count // num_pipes < (batch_size if drop_remainder else 1):
    raise DatasetError(f'{path}: {info.count} images are too few for {num_pipes} input '
                       f'pipeline(s) with batch size {batch_size}.')
  if shuffle_buffer is None:
    shuffle_buffer = default_shuffle_buffer(info, res)

  ds = tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER_BYTES)
  if with_labels:
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(info.load_labels())))
  if num_pipes > 1:
    ds = ds.shard(num_pipes, pipe_id)
  if cache:
    ds = ds.cache()
  # Shuffling after repeat keeps the buffer full across epochs: shuffling each epoch on its own
  # stalls the stream while the buffer refills (the official order) -- epoch boundaries blur
  # by one buffer, which an endless GAN stream does not mind.
  if repeat:
    ds = ds.repeat()
  if shuffle_buffer > 1:
    ds = ds.shuffle(shuffle_buffer, seed=seed)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.enumerate()

  shape = (info.channels, res, res)
  label_dim = info.label_dim

  to_images = _to_images_xla if jit_compile and _xla_works() else _to_images

  def parse(step, batch):
    records, labels = batch if with_labels else (batch, None)
    x = decode_records(records)  # [B, C*H*W]
    flip = None
    if mirror_augment:
      key = tf.stack([tf.constant(seed, tf.int64), step * num_pipes + pipe_id])
      flip = _flips(key, tf.shape(x)[0])
    x = to_images(x, flip, shape)
    if not with_labels:
      return x
    return x, tf.reshape(labels, [-1, label_dim])

  ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
  if prefetch is not None:
    ds = ds.prefetch(prefetch)
  logging.info('Dataset %s: %d images at %dx%d, %d channel(s), label_dim %d, batch %d, '
               'shuffle buffer %d, mirror %s, pipeline %d/%d.', info.tfrecord_dir, info.count,
               res, res, info.channels, label_dim, batch_size, shuffle_buffer, mirror_augment,
               pipe_id, num_pipes)
  return ds


def distribute(strategy: tf.distribute.Strategy,
               info: InfoLike,
               global_batch_size: int,
               resolution: Optional[int] = None,
               **kwargs):
  """A distributed dataset: global_batch_size // num_replicas images per replica per step.

  Uses `strategy.distribute_datasets_from_function`, so every input pipeline reads its own
  shard of the records: one pipeline per worker, whose batches tf.distribute copies to the
  worker's GPUs; on CPU-only machines one host pipeline per replica (MirroredStrategy), which
  is several times faster than splitting one stream. `kwargs` go to `make_dataset`.
  """
  info = _as_info(info)
  info.file(resolution)  # Fails now, not inside a tf.function, on a missing resolution.
  replicas = strategy.num_replicas_in_sync
  if global_batch_size % replicas:
    raise DatasetError(f'global batch size {global_batch_size} is not divisible by the '
                       f'{replicas} replicas; use a multiple of {replicas}.')

  def dataset_fn(input_context):
    per_replica = input_context.get_per_replica_batch_size(global_batch_size)
    return make_dataset(info, per_replica, resolution, input_context=input_context, **kwargs)

  if tf.config.list_logical_devices('GPU'):
    return strategy.distribute_datasets_from_function(dataset_fn)
  if replicas == 1 or not isinstance(strategy, tf.distribute.MirroredStrategy):
    # Replicas on CPU devices share host memory: a copy "to the device" only adds allocations.
    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(dataset_fn, options=options)
  # Several replicas on CPU devices (a CPU-only stand-in for several GPUs): the default
  # MultiDeviceIterator hands every batch to the replica through per-device buffers that
  # page-fault fresh memory each time (~145 faults and ~0.5 ms of CPU per 256x256 image, 1.6-1.9k
  # img/s on 2 cores). One host pipeline per replica, each reading its own shard, skips that
  # (~6k img/s). TF 2.21's MirroredStrategy records the per-replica input workers on itself
  # while building such a dataset, which would turn every later distributed dataset of this
  # strategy into one pipeline per replica too; put its own set back. (A private attribute:
  # tests/test_dataset.py fails if TF renames it.)
  options = tf.distribute.InputOptions(
      experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
      experimental_fetch_to_device=False)
  extended = strategy.extended
  saved = getattr(extended, '_input_workers_devices', None)
  try:
    return strategy.distribute_datasets_from_function(dataset_fn, options=options)
  finally:
    if saved is not None:
      extended._input_workers_devices = saved  # pylint: disable=protected-access


@contextlib.contextmanager
def translate_errors(info: InfoLike, resolution: Optional[int] = None):
  """Turns TensorFlow's data errors raised inside into a DatasetError naming the file.

  TFRecord corruption found while reading surfaces as tf.errors.DataLossError ("corrupted
  record at 1234") without a file name; a record with a different shape surfaces as an
  InvalidArgumentError from the parser. Both are recognised by TF's message text, which
  tests/test_dataset.py checks against the real errors.
  """
  where = _as_info(info).file(resolution)
  try:
    yield
  except tf.errors.DataLossError as e:
    detail = e.message.split('[Op:')[0].split('}}')[-1].strip()
    raise DatasetError(f'{where}: {detail}; the file is truncated or corrupt. Copy it again or '
                       f're-create the dataset with data/dataset_tool.py.') from None
  except tf.errors.InvalidArgumentError as e:
    if 'DecodeRaw' not in e.message and 'Reshape' not in e.message and (
        'reshape' not in e.message):
      raise
    raise DatasetError(f'{where}: a record does not hold the image shape the dataset declares '
                       f'({e.message.splitlines()[0][:200]}). Re-create the dataset.') from None
