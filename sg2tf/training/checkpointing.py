"""Training state on disk: rolling checkpoints, network snapshots, the final export.

Layout of a run directory:
  config.json                       the resolved TrainConfig
  checkpoints/ckpt-<nimg>.*         full state, the last `keep_checkpoints` kept:
                                    G, D, G_ema, both Adam optimizers, pl_mean, counters
                                    (minibatch, images, tick, seconds), the tf.random.Generator
                                    and (exact_data_resume) the input pipeline's iterator.
  network-snapshot-<kimg>/          G, D, G_ema as an sg2tf network directory
                                    (sg2tf.networks.serialization), kept for good.
  export/networks-final/            the same for the final networks, and
  export/saved_model/               G_ema as a portable SavedModel (sg2tf.export; periodic
                                    exports: networks-<kimg>/ and saved_model-<kimg>/).

Writes are atomic: tf.train.CheckpointManager writes the data and index files first (via
temporary names) and only then rewrites the `checkpoint` file that names the latest one, with
an atomic rename; a run killed half-way leaves the previous checkpoint as the latest, and
stray files of the unfinished one are ignored (and overwritten by the next save). Network
directories are written to a temporary folder and renamed.
"""

import os
import shutil
from typing import Optional

from absl import logging
import tensorflow as tf

CHECKPOINT_DIR = 'checkpoints'
SNAPSHOT_PREFIX = 'network-snapshot-'
EXPORT_DIR = 'export'


class Checkpointer:
  """Saves and restores the whole training state through a tf.train.CheckpointManager.

  Under MultiWorkerMirroredStrategy every worker must call save(); workers other than the
  chief write to a private temporary folder that is deleted afterwards.
  """

  def __init__(self, run_dir: str, keep: int, chief: bool = True, worker_id: int = 0,
               **trackables):
    self.run_dir = run_dir
    self.directory = os.path.join(run_dir, CHECKPOINT_DIR)
    self.chief = chief
    if not chief:
      self.directory = os.path.join(run_dir, f'.worker-{worker_id}-tmp', CHECKPOINT_DIR)
    self.checkpoint = tf.train.Checkpoint(**trackables)
    self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=keep,
                                              checkpoint_name='ckpt')

  @property
  def latest(self) -> Optional[str]:
    return tf.train.latest_checkpoint(os.path.join(self.run_dir, CHECKPOINT_DIR))

  def save(self, number: int) -> str:
    path = self.manager.save(checkpoint_number=int(number))
    if not self.chief:
      shutil.rmtree(os.path.dirname(self.directory), ignore_errors=True)
      return ''
    logging.info('Saved checkpoint %s', path)
    return path

  def restore(self, path: str) -> None:
    """Restores everything from path; raises ValueError naming what does not match."""
    try:
      status = self.checkpoint.restore(path)
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      raise ValueError(
          f'checkpoint {path} does not match this training setup ({str(e).splitlines()[0]}). '
          'Train with the same network flags as the run that wrote it (see its config.json), '
          'or start a new --run_dir.') from None
    logging.info('Restored training state from %s', path)


def has_checkpoints(run_dir: str) -> bool:
  return tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR)) is not None


def save_network_dir(out_dir: str, G, D, G_ema, metadata: dict) -> str:
  """G, D, G_ema as an sg2tf network directory (replacing an older one atomically)."""
  from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
  path = serialization.save_networks(out_dir, G, D, G_ema, metadata=metadata, overwrite=True)
  logging.info('Saved networks %s', path)
  return path


def snapshot_path(run_dir: str, nimg: int) -> str:
  return os.path.join(run_dir, f'{SNAPSHOT_PREFIX}{nimg // 1000:06d}')


def export_path(run_dir: str, name: str = 'networks-final') -> str:
  return os.path.join(run_dir, EXPORT_DIR, name)


def export_generator(run_dir: str, G, D, G_ema, metadata: dict, name='networks-final') -> str:
  """Exports the networks as a network directory (for resuming, eval_main.py) and G_ema as a
  portable SavedModel built from the reference ops (sg2tf.export). Returns the network
  directory's path."""
  from sg2tf import export as saved_model_export  # pylint: disable=g-import-not-at-top
  path = save_network_dir(export_path(run_dir, name), G, D, G_ema, metadata)
  sm_name = 'saved_model' + name[len('networks'):] if name.startswith('networks') else name + '-sm'
  sm_name = sm_name.replace('-final', '')
  saved_model_export.export_generator(G_ema, export_path(run_dir, sm_name), overwrite=True,
                                      metadata=metadata)
  logging.info('Exported G_ema as a SavedModel: %s', export_path(run_dir, sm_name))
  return path
