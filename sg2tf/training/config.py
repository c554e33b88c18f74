"""Frozen training configuration, its validation against the dataset, and its JSON form.

`TrainConfig` is built in one place from command-line flags (`sg2tf.flags`) or directly in
Python (tests, benchmarks). `resolve_config` fills in what only the dataset knows
(resolution, channels, label count) and rejects inconsistent settings with a `ConfigError`
that names the flag, before TensorFlow does any heavy work. The resolved config is written
to `<run_dir>/config.json`.

Hyperparameter defaults are the official StyleGAN2 ones (run_training.py, training_loop.py,
loss.py): Adam lr 0.002, betas (0, 0.99), eps 1e-8; minibatch 32; lazy regularisation with
G every 4 and D every 16 minibatches; path length weight 2, decay 0.01, batch shrink 2;
style mixing 0.9; G_ema half-life 10 kimg.
"""

import dataclasses
import json
import math
import os
from typing import Optional, Tuple

from sg2tf import paper_configs as net_configs
from sg2tf.conventions import ARCHITECTURES
from sg2tf.metrics import registry as metric_registry
from sg2tf.training import schedule as schedule_lib
from sg2tf.utils import files

STRATEGIES = ('mirrored', 'multi_worker', 'default')
IMPLS = ('auto', 'custom', 'ref')
PRECISIONS = ('float32', 'float16', 'bfloat16')
AUG_MODES = ('noaug', 'ada', 'fixed')
# Names of sg2tf.training.augment.PIPELINES (listed here so flags are checked before TF loads).
AUG_PIPES = ('blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn',
             'bgcfnc')
CONFIG_NAME = 'config.json'
# Official tick length (kimg) by training resolution (training_schedule's tick_kimg_dict).
_TICK_KIMG = dict(schedule_lib.OFFICIAL_TICK_KIMG)


class ConfigError(ValueError):
  """An unknown or inconsistent setting; the message names the flag and what to do."""


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Non-saturating logistic loss, lazy R1 (D) and path-length (G) regularisation."""
  r1_gamma: float = 10.0
  pl_weight: float = 2.0            # 0 disables path-length regularisation (configs b, c).
  pl_decay: float = 0.01
  pl_batch_shrink: int = 2
  style_mixing_prob: float = 0.9
  lazy_regularization: bool = True  # False: regularisers every minibatch with the main loss.
  g_reg_interval: int = 4
  d_reg_interval: int = 16


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """Adam for G and D (before the lazy-regularisation adjustment)."""
  learning_rate: float = 0.002
  beta1: float = 0.0
  beta2: float = 0.99
  epsilon: float = 1e-8


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """Discriminator augmentation (StyleGAN2-ADA): off by default, so the paper configs train as
  published. ada: p tuned toward `target`; fixed: p stays at `p`."""
  mode: str = 'noaug'               # noaug | ada | fixed
  pipe: str = 'bgc'                 # A pipeline of sg2tf.training.augment.PIPELINES.
  p: float = 0.0                    # Initial (ada) or constant (fixed) strength.
  target: float = 0.6               # ADA target of r_t = E[sign(D(real))].
  interval: int = 4                 # Minibatches between adjustments.
  kimg: float = 500.0               # kimg for p to move by 1.


@dataclasses.dataclass(frozen=True)
class DataConfig:
  data_dir: str = ''
  resolution: Optional[int] = None  # None: the dataset's highest.
  mirror: bool = False              # x-flips (FFHQ: on; LSUN: off).
  use_labels: bool = False          # Conditional training on the dataset's labels.
  shuffle_mb: int = 512
  channels: Optional[int] = None    # Filled in by resolve_config.
  label_dim: int = 0                # Filled in by resolve_config.
  num_images: Optional[int] = None  # Filled in by resolve_config.


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one training run needs; see sg2tf/flags.py for each field's flag."""
  run_dir: str
  data: DataConfig
  cfg_name: str = 'config-f'
  G: net_configs.GeneratorConfig = net_configs.GeneratorConfig()
  D: net_configs.DiscriminatorConfig = net_configs.DiscriminatorConfig()
  loss: LossConfig = LossConfig()
  optimizer: OptimizerConfig = OptimizerConfig()
  # Progressive growing (configs a-d) and the per-resolution minibatch / lr / tick lengths.
  schedule: schedule_lib.ScheduleConfig = schedule_lib.ScheduleConfig()
  batch_size: int = 32              # Global minibatch, split over the replicas.
  total_kimg: float = 25000.0
  ema_kimg: float = 10.0            # G_ema half-life in thousands of images.
  ema_rampup: Optional[float] = None  # e.g. 0.05: half-life <= 5% of the images seen so far.
  seed: int = 0
  strategy: str = 'mirrored'
  impl: str = 'auto'
  mixed_precision: bool = False     # float16 in the num_fp16_res highest G/D resolutions.
  num_fp16_res: int = 4             # Used only with mixed_precision (StyleGAN2-ADA's default).
  conv_clamp: Optional[float] = 256.0  # Used only with mixed_precision; None: no clamp.
  # float32, or the dtype of the num_fp16_res highest blocks (float16 / bfloat16). resolve_config
  # keeps it and mixed_precision consistent (mixed_precision=True alone means float16).
  precision: str = 'float32'
  augment: AugmentConfig = AugmentConfig()
  batch_gpu: Optional[int] = None   # Images per replica per pass (gradient accumulation).
  jit: bool = False                 # XLA-compile each phase's passes (reference ops).

  def net_kwargs(self):
    """Extra G / D constructor arguments: mixed precision, or none (exact float32)."""
    if not self.mixed_precision:
      return {}
    return dict(num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp,
                fp16_dtype=self.precision if self.precision != 'float32' else 'float16')
  tick_kimg: Optional[float] = None  # None: the official length for the resolution.
  image_snapshot_ticks: int = 1
  checkpoint_ticks: int = 2
  network_snapshot_ticks: int = 50
  keep_checkpoints: int = 3
  export_ticks: int = 0             # 0: export G_ema only at the end.
  resume: str = 'latest'            # 'latest' (in run_dir), 'none', or a checkpoint path.
  resume_pkl: Optional[str] = None  # An official pickle to fine-tune from.
  exact_data_resume: bool = True    # Checkpoint the input pipeline (its shuffle buffer too).
  grid: Optional[Tuple[int, int]] = None  # Snapshot grid (columns, rows); None: automatic.
  metrics: Tuple[str, ...] = ()
  metrics_ticks: int = 0            # 0: at every network snapshot.
  metrics_num_fakes: Optional[int] = None  # None: the official sample counts.
  feature_dir: Optional[str] = None  # Feature network files (also $SG2TF_FEATURE_DIR).

  @property
  def resolution(self) -> int:
    return self.G.img_resolution

  @property
  def tick_nimg(self) -> int:
    kimg = self.tick_kimg if self.tick_kimg is not None else _TICK_KIMG.get(self.resolution, 4)
    return max(1, int(round(kimg * 1000)))

  @property
  def grid_size(self) -> Tuple[int, int]:
    if self.grid is not None:
      return tuple(self.grid)
    r = self.resolution
    return (int(min(max(3840 // r, 7), 16)), int(min(max(2160 // r, 4), 16)))

  def to_dict(self):
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=1, sort_keys=True)

  @classmethod
  def from_dict(cls, d) -> 'TrainConfig':
    return _from_dict(cls, d)


def _from_dict(cls, d):
  kwargs = {}
  for f in dataclasses.fields(cls):
    if f.name not in d:
      continue
    value = d[f.name]
    ftype = f.type if not isinstance(f.type, str) else _TYPES.get(f.name)
    if dataclasses.is_dataclass(ftype) and isinstance(value, dict):
      value = _from_dict(ftype, value)
    elif isinstance(value, list):
      value = tuple(value)
    kwargs[f.name] = value
  return cls(**kwargs)


_TYPES = {'data': DataConfig, 'G': net_configs.GeneratorConfig,
          'D': net_configs.DiscriminatorConfig, 'loss': LossConfig, 'optimizer': OptimizerConfig,
          'augment': AugmentConfig, 'schedule': schedule_lib.ScheduleConfig}


def lazy_adam_hparams(opt: OptimizerConfig, interval: int, lazy: bool = True):
  """(lr, beta1, beta2) adjusted for lazy regularisation every `interval` minibatches.

  With c = k / (k + 1): lr' = c * lr, beta1' = beta1 ** c, beta2' = beta2 ** c (paper
  appendix B), compensating for the k + 1 optimizer steps per k minibatches.
  """
  if not lazy or interval <= 1:
    return opt.learning_rate, opt.beta1, opt.beta2
  c = interval / (interval + 1)
  return opt.learning_rate * c, opt.beta1 ** c, opt.beta2 ** c


def ema_beta(batch_size: int, ema_kimg: float, cur_nimg: int = 0,
             ema_rampup: Optional[float] = None) -> float:
  """G_ema decay per minibatch: 0.5 ** (batch / half-life in images).

  With `ema_rampup` the half-life is at most ema_rampup * cur_nimg (StyleGAN2-ADA), so the
  average does not stay stuck at the random initialisation early in short runs.
  """
  ema_nimg = ema_kimg * 1000.0
  if ema_rampup is not None:
    ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
  if ema_nimg <= 0:
    return 0.0
  return 0.5 ** (batch_size / ema_nimg)


def _require(ok, msg):
  if not ok:
    raise ConfigError(msg)


def resolve_config(cfg: TrainConfig) -> TrainConfig:
  """Checks cfg and fills in the dataset's resolution, channels and labels.

  Reads only the dataset's file headers. Raises ConfigError naming the flag.
  """
  from sg2tf.dataset_info import DatasetError  # pylint: disable=g-import-not-at-top
  from sg2tf.dataset_info import DatasetInfo  # pylint: disable=g-import-not-at-top
  _require(cfg.run_dir, '--run_dir is required (where checkpoints, logs and images go).')
  _require(cfg.data.data_dir, '--data_dir is required (a TFRecord dataset directory made by '
           'data/dataset_tool.py).')
  _require(cfg.strategy in STRATEGIES, f'--strategy={cfg.strategy!r}: use one of {STRATEGIES}.')
  _require(cfg.impl in IMPLS, f'--impl={cfg.impl!r}: use one of {IMPLS}.')
  cfg = _resolve_precision(cfg)
  _check_augment(cfg.augment)
  _require(cfg.batch_gpu is None or cfg.batch_gpu >= 1,
           f'--batch_gpu={cfg.batch_gpu} must be >= 1.')
  _require(not (cfg.jit and cfg.impl == 'custom'),
           '--jit compiles the reference ops (XLA cannot compile the custom ops); drop '
           '--impl=custom or --jit.')
  _require(cfg.batch_size >= 1, f'--batch_size={cfg.batch_size} must be >= 1.')
  _require(cfg.num_fp16_res >= 0, f'--num_fp16_res={cfg.num_fp16_res} must be >= 0.')
  _require(cfg.conv_clamp is None or cfg.conv_clamp > 0,
           f'--conv_clamp={cfg.conv_clamp} must be > 0 (or unset for no clamp).')
  for flag, value in (('total_kimg', cfg.total_kimg), ('ema_kimg', cfg.ema_kimg),
                      ('gamma', cfg.loss.r1_gamma), ('pl_weight', cfg.loss.pl_weight),
                      ('pl_decay', cfg.loss.pl_decay), ('style_mixing', cfg.loss.style_mixing_prob),
                      ('lr', cfg.optimizer.learning_rate), ('beta1', cfg.optimizer.beta1),
                      ('beta2', cfg.optimizer.beta2), ('epsilon', cfg.optimizer.epsilon),
                      ('tick_kimg', cfg.tick_kimg), ('ema_rampup', cfg.ema_rampup),
                      ('conv_clamp', cfg.conv_clamp)):
    _require(value is None or math.isfinite(value),
             f'--{flag}={value} must be a finite number.')
  _require(cfg.total_kimg > 0, f'--total_kimg={cfg.total_kimg} must be > 0.')
  _require(cfg.tick_kimg is None or cfg.tick_kimg > 0,
           f'--tick_kimg={cfg.tick_kimg} must be > 0 (thousands of images per tick; unset for '
           'the official length at the training resolution).')
  _require(cfg.ema_kimg >= 0, f'--ema_kimg={cfg.ema_kimg} must be >= 0.')
  _require(cfg.ema_rampup is None or cfg.ema_rampup > 0,
           f'--ema_rampup={cfg.ema_rampup} must be > 0 (or unset).')
  loss, opt = cfg.loss, cfg.optimizer
  _require(loss.r1_gamma >= 0, f'--gamma={loss.r1_gamma} must be >= 0.')
  _require(loss.pl_weight >= 0, f'--pl_weight={loss.pl_weight} must be >= 0.')
  _require(0 <= loss.style_mixing_prob <= 1,
           f'--style_mixing={loss.style_mixing_prob} must be in [0, 1].')
  _require(0 < loss.pl_decay <= 1, f'--pl_decay={loss.pl_decay} must be in (0, 1].')
  _require(loss.pl_batch_shrink >= 1, f'--pl_batch_shrink={loss.pl_batch_shrink} must be >= 1.')
  _require(loss.g_reg_interval >= 1 and loss.d_reg_interval >= 1,
           f'--g_reg_interval={loss.g_reg_interval} and --d_reg_interval='
           f'{loss.d_reg_interval} must be >= 1.')
  _require(opt.learning_rate > 0, f'--lr={opt.learning_rate} must be > 0.')
  _require(0 <= opt.beta1 < 1 and 0 <= opt.beta2 < 1,
           f'--beta1={opt.beta1} and --beta2={opt.beta2} must be in [0, 1).')
  for name in ('image_snapshot_ticks', 'checkpoint_ticks', 'network_snapshot_ticks',
               'keep_checkpoints'):
    _require(getattr(cfg, name) >= 1, f'--{name}={getattr(cfg, name)} must be >= 1.')
  _require(cfg.export_ticks >= 0 and cfg.metrics_ticks >= 0,
           '--export_ticks and --metrics_ticks must be >= 0.')
  if cfg.grid is not None:
    _require(len(cfg.grid) == 2 and min(cfg.grid) >= 1,
             f'--grid={cfg.grid}: use COLUMNSxROWS, e.g. 8x8.')
  if cfg.resume not in ('latest', 'none') and not _checkpoint_exists(cfg.resume):
    raise ConfigError(f'--resume={cfg.resume}: no such checkpoint (expected "latest", "none" '
                      f'or a checkpoint prefix such as {cfg.run_dir}/checkpoints/ckpt-12).')
  if cfg.metrics:
    try:
      metric_registry.check_metric_names(cfg.metrics)
    except ValueError as e:
      raise ConfigError(str(e)) from None
  if cfg.resume_pkl is not None:
    _require(files.is_url(cfg.resume_pkl) or files.isfile(cfg.resume_pkl),
             f'--resume_pkl={cfg.resume_pkl}: no such file (give a path or an http(s) URL).')
  try:
    info = DatasetInfo.from_dir(cfg.data.data_dir)
  except DatasetError as e:
    raise ConfigError(f'--data_dir: {e}') from None
  res = cfg.data.resolution or info.resolution
  if res not in info.files:
    raise ConfigError(f'--resolution={res}: {cfg.data.data_dir} has resolutions '
                      f'{", ".join(map(str, info.resolutions))}; pick one of those.')
  _require(res >= 8, f'--resolution={res}: the discriminator needs at least 8x8.')
  if cfg.data.use_labels:
    _require(info.label_dim > 0, f'--cond: {cfg.data.data_dir} has no labels file; train '
             'without --cond or re-create the dataset with labels.')
  label_dim = info.label_dim if cfg.data.use_labels else 0
  _require(info.count >= cfg.batch_size,
           f'--batch_size={cfg.batch_size}: the dataset has only {info.count} images.')
  data = dataclasses.replace(cfg.data, resolution=res, channels=info.channels,
                             label_dim=label_dim, num_images=info.count)
  common = dict(img_resolution=res, img_channels=info.channels, c_dim=label_dim)
  g = dataclasses.replace(cfg.G, **common)
  d = dataclasses.replace(cfg.D, **common)
  for who, net in (('G', g), ('D', d)):
    _require(net.architecture in ARCHITECTURES,
             f'--{who.lower()}_arch={net.architecture!r}: use {", ".join(ARCHITECTURES)}.')
  _check_networks_and_growing(cfg, g, d, info, res)
  return dataclasses.replace(cfg, data=data, G=g, D=d)


def _resolve_precision(cfg: TrainConfig) -> TrainConfig:
  """--mixed_precision is --precision=float16; mixed_precision <=> precision != float32."""
  _require(cfg.precision in PRECISIONS,
           f'--precision={cfg.precision!r}: use one of {", ".join(PRECISIONS)}.')
  precision = cfg.precision
  if cfg.mixed_precision and precision == 'float32':
    precision = 'float16'
  return dataclasses.replace(cfg, precision=precision, mixed_precision=precision != 'float32')


def _check_augment(aug: AugmentConfig) -> None:
  _require(aug.mode in AUG_MODES, f'--aug={aug.mode!r}: use one of {", ".join(AUG_MODES)}.')
  _require(aug.pipe in AUG_PIPES, f'--augpipe={aug.pipe!r}: use one of {", ".join(AUG_PIPES)}.')
  _require(aug.p >= 0, f'--p={aug.p} must be >= 0.')
  _require(0 <= aug.target <= 1, f'--target={aug.target} must be in [0, 1].')
  _require(aug.interval >= 1, f'--ada_interval={aug.interval} must be >= 1.')
  _require(aug.kimg > 0, f'--ada_kimg={aug.kimg} must be > 0.')


def _check_networks_and_growing(cfg: TrainConfig, g, d, info, res):
  """The network kinds of --cfg, and progressive growing (configs a-d) against the dataset."""
  grow_nets = net_configs.GROWING_NETWORKS
  for who, net in (('G', g), ('D', d)):
    if net.network in grow_nets:
      _require(net.architecture == 'orig',
               f'--{who.lower()}_arch={net.architecture}: --cfg={cfg.cfg_name} uses {net.network}, '
               'which has one architecture; use --cfg=config-e-G<arch>-D<arch> (or a '
               '*-nogrow config) to choose architectures.')
  sched = cfg.schedule
  if cfg.precision == 'bfloat16' and (g.network in grow_nets or d.network in grow_nets):
    raise ConfigError(f'--precision=bfloat16: the networks of --cfg={cfg.cfg_name} '
                      f'({g.network} / {d.network}) have a float16 path only; use '
                      '--precision=float16 or float32, or a config-e/f network.')
  if cfg.mixed_precision and (g.network == 'G_style' or d.network == 'D_basic'):
    raise ConfigError(f'--mixed_precision: the StyleGAN networks of --cfg={cfg.cfg_name} '
                      '(G_style / D_basic) have no float16 path; train config-a in float32.')
  if not sched.growing:
    return
  for who, net in (('G', g), ('D', d)):
    _require(net.network in grow_nets,
             f'--lod_initial_resolution={sched.lod_initial_resolution}: progressive growing '
             f'needs networks that support it, but {who} of --cfg={cfg.cfg_name} is '
             f'{net.network}; use --cfg=config-a|config-b|config-c|config-d.')
  r0 = sched.lod_initial_resolution
  _require(r0 >= 4 and r0 & (r0 - 1) == 0 and r0 <= res,
           f'--lod_initial_resolution={r0} must be a power of two in [4, {res}] (the training '
           'resolution).')
  _require(sched.lod_training_kimg >= 0 and sched.lod_transition_kimg >= 0,
           f'--lod_training_kimg={sched.lod_training_kimg} and --lod_transition_kimg='
           f'{sched.lod_transition_kimg} must be >= 0.')
  _require(sched.minibatch_repeats >= 1, 'minibatch_repeats must be >= 1.')
  _require(cfg.augment.mode == 'noaug',
           f'--aug={cfg.augment.mode} with progressive growing (--cfg={cfg.cfg_name}) is not '
           'supported (the augmentation runs at one resolution); use --aug=noaug, or a '
           '*-nogrow config or config-e/f with augmentation.')
  _require(cfg.strategy != 'multi_worker',
           '--strategy=multi_worker with progressive growing (configs a-d) is not supported '
           '(untested); use --strategy=mirrored on one machine, or a *-nogrow config.')
  missing = [r for r in schedule_lib.resolutions(res, sched) if r not in info.files]
  _require(not missing, f'--cfg={cfg.cfg_name} grows from {r0}x{r0}, but {cfg.data.data_dir} '
           f'lacks the resolutions {missing} (it has {info.resolutions}); re-create it with '
           'data/dataset_tool.py, which writes every level.')
  for r in schedule_lib.resolutions(res, sched):
    n = dict(sched.minibatch_dict).get(r, cfg.batch_size)
    _require(info.count >= n, f'the minibatch at {r}x{r} is {n} images (progressive growing '
             f'schedule), but the dataset has only {info.count}.')


def minibatch_sizes(cfg: TrainConfig):
  """Every global minibatch size the run uses (one, or one per growing resolution)."""
  if not cfg.schedule.growing:
    return [cfg.batch_size]
  table = dict(cfg.schedule.minibatch_dict)
  return sorted({table.get(r, cfg.batch_size)
                 for r in schedule_lib.resolutions(cfg.resolution, cfg.schedule)})


def check_replicas(cfg: TrainConfig, num_replicas: int) -> None:
  """Rejects a minibatch that does not split evenly over the replicas."""
  for n in minibatch_sizes(cfg):
    _check_replicas(cfg, num_replicas, n)


def _check_replicas(cfg: TrainConfig, num_replicas: int, n: int) -> None:
  _require(n % num_replicas == 0,
           f'--batch_size={n} is not divisible by the {num_replicas} replicas; use a multiple '
           f'of {num_replicas}.')
  per = n // num_replicas
  if cfg.batch_gpu is not None:
    _require(cfg.batch_gpu <= per and per % cfg.batch_gpu == 0,
             f'--batch_gpu={cfg.batch_gpu}: the {per} images per replica (--batch_size={n} '
             f'over {num_replicas} replicas) must be a multiple of it.')
    per = cfg.batch_gpu  # Chunks are what the minibatch-stddev groups and Greg see.
  where = (f'--batch_gpu={per}' if cfg.batch_gpu is not None else
           f'--batch_size={n}: {per} images per replica')
  if cfg.loss.pl_weight > 0:
    _require(per % cfg.loss.pl_batch_shrink == 0,
             f'{where} do not split by --pl_batch_shrink={cfg.loss.pl_batch_shrink}; use a '
             f'multiple of {cfg.loss.pl_batch_shrink} images per replica (and per chunk).')
  g = cfg.D.mbstd_group_size
  if g > 1:
    _require(per % min(g, per) == 0,
             f'{where} are not divisible by the minibatch stddev group size {g} '
             f'(--mbstd_group_size); use a multiple of {g} per replica (and per chunk).')


def is_chief_process(strategy: str) -> bool:
  """Whether this process is the one that writes the run directory (and so takes its lock),
  from TF_CONFIG alone, before TensorFlow starts: the same rule as distribute.is_chief."""
  if strategy != 'multi_worker':
    return True
  try:
    tf_config = json.loads(os.environ.get('TF_CONFIG') or '{}')
    cluster, task = tf_config.get('cluster') or {}, tf_config.get('task') or {}
  except (ValueError, AttributeError):
    return True  # make_strategy reports the bad TF_CONFIG.
  if not cluster:
    return True
  if 'chief' in cluster:
    return task.get('type') == 'chief'
  return task.get('type') == 'worker' and int(task.get('index', 0)) == 0


def _checkpoint_exists(prefix: str) -> bool:
  return files.isfile(prefix + '.index')


def write_config(cfg: TrainConfig) -> str:
  path = os.path.join(cfg.run_dir, CONFIG_NAME)
  files.write_text(path, cfg.to_json() + '\n', what='the run config')
  return path


def read_config(run_dir: str) -> TrainConfig:
  return TrainConfig.from_dict(files.read_json(os.path.join(run_dir, CONFIG_NAME)))


def num_steps(cfg: TrainConfig) -> int:
  """Minibatches needed to show total_kimg thousand images."""
  return int(math.ceil(cfg.total_kimg * 1000 / cfg.batch_size - 1e-9))
