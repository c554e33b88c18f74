"""The dataset tool's create_* commands: sources -> checked, converted images -> DatasetWriter.

Every command runs in three steps so that bad input fails before the long part:
  1. list and inspect the source (image headers only; in parallel for folders and zips),
  2. decide resolution and channels and check every image against them, and the labels,
  3. decode/convert/box-filter in worker threads, in record order, into a DatasetWriter
     (temporary folder, renamed when complete).
Record order: sorted paths (or array order), permuted with np.random.RandomState(seed) when
`shuffle` is on -- with the default seed 123 this is the order NVIDIA's tool writes.
"""

import collections
import dataclasses
import gzip
import itertools
import os
import struct
from concurrent import futures
from typing import Optional

from absl import logging
import numpy as np

from sg2tf.dataset_tool import source_images as images_lib
from sg2tf.dataset_tool.staging import check_target
from sg2tf.dataset_tool import labels as labels_lib
from sg2tf.dataset_info import DatasetError
from sg2tf.utils import safe_pickle
from sg2tf.utils.progress import Progress

_MIN_POOL_TASKS = 16  # Below this, a thread pool costs more than it saves.
_MAX_LISTED = 100  # Skipped files listed in the manifest.


@dataclasses.dataclass
class Options:
  """What the command-line flags say (see data/dataset_tool.py for their help)."""
  resolution: Optional[int] = None
  resize: bool = False
  center_crop: bool = False
  channels: Optional[int] = None
  shuffle: bool = True
  seed: int = 123
  max_images: Optional[int] = None
  labels: Optional[str] = None
  labels_from_subdirs: bool = False
  strict: bool = False
  background: str = 'white'
  workers: int = 0  # 0 = one per CPU core.
  overwrite: bool = False


def cpu_count():
  """CPU cores this process may use."""
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def _num_workers(opts):
  return opts.workers if opts.workers > 0 else cpu_count()


def _run_chunk(fn, chunk):
  return [fn(t) for t in chunk]


def ordered_map(fn, tasks, workers, chunk=4, window=4):
  """fn over tasks, results in task order, on `workers` threads.

  Threads, not processes: Pillow's decoders and resamplers and numpy's array arithmetic
  release the GIL, so threads scale about as well on a few cores without pickling every image
  or starting interpreters (spawned processes re-import the caller's main module, TensorFlow
  included). Lazy: at most workers * window chunks are in flight, so a consumer that stops
  early (enough images) wastes little.
  """
  tasks = iter(tasks)
  head = list(itertools.islice(tasks, _MIN_POOL_TASKS))
  if workers <= 1 or len(head) < _MIN_POOL_TASKS:
    yield from map(fn, itertools.chain(head, tasks))
    return
  tasks = itertools.chain(head, tasks)
  with futures.ThreadPoolExecutor(workers, thread_name_prefix='dataset_tool') as ex:
    pending = collections.deque()
    try:
      while True:
        block = list(itertools.islice(tasks, chunk))
        if not block:
          break
        pending.append(ex.submit(_run_chunk, fn, block))
        if len(pending) >= workers * window:
          yield from pending.popleft().result()
      while pending:
        yield from pending.popleft().result()
    finally:
      for f in pending:
        f.cancel()


def _order(n, opts):
  order = np.arange(n)
  if opts.shuffle:
    np.random.RandomState(opts.seed).shuffle(order)
  return order


def _pow2_floor(v):
  return 1 << (int(v).bit_length() - 1)


def _resolution(sizes, names, opts, source):
  """Output resolution from the flags and the (width, height) of every image, or an error."""
  flexible = opts.resize or opts.center_crop
  if opts.resolution is not None:
    r = opts.resolution
    if r < 4 or r & (r - 1):
      raise DatasetError(f'--resolution={r} is not a power of two >= 4 (4, 8, ..., 1024).')
  elif flexible:
    r = _pow2_floor(min(min(s) for s in sizes))
    if r < 4:
      raise DatasetError(f'{source}: the smallest image side is {min(min(s) for s in sizes)}; '
                         f'pass --resolution=R to set the output size.')
    logging.info('Output resolution %dx%d (largest power of two within the smallest image '
                 'side; set it with --resolution).', r, r)
  else:
    r = None
    w, h = sizes[0]
    if w == h and w >= 4 and not w & (w - 1):
      r = w
  if flexible:
    small = [(n, s) for n, s in zip(names, sizes) if min(s) < r]
    if small:
      (name, (w, h)), n_small = small[0], len(small)
      logging.warning('%d of %d images are smaller than %dx%d (e.g. %s, %dx%d) and are '
                      'upscaled to it, which blurs them; pass a smaller --resolution or remove '
                      'them.', n_small, len(names), r, r, os.path.join(source, name), w, h)
    return r
  bad = [(n, s) for n, s in zip(names, sizes) if r is None or s != (r, r)]
  if not bad:
    return r
  name, (w, h) = bad[0]
  many = f' ({len(bad)} of {len(names)} images are like that)' if len(bad) > 1 else ''
  if w != h:
    why = (f'is {w}x{h}, not square{many}: pass --center-crop to cut the central square or '
           f'--resize to stretch it')
  elif w & (w - 1) or w < 4:
    why = (f'is {w}x{h}, not a power of two{many}: pass --resize (or --center-crop) to '
           f'resample it')
  else:
    why = (f'is {w}x{h} but the dataset is {r}x{r}{many}: pass --resize to resample, or '
           f'--resolution={w}')
  raise DatasetError(f'{os.path.join(source, name)} {why}, with --resolution=R for the output '
                     f'size (a power of two).')


def _channels(modes, names, opts, source):
  if opts.channels is not None:
    if opts.channels not in (1, 3):
      raise DatasetError(f'--channels={opts.channels}: use 1 (grayscale) or 3 (RGB).')
    return opts.channels
  native = [images_lib.native_channels(m) for m in modes]
  kinds = sorted(set(native))
  if len(kinds) == 1:
    return kinds[0]
  eg = {c: next(n for n, k in zip(names, native) if k == c) for c in kinds}
  raise DatasetError(
      f'{source}: mixed channel counts: {native.count(1)} grayscale images (e.g. {eg[1]}) and '
      f'{native.count(3)} colour images (e.g. {eg[3]}); pass --channels=1 or --channels=3.')


def _report_bad(bad, opts, what):
  """Logs unreadable inputs; with --strict they are fatal."""
  if not bad:
    return
  listing = '; '.join(f'{p} ({e})' for p, e in bad[:5])
  more = f' and {len(bad) - 5} more' if len(bad) > 5 else ''
  if opts.strict:
    raise DatasetError(f'{len(bad)} {what} could not be read (--strict): {listing}{more}.')
  for p, e in bad:
    logging.warning('Skipping unreadable image %s: %s', p, e)


def _write(tfrecord_dir, tasks, load_fn, count_avail, res, channels, rows, opts, manifest,
           display, bad=()):
  """Runs load_fn over tasks (in record order) into a DatasetWriter; returns the path.

  `bad` lists (path, error) of inputs already found unreadable, for the manifest.
  """
  from sg2tf.dataset_tool.writer import DatasetWriter  # pylint: disable=g-import-not-at-top (TensorFlow)
  want = opts.max_images  # None = every readable image.
  bad, kept = list(bad), []
  progress = Progress(want or count_avail, f'Writing {tfrecord_dir}', unit='img', every_s=5.0)
  with DatasetWriter(tfrecord_dir, res, channels, overwrite=opts.overwrite) as writer:
    results = ordered_map(load_fn, tasks, _num_workers(opts))
    try:
      for index, levels, err in results:
        if err is not None:
          bad.append((display(index), err))
          _report_bad(bad[-1:], opts, 'images')
          continue
        writer.add_levels(levels)
        kept.append(index)
        progress.update(len(kept))
        if len(kept) == want:
          break
    finally:
      results.close()
    if want is not None and len(kept) < want:
      raise DatasetError(f'only {len(kept)} readable images ({len(bad)} unreadable) but '
                         f'--max-images={want}; lower --max-images.')
    progress.update(len(kept), force=True)
    manifest = dict(manifest)
    if bad:
      manifest['skipped'] = [{'path': p, 'error': e} for p, e in bad[:_MAX_LISTED]]
      manifest['skipped_count'] = len(bad)
    labels = None if rows is None else rows[np.asarray(kept)]
    return writer.commit(labels=labels, manifest=manifest)


def _common_manifest(opts, res, channels, source_kind, source, label_names=None):
  m = {'source': {'kind': source_kind, 'path': os.path.abspath(source)},
       'options': {'shuffle': opts.shuffle, 'seed': opts.seed, 'resize': opts.resize,
                   'center_crop': opts.center_crop, 'max_images': opts.max_images,
                   'background': opts.background, 'channels': channels, 'resolution': res}}
  if label_names:
    m['label_names'] = label_names
  return m


def create_from_images(tfrecord_dir, image_dir, opts: Options):
  """A folder (recursive) or .zip of images -> dataset. Returns the dataset path."""
  check_target(tfrecord_dir, opts.overwrite)
  try:
    bg = images_lib.parse_background(opts.background)
  except ValueError as e:
    raise DatasetError(str(e)) from None
  if opts.labels and opts.labels_from_subdirs:
    raise DatasetError('pass either --labels or --labels_from_subdirs, not both.')
  try:
    is_zip, names, ignored = images_lib.list_images(image_dir)
  except FileNotFoundError:
    raise DatasetError(f'{image_dir}: no such folder or .zip file.') from None
  if ignored:
    logging.info('Ignoring %d files that are not images (%s).', ignored,
                 ', '.join(images_lib.IMAGE_EXTENSIONS))
  if not names:
    raise DatasetError(f'{image_dir}: no images found ({", ".join(images_lib.IMAGE_EXTENSIONS)}'
                       f'{f"; {ignored} other files ignored" if ignored else ""}).')
  workers = _num_workers(opts)
  logging.info('Inspecting %d images in %s with %d worker(s).', len(names), image_dir, workers)
  probes = list(ordered_map(images_lib.probe_item, ((image_dir, is_zip, n) for n in names),
                            workers, chunk=64))
  unreadable = [(os.path.join(image_dir, n), e) for n, _, _, e in probes if e]
  _report_bad(unreadable, opts, 'images')
  probes = [p for p in probes if p[3] is None]
  if not probes:
    raise DatasetError(f'{image_dir}: none of the {len(names)} images could be read.')
  names = [p[0] for p in probes]
  res = _resolution([p[1] for p in probes], names, opts, image_dir)
  channels = _channels([p[2] for p in probes], names, opts, image_dir)
  if opts.max_images is not None and opts.max_images > len(names):
    raise DatasetError(f'--max-images={opts.max_images} but {image_dir} holds only '
                       f'{len(names)} readable images.')
  if opts.max_images is not None and opts.max_images < 1:
    raise DatasetError(f'--max-images={opts.max_images}: must be >= 1.')
  n_alpha = sum(p[2] in ('RGBA', 'LA', 'PA', 'RGBa', 'La') for p in probes)
  if n_alpha:
    logging.info('%d images have an alpha channel: compositing them on %s (--background).',
                 n_alpha, bg)

  rows, label_names = None, None
  if opts.labels_from_subdirs:
    idx, label_names = labels_lib.from_subdirs(names)
    rows = labels_lib.one_hot(np.asarray(idx), len(label_names))
  elif opts.labels:
    values = labels_lib.match_labels(labels_lib.read_label_file(opts.labels), names,
                                     opts.labels)
    rows, label_names = labels_lib.to_matrix(values, opts.labels)

  cv = images_lib.Convert(resolution=res, channels=channels, center_crop=opts.center_crop,
                          resize=opts.resize, background=bg)
  order = _order(len(names), opts)
  tasks = ((int(i), image_dir, is_zip, names[i], cv) for i in order)
  manifest = _common_manifest(opts, res, channels, 'zip' if is_zip else 'folder', image_dir,
                              label_names)
  manifest['source']['images_found'] = len(names)
  return _write(tfrecord_dir, tasks, images_lib.load_item, len(names), res, channels, rows,
                opts, manifest, lambda i: os.path.join(image_dir, names[i]), unreadable)


def _create_from_array(tfrecord_dir, arr, rows, opts, kind, source, label_names=None):
  """uint8 [N, H, W] or [N, H, W, C] (C = 1..4) -> dataset."""
  if arr.dtype != np.uint8:
    raise DatasetError(f'{source}: dtype {arr.dtype}; convert the array to uint8 [0, 255].')
  if arr.ndim == 3:
    arr = arr[..., np.newaxis]
  if arr.ndim != 4 or arr.shape[-1] not in (1, 2, 3, 4) or arr.shape[0] == 0:
    raise DatasetError(f'{source}: shape {list(arr.shape)}; expected [N, H, W] or [N, H, W, C] '
                       f'with C = 1, 3 (or 2, 4 with alpha) and N >= 1.')
  try:
    bg = images_lib.parse_background(opts.background)
  except ValueError as e:
    raise DatasetError(str(e)) from None
  n, h, w, c = arr.shape
  res = _resolution([(w, h)] * n, [f'image {i}' for i in range(n)], opts, source)
  native = 1 if c <= 2 else 3
  channels = opts.channels or native
  if channels not in (1, 3):
    raise DatasetError(f'--channels={channels}: use 1 (grayscale) or 3 (RGB).')
  if opts.max_images is not None and not 1 <= opts.max_images <= n:
    raise DatasetError(f'--max-images={opts.max_images} but {source} holds {n} images.')
  cv = images_lib.Convert(resolution=res, channels=channels, center_crop=opts.center_crop,
                          resize=opts.resize, background=bg)
  tasks = ((int(i), np.asarray(arr[i]), cv) for i in _order(n, opts))
  manifest = _common_manifest(opts, res, channels, kind, source, label_names)
  return _write(tfrecord_dir, tasks, images_lib.load_array_item, n, res, channels, rows, opts,
                manifest, lambda i: f'{source}[{i}]')


def create_from_npy(tfrecord_dir, npy_path, opts: Options):
  """A .npy uint8 array [N, H, W(, C)] -> dataset; --labels may name a .npy of labels."""
  check_target(tfrecord_dir, opts.overwrite)
  try:
    arr = safe_pickle.load_npy(npy_path, 'image array', mmap_mode='r')
  except (OSError, ValueError) as e:
    raise DatasetError(str(e)) from None
  rows = None
  if opts.labels:
    rows = labels_lib.from_npy(opts.labels, arr.shape[0])
  return _create_from_array(tfrecord_dir, arr, rows, opts, 'npy', npy_path)


def read_idx(path):
  """An IDX file (MNIST format, optionally gzipped) -> uint8 array."""
  try:
    with open(path, 'rb') as f:
      raw = f.read()
    if raw[:2] == b'\x1f\x8b':
      raw = gzip.decompress(raw)
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    raise DatasetError(f'{path}: cannot read it ({e}).') from None
  if len(raw) < 4 or raw[:2] != b'\0\0' or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
    raise DatasetError(f'{path}: not an unsigned-byte IDX file (bad magic {raw[:4].hex()}).')
  ndim = raw[3]
  dims = struct.unpack(f'>{ndim}I', raw[4:4 + 4 * ndim])
  body = raw[4 + 4 * ndim:]
  if len(body) != int(np.prod(dims)):
    raise DatasetError(f'{path}: {len(body)} data bytes but dimensions {list(dims)} need '
                       f'{int(np.prod(dims))}; the file is truncated or corrupt.')
  return np.frombuffer(body, np.uint8).reshape(dims)


def _find(folder, stem):
  for name in (stem + '.gz', stem):
    if os.path.isfile(os.path.join(folder, name)):
      return os.path.join(folder, name)
  return None


def create_from_mnist_idx(tfrecord_dir, images_path, labels_path, opts: Options):
  """MNIST/Fashion-MNIST IDX files -> dataset (one-hot labels when there is a labels file).

  `images_path` is an IDX images file or a folder holding train-images-idx3-ubyte(.gz); the
  labels file defaults to the matching labels-idx1 file next to it. The 28x28 images are
  zero-padded (centred) to --resolution (default 32, as NVIDIA's create_mnist does), or
  resampled to it with --resize.
  """
  check_target(tfrecord_dir, opts.overwrite)
  if os.path.isdir(images_path):
    folder = images_path
    images_path = _find(folder, 'train-images-idx3-ubyte')
    if images_path is None:
      raise DatasetError(f'{folder}: no train-images-idx3-ubyte(.gz); pass the IDX file itself.')
  elif not os.path.isfile(images_path):
    raise DatasetError(f'{images_path}: no such IDX file or folder.')
  if labels_path is None:
    guess = os.path.basename(images_path).replace('images-idx3', 'labels-idx1')
    guess_path = os.path.join(os.path.dirname(images_path), guess)
    if guess != os.path.basename(images_path) and os.path.isfile(guess_path):
      labels_path = guess_path
  arr = read_idx(images_path)
  if arr.ndim != 3:
    raise DatasetError(f'{images_path}: IDX array of shape {list(arr.shape)}, expected '
                       f'[N, H, W] images.')
  rows = None
  if labels_path is not None:
    lab = read_idx(labels_path)
    if lab.shape != arr.shape[:1]:
      raise DatasetError(f'{labels_path}: {lab.shape[0] if lab.ndim else 0} labels for '
                         f'{arr.shape[0]} images in {images_path}.')
    rows = labels_lib.one_hot(lab.astype(np.int64), int(lab.max()) + 1)
  res = opts.resolution or 32
  h, w = arr.shape[1:]
  opts = dataclasses.replace(opts, resolution=res)
  if not opts.resize:
    if res < max(h, w):
      raise DatasetError(f'--resolution={res} is smaller than the {w}x{h} images; pass --resize '
                         f'to downsample them.')
    top, left = (res - h) // 2, (res - w) // 2
    arr = _PaddedView(arr, res, top, left)
  logging.info('%s: %d images%s, padded/resized to %dx%d.', images_path, len(arr),
               f' with labels from {labels_path}' if labels_path else '', res, res)
  return _create_from_array(tfrecord_dir, arr, rows, opts, 'mnist_idx', images_path)


class _PaddedView:
  """Zero-pads images of an [N, H, W] array on access (padding all 60k at once is wasteful)."""

  def __init__(self, arr, res, top, left):
    self.arr, self.res, self.top, self.left = arr, res, top, left
    self.dtype = arr.dtype
    self.ndim = 4
    self.shape = (arr.shape[0], res, res, 1)

  def __len__(self):
    return self.shape[0]

  def __getitem__(self, i):
    out = np.zeros([self.res, self.res, 1], np.uint8)
    h, w = self.arr.shape[1:]
    out[self.top:self.top + h, self.left:self.left + w, 0] = self.arr[i]
    return out
