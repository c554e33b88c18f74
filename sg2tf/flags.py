"""The command-line flags of training and evaluation, and the configs built from them.

The entry points (sg2tf/train.py: `sg2tf-train`, train_main.py; sg2tf/evaluate.py:
`sg2tf-eval`, eval_main.py) define their section (`define_train_flags()`,
`define_eval_flags()`), parse argv through sg2tf.cli (presets, one-line errors) and call ONE
builder (`train_config_from_flags()` / `eval_config_from_flags()`) to get a frozen dataclass;
nothing else reads FLAGS. The other tools define their flags next to them (generate.py,
project.py, export.py, convert.py, dataset_tool/main.py) the same way. Training defaults are
the dataclasses' (sg2tf/training/config.py). TRAIN_TOPICS / EVAL_TOPICS group the flags for
--help.
"""

import dataclasses
from typing import Optional, Tuple

from absl import flags

from sg2tf import cli
from sg2tf.conventions import ARCHITECTURES

FLAGS = flags.FLAGS
TRAIN_TOPICS = cli.Topics()
EVAL_TOPICS = cli.Topics()

# --------------------------------------------------------------------------- evaluation

def define_eval_flags(flag_values=FLAGS):
  """Defines the evaluation flags (once per FlagValues); eval_main.py calls it."""
  fv = flag_values
  if 'network' in fv:
    return
  kw = dict(flag_values=fv)
  t = EVAL_TOPICS
  t.mark('What to evaluate', fv)
  flags.DEFINE_string('network', None,
                      'Network to evaluate: an official StyleGAN2 .pkl (a path or an http(s) '
                      'URL[#sha256=HEX]), an sg2tf network directory, a training run directory '
                      'or a training checkpoint.', **kw)
  flags.DEFINE_string('data', None,
                      'TFRecord dataset directory (<name>-rNN.tfrecords) for the real images; '
                      'the highest resolution is used. Not needed by is50k and ppl_*.', **kw)
  flags.DEFINE_list('metrics', ['fid50k'],
                    'Comma-separated metrics: fid50k, fid50k_full, is50k, pr50k3, ppl_zfull, '
                    'ppl_wfull, ppl_zend, ppl_wend, ppl2_wend.', **kw)
  t.mark('Sample counts', fv)
  flags.DEFINE_integer('num_fakes', None,
                       'Reduce the number of generated samples (quick runs; the results are '
                       'marked as not comparable with published numbers).', lower_bound=2, **kw)
  flags.DEFINE_integer('num_reals', None,
                       'Reduce the number of real images (default: the official count; pr50k3 '
                       'uses --num_fakes when only that is given).', lower_bound=2, **kw)
  t.mark('Files: feature networks, caches, output', fv)
  flags.DEFINE_string('feature_dir', None,
                      'Folder with the feature network files (also: $SG2TF_FEATURE_DIR). See '
                      'sg2tf/metrics/feature_files.py for names and URLs.', **kw)
  flags.DEFINE_bool('download_features', True,
                    'Download missing feature network files into the cache '
                    '($SG2TF_FEATURE_CACHE, default ~/.cache/sg2tf/features).', **kw)
  flags.DEFINE_string('cache_dir', None,
                      'Cache for real-data statistics (also: $SG2TF_METRICS_CACHE; default '
                      '~/.cache/sg2tf/metrics).', **kw)
  flags.DEFINE_string('outdir', None,
                      'Where metrics.jsonl and TensorBoard scalars go (default: the run dir, or '
                      'the folder of the network file).', **kw)
  flags.DEFINE_alias('output_dir', 'outdir', flag_values=fv)
  t.mark('Run: batch, seed, devices', fv)
  flags.DEFINE_integer('eval_batch_size', 8, 'Images per replica per step (PPL: half as many '
                       'pairs).', lower_bound=1, **kw)
  flags.DEFINE_integer('eval_seed', 0, 'Seed of the latents.', **kw)
  flags.DEFINE_float('truncation_psi', 1.0,
                     'Truncation psi for the generated images (official protocols: 1).', **kw)
  flags.DEFINE_enum('strategy', 'auto', ['auto', 'default', 'mirrored'],
                    'tf.distribute strategy: mirrored over all GPUs (auto picks it when there '
                    'is more than one GPU), or the default single-device strategy.', **kw)
  t.mark(None)



@dataclasses.dataclass(frozen=True)
class EvalConfig:
  network: str
  data: Optional[str]
  metrics: Tuple[str, ...]
  num_fakes: Optional[int]
  num_reals: Optional[int]
  feature_dir: Optional[str]
  download_features: bool
  cache_dir: Optional[str]
  output_dir: Optional[str]
  batch_per_replica: int
  seed: int
  truncation_psi: float
  strategy: str


def eval_config_from_flags(flag_values=FLAGS) -> EvalConfig:
  """The evaluation config from the parsed flags; raises ValueError naming a bad flag."""
  FLAGS = flag_values  # pylint: disable=invalid-name,redefined-outer-name
  if not FLAGS.network:
    raise ValueError('--network is required (an official StyleGAN2 .pkl, a network or run '
                     'directory, or a checkpoint).')
  return EvalConfig(
      network=FLAGS.network, data=FLAGS.data,
      metrics=tuple(m.strip() for m in FLAGS.metrics if m.strip()),
      num_fakes=FLAGS.num_fakes, num_reals=FLAGS.num_reals, feature_dir=FLAGS.feature_dir,
      download_features=FLAGS.download_features, cache_dir=FLAGS.cache_dir,
      output_dir=FLAGS.outdir, batch_per_replica=FLAGS.eval_batch_size,
      seed=FLAGS.eval_seed, truncation_psi=FLAGS.truncation_psi, strategy=FLAGS.strategy)


# --------------------------------------------------------------------------- training
# Defined only by define_train_flags() (train_main.py calls it), so eval_main.py does not
# carry them; train_config_from_flags() is the one place that turns them into a TrainConfig.
# Both take a FlagValues (default: the global FLAGS) so tests can parse in isolation.

def define_train_flags(flag_values=FLAGS):
  """Defines the training flags (once per FlagValues)."""
  from sg2tf import paper_configs as net_configs  # pylint: disable=g-import-not-at-top
  from sg2tf.training import config as tc  # pylint: disable=g-import-not-at-top
  fv = flag_values
  if 'run_dir' in fv:
    return
  kw = dict(flag_values=fv)
  # Every default comes from the config dataclasses (the one place they are written).
  cfg, data, loss, opt, aug = (tc.TrainConfig(run_dir='', data=tc.DataConfig()),
                               tc.DataConfig(), tc.LossConfig(), tc.OptimizerConfig(),
                               tc.AugmentConfig())
  t = TRAIN_TOPICS
  t.mark('Data and run directory', fv)
  flags.DEFINE_string('data_dir', None, 'TFRecord dataset directory (<name>-rNN.tfrecords, '
                      'made by sg2tf-dataset (data/dataset_tool.py) or NVIDIA\'s tool). '
                      'Required.', **kw)
  flags.DEFINE_string('run_dir', None, 'Run directory: config.json, checkpoints/, TensorBoard '
                      'events, PNG grids, network snapshots, export/. Required.', **kw)
  flags.DEFINE_integer('resolution', None, 'Training resolution; default: the highest the '
                       'dataset holds.', **kw)
  flags.DEFINE_bool('mirror', data.mirror,
                    'Random x-flips of the reals (FFHQ: on; LSUN: off).', **kw)
  flags.DEFINE_bool('cond', data.use_labels, 'Conditional training on the dataset\'s labels.', **kw)
  flags.DEFINE_integer('shuffle_mb', data.shuffle_mb,
                       'Shuffle buffer size in MiB of records.', lower_bound=1,
                       **kw)
  t.mark('Networks (a paper config, optionally overridden)', fv)
  flags.DEFINE_enum('cfg', cfg.cfg_name, sorted(net_configs.CONFIGS),
                    'Network config of the paper (Table 1: config-a .. config-f, a-d with '
                    'progressive growing; config-b-nogrow .. config-d-nogrow: b-d without it; '
                    'Table 2: config-e-G<arch>-D<arch>). Sets the networks, fmap_base, gamma, '
                    'lazy regularisation, path length and (a-d) the growing schedule.', **kw)
  flags.DEFINE_enum('g_arch', None, list(ARCHITECTURES), 'Override G architecture.', **kw)
  flags.DEFINE_enum('d_arch', None, list(ARCHITECTURES), 'Override D architecture.', **kw)
  flags.DEFINE_integer('fmap_base', None, 'Override feature maps base (G and D).', **kw)
  flags.DEFINE_integer('fmap_max', None, 'Override max feature maps per layer (G and D).', **kw)
  flags.DEFINE_integer('latent_dim', None, 'Override z and w size (512).', **kw)
  flags.DEFINE_integer('mapping_layers', None, 'Override mapping depth (8).', **kw)
  flags.DEFINE_integer('mbstd_group_size', None, 'Override D minibatch-stddev group (4).', **kw)
  t.mark('Loss and regularisation', fv)
  flags.DEFINE_float('gamma', None, 'R1 weight; default: the config\'s (10; config-e: 100).',
                     **kw)
  flags.DEFINE_float('pl_weight', None, 'Path-length weight; default: the config\'s (2; 0 for '
                     'config-b/c).', **kw)
  flags.DEFINE_float('pl_decay', loss.pl_decay,
                     'Decay of the path-length target\'s moving average.',
                     **kw)
  flags.DEFINE_integer('pl_batch_shrink', loss.pl_batch_shrink,
                       'Path length runs on batch / this.', **kw)
  flags.DEFINE_float('style_mixing', None, 'Style-mixing probability; default: the config\'s '
                     '(0.9).', **kw)
  flags.DEFINE_bool('lazy_reg', None, 'Lazy regularisation; default: the config\'s (off for '
                    'config-b only).', **kw)
  flags.DEFINE_integer('g_reg_interval', loss.g_reg_interval,
                       'Path-length step every N minibatches (lazy).', **kw)
  flags.DEFINE_integer('d_reg_interval', loss.d_reg_interval,
                       'R1 step every N minibatches (lazy).', **kw)
  t.mark('Optimizer (Adam; the lazy-regularisation adjustment is applied on top)', fv)
  flags.DEFINE_float('lr', None, 'Adam learning rate of G and D; default: the config\'s '
                     '(0.002; configs a-d: 0.001, the base of their growing schedule, which '
                     'raises it to 0.0015-0.003 from 128x128 on).', **kw)
  flags.DEFINE_float('beta1', opt.beta1, 'Adam beta1.', **kw)
  flags.DEFINE_float('beta2', opt.beta2, 'Adam beta2.', **kw)
  flags.DEFINE_float('adam_eps', opt.epsilon, 'Adam epsilon.', **kw)
  t.mark('Schedule', fv)
  flags.DEFINE_integer('batch_size', cfg.batch_size,
                       'Global minibatch, split over the replicas (configs '
                       'a-d: at 128x128 and above; below, 256/128/64/32 at 8/16/32/64).', **kw)
  t.mark('Progressive growing (configs a-d; official training_schedule names)', fv)
  flags.DEFINE_integer('lod_initial_resolution', None, 'Progressive growing: the resolution '
                       'training starts at (configs a-d: 8). Needs config-a..d networks.', **kw)
  flags.DEFINE_float('lod_training_kimg', None, 'Progressive growing: thousands of images '
                     'at each resolution before fading in the next (600).', **kw)
  flags.DEFINE_float('lod_transition_kimg', None, 'Progressive growing: thousands of images '
                     'of each fade-in (600).', **kw)
  t.mark('Schedule', fv)
  flags.DEFINE_float('total_kimg', cfg.total_kimg,
                     'Training length in thousands of real images.', **kw)
  flags.DEFINE_float('ema_kimg', cfg.ema_kimg, 'G_ema half-life in thousands of images.', **kw)
  flags.DEFINE_float('ema_rampup', None, 'If set (e.g. 0.05), the G_ema half-life is at most '
                     'this fraction of the images seen so far (for short runs).', **kw)
  flags.DEFINE_float('tick_kimg', None, 'Progress interval in kimg; default: the official '
                     'one for the resolution (4 at 1024^2 .. 20 at 32^2).', **kw)
  t.mark('Snapshots, export and metrics', fv)
  flags.DEFINE_integer('image_snapshot_ticks', cfg.image_snapshot_ticks,
                       'G_ema image grid every N ticks.', **kw)
  flags.DEFINE_integer('checkpoint_ticks', cfg.checkpoint_ticks,
                       'Full checkpoint every N ticks.', **kw)
  flags.DEFINE_integer('network_snapshot_ticks', cfg.network_snapshot_ticks,
                       'Kept network snapshot every N ticks.',
                       **kw)
  flags.DEFINE_integer('keep_checkpoints', cfg.keep_checkpoints, 'Rolling checkpoints kept.', **kw)
  flags.DEFINE_integer('export_ticks', cfg.export_ticks,
                       'Also export the networks every N ticks (0: only at '
                       'the end).', **kw)
  flags.DEFINE_alias('export_every', 'export_ticks', flag_values=flag_values)
  flags.DEFINE_string('grid', 'auto', 'Snapshot grid COLUMNSxROWS, or auto.', **kw)
  flags.DEFINE_list('metrics', [], 'Metrics at network snapshots (e.g. fid50k); none by '
                    'default.', **kw)
  flags.DEFINE_integer('metrics_ticks', cfg.metrics_ticks,
                       'Metrics every N ticks (0: at network snapshots).',
                       **kw)
  flags.DEFINE_integer('metrics_num_fakes', None, 'Fewer generated and real samples for the '
                       'training-time metrics (quick runs; results are marked as reduced).', lower_bound=2, **kw)
  flags.DEFINE_string('feature_dir', None, 'Folder with the metrics\' feature network files '
                      '(also: $SG2TF_FEATURE_DIR); see README, Evaluation.', **kw)
  t.mark('Run: seed, devices, precision', fv)
  flags.DEFINE_integer('seed', cfg.seed, 'Seed of the initial weights, the random stream and the '
                       'data order.', **kw)
  flags.DEFINE_enum('strategy', cfg.strategy, list(tc.STRATEGIES),
                    'mirrored: all local GPUs (or the CPU); multi_worker: '
                    'MultiWorkerMirroredStrategy from TF_CONFIG; default: one device.', **kw)
  flags.DEFINE_enum('impl', cfg.impl, list(tc.IMPLS), 'Op implementation: compiled '
                    'custom ops, pure-TF reference, or auto (custom when it loads).', **kw)
  flags.DEFINE_bool('mixed_precision', cfg.mixed_precision,
                    'Mixed precision as in StyleGAN2-ADA: the '
                    '--num_fp16_res highest G and D resolutions (>= 8x8) compute activations in '
                    'float16 (weights, mapping, images, logits, losses stay float32) and conv '
                    'outputs are clamped to +-conv_clamp. Faster on GPUs with tensor cores; off '
                    'by default (exact float32).', **kw)
  flags.DEFINE_enum('precision', cfg.precision, list(tc.PRECISIONS),
                    'float32 (exact), or the dtype of the --num_fp16_res highest G and D blocks '
                    '(same scheme as --mixed_precision, which is --precision=float16). '
                    'bfloat16 has float32\'s exponent range: no overflow guard is needed; fast '
                    'where the hardware has bfloat16 units (GPUs since Ampere, TPUs, CPUs with '
                    'AMX or AVX512-BF16), slow elsewhere.', **kw)
  flags.DEFINE_integer('num_fp16_res', cfg.num_fp16_res,
                       'With --mixed_precision / --precision: how many of '
                       'the highest resolutions run in low precision (log2(resolution) - 2 or '
                       'more, e.g. 99: every block from 8x8 up).', **kw)
  flags.DEFINE_float('conv_clamp', cfg.conv_clamp, 'With --mixed_precision: clamp conv outputs to '
                     '[-conv_clamp, conv_clamp] (keeps float16 finite).', **kw)
  flags.DEFINE_integer('batch_gpu', None, 'Images per replica per pass: each replica runs its '
                       'share of --batch_size in chunks of this size and sums the gradients '
                       '(less memory, same training). Default: the whole share.', lower_bound=1,
                       **kw)
  flags.DEFINE_bool('jit', cfg.jit, 'Compile each phase\'s passes with XLA (jit_compile=True), '
                    'using the reference ops. For GPUs/TPUs; slower on CPUs.', **kw)
  t.mark('Discriminator augmentation (StyleGAN2-ADA)', fv)
  flags.DEFINE_enum('aug', aug.mode, list(tc.AUG_MODES), 'Discriminator augmentation: '
                    'noaug (default, as the paper configs), ada (adaptive p, for small '
                    'datasets), fixed (constant --p).', **kw)
  flags.DEFINE_string('augpipe', None, 'Augmentation pipeline: blit, geom, color, filter, '
                      'noise, cutout, bg, bgc (default), bgcf, bgcfn, bgcfnc.', **kw)
  flags.DEFINE_float('p', None, 'Augmentation probability for --aug=fixed.', **kw)
  flags.DEFINE_float('target', None, 'ADA target for r_t = E[sign(D(real))] (default 0.6).',
                     **kw)
  flags.DEFINE_float('ada_kimg', aug.kimg, 'ADA speed: kimg for p to change by 1.', **kw)
  flags.DEFINE_integer('ada_interval', aug.interval, 'Minibatches between ADA adjustments.', **kw)
  t.mark('Resume and fine-tuning', fv)
  flags.DEFINE_string('resume', cfg.resume, 'latest: the run_dir\'s newest intact checkpoint, '
                      'if any (damaged newer ones are skipped with a warning and moved to '
                      'checkpoints/damaged/; if every checkpoint is damaged training stops); '
                      'none: start a new training (refused while an intact checkpoint exists; '
                      'damaged ones are moved aside); or a checkpoint prefix.', **kw)
  flags.DEFINE_string('resume_pkl', None, 'Official StyleGAN2 pickle to fine-tune from (when '
                      'no checkpoint is resumed): a path or an http(s) URL[#sha256=HEX], '
                      'downloaded once into the cache.', **kw)
  flags.DEFINE_bool('exact_data_resume', cfg.exact_data_resume,
                    'Checkpoint the input pipeline too (its shuffle '
                    'buffer: up to --shuffle_mb per checkpoint) so a resumed run sees the same '
                    'images; off: the data order restarts.', **kw)
  flags.DEFINE_alias('outdir', 'run_dir', flag_values=fv)
  t.mark('Data and run directory', fv)
  t.mark(None)


def _parse_grid(text):
  if text in (None, '', 'auto'):
    return None
  try:
    cols, rows = (int(v) for v in text.lower().split('x'))
  except ValueError:
    raise ValueError(f'--grid={text!r}: use COLUMNSxROWS (e.g. 8x8) or auto.') from None
  return (cols, rows)


def train_config_from_flags(flag_values=FLAGS):
  """The (unresolved) TrainConfig from the parsed training flags; ValueError names a flag.

  `sg2tf.training.config.resolve_config` then checks it against the dataset.
  """
  import dataclasses as dc  # pylint: disable=g-import-not-at-top,reimported
  from sg2tf import paper_configs as net_configs  # pylint: disable=g-import-not-at-top
  from sg2tf.training import config as tc  # pylint: disable=g-import-not-at-top
  f = flag_values
  for name in ('data_dir', 'run_dir'):
    if not f[name].value:
      raise ValueError(f'--{name} is required.')
  net = net_configs.get_config(f.cfg)
  g_over, d_over, both = {}, {}, {}
  if f.g_arch:
    g_over['architecture'] = f.g_arch
  if f.d_arch:
    d_over['architecture'] = f.d_arch
  for name in ('fmap_base', 'fmap_max'):
    if f[name].value is not None:
      both[name] = f[name].value
  if f.latent_dim is not None:
    g_over.update(z_dim=f.latent_dim, w_dim=f.latent_dim, mapping_dim=f.latent_dim)
  if f.mapping_layers is not None:
    g_over['mapping_layers'] = f.mapping_layers
  if f.mbstd_group_size is not None:
    d_over['mbstd_group_size'] = f.mbstd_group_size
  g = dc.replace(net.G, **g_over, **both)
  d = dc.replace(net.D, **d_over, **both)
  loss = tc.LossConfig(
      r1_gamma=net.r1_gamma if f.gamma is None else f.gamma,
      pl_weight=net.pl_weight if f.pl_weight is None else f.pl_weight,
      pl_decay=f.pl_decay, pl_batch_shrink=f.pl_batch_shrink,
      style_mixing_prob=(net.style_mixing_prob if f.style_mixing is None else f.style_mixing),
      lazy_regularization=(net.lazy_regularization if f.lazy_reg is None else f.lazy_reg),
      g_reg_interval=f.g_reg_interval, d_reg_interval=f.d_reg_interval)
  precision = f.precision
  if f.mixed_precision:
    if precision not in ('float32', 'float16'):
      raise ValueError(f'--mixed_precision means --precision=float16; it contradicts '
                       f'--precision={precision}. Use one of them.')
    precision = 'float16'
  from sg2tf.training import schedule as schedule_lib  # pylint: disable=g-import-not-at-top
  sched = schedule_lib.PAPER_GROWING if net.growing else schedule_lib.ScheduleConfig()
  sched_over = {name: f[name].value for name in
                ('lod_initial_resolution', 'lod_training_kimg', 'lod_transition_kimg')
                if f[name].value is not None}
  sched = dc.replace(sched, **sched_over)
  return tc.TrainConfig(
      run_dir=f.run_dir, schedule=sched,
      data=tc.DataConfig(data_dir=f.data_dir, resolution=f.resolution, mirror=f.mirror,
                         use_labels=f.cond, shuffle_mb=f.shuffle_mb),
      cfg_name=f.cfg, G=g, D=d, loss=loss,
      optimizer=tc.OptimizerConfig(learning_rate=net.learning_rate if f.lr is None else f.lr,
                                   beta1=f.beta1, beta2=f.beta2,
                                   epsilon=f.adam_eps),
      batch_size=f.batch_size, total_kimg=f.total_kimg, ema_kimg=f.ema_kimg,
      ema_rampup=f.ema_rampup, seed=f.seed, strategy=f.strategy, impl=f.impl,
      mixed_precision=precision != 'float32', precision=precision,
      augment=_augment_config(f), batch_gpu=f.batch_gpu, jit=f.jit,
      num_fp16_res=f.num_fp16_res,
      conv_clamp=f.conv_clamp, tick_kimg=f.tick_kimg,
      image_snapshot_ticks=f.image_snapshot_ticks, checkpoint_ticks=f.checkpoint_ticks,
      network_snapshot_ticks=f.network_snapshot_ticks, keep_checkpoints=f.keep_checkpoints,
      export_ticks=f.export_ticks, resume=f.resume or 'latest', resume_pkl=f.resume_pkl,
      exact_data_resume=f.exact_data_resume, grid=_parse_grid(f.grid),
      metrics=tuple(m.strip() for m in f.metrics if m.strip()), metrics_ticks=f.metrics_ticks,
      metrics_num_fakes=f.metrics_num_fakes, feature_dir=f.feature_dir)


def _augment_config(f):
  """AugmentConfig from --aug/--augpipe/--p/--target, with StyleGAN2-ADA's rules."""
  from sg2tf.training import config as tc  # pylint: disable=g-import-not-at-top
  if f.aug == 'noaug':
    for name in ('augpipe', 'p', 'target'):
      if f[name].value is not None:
        raise ValueError(f'--{name} has no effect with --aug=noaug; add --aug=ada or '
                         '--aug=fixed.')
  if f.aug == 'fixed' and f.p is None:
    raise ValueError('--aug=fixed needs --p (the augmentation probability, e.g. 0.2).')
  if f.p is not None and f.aug != 'fixed':
    raise ValueError('--p is for --aug=fixed; --aug=ada tunes p itself (see --target).')
  if f.target is not None and f.aug != 'ada':
    raise ValueError('--target is for --aug=ada.')
  base = tc.AugmentConfig()
  return tc.AugmentConfig(mode=f.aug, pipe=f.augpipe or base.pipe,
                          p=base.p if f.p is None else f.p,
                          target=base.target if f.target is None else f.target,
                          interval=f.ada_interval, kimg=f.ada_kimg)
