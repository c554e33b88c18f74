"""Training state on disk: rolling checkpoints, network snapshots, the final export.

Layout of a run directory:
  config.json                       the resolved TrainConfig
  .sg2tf.lock                       held by the one training using the directory
  checkpoints/ckpt-<nimg>.*         full state, the last `keep_checkpoints` kept:
                                    G, D, G_ema, both Adam optimizers, pl_mean, counters
                                    (minibatch, images, tick, seconds), the tf.random.Generator
                                    and (exact_data_resume) the input pipeline's iterator.
  checkpoints/damaged/              checkpoints found damaged at start-up, moved aside (kept)
  network-snapshot-<kimg>/          G, D, G_ema as an sg2tf network directory
                                    (sg2tf.networks.serialization), kept for good.
  export/networks-final/            the same for the final networks, and
  export/saved_model/               G_ema as a portable SavedModel (sg2tf.export; periodic
                                    exports: networks-<kimg>/ and saved_model-<kimg>/).

Writes are atomic: tf.train.CheckpointManager writes the data and index files first (via
a `ckpt-N_temp/` folder) and only then rewrites the `checkpoint` state file; network
directories and images are written under temporary names and renamed (sg2tf.utils.files).

Resuming does not trust the state file: `find_resume` discovers the checkpoints from their
own files, newest first, and reads every tensor of a candidate (which checks TensorFlow's
per-tensor checksums), so a missing or truncated .index, a truncated or bit-flipped .data or
a damaged state file is caught there. A damaged newest checkpoint is skipped with a warning
naming the file, and the run resumes from the newest intact one; `Checkpointer.prepare`
then moves the damaged ones to checkpoints/damaged/, rewrites the state file and removes the
leftovers of interrupted writes. Older checkpoints are never deleted because of a restart.
"""

import dataclasses
import os
import re
from typing import List, Optional, Tuple

from absl import logging
import tensorflow as tf

from sg2tf.utils import files

CHECKPOINT_DIR = 'checkpoints'
SNAPSHOT_PREFIX = 'network-snapshot-'
EXPORT_DIR = 'export'


STATE_FILE = 'checkpoint'
DAMAGED_DIR = 'damaged'
SUPERSEDED_DIR = 'superseded'
_CKPT_RE = re.compile(r'^ckpt-(\d+)\.(index|data-(\d{5})-of-(\d{5}))$')
_STATE_LINE_RE = re.compile(r'^(model_checkpoint_path|all_model_checkpoint_paths|'
                            r'all_model_checkpoint_timestamps|last_preserved_timestamp): \S.*$')
# Leftovers of interrupted writes: TensorFlow's save folder and state-file temporary, and the
# temporary names earlier sg2tf versions used (tempfile.mkdtemp: 8 characters of [a-z0-9_]).
CHECKPOINT_LEFTOVERS = (r'^ckpt-\d+_temp', r'^checkpoint\.tmp[0-9a-f]+$')
RUN_DIR_LEFTOVERS = (r'^\..+\.(tmp|old)-[a-z0-9_]{8}$', r'^.+\.tmp-[a-z0-9_]{8}$',
                     r'^.+\.old-\d+$')


class CheckpointDamagedError(ValueError):
  """The run directory holds checkpoints, but none of them is intact; nothing was changed."""


@dataclasses.dataclass
class ResumePoint:
  """What find_resume found: the checkpoint to resume from (None: start fresh), the damaged
  checkpoints newer than it (prefix, reason), the other checkpoints and the state file."""
  latest: Optional[str]
  damaged: List[Tuple[str, str]]
  older: List[str]
  state_problem: Optional[str] = None


def checkpoint_dir(run_dir: str) -> str:
  return os.path.join(run_dir, CHECKPOINT_DIR)


def _first_line(e: BaseException) -> str:
  text = str(getattr(e, 'message', '') or e).strip()
  text = re.sub(r'^\{\{function_node [^}]*\}\}\s*', '', text).split(' [Op:')[0]
  return (text.splitlines() or [type(e).__name__])[0][:300]


def scan(directory: str) -> List[Tuple[int, str, List[str]]]:
  """(number, prefix, file names) of every checkpoint in directory from its files alone,
  newest (highest number) first. A checkpoint is listed if any of its files exist."""
  found = {}
  if files.isdir(directory):
    for name in files.listdir(directory):
      m = _CKPT_RE.match(name)
      if m:
        found.setdefault(int(m.group(1)), []).append(name)
  return [(n, os.path.join(directory, f'ckpt-{n}'), sorted(found[n]))
          for n in sorted(found, reverse=True)]


def verify(prefix: str, names: Optional[List[str]] = None) -> Optional[str]:
  """None if the checkpoint at prefix is intact, else what is wrong, naming the file.

  Reads every tensor: TensorFlow checks each against the checksum in the index, so
  truncation and flipped bytes are found here rather than half-way through a restore.
  """
  folder, base = os.path.split(prefix)
  if names is None:
    names = [n for _, p, ns in scan(folder) if p == prefix for n in ns]
  if f'{base}.index' not in names:
    return f'{base}.index is missing'
  data = [n for n in names if n.startswith(f'{base}.data-')]
  if not data:
    return f'{base}.data-00000-of-00001 is missing'
  shards = int(data[0].rsplit('-of-', 1)[1])
  missing = sorted({f'{base}.data-{i:05d}-of-{shards:05d}' for i in range(shards)} - set(data))
  if missing:
    return f'{missing[0]} is missing'
  try:
    # The reader itself, not tf.train.load_checkpoint: that one asks gfile.isdir(prefix),
    # which TF's ram:// answers True for the prefix of any file.
    dtypes = tf.compat.v1.train.NewCheckpointReader(prefix).get_variable_to_dtype_map()
  except Exception as e:  # pylint: disable=broad-except
    return f'{base}.index is damaged ({_first_line(e)})'
  for key in sorted(dtypes):
    try:  # RestoreV2 (not the reader's get_tensor) also reads variants: the iterator state.
      tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[key], shape_and_slices=[''],
                           dtypes=[dtypes[key]])
    except Exception as e:  # pylint: disable=broad-except
      return (f'{" / ".join(data)} {"is" if len(data) == 1 else "are"} damaged or truncated '
              f'(reading {key}: {_first_line(e)})')
  return None


def state_file_problem(directory: str) -> Optional[str]:
  """None if the `checkpoint` state file is absent or well-formed, else what is wrong."""
  path = os.path.join(directory, STATE_FILE)
  if not files.isfile(path):
    return None
  try:
    text = files.read_bytes(path).decode('utf-8')
  except UnicodeDecodeError:
    return 'it is binary data, not the text TensorFlow writes'
  except OSError as e:
    return f'unreadable ({e.strerror or e})'
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if not lines:
    return 'it is empty'
  bad = [line for line in lines if not _STATE_LINE_RE.match(line)]
  if bad or not any(line.startswith('model_checkpoint_path:') for line in lines):
    return f'it is not a checkpoint state (it reads {(bad or lines)[0][:60]!r})'
  return None


def find_resume(run_dir: str) -> ResumePoint:
  """The newest intact checkpoint of a run directory (see the module docstring)."""
  directory = checkpoint_dir(run_dir)
  problem = state_file_problem(directory)
  if problem:
    logging.warning('The checkpoint state file %s is damaged (%s); checkpoints are found from '
                    'their own files.', os.path.join(directory, STATE_FILE), problem)
  damaged = []
  found = scan(directory)
  for i, (_, prefix, names) in enumerate(found):
    reason = verify(prefix, names)
    if reason is None:
      return ResumePoint(prefix, damaged, [p for _, p, _ in found[i + 1:]], problem)
    logging.warning('Checkpoint %s is damaged: %s; skipping it.', prefix, reason)
    damaged.append((prefix, reason))
  return ResumePoint(None, damaged, [], problem)


def _move_aside(prefix: str, folder_name: str) -> str:
  """Moves every file of checkpoint prefix into <checkpoints>/<folder_name>/ (never deletes)."""
  folder, base = os.path.split(prefix)
  dest = os.path.join(folder, folder_name)
  files.makedirs(dest)
  for name in files.listdir(folder):
    if name.startswith(base + '.') and _CKPT_RE.match(name):
      target = os.path.join(dest, name)
      if files.exists(target):  # an older damaged copy of the same number
        files.rename(target, target + '.previous')
      files.rename(os.path.join(folder, name), target)
  return os.path.join(dest, base)


class Checkpointer:
  """Saves and restores the whole training state through a tf.train.CheckpointManager.

  Under MultiWorkerMirroredStrategy every worker must call save(); workers other than the
  chief write to a private temporary folder that is deleted afterwards.
  """

  def __init__(self, run_dir: str, keep: int, chief: bool = True, worker_id: int = 0,
               **trackables):
    self.run_dir = run_dir
    self.directory = checkpoint_dir(run_dir)
    self.chief = chief
    self.keep = keep
    if not chief:
      self.directory = os.path.join(run_dir, f'.worker-{worker_id}-tmp', CHECKPOINT_DIR)
    self.checkpoint = tf.train.Checkpoint(**trackables)
    self._manager = None
    self._last_good = None

  @property
  def manager(self) -> tf.train.CheckpointManager:
    # Built on first use, after prepare() has repaired the state file it reads.
    if self._manager is None:
      self._manager = tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                 max_to_keep=self.keep, checkpoint_name='ckpt')
    return self._manager

  @property
  def latest(self) -> Optional[str]:
    """The newest checkpoint known to be good (restored or saved by this process), else the
    newest one on disk."""
    if self._last_good:
      return self._last_good
    found = scan(checkpoint_dir(self.run_dir))
    return found[0][1] if found else None

  def prepare(self, point: Optional[ResumePoint], resumed: Optional[str] = None) -> None:
    """Before training (chief only): moves damaged checkpoints (and, when an older one is
    resumed explicitly, the newer ones) aside, rewrites the state file from the intact
    checkpoints up to the resumed one, and removes the leftovers of interrupted writes."""
    if not self.chief:
      return
    directory = self.directory
    for prefix, reason in (point.damaged if point else []):
      dest = _move_aside(prefix, DAMAGED_DIR)
      logging.warning('Moved damaged checkpoint %s (%s) to %s.', prefix, reason, dest)
    keep = []
    resumed_number = _number(resumed) if resumed and os.path.dirname(
        files.abspath(resumed)) == files.abspath(directory) else None
    for number, prefix, _ in scan(directory):
      if resumed_number is not None and number > resumed_number:
        dest = _move_aside(prefix, SUPERSEDED_DIR)
        logging.warning('Moved checkpoint %s, newer than the resumed %s, to %s (kept, not '
                        'used).', prefix, resumed, dest)
      else:
        keep.append(prefix)
    keep.reverse()  # oldest first, as the state file lists them
    state = os.path.join(directory, STATE_FILE)
    if keep:
      latest = resumed if resumed_number is not None else keep[-1]
      # The manager rotates only entries newer than last_preserved_timestamp: give each its
      # index file's time, so the older checkpoints keep rotating as before the restart.
      times = [files.getmtime(p + '.index') if files.exists(p + '.index') else 0.0
               for p in keep]
      lines = ([f'model_checkpoint_path: "{os.path.basename(latest)}"'] +
               [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in keep] +
               [f'all_model_checkpoint_timestamps: {t!r}' for t in times] +
               [f'last_preserved_timestamp: {min(times) - 1.0!r}'])
      files.write_text(state, '\n'.join(lines) + '\n', what='the checkpoint state file')
    elif files.exists(state):
      dest = os.path.join(directory, DAMAGED_DIR)
      files.makedirs(dest)
      files.rename(state, os.path.join(dest, STATE_FILE))
    self.remove_leftovers()

  def remove_leftovers(self) -> None:
    """Deletes what interrupted checkpoint saves left in the checkpoint folder (chief)."""
    if not self.chief:
      return
    removed = files.remove_leftovers(self.directory, CHECKPOINT_LEFTOVERS)
    if removed:
      logging.info('Removed leftovers of interrupted checkpoint saves: %s', ', '.join(removed))

  def save(self, number: int) -> str:
    """Writes checkpoint ckpt-<number>. On a full or read-only disk: removes the partial
    files and raises DiskWriteError naming the checkpoint, the free space and the last good
    checkpoint (which is intact)."""
    prefix = os.path.join(self.directory, f'ckpt-{int(number)}')
    existed = files.exists(prefix + '.index')  # then TensorFlow's merge never started
    try:
      path = self.manager.save(checkpoint_number=int(number))
    except Exception as e:  # pylint: disable=broad-except
      if not files.is_write_error(e):
        raise
      self._remove_partial(int(number), keep_files=existed)
      last = self._last_good or 'none yet'
      raise files.DiskWriteError(
          'checkpoint', prefix, files.write_error('checkpoint', prefix, e).reason,
          files.free_space(prefix),
          note=f'The partial files were removed; the last good checkpoint ({last}) is intact. '
          'Free some space (or fix the permissions) and rerun the same command to resume.'
      ) from None
    if not self.chief:
      files.rmtree(os.path.dirname(self.directory))
      return ''
    self._last_good = path
    logging.info('Saved checkpoint %s', path)
    return path

  def _remove_partial(self, number: int, keep_files: bool) -> None:
    """Deletes what a failed save of ckpt-<number> wrote: its _temp folder and, unless a
    checkpoint of that number was there before (keep_files), its files."""
    if not files.isdir(self.directory):
      return
    for name in files.listdir(self.directory):
      m = _CKPT_RE.match(name)
      if (m and int(m.group(1)) == number and not keep_files) or re.match(
          rf'^ckpt-{number}_temp', name):
        path = os.path.join(self.directory, name)
        if files.isdir(path):
          files.rmtree(path)
        else:
          files.remove(path)

  def restore(self, path: str) -> None:
    """Restores everything from path, an intact checkpoint (see find_resume / verify);
    raises ValueError naming what does not match the training setup."""
    try:
      status = self.checkpoint.restore(path)
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      raise ValueError(
          f'checkpoint {path} does not match this training setup ({str(e).splitlines()[0]}). '
          'Train with the same network flags as the run that wrote it (see its config.json), '
          'or start a new --run_dir.') from None
    self._last_good = path
    logging.info('Restored training state from %s', path)


def _number(prefix: str) -> Optional[int]:
  m = re.match(r'^ckpt-(\d+)$', os.path.basename(prefix))
  return int(m.group(1)) if m else None


def has_checkpoints(run_dir: str) -> bool:
  """Whether the run directory holds any checkpoint files (intact or not)."""
  return bool(scan(checkpoint_dir(run_dir)))


def remove_run_dir_leftovers(run_dir: str) -> None:
  """Deletes the temporaries of interrupted writes in a run directory this process has locked:
  images, config, snapshots (run_dir/) and exports (run_dir/export/)."""
  removed = []
  for folder in (run_dir, os.path.join(run_dir, EXPORT_DIR)):
    removed += files.remove_leftovers(folder, RUN_DIR_LEFTOVERS)
  if removed:
    logging.info('Removed leftovers of interrupted writes: %s', ', '.join(removed))


def save_network_dir(out_dir: str, G, D, G_ema, metadata: dict,
                     what: str = 'network snapshot') -> str:
  """G, D, G_ema as an sg2tf network directory (replacing an older one atomically)."""
  from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
  path = serialization.save_networks(out_dir, G, D, G_ema, metadata=metadata, overwrite=True,
                                     what=what)
  logging.info('Saved networks %s', path)
  return path


def snapshot_path(run_dir: str, nimg: int) -> str:
  return os.path.join(run_dir, f'{SNAPSHOT_PREFIX}{nimg // 1000:06d}')


def export_path(run_dir: str, name: str = 'networks-final') -> str:
  return os.path.join(run_dir, EXPORT_DIR, name)
