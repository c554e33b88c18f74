"""Training progress: TensorBoard scalars and image grids, PNG grids, one console line a tick
(images: sg2tf.utils.images; times: sg2tf.utils.progress.format_time).

Scalars (TensorBoard step = images shown so far):
  Loss/G/loss, Loss/D/loss, Loss/scores/real, Loss/scores/fake, Loss/signs/real (mean
  sign of D on the (augmented) reals: ADA's r_t), Loss/r1_penalty (the
  squared gradient norm), Loss/D/reg (gamma/2 times it), Loss/pl_lengths, Loss/pl_penalty,
  Loss/G/reg, Loss/pl_mean, Progress/tick, Progress/kimg, Progress/lod (0 without
  progressive growing), Progress/minibatch, Progress/lr_G, Progress/lr_D,
  Progress/ema_beta, Progress/augment (the augmentation strength p; 0 without),
  Timing/sec_per_tick, Timing/sec_per_kimg, Timing/img_per_sec,
  Timing/phase_<name>_ms, Resources/peak_host_mem_gb and, on GPUs, Resources/peak_gpu_mem_gb.
Images: `fakes` (the fixed-latent G_ema grid) at every image snapshot, also written as
`fakes<kimg>.png` in the run directory, and `reals.png` once.
"""

import collections
import json
import os
import resource
from typing import Dict, Optional, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from sg2tf.utils import files
from sg2tf.utils import images as image_lib
from sg2tf.utils.progress import format_time


def peak_memory_gb() -> Dict[str, float]:
  """Peak resident memory of this process and, per the allocator, of the GPUs (max)."""
  out = {'host': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # KiB -> GiB
  gpus = tf.config.list_logical_devices('GPU')
  if gpus:
    peak = 0
    for d in gpus:
      try:
        peak = max(peak, tf.config.experimental.get_memory_info(d.name)['peak'])
      except (ValueError, tf.errors.OpError):
        pass
    out['gpu'] = peak / 2**30
  return out


class TickStats:
  """Per-tick means of the step metrics, and per-phase wall-clock time."""

  def __init__(self):
    self.reset()

  def reset(self):
    self._sums = collections.defaultdict(float)
    self._counts = collections.defaultdict(int)
    self.phase_sec = collections.defaultdict(float)
    self.phase_calls = collections.defaultdict(int)

  def add(self, metrics: Dict[str, float]):
    for k, v in metrics.items():
      self._sums[k] += float(v)
      self._counts[k] += 1

  def add_phase(self, name: str, seconds: float):
    self.phase_sec[name] += seconds
    self.phase_calls[name] += 1

  def means(self) -> Dict[str, float]:
    return {k: self._sums[k] / self._counts[k] for k in self._sums}


def flatten_config(config: dict, prefix: str = '') -> Dict[str, object]:
  """{'G': {'z_dim': 512}} -> {'G.z_dim': 512}; values are bool/int/float/str (hparams
  accepts nothing else): None -> 'none', lists and the like -> their JSON text."""
  out = {}
  for k, v in config.items():
    name = f'{prefix}{k}'
    if isinstance(v, dict):
      out.update(flatten_config(v, name + '.'))
    elif v is None:
      out[name] = 'none'
    elif isinstance(v, (bool, int, float, str)):
      out[name] = v
    else:
      out[name] = json.dumps(v)
  return out


class Monitor:
  """Writes TensorBoard events and PNGs in run_dir (only on the chief) and logs progress."""

  def __init__(self, run_dir: str, chief: bool = True):
    self.run_dir = run_dir
    self.chief = chief
    with files.writing('TensorBoard events', run_dir):
      self._writer = tf.summary.create_file_writer(run_dir) if chief else None

  def scalars(self, step: int, values: Dict[str, float]):
    if self._writer is None:
      return
    with files.writing('TensorBoard events', self.run_dir):
      with self._writer.as_default(step=int(step)):
        for k, v in sorted(values.items()):
          tf.summary.scalar(k, float(v))
      self._writer.flush()

  def config(self, config: dict, metric_tags: Sequence[str]):
    """Records the resolved configuration: as a text summary `config` (the JSON) and as
    TensorBoard hparams (every leaf, flattened to `G.z_dim`-style names; lists as text),
    with `metric_tags` as the HParams tab's metrics."""
    if self._writer is None:
      return
    from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top
    flat = flatten_config(config)
    with files.writing('TensorBoard events', self.run_dir):
      with self._writer.as_default(step=0):
        tf.summary.text('config', '```\n' + json.dumps(config, indent=1, sort_keys=True) +
                        '\n```')
        hp.hparams_config(hparams=[hp.HParam(k) for k in sorted(flat)],
                          metrics=[hp.Metric(t) for t in metric_tags])
        hp.hparams(flat, trial_id=os.path.basename(self.run_dir.rstrip('/')) or 'run')
      self._writer.flush()

  def image(self, step: int, name: str, image: np.ndarray, png_name: Optional[str] = None):
    """Logs a uint8 [H, W, C] image to TensorBoard and, with png_name, as a PNG."""
    if not self.chief:
      return None
    path = image_lib.save_png(os.path.join(self.run_dir, png_name), image) if png_name else None
    if self._writer is not None:
      with files.writing('TensorBoard events', self.run_dir):
        with self._writer.as_default(step=int(step)):
          tf.summary.image(name, image[np.newaxis], max_outputs=1)
        self._writer.flush()
    return path

  def progress(self, tick: int, kimg: float, total_kimg: float, total_sec: float,
               tick_sec: float, tick_kimg: float, mem: Dict[str, float],
               lod: float = 0.0, minibatch: Optional[int] = None,
               augment: Optional[float] = None):
    """One console line: tick, kimg, lod, minibatch, time, sec/tick, sec/kimg, memory,
    [augment p], ETA."""
    sec_per_kimg = tick_sec / tick_kimg if tick_kimg > 0 else 0.0
    eta = max(total_kimg - kimg, 0.0) * sec_per_kimg
    mem_text = f'host {mem["host"]:.2f} GB'
    if 'gpu' in mem:
      mem_text = f'gpu {mem["gpu"]:.2f} GB  ' + mem_text
    aug_text = '' if augment is None else f'augment {augment:.3f}  '
    logging.info('tick %-5d kimg %-9.3f lod %-5.2f minibatch %-4s time %-10s sec/tick %-8.1f '
                 'sec/kimg %-8.2f mem %s  %seta %s', tick, kimg, lod,
                 '-' if minibatch is None else minibatch, format_time(total_sec), tick_sec,
                 sec_per_kimg, mem_text, aug_text, format_time(eta))

  def close(self):
    if self._writer is not None:
      self._writer.close()
