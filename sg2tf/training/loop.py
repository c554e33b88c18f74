"""The training loop: networks, optimizers, state, data, phases, ticks, snapshots, resume.

    trainer = Trainer(cfg, strategy)      # builds (or restores) everything
    trainer.run()                         # trains to cfg.total_kimg

A minibatch runs Gmain, Greg (every g_reg_interval), Dmain + G_ema, Dreg (every
d_reg_interval) -- see phases.py. Every `tick` images (official tick lengths) one progress
line is logged and TensorBoard scalars are written; image grids, rolling checkpoints and
network snapshots follow their tick intervals. A non-finite loss stops training at once with
the minibatch and the term named; nothing is saved after it.

Progressive growing (configs a-d, sg2tf/training/schedule.py): every minibatch_repeats (4)
minibatches the official schedule is evaluated; its lod goes to G, D and G_ema, its learning
rate to both optimizers, and when the resolution changes the input pipeline switches to that
level of the TFRecord pyramid with that resolution's minibatch (and the phases are retraced
for it); the optimizers' state is reset when floor(lod) or ceil(lod) changes. The lod in
effect is checkpointed (`lod`), so a resumed run continues mid-fade exactly.
"""

import dataclasses
import json
import os
import time
from typing import Dict, Optional

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from sg2tf import paper_configs as net_configs
from sg2tf import dataset as sg2tf_dataset
from sg2tf import export as saved_model_export
from sg2tf import selfcheck
from sg2tf.custom_ops import policy
from sg2tf.metrics import registry as metric_registry
from sg2tf.networks import serialization
from sg2tf.training import ada as ada_lib
from sg2tf.training import augment as augment_lib
from sg2tf.training import checkpointing
from sg2tf.training import config as config_lib
from sg2tf.training import distribute
from sg2tf.training import monitoring
from sg2tf.training import phases as phases_lib
from sg2tf.training import schedule as schedule_lib
from sg2tf.training import seeds
from sg2tf.utils import files
from sg2tf.utils import images as image_lib

ConfigError = config_lib.ConfigError


class NonFiniteLossError(RuntimeError):
  """A loss or regulariser became NaN or Inf; the message names the minibatch and term."""


class Trainer:
  """One training run (see module docstring). Build it under no strategy scope."""

  def __init__(self, cfg: config_lib.TrainConfig, strategy: tf.distribute.Strategy):
    self.cfg = cfg
    self.strategy = strategy
    self.replicas = strategy.num_replicas_in_sync
    config_lib.check_replicas(cfg, self.replicas)
    with policy.implementation(cfg.impl):
      # Custom / fused paths are trusted only after matching the reference here (cached).
      selfcheck.ensure_trusted('training')
    self.chief = distribute.is_chief(strategy)
    self.multi_worker = distribute.is_multi_worker(strategy)
    self._lock = None
    if self.chief:
      # One training per run directory; a second one stops here (DirectoryLockedError).
      files.check_writable(cfg.run_dir, 'the run directory (--run_dir)')
      self._lock = files.lock_dir(cfg.run_dir, 'run directory')
    else:
      files.makedirs(cfg.run_dir)
    try:
      self._build()
    except BaseException:
      self.close()
      raise

  def _build(self):
    cfg, strategy = self.cfg, self.strategy
    self.monitor = None
    self.info = sg2tf_dataset.DatasetInfo.from_dir(cfg.data.data_dir)
    self._check_run_dir()

    keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
      mp = cfg.net_kwargs()  # Mixed precision: no new variables, checkpoints unchanged.
      self.G = net_configs.build_generator(cfg.G, **mp)
      self.D = net_configs.build_discriminator(cfg.D, **mp)
      self.G_ema = net_configs.build_generator(cfg.G, **mp)
      serialization.copy_weights(self.G, self.G_ema, 'G_ema')
      lazy = cfg.loss.lazy_regularization
      self.g_hparams = config_lib.lazy_adam_hparams(cfg.optimizer, cfg.loss.g_reg_interval,
                                                    lazy)
      self.d_hparams = config_lib.lazy_adam_hparams(cfg.optimizer, cfg.loss.d_reg_interval,
                                                    lazy)
      self.g_opt = self._adam(self.g_hparams, 'G_opt')
      self.d_opt = self._adam(self.d_hparams, 'D_opt')
      # Keras 3 optimizers under tf.distribute need their slots built inside the scope.
      self.g_opt.build(self.G.trainable_variables)
      self.d_opt.build(self.D.trainable_variables)
      self.pl_mean = tf.Variable(0.0, trainable=False, name='pl_mean')
      # Augmentation strength p: read by the phases on every replica, set by the loop (ADA).
      self.augment_p = tf.Variable(float(cfg.augment.p), trainable=False, name='augment_p')
    # Counters and the random stream live outside the strategy (one copy, cross-replica use).
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.nimg = tf.Variable(0, dtype=tf.int64, trainable=False, name='nimg')
    self.tick = tf.Variable(-1, dtype=tf.int64, trainable=False, name='tick')
    self.elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='elapsed_sec')
    self.rng = tf.random.Generator.from_seed(cfg.seed)
    # Progressive growing: the lod in effect (-1: none yet, as the official prev_lod).
    self.growing = cfg.schedule.growing
    self.lod = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name='lod')
    self.sched = self._initial_schedule()

    label_table = None
    if cfg.data.label_dim:
      label_table = tf.constant(self.info.load_labels())
    self.save_data_state = cfg.exact_data_resume and not self.multi_worker
    self.iterator = self._make_iterator(self.sched)
    self.augment, self.ada = self._make_augment()
    self.phases = phases_lib.Phases(
        strategy, self.G, self.D, self.G_ema, self.g_opt, self.d_opt, self.pl_mean, self.rng,
        global_batch=self.sched.minibatch_size, loss_cfg=cfg.loss, label_table=label_table,
        impl='ref' if cfg.jit else cfg.impl, jit_compile=cfg.jit,
        mixed_precision=cfg.mixed_precision, batch_gpu=cfg.batch_gpu, augment=self.augment,
        augment_p=self.augment_p, resolution=self.sched.resolution if self.growing else None)

    trackables = dict(G=self.G, D=self.D, G_ema=self.G_ema, G_opt=self.g_opt, D_opt=self.d_opt,
                      pl_mean=self.pl_mean, step=self.step, nimg=self.nimg, tick=self.tick,
                      elapsed_sec=self.elapsed, rng=self.rng)
    if self.save_data_state:
      trackables['data'] = self.iterator
    if self.augment is not None:
      # Only with augmentation, so noaug runs keep reading checkpoints written before it.
      trackables.update(augment_p=self.augment_p, ada_signs=self.ada.stats)
    if self.growing:
      trackables['lod'] = self.lod
    worker_id = 0 if self.chief else getattr(strategy.cluster_resolver, 'task_id', 1)
    self.checkpointer = checkpointing.Checkpointer(cfg.run_dir, cfg.keep_checkpoints,
                                                   chief=self.chief, worker_id=worker_id,
                                                   **trackables)
    self.monitor = monitoring.Monitor(cfg.run_dir, chief=self.chief)
    self.monitor.config(cfg.to_dict(), self._metric_tags())
    self.stats = monitoring.TickStats()
    self.phase_totals = {}  # phase -> [seconds, calls] over the whole run (benchmarks)
    self._grid_fn = tf.function(self._grid_batch, reduce_retracing=True)
    self._restore_or_init()
    if self.growing:
      self._apply_schedule(self.sched)
    if self.chief:
      config_lib.write_config(cfg)

  # ------------------------------------------------------------------ set-up

  def _metric_tags(self):
    """The scalars the HParams tab compares runs by: losses, and the metrics' results."""
    tags = ['Loss/G/loss', 'Loss/D/loss', 'Timing/sec_per_kimg']
    if self.cfg.metrics:
      tags += [f'Metrics/{r}' for m in self.cfg.metrics
               for r in metric_registry.result_names(m)]
    return tags

  def _make_iterator(self, sched):
    """The input pipeline at the schedule's resolution and global minibatch."""
    cfg = self.cfg
    data_kwargs = dict(mirror_augment=cfg.data.mirror, seed=cfg.seed,
                       with_labels=bool(cfg.data.label_dim),
                       shuffle_buffer=sg2tf_dataset.default_shuffle_buffer(
                           self.info, sched.resolution, cfg.data.shuffle_mb))
    if self.save_data_state:
      # tf.distribute's iterators cannot be checkpointed, plain tf.data ones can: read global
      # batches on this host and hand each replica its slice.
      return iter(sg2tf_dataset.make_dataset(self.info, sched.minibatch_size,
                                             sched.resolution, **data_kwargs))
    return iter(sg2tf_dataset.distribute(self.strategy, self.info, sched.minibatch_size,
                                         sched.resolution, **data_kwargs))

  def _schedule_at(self, nimg):
    cfg = self.cfg
    return schedule_lib.training_schedule(nimg, cfg.resolution, cfg.schedule, cfg.batch_size,
                                          cfg.optimizer.learning_rate, cfg.tick_kimg)

  def _initial_schedule(self):
    """The schedule at image 0, or (resuming a growing run) the one the checkpoint was in."""
    cfg = self.cfg
    path = self._resume_path()
    if not (self.growing and path):
      return self._schedule_at(0)
    try:
      lod = float(tf.compat.v1.train.NewCheckpointReader(path).get_tensor(
          'lod/.ATTRIBUTES/VARIABLE_VALUE'))
    except (tf.errors.NotFoundError, ValueError):
      raise ConfigError(f'checkpoint {path} has no progressive-growing state (lod): it was not '
                        'written by a growing run. Resume it with the same --cfg and growing '
                        'flags it was trained with.') from None
    return schedule_lib.schedule_at_lod(lod, cfg.resolution, cfg.schedule, cfg.batch_size,
                                        cfg.optimizer.learning_rate, cfg.tick_kimg)

  def _apply_schedule(self, new):
    """Puts a (growing) schedule into effect: lod, learning rates, data and phases."""
    cfg = self.cfg
    prev = float(self.lod.numpy())
    if cfg.schedule.reset_opt_for_new_lod and schedule_lib.needs_optimizer_reset(prev, new.lod):
      for opt in (self.g_opt, self.d_opt):
        _reset_optimizer_state(opt)
    if (new.resolution, new.minibatch_size) != (self.sched.resolution, self.sched.minibatch_size):
      self.iterator = self._make_iterator(new)
      if self.save_data_state:
        self.checkpointer.checkpoint.data = self.iterator
      self.phases.set_level(new.resolution, new.minibatch_size)
      logging.info('Progressive growing: %dx%d, minibatch %d, lr %g (kimg %.3f, lod %.3f).',
                   new.resolution, new.resolution, new.minibatch_size, new.lrate,
                   self.nimg.numpy() / 1000, new.lod)
    for net in (self.G, self.D, self.G_ema):
      net.set_lod(new.lod)
    self.lod.assign(new.lod)
    lazy = cfg.loss.lazy_regularization
    opt_cfg = dataclasses.replace(cfg.optimizer, learning_rate=new.lrate)
    self.g_hparams = config_lib.lazy_adam_hparams(opt_cfg, cfg.loss.g_reg_interval, lazy)
    self.d_hparams = config_lib.lazy_adam_hparams(opt_cfg, cfg.loss.d_reg_interval, lazy)
    self.g_opt.learning_rate = self.g_hparams[0]
    self.d_opt.learning_rate = self.d_hparams[0]
    self.sched = new

  def _adam(self, hparams, name):
    lr, b1, b2 = hparams
    return keras.optimizers.Adam(learning_rate=lr, beta_1=b1, beta_2=b2,
                                 epsilon=self.cfg.optimizer.epsilon, name=name)

  def _make_augment(self):
    """(AugmentPipe or None, AdaController or None) for cfg.augment."""
    cfg, aug = self.cfg, self.cfg.augment
    if aug.mode == 'noaug':
      return None, None
    pipe = augment_lib.AugmentPipe(aug.pipe, xla=cfg.jit)
    try:
      pipe.check_shape(cfg.resolution, cfg.resolution, cfg.data.channels)
    except ValueError as e:
      raise ConfigError(f'--augpipe={aug.pipe}: {e}') from None
    controller = ada_lib.AdaController(self.augment_p, aug.target, cfg.batch_size,
                                       interval=aug.interval, kimg=aug.kimg,
                                       adaptive=aug.mode == 'ada')
    return pipe, controller

  def _check_run_dir(self):
    """Finds what to resume from (checkpointing.find_resume) before anything is built or
    written; refuses, changing nothing, when checkpoints exist but none is intact."""
    cfg = self.cfg
    self.resume_point = None
    if cfg.resume not in ('latest', 'none'):
      reason = checkpointing.verify(cfg.resume)
      if reason:
        raise ConfigError(f'--resume={cfg.resume}: the checkpoint is damaged: {reason}. Pass '
                          'another checkpoint, or --resume=latest for the newest intact one.')
      return
    point = checkpointing.find_resume(cfg.run_dir)
    self.resume_point = point
    if point.latest is None:
      if point.damaged and cfg.resume == 'latest':
        listing = '; '.join(f'{p}: {r}' for p, r in point.damaged)
        raise checkpointing.CheckpointDamagedError(
            f'{cfg.run_dir} holds {len(point.damaged)} checkpoint(s) but none is intact '
            f'({listing}). Nothing was changed. Restore them from a backup, or pass '
            f'--resume=none to start a new training in this run directory (the damaged '
            f'checkpoints are then moved to {checkpointing.checkpoint_dir(cfg.run_dir)}/'
            f'{checkpointing.DAMAGED_DIR}/, not deleted).')
      if point.damaged:
        logging.warning('--resume=none: starting a new training in %s; its %d damaged '
                        'checkpoint(s) go to %s/%s/.', cfg.run_dir, len(point.damaged),
                        checkpointing.checkpoint_dir(cfg.run_dir), checkpointing.DAMAGED_DIR)
      return
    if cfg.resume == 'none':
      raise ConfigError(f'--resume=none but {cfg.run_dir} already holds checkpoints (the '
                        f'newest intact one is {point.latest}); resume with --resume=latest '
                        '(the default) or choose a new --run_dir.')
    path = os.path.join(cfg.run_dir, config_lib.CONFIG_NAME)
    if cfg.resume == 'latest' and files.isfile(path):
      old = config_lib.read_config(cfg.run_dir)
      diffs = [f'{who}.{k}: {getattr(getattr(old, who), k)!r} -> {v!r}'
               for who in ('G', 'D') for k, v in dataclasses.asdict(getattr(cfg, who)).items()
               if _norm(getattr(getattr(old, who), k)) != _norm(v)]
      if diffs:
        raise ConfigError(f'{cfg.run_dir} holds checkpoints of different networks ('
                          f'{"; ".join(diffs)}); use the same network flags to resume, or a '
                          'new --run_dir.')

  def _resume_path(self) -> Optional[str]:
    """The checkpoint to resume from: --resume's, or for 'latest' the intact one that
    _check_run_dir found (the state file may be damaged); None to start afresh."""
    if self.cfg.resume == 'latest':
      return self.resume_point.latest if self.resume_point else None
    return None if self.cfg.resume == 'none' else self.cfg.resume

  def _restore_or_init(self):
    cfg = self.cfg
    path = self._resume_path()
    self.checkpointer.prepare(self.resume_point, resumed=path)
    if self.chief:
      checkpointing.remove_run_dir_leftovers(cfg.run_dir)
    if path:
      self.checkpointer.restore(path)
      logging.info('Resuming at kimg %.3f (minibatch %d).', self.nimg.numpy() / 1000,
                   self.step.numpy())
      return
    if cfg.resume_pkl:
      from sg2tf import convert  # pylint: disable=g-import-not-at-top
      src_g, src_d, src_ema = convert.load_official_pkl(cfg.resume_pkl, impl=cfg.impl)
      for src, dst, who in ((src_g, self.G, 'G'), (src_d, self.D, 'D'),
                            (src_ema, self.G_ema, 'G_ema')):
        try:
          serialization.copy_weights(src, dst, who)
        except ValueError as e:
          raise ConfigError(f'--resume_pkl={cfg.resume_pkl}: {e} Match --cfg, the '
                            'resolution and the network flags to the pickle.') from None
      logging.info('Fine-tuning from %s.', cfg.resume_pkl)

  # ------------------------------------------------------------------ training

  def _ema_beta(self) -> float:
    cfg = self.cfg
    return config_lib.ema_beta(self.sched.minibatch_size, cfg.ema_kimg, int(self.nimg.numpy()),
                               cfg.ema_rampup)

  def _timed(self, name, fn, *args) -> Dict[str, float]:
    t0 = time.perf_counter()
    out = {k: float(v.numpy()) for k, v in fn(*args).items()}  # .numpy() waits for the step.
    dt = time.perf_counter() - t0
    self.stats.add_phase(name, dt)
    tot = self.phase_totals.setdefault(name, [0.0, 0])
    tot[0] += dt
    tot[1] += 1
    for k, v in out.items():
      if not np.isfinite(v):
        raise NonFiniteLossError(
            f'{k} = {v} in phase {name} at minibatch {int(self.step.numpy())} (kimg '
            f'{self.nimg.numpy() / 1000:.3f}); training stopped without saving. The last good '
            f'checkpoint is {self.checkpointer.latest or "none (nothing was saved yet)"}. Try '
            'a lower --lr, a higher --gamma, or another --seed.')
    return out

  def _next_batch(self):
    batch = next(self.iterator)
    if not self.save_data_state:
      return batch
    n = self.sched.minibatch_size // self.replicas

    def local(ctx):
      i = ctx.replica_id_in_sync_group
      return tf.nest.map_structure(lambda x: x[i * n:(i + 1) * n], batch)
    return self.strategy.experimental_distribute_values_from_function(local)

  def train_step(self):
    """One minibatch: Gmain, [Greg], Dmain + G_ema, [Dreg]. Returns the step's metrics."""
    cfg, ph = self.cfg, self.phases
    if self.growing and int(self.step.numpy()) % cfg.schedule.minibatch_repeats == 0:
      self._apply_schedule(self._schedule_at(int(self.nimg.numpy())))
    batch = self._next_batch()
    reals, labels = batch if cfg.data.label_dim else (batch, None)
    step = int(self.step.numpy())
    metrics = self._timed('Gmain', ph.g_main)
    if ph.lazy and ph.use_pl and step % cfg.loss.g_reg_interval == 0:
      metrics.update(self._timed('Greg', ph.g_reg))
    beta = tf.constant(self._ema_beta(), tf.float32)
    d_metrics = self._timed('Dmain', ph.d_main, reals, labels, beta)
    metrics.update(d_metrics)
    signs = [d_metrics['Loss/signs/real']]
    if ph.lazy and ph.use_r1 and step % cfg.loss.d_reg_interval == 0:
      r_metrics = self._timed('Dreg', ph.d_reg, reals, labels)
      signs.append(r_metrics['Loss/signs/real'])
      metrics.update(r_metrics)
      metrics['Loss/signs/real'] = float(np.mean(signs))  # Both D steps saw a full batch.
    self.step.assign_add(1)
    self.nimg.assign_add(self.sched.minibatch_size)
    if self.ada is not None:
      for s in signs:
        self.ada.observe(s, self.sched.minibatch_size)
      self.ada.update(int(self.step.numpy()))
    self.stats.add(metrics)
    return metrics

  def run(self, max_steps: Optional[int] = None):
    """Trains until cfg.total_kimg (or max_steps more minibatches). Returns the last metrics."""
    cfg = self.cfg
    total = int(round(cfg.total_kimg * 1000))
    if self.chief and int(self.nimg.numpy()) == 0 and int(self.tick.numpy()) < 0:
      self._initial_images()
    logging.info('Training for %.3f kimg from kimg %.3f: batch %d over %d replica(s), G lr '
                 '%.3g betas %.3g/%.3g, D lr %.3g betas %.3g/%.3g.', cfg.total_kimg,
                 self.nimg.numpy() / 1000, self.sched.minibatch_size, self.replicas,
                 *self.g_hparams, *self.d_hparams)
    self._tick_start_time = self._last_time = time.time()
    self._tick_start_nimg = int(self.nimg.numpy())
    metrics = {}
    steps = 0
    done = int(self.nimg.numpy()) >= total
    while not done:
      metrics = self.train_step()
      steps += 1
      nimg = int(self.nimg.numpy())
      done = nimg >= total
      tick_nimg = max(1, int(round(self.sched.tick_kimg * 1000)))
      if int(self.tick.numpy()) < 0 or nimg >= self._tick_start_nimg + tick_nimg or done:
        self._maintenance(done)
      if max_steps is not None and steps >= max_steps:
        break
    if done:
      self.export()
      if self.chief:  # A finished run leaves no temporaries of interrupted writes behind.
        self.checkpointer.remove_leftovers()
        checkpointing.remove_run_dir_leftovers(cfg.run_dir)
    return metrics

  def close(self):
    """Closes the event files and releases the run directory's lock."""
    if getattr(self, 'monitor', None) is not None:
      self.monitor.close()
    if self._lock is not None:
      self._lock.release()
      self._lock = None

  # ------------------------------------------------------------------ maintenance

  def _maintenance(self, done: bool):
    cfg = self.cfg
    now = time.time()
    self.elapsed.assign_add(now - self._last_time)
    self._last_time = now
    self.tick.assign_add(1)
    tick = int(self.tick.numpy())
    nimg = int(self.nimg.numpy())
    tick_sec = now - self._tick_start_time
    tick_kimg = (nimg - self._tick_start_nimg) / 1000
    self._tick_start_time, self._tick_start_nimg = now, nimg
    mem = monitoring.peak_memory_gb()
    self.monitor.progress(tick, nimg / 1000, cfg.total_kimg, float(self.elapsed.numpy()),
                          tick_sec, tick_kimg, mem, lod=self.sched.lod,
                          minibatch=self.sched.minibatch_size,
                          augment=None if self.augment is None else float(self.augment_p.numpy()))
    scalars = self.stats.means()
    scalars.update({
        'Loss/pl_mean': float(self.pl_mean.numpy()),
        'Progress/tick': tick, 'Progress/kimg': nimg / 1000,
        'Progress/lod': self.sched.lod, 'Progress/minibatch': self.sched.minibatch_size,
        'Progress/lr_G': self.g_hparams[0], 'Progress/lr_D': self.d_hparams[0],
        'Progress/ema_beta': self._ema_beta(),
        'Progress/augment': float(self.augment_p.numpy()) if self.augment is not None else 0.0,
        'Timing/sec_per_tick': tick_sec,
        'Timing/sec_per_kimg': tick_sec / tick_kimg if tick_kimg else 0.0,
        'Timing/img_per_sec': tick_kimg * 1000 / tick_sec if tick_sec > 0 else 0.0,
        'Timing/total_hours': float(self.elapsed.numpy()) / 3600,
        'Resources/peak_host_mem_gb': mem['host']})
    if 'gpu' in mem:
      scalars['Resources/peak_gpu_mem_gb'] = mem['gpu']
    for name, sec in self.stats.phase_sec.items():
      scalars[f'Timing/phase_{name}_ms'] = 1000 * sec / self.stats.phase_calls[name]
    self.monitor.scalars(nimg, scalars)
    self.stats.reset()
    if tick % cfg.image_snapshot_ticks == 0 or done:
      self.image_snapshot()
    if tick % cfg.checkpoint_ticks == 0 or done:
      self.save_checkpoint()
    if tick % cfg.network_snapshot_ticks == 0 or done:
      path = self.network_snapshot()
      if cfg.metrics and (not cfg.metrics_ticks or tick % cfg.metrics_ticks == 0 or done):
        self._run_metrics(path)
    elif cfg.metrics and cfg.metrics_ticks and tick % cfg.metrics_ticks == 0:
      self._run_metrics(self.network_snapshot())
    if cfg.export_ticks and tick % cfg.export_ticks == 0 and not done:
      self.export(name=f'networks-{nimg // 1000:06d}')
    # Snapshot work is not training time; keep it out of the next tick's sec/kimg.
    self._tick_start_time = self._last_time = time.time()

  def _metadata(self):
    from sg2tf import export as export_lib  # pylint: disable=g-import-not-at-top
    # Saved networks and exports travel: paths are reduced to their names (no machine paths).
    return export_lib.portable_metadata(
        {'training': {'run_dir': self.cfg.run_dir, 'nimg': int(self.nimg.numpy()),
                      'step': int(self.step.numpy()), 'config': self.cfg.to_dict()}})

  def _check_weights_finite(self):
    for net, who in ((self.G, 'G'), (self.D, 'D'), (self.G_ema, 'G_ema')):
      for v in net.variables:
        if not np.all(np.isfinite(np.asarray(v.numpy()))):
          raise NonFiniteLossError(f'{who} variable {v.path} holds NaN/Inf at minibatch '
                                   f'{int(self.step.numpy())}; not saving it. The last good '
                                   f'checkpoint is {self.checkpointer.latest}.')

  def save_checkpoint(self) -> str:
    self._check_weights_finite()
    return self.checkpointer.save(int(self.nimg.numpy()))

  def network_snapshot(self) -> Optional[str]:
    if not self.chief:
      return None
    self._check_weights_finite()
    return checkpointing.save_network_dir(
        checkpointing.snapshot_path(self.cfg.run_dir, int(self.nimg.numpy())), self.G, self.D,
        self.G_ema, self._metadata())

  def export(self, name='networks-final') -> Optional[str]:
    """Network directory + SavedModel of G_ema (export_run_networks)."""
    if not self.chief:
      return None
    self._check_weights_finite()
    return export_run_networks(self.cfg.run_dir, self.G, self.D, self.G_ema, self._metadata(),
                               name=name)

  def _run_metrics(self, network_dir):
    """Official metrics of G_ema (sg2tf.metrics) into metrics.jsonl and TensorBoard."""
    if network_dir is None:
      return
    from sg2tf.metrics import runner  # pylint: disable=g-import-not-at-top
    with policy.implementation(self.cfg.impl):
      runner.evaluate(self.G_ema, list(self.cfg.metrics), self.cfg.data.data_dir,
                      runner.Options(seed=self.cfg.seed, num_fakes=self.cfg.metrics_num_fakes,
                                     num_reals=self.cfg.metrics_num_fakes,
                                     feature_dir=self.cfg.feature_dir),
                      strategy=self.strategy,
                      network_name=network_dir, output_dir=self.cfg.run_dir,
                      step=int(self.nimg.numpy()))

  # ------------------------------------------------------------------ image grids

  def _grid_batch(self, z, c):
    # Untruncated, as the official snapshots (is_validation: no truncation).
    return self.G_ema(z, c, truncation_psi=1.0, noise_mode='const', impl=self.cfg.impl)

  def grid_latents(self):
    """The fixed latents (and labels) of the snapshot grid: the same for every snapshot."""
    cols, rows = self.cfg.grid_size
    n = cols * rows
    rnd = np.random.RandomState(self.cfg.seed + seeds.GRID_SEED_OFFSET)
    z = rnd.randn(n, self.cfg.G.z_dim).astype(np.float32)
    c = None
    if self.cfg.data.label_dim:
      labels = self.info.load_labels()
      c = labels[rnd.randint(0, len(labels), size=n)]
    return z, c

  def generate_grid(self, batch=16) -> np.ndarray:
    z, c = self.grid_latents()
    out = []
    for i in range(0, len(z), batch):
      zi = z[i:i + batch]
      ci = None if c is None else c[i:i + batch]
      out.append(self._grid_fn(tf.constant(zi), None if ci is None else tf.constant(ci)).numpy())
    return image_lib.grid(image_lib.to_uint8(np.concatenate(out)), *self.cfg.grid_size)

  def image_snapshot(self) -> Optional[str]:
    if not self.chief:
      return None
    nimg = int(self.nimg.numpy())
    return self.monitor.image(nimg, 'fakes', self.generate_grid(),
                              f'fakes{nimg // 1000:06d}.png')

  def _initial_images(self):
    cols, rows = self.cfg.grid_size
    n = min(cols * rows, self.info.count)
    ds = sg2tf_dataset.make_dataset(self.info, n, self.cfg.resolution, shuffle_buffer=0,
                                    repeat=False, verify=False, prefetch=None)
    reals = next(iter(ds)).numpy()
    self.monitor.image(0, 'reals', image_lib.grid(image_lib.to_uint8(reals), cols, rows),
                       'reals.png')
    self.monitor.image(0, 'fakes', self.generate_grid(), 'fakes_init.png')


def export_run_networks(run_dir: str, G, D, G_ema, metadata: dict,
                        name: str = 'networks-final') -> str:
  """The end-of-run export: the networks as a network directory (for resuming, eval_main.py)
  and G_ema as a portable SavedModel built from the reference ops (sg2tf.export.
  export_generator). Returns the network directory's path."""
  path = checkpointing.save_network_dir(checkpointing.export_path(run_dir, name), G, D, G_ema,
                                        metadata, what='exported networks')
  sm_name = 'saved_model' + name[len('networks'):] if name.startswith('networks') else name + '-sm'
  sm_name = sm_name.replace('-final', '')
  saved_model_export.export_generator(G_ema, checkpointing.export_path(run_dir, sm_name),
                                      overwrite=True, metadata=metadata)
  logging.info('Exported G_ema as a SavedModel: %s', checkpointing.export_path(run_dir, sm_name))
  return path


def _norm(v):
  return json.loads(json.dumps(v))


def _reset_optimizer_state(opt):
  """Official reset_optimizer_state: Adam's moments and step count back to their initial
  zeros (the learning rate is kept)."""
  lr = getattr(opt, '_learning_rate', None)
  for v in opt.variables:
    if v is not lr:
      v.assign(tf.zeros(v.shape, v.dtype))


def train(cfg: config_lib.TrainConfig, strategy: Optional[tf.distribute.Strategy] = None):
  """Trains a resolved config to the end; returns the Trainer."""
  strategy = strategy or distribute.make_strategy(cfg.strategy)
  trainer = Trainer(cfg, strategy)
  try:
    with sg2tf_dataset.translate_errors(trainer.info, cfg.resolution):
      trainer.run()
  finally:
    trainer.close()
  return trainer
