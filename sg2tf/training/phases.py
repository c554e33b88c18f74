"""The four training phases of StyleGAN2, each one `tf.function` around `strategy.run`.

Per minibatch, in the official order (training_loop.py):
  Gmain              G step on the non-saturating loss
  Greg  (every 4)    G step on the path-length penalty x 4 (half-size batch)
  Dmain (+ G_ema)    D step on the logistic loss; G_ema moves toward G
  Dreg  (every 16)   D step on the R1 penalty x 16
Each phase draws one seed from the run's tf.random.Generator in cross-replica context (see
sampling.py), runs the replica function on every replica, sums the per-replica metrics
(each already divided by the global batch) and applies the cross-replica state updates
(w_avg, pl_mean, G_ema) to every replica's copy. Adam's state is shared by the main and the
regularisation steps of a network (one optimizer each), as in the official code.

Without lazy regularisation (config b) the penalties join the main phases every minibatch
with weight 1 and Greg / Dreg are never run.

Progressive growing (configs a-d): `set_level(resolution, global_batch)` retraces the phases
for one level. G and D then run at that resolution (see sg2tf/networks/growing.py), the
reals are faded in-graph by D's lod as the official FadeLOD does, and the R1 penalty is
scaled by (resolution / R)^2: the official penalty is taken w.r.t. the reals upsampled to
R x R, whose gradient is the low-resolution one spread over (R / resolution)^2 pixels.
Path length draws its noise at the level's resolution scaled by 1/resolution, the same
distribution as the official full-size noise summed over each upsampled block.
"""

import functools
from typing import Dict, Optional

import tensorflow as tf

from sg2tf.custom_ops import policy
from sg2tf.networks import growing
from sg2tf.training import distribute
from sg2tf.training import losses
from sg2tf.training import sampling


def _sum(strategy, per_replica: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
          for k, v in per_replica.items()}


def _first(strategy, value):
  """One replica's copy of a value that is identical on all replicas."""
  return strategy.experimental_local_results(value)[0]


def update_ema(strategy, G_ema, G, beta):
  """G_ema <- G + (G_ema - G) * beta for trainables; non-trainables (w_avg, noise) copied.

  The official Gs.setup_as_moving_average_of(G, beta) with beta_nontrainable = 0.
  """
  beta = tf.cast(beta, tf.float32)
  for e, v in zip(G_ema.variables, G.variables):
    if v.trainable:
      distribute.update_mirrored(strategy, e, lambda ev, vv, b: vv + (ev - vv) * b, v, beta)
    else:
      distribute.update_mirrored(strategy, e, lambda _, vv: vv, v)


class Phases:
  """Builds and runs the phase functions for given networks, optimizers and settings.

  Attributes of interest: `g_main`, `g_reg`, `d_main`, `d_reg` (tf.functions; the D ones take
  the distributed (reals, labels) of the minibatch and d_main also the G_ema beta).
  """

  def __init__(self, strategy, G, D, G_ema, g_opt, d_opt, pl_mean, rng, *, global_batch: int,
               loss_cfg, label_table: Optional[tf.Tensor] = None, impl=None,
               jit_compile: bool = False, mixed_precision: bool = False,
               resolution: Optional[int] = None):
    self.strategy = strategy
    self.G, self.D, self.G_ema = G, D, G_ema
    self.g_opt, self.d_opt = g_opt, d_opt
    self.pl_mean = pl_mean
    self.rng = rng
    self.batch = int(global_batch)
    self.loss = loss_cfg
    self.label_table = label_table
    self.impl = impl
    self.mixed_precision = bool(mixed_precision)
    self.lazy = bool(loss_cfg.lazy_regularization)
    self.use_pl = loss_cfg.pl_weight > 0
    self.use_r1 = loss_cfg.r1_gamma > 0
    self._jit_compile = jit_compile
    self.set_level(resolution, self.batch)

  def set_level(self, resolution: Optional[int], global_batch: int):
    """(Re)builds the phase functions for a growing level (None: no growing) and batch."""
    self.resolution = resolution
    self.res = resolution or self.G.img_resolution
    self.batch = int(global_batch)
    self.pl_batch = max(1, self.batch // self.loss.pl_batch_shrink)
    self.pl_scale = losses.pl_noise_scale(self.res)
    self.r1_scale = (self.res / self.G.img_resolution) ** 2
    # Growing: D is told the level, so full-size images are level 0 (no switch over levels).
    self._disc = (self.D if resolution is None else
                  functools.partial(self.D, resolution=resolution))
    kw = dict(jit_compile=self._jit_compile, reduce_retracing=True)
    self.g_main = tf.function(self._scoped(self._g_main), **kw)
    self.g_reg = tf.function(self._scoped(self._g_reg), **kw)
    self.d_main = tf.function(self._scoped(self._d_main), **kw)
    self.d_reg = tf.function(self._scoped(self._d_reg), **kw)

  def _scoped(self, fn):
    """fn traced under the run's op implementation (the policy, sg2tf.custom_ops)."""
    @functools.wraps(fn)
    def wrapped(*args):
      with policy.implementation(self.impl):
        return fn(*args)
    return wrapped

  def _reals(self, reals):
    """Growing: the official FadeLOD of the reals by D's lod (identity otherwise)."""
    if self.resolution is None:
      return reals
    level = growing.level_of(self.resolution, self.D.img_resolution)
    frac = tf.clip_by_value(tf.cast(self.D.lod, tf.float32) - level, 0.0, 1.0)
    return growing.fade_reals(reals, frac)

  def _r1(self, reals, labels):
    logits, gp = losses.r1_penalty(self._disc, reals, labels)
    return logits, gp * self.r1_scale if self.r1_scale != 1 else gp

  # ------------------------------------------------------------------ cross-replica parts

  def _seed(self):
    return self.rng.uniform_full_int([2], tf.int64)

  def _update_w_avg(self, w_mean_per_replica):
    mapping = self.G.mapping
    w_mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, w_mean_per_replica, axis=None)
    beta = mapping.w_avg_beta
    distribute.update_mirrored(self.strategy, mapping.w_avg,
                               lambda avg, m: m + (avg - m) * beta, w_mean)

  def _update_pl_mean(self, new_mean_per_replica):
    value = _first(self.strategy, new_mean_per_replica)
    distribute.update_mirrored(self.strategy, self.pl_mean, lambda _, v: v, value)

  def _g_main(self):
    seed = self._seed()
    metrics, w_means, pl_mean = self.strategy.run(self._g_main_replica, args=(seed,))
    for w in w_means:
      self._update_w_avg(w)
    if pl_mean is not None:
      self._update_pl_mean(pl_mean)
    return _sum(self.strategy, metrics)

  def _g_reg(self):
    seed = self._seed()
    metrics, w_mean, pl_mean = self.strategy.run(self._g_reg_replica, args=(seed,))
    self._update_w_avg(w_mean)
    self._update_pl_mean(pl_mean)
    return _sum(self.strategy, metrics)

  def _d_main(self, reals, labels, ema_beta):
    seed = self._seed()
    metrics, w_mean = self.strategy.run(self._d_main_replica, args=(seed, reals, labels))
    self._update_w_avg(w_mean)
    self.update_ema(ema_beta)
    return _sum(self.strategy, metrics)

  def _d_reg(self, reals, labels):
    metrics = self.strategy.run(self._d_reg_replica, args=(reals, labels))
    return _sum(self.strategy, metrics)

  def update_ema(self, beta):
    update_ema(self.strategy, self.G_ema, self.G, beta)

  # ------------------------------------------------------------------ replica functions

  def _apply(self, opt, loss, tape, variables):
    grads = tape.gradient(loss, variables)
    # Like the official optimizer, a variable the term does not depend on (e.g. the last
    # biases under R1 / path length) gets a zero gradient: Adam's moments still decay.
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    if self.mixed_precision:
      # As StyleGAN2-ADA: a float16 overflow in one backward pass zeroes / bounds that
      # gradient entry instead of poisoning Adam's moments. (Gradients are float32 already:
      # the variables are.)
      grads = [tf.clip_by_value(tf.where(tf.math.is_nan(g), tf.zeros_like(g), g), -1e5, 1e5)
               for g in grads]
    opt.apply_gradients(zip(grads, variables))

  def _pl_terms(self, seed, weight_factor):
    """(scaled loss, metrics, new pl_mean, batch-mean w) of the path-length regulariser."""
    G, n = self.G, self.pl_batch
    inputs = sampling.generator_inputs(G, seed, n, self.loss.style_mixing_prob,
                                       self.label_table, resolution=self.resolution)
    ws, w_mean = sampling.mapping(G, inputs)
    y = sampling.pl_noise(seed, n, self.res, G.img_channels, self.pl_scale)
    _, lengths = losses.path_lengths(lambda w: sampling.synthesis(G, w, inputs),
                                     ws, y)
    penalty, new_mean = losses.pl_penalty(lengths, tf.identity(self.pl_mean),
                                          self.loss.pl_decay)
    reg = penalty * self.loss.pl_weight
    total = losses.scale_to_global(reg * weight_factor, n)
    metrics = {'Loss/pl_lengths': losses.scale_to_global(lengths, n),
               'Loss/pl_penalty': losses.scale_to_global(penalty, n),
               'Loss/G/reg': losses.scale_to_global(reg, n)}
    return total, metrics, new_mean, w_mean

  def _g_main_replica(self, seed):
    G, D = self.G, self._disc
    inputs = sampling.generator_inputs(G, seed, self.batch, self.loss.style_mixing_prob,
                                       self.label_table, resolution=self.resolution)
    pl_mean = None
    with tf.GradientTape() as tape:
      images, _, w_mean = sampling.generate(G, inputs)
      logits = D(images, inputs.labels)
      total = losses.scale_to_global(losses.g_main_loss(logits), self.batch)
      metrics = {'Loss/G/loss': total}
      w_means = [w_mean]
      if not self.lazy and self.use_pl:
        reg, pl_metrics, pl_mean, w2 = self._pl_terms(sampling.fold(seed, 99), 1.0)
        total = total + reg
        metrics.update(pl_metrics)
        w_means.append(w2)
    self._apply(self.g_opt, total, tape, G.trainable_variables)
    return metrics, w_means, pl_mean

  def _g_reg_replica(self, seed):
    with tf.GradientTape() as tape:
      total, metrics, pl_mean, w_mean = self._pl_terms(seed, float(self.loss.g_reg_interval))
    self._apply(self.g_opt, total, tape, self.G.trainable_variables)
    return metrics, w_mean, pl_mean

  def _d_main_replica(self, seed, reals, labels):
    G, D = self.G, self._disc
    inputs = sampling.generator_inputs(G, seed, self.batch, self.loss.style_mixing_prob,
                                       resolution=self.resolution)
    inputs.labels = labels
    reals = self._reals(reals)
    fakes, _, w_mean = sampling.generate(G, inputs)
    fakes = tf.stop_gradient(fakes)
    with tf.GradientTape() as tape:
      if not self.lazy and self.use_r1:
        real_logits, gp = self._r1(reals, labels)
      else:
        real_logits = D(reals, labels)
      fake_logits = D(fakes, labels)
      total = losses.scale_to_global(losses.d_main_loss(real_logits, fake_logits), self.batch)
      metrics = {'Loss/D/loss': total,
                 'Loss/scores/real': losses.scale_to_global(
                     tf.cast(real_logits[:, 0], tf.float32), self.batch),
                 'Loss/scores/fake': losses.scale_to_global(
                     tf.cast(fake_logits[:, 0], tf.float32), self.batch)}
      if not self.lazy and self.use_r1:
        reg = gp * (self.loss.r1_gamma * 0.5)
        total = total + losses.scale_to_global(reg, self.batch)
        metrics['Loss/r1_penalty'] = losses.scale_to_global(gp, self.batch)
        metrics['Loss/D/reg'] = losses.scale_to_global(reg, self.batch)
    self._apply(self.d_opt, total, tape, self.D.trainable_variables)
    return metrics, w_mean

  def _d_reg_replica(self, reals, labels):
    D = self.D
    reals = self._reals(reals)
    with tf.GradientTape() as tape:
      _, gp = self._r1(reals, labels)
      reg = gp * (self.loss.r1_gamma * 0.5)
      total = losses.scale_to_global(reg * float(self.loss.d_reg_interval), self.batch)
    self._apply(self.d_opt, total, tape, D.trainable_variables)
    return {'Loss/r1_penalty': losses.scale_to_global(gp, self.batch),
            'Loss/D/reg': losses.scale_to_global(reg, self.batch)}
