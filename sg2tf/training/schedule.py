"""The official training schedule (training_loop.py `training_schedule`) and progressive growing.

Pure Python (no TensorFlow), so flag handling can use it before TensorFlow starts.

With `lod_initial_resolution` set, training starts at that resolution and grows: each phase
of lod_training_kimg + lod_transition_kimg thousand images first trains at a fixed level of
detail, then fades in the next resolution with lod falling linearly to the next integer:

    phase  = floor(kimg / (training + transition));  t = kimg - phase * (training + transition)
    lod    = max(log2(R) - floor(log2(initial)) - phase - max(t - training, 0) / transition, 0)
    resolution = R / 2**floor(lod)

Minibatch size, learning rate and tick length are looked up by that resolution (the dicts,
else the base values). The official loop re-evaluates the schedule every `minibatch_repeats`
(4) minibatches, and resets both optimizers' state (Adam moments and step count) whenever
floor(lod) or ceil(lod) changes (`reset_opt_for_new_lod`), i.e. when a fade-in starts and
when it ends. sg2tf does the same (sg2tf/training/loop.py).
"""

import dataclasses
import math
from typing import Optional, Tuple

# Official tick lengths (kimg) by resolution; other resolutions use TICK_KIMG_BASE.
OFFICIAL_TICK_KIMG = ((8, 28.0), (16, 24.0), (32, 20.0), (64, 16.0), (128, 12.0), (256, 8.0),
                      (512, 6.0), (1024, 4.0))
TICK_KIMG_BASE = 4.0


def _pairs(value, cast):
  """A dict or (key, value) pairs (JSON gives lists) -> sorted tuple of (int, cast) pairs."""
  items = value.items() if isinstance(value, dict) else value
  return tuple(sorted((int(k), cast(v)) for k, v in items))


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
  """training_schedule's settings that sg2tf does not hold elsewhere (the minibatch base is
  TrainConfig.batch_size, the learning-rate base OptimizerConfig.learning_rate)."""
  lod_initial_resolution: Optional[int] = None  # None: no progressive growing (lod 0).
  lod_training_kimg: float = 600.0
  lod_transition_kimg: float = 600.0
  minibatch_dict: Tuple[Tuple[int, int], ...] = ()     # resolution -> global minibatch
  lrate_dict: Tuple[Tuple[int, float], ...] = ()       # resolution -> learning rate (G and D)
  tick_kimg_dict: Tuple[Tuple[int, float], ...] = OFFICIAL_TICK_KIMG
  minibatch_repeats: int = 4
  reset_opt_for_new_lod: bool = True

  def __post_init__(self):
    for name, cast in (('minibatch_dict', int), ('lrate_dict', float), ('tick_kimg_dict', float)):
      object.__setattr__(self, name, _pairs(getattr(self, name), cast))

  @property
  def growing(self) -> bool:
    return self.lod_initial_resolution is not None


# Configs a-d of run_training.py: start at 8x8, lr 0.001 growing to 0.003, large minibatches
# at low resolutions.
PAPER_GROWING = ScheduleConfig(
    lod_initial_resolution=8, minibatch_dict=((8, 256), (16, 128), (32, 64), (64, 32)),
    lrate_dict=((128, 0.0015), (256, 0.002), (512, 0.003), (1024, 0.003)))
PAPER_GROWING_LR = 0.001  # G_lrate_base = D_lrate_base of configs a-d


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The training parameters in effect (the official schedule dict)."""
  kimg: float
  lod: float
  resolution: int
  minibatch_size: int
  lrate: float
  tick_kimg: float


def _at_lod(kimg, lod, resolution_log2, cfg: ScheduleConfig, minibatch_base, lrate_base,
            tick_kimg=None):
  res = 2 ** (resolution_log2 - int(math.floor(lod)))
  return Schedule(
      kimg=kimg, lod=lod, resolution=res,
      minibatch_size=dict(cfg.minibatch_dict).get(res, int(minibatch_base)),
      lrate=dict(cfg.lrate_dict).get(res, float(lrate_base)),
      tick_kimg=float(tick_kimg) if tick_kimg is not None else dict(cfg.tick_kimg_dict).get(
          res, TICK_KIMG_BASE))


def training_schedule(cur_nimg: int, resolution: int, cfg: ScheduleConfig, minibatch_base: int,
                      lrate_base: float, tick_kimg: Optional[float] = None) -> Schedule:
  """The official training_schedule at cur_nimg images for a network of `resolution`.

  tick_kimg: a fixed tick length overriding the per-resolution one (None: the dict's).
  """
  kimg = cur_nimg / 1000.0
  log2 = int(round(math.log2(resolution)))
  lod = 0.0
  if cfg.lod_initial_resolution is not None:
    phase_dur = cfg.lod_training_kimg + cfg.lod_transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = float(log2 - math.floor(math.log2(cfg.lod_initial_resolution)) - phase_idx)
    if cfg.lod_transition_kimg > 0:
      lod -= max(phase_kimg - cfg.lod_training_kimg, 0.0) / cfg.lod_transition_kimg
    lod = max(lod, 0.0)
  return _at_lod(kimg, lod, log2, cfg, minibatch_base, lrate_base, tick_kimg)


def schedule_at_lod(lod: float, resolution: int, cfg: ScheduleConfig, minibatch_base: int,
                    lrate_base: float, tick_kimg: Optional[float] = None) -> Schedule:
  """The schedule whose lod is `lod` (resuming: everything else follows from it)."""
  log2 = int(round(math.log2(resolution)))
  return _at_lod(float('nan'), float(lod), log2, cfg, minibatch_base, lrate_base, tick_kimg)


def needs_optimizer_reset(prev_lod: float, lod: float) -> bool:
  """Official reset_opt_for_new_lod test: floor or ceil of lod changed."""
  return (math.floor(lod) != math.floor(prev_lod)) or (math.ceil(lod) != math.ceil(prev_lod))


def resolutions(resolution: int, cfg: ScheduleConfig):
  """Every training resolution of a run (the lowest first)."""
  if cfg.lod_initial_resolution is None:
    return [int(resolution)]
  lo = 2 ** int(math.floor(math.log2(cfg.lod_initial_resolution)))
  out, r = [], min(lo, resolution)
  while r <= resolution:
    out.append(r)
    r *= 2
  return out
