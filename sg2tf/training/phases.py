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

Options:
  batch_gpu   each replica runs its share of the minibatch in chunks of batch_gpu and sums
              the gradients (accumulate.py); the path-length target a and its gradient need
              the batch mean of the lengths, so with several chunks Greg first computes the
              lengths of all chunks, then each chunk's gradient with a fixed coefficient per
              sample (the same gradient, one more forward pass).
  augment     an AugmentPipe applied to every image D sees (reals, fakes, and inside R1, whose
              gradient is taken w.r.t. the un-augmented reals), with strength `augment_p` (a
              variable the loop updates, ADA). Each D call draws its own parameters.
  jit_compile each chunk's forward and backward pass is compiled with XLA (the reference ops
              must be used: XLA cannot compile the custom ops); the optimizer and the
              cross-replica updates around it are not.

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
from sg2tf.training import accumulate
from sg2tf.training import distribute
from sg2tf.training import losses
from sg2tf.training import sampling
from sg2tf.training import seeds

# Sub-stream keys of the augmentation parameters (beyond sampling.py's).
_AUG_G, _AUG_REAL, _AUG_FAKE, _AUG_REG = 1001, 1002, 1003, 1004


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
  the distributed (reals, labels) of the minibatch and d_main also the G_ema beta), and
  `gradients(phase, ...)` (one phase's gradients on one device, not applied).
  """

  def __init__(self, strategy, G, D, G_ema, g_opt, d_opt, pl_mean, rng, *, global_batch: int,
               loss_cfg, label_table: Optional[tf.Tensor] = None, impl=None,
               jit_compile: bool = False, mixed_precision: bool = False,
               batch_gpu: Optional[int] = None, augment=None, augment_p=None,
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
    self.augment, self.augment_p = augment, augment_p
    if augment is not None and augment_p is None:
      raise ValueError('Phases: augment needs augment_p (the augmentation strength variable).')
    self._batch_gpu_option = batch_gpu
    self.jit = bool(jit_compile)
    self.set_level(resolution, self.batch)

  def set_level(self, resolution: Optional[int], global_batch: int):
    """(Re)builds the phase functions for a growing level (None: no growing) and batch."""
    loss_cfg, batch_gpu = self.loss, self._batch_gpu_option
    self.resolution = resolution
    self.res = resolution or self.G.img_resolution
    self.batch = int(global_batch)
    self.pl_batch = max(1, self.batch // loss_cfg.pl_batch_shrink)
    self.pl_scale = losses.pl_noise_scale(self.res)
    self.r1_scale = (self.res / self.G.img_resolution) ** 2
    # Growing: D is told the level, so full-size images are level 0 (no switch over levels).
    self._disc = (self.D if resolution is None else
                  functools.partial(self.D, resolution=resolution))
    replicas = self.strategy.num_replicas_in_sync
    local = self.batch // replicas
    self.batch_gpu = int(batch_gpu or local)
    if local % self.batch_gpu:
      raise ValueError(f'Phases: {local} images per replica do not split into chunks of '
                       f'batch_gpu={self.batch_gpu}.')
    self.chunks = local // self.batch_gpu
    local_pl = max(1, self.pl_batch // replicas)
    self.pl_chunk = min(local_pl, max(1, self.batch_gpu // loss_cfg.pl_batch_shrink))
    if local_pl % self.pl_chunk:
      raise ValueError(f'Phases: {local_pl} path-length samples per replica do not split into '
                       f'chunks of {self.pl_chunk} (batch_gpu / pl_batch_shrink).')
    self.pl_chunks = local_pl // self.pl_chunk
    # The one-pass path-length gradient all-reduces inside the differentiated function; XLA
    # cannot compile that, and chunks cannot see each other: both use the two-pass form.
    self.pl_two_pass = self.pl_chunks > 1 or self.jit
    # Not _pl_one_pass: its batch mean is a cross-replica all-reduce (a merge_call), which
    # tf.distribute refuses inside a tf.function nested in strategy.run.
    chunk_fns = ('_g_main_chunk', '_d_main_chunk', '_d_reg_chunk', '_pl_lengths_chunk',
                 '_pl_grad_chunk')
    # Each pass is its own function: traced once although called before and inside the
    # accumulation loop, and the unit XLA compiles.
    for name in chunk_fns:
      setattr(self, name, tf.function(getattr(self, name), jit_compile=self.jit or None,
                                      reduce_retracing=True, autograph=False))
    # The phases hold no Python control flow on tensors; without AutoGraph tracing is seconds
    # faster (it would convert every function the networks and the augmentation call).
    kw = dict(reduce_retracing=True, autograph=False)
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

  def _r1(self, d_fn, reals, labels):
    """(logits, R1 penalty) of d_fn on reals, scaled for a growing level (see docstring)."""
    logits, gp = losses.r1_penalty(d_fn, reals, labels)
    return logits, gp * self.r1_scale if self.r1_scale != 1 else gp

  def _inputs(self, inputs):
    return sampling.GeneratorInputs(*inputs, resolution=self.resolution)

  # ------------------------------------------------------------------ cross-replica parts

  def _seed(self):
    return self.rng.uniform_full_int([2], tf.int64)

  def _update_w_avg(self, w_mean_per_replica):
    """The network's w_avg rule (MappingNetwork.moved_w_avg) on the replicas' mean batch w."""
    mapping = self.G.mapping
    w_mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, w_mean_per_replica, axis=None)
    distribute.update_mirrored(self.strategy, mapping.w_avg, mapping.moved_w_avg, w_mean)

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
    # Only augmentation is random here: without it no seed is drawn (the stream stays as it
    # was before augmentation existed).
    seed = self._seed() if self.augment is not None else None
    metrics = self.strategy.run(self._d_reg_replica, args=(seed, reals, labels))
    return _sum(self.strategy, metrics)

  def update_ema(self, beta):
    update_ema(self.strategy, self.G_ema, self.G, beta)

  # ------------------------------------------------------------------ replica functions

  def _apply(self, opt, grads, variables):
    if self.mixed_precision:
      # As StyleGAN2-ADA: a float16 overflow in one backward pass zeroes / bounds that
      # gradient entry instead of poisoning Adam's moments. (Gradients are float32 already:
      # the variables are.)
      grads = [tf.clip_by_value(tf.where(tf.math.is_nan(g), tf.zeros_like(g), g), -1e5, 1e5)
               for g in grads]
    opt.apply_gradients(zip(grads, variables))

  def _aug_params(self, seed, key, global_n):
    """This replica's rows of the augmentation draws for a global batch (None: no augment)."""
    if self.augment is None:
      return None
    shape = (self.res, self.res, self.G.img_channels)
    params = self.augment.sample(sampling.fold(seed, key), global_n, shape)
    return tf.nest.map_structure(lambda t: sampling.replica_rows(t, global_n), params)

  def _run_D(self, images, labels, aug):
    # Chunks are sliced with a traced index: give D (growing D checks it) the static shape.
    images = tf.ensure_shape(images, [None, self.res, self.res, self.G.img_channels])
    if self.augment is not None:
      images = self.augment(images, aug, tf.identity(self.augment_p))
    return self._disc(images, labels)

  def _split(self, num, size, fn, *structs):
    """sum over chunks i of fn(*rows of structs for chunk i)."""
    return accumulate.sum_over_chunks(
        num, lambda i: fn(*accumulate.rows(structs, i * size, size)))

  def _g_main_grads(self, seed):
    inputs = sampling.generator_inputs(self.G, seed, self.batch, self.loss.style_mixing_prob,
                                       self.label_table, resolution=self.resolution)
    aug = self._aug_params(seed, _AUG_G, self.batch)
    grads, metrics, w_mean = self._split(self.chunks, self.batch_gpu, self._g_main_chunk,
                                         _as_tuple(inputs), aug)
    w_means = [w_mean / self.chunks]
    pl_mean = None
    if not self.lazy and self.use_pl:
      g2, pl_metrics, pl_mean, w2 = self._pl_grads(
          sampling.fold(seed, seeds.PL_IN_G_MAIN_KEY), 1.0)
      grads = [a + b for a, b in zip(grads, g2)]
      metrics.update(pl_metrics)
      w_means.append(w2)
    return grads, metrics, w_means, pl_mean

  def _g_main_chunk(self, inputs, aug):
    G = self.G
    inputs = self._inputs(inputs)
    with tf.GradientTape() as tape:
      images, _, w_mean = sampling.generate(G, inputs)
      logits = self._run_D(images, inputs.labels, aug)
      total = losses.scale_to_global(losses.g_main_loss(logits), self.batch)
    return accumulate.gradients(tape, total, G.trainable_variables), {'Loss/G/loss': total}, w_mean

  def _g_main_replica(self, seed):
    grads, metrics, w_means, pl_mean = self._g_main_grads(seed)
    self._apply(self.g_opt, grads, self.G.trainable_variables)
    return metrics, w_means, pl_mean

  def _pl_grads(self, seed, weight_factor):
    """(grads, metrics, new pl_mean, batch-mean w) of the path-length regulariser."""
    G, n = self.G, self.pl_batch
    inputs = _as_tuple(sampling.generator_inputs(G, seed, n, self.loss.style_mixing_prob,
                                                 self.label_table, resolution=self.resolution))
    y = sampling.pl_noise(seed, n, self.res, G.img_channels, self.pl_scale)
    weight = float(weight_factor) * self.loss.pl_weight
    if not self.pl_two_pass:
      return self._pl_one_pass(inputs, y, tf.identity(self.pl_mean), weight)
    # Pass 1: the batch mean of the lengths over all chunks and replicas, hence the new a.
    total = self._split(self.pl_chunks, self.pl_chunk, self._pl_lengths_chunk, inputs, y)
    batch_mean = distribute.all_reduce_mean(total / (self.pl_chunks * self.pl_chunk))
    old = tf.identity(self.pl_mean)
    new_mean = old + self.loss.pl_decay * (batch_mean - old)
    # Pass 2: d/dl_i of sum_j (l_j - a)^2 with a depending on every l_j through the batch mean
    # is 2 ((l_i - a) - decay (mean - a)); each chunk back-propagates that fixed coefficient.
    grads, metrics, w_mean = self._split(
        self.pl_chunks, self.pl_chunk,
        lambda inp, yi: self._pl_grad_chunk(inp, yi, new_mean, batch_mean, weight), inputs, y)
    return grads, metrics, new_mean, w_mean / self.pl_chunks

  def _pl_lengths(self, inputs, y):
    G = self.G
    inputs = self._inputs(inputs)
    ws, w_mean = sampling.mapping(G, inputs)
    _, lengths = losses.path_lengths(lambda w: sampling.synthesis(G, w, inputs), ws, y)
    return lengths, w_mean

  def _pl_metrics(self, lengths, penalty):
    n = self.pl_batch
    return {'Loss/pl_lengths': losses.scale_to_global(lengths, n),
            'Loss/pl_penalty': losses.scale_to_global(penalty, n),
            'Loss/G/reg': losses.scale_to_global(penalty * self.loss.pl_weight, n)}

  def _pl_one_pass(self, inputs, y, pl_mean, weight):
    with tf.GradientTape() as tape:
      lengths, w_mean = self._pl_lengths(inputs, y)
      penalty, new_mean = losses.pl_penalty(lengths, pl_mean, self.loss.pl_decay)
      total = losses.scale_to_global(penalty * weight, self.pl_batch)
    grads = accumulate.gradients(tape, total, self.G.trainable_variables)
    return grads, self._pl_metrics(lengths, penalty), new_mean, w_mean

  def _pl_lengths_chunk(self, inputs, y):
    return tf.reduce_sum(self._pl_lengths(inputs, y)[0])

  def _pl_grad_chunk(self, inputs, y, new_mean, batch_mean, weight):
    with tf.GradientTape() as tape:
      lengths, w_mean = self._pl_lengths(inputs, y)
      coef = tf.stop_gradient(2 * ((lengths - new_mean) -
                                   self.loss.pl_decay * (batch_mean - new_mean)))
      total = losses.scale_to_global(coef * lengths * weight, self.pl_batch)
    grads = accumulate.gradients(tape, total, self.G.trainable_variables)
    return grads, self._pl_metrics(lengths, tf.square(lengths - new_mean)), w_mean

  def _g_reg_grads(self, seed):
    return self._pl_grads(seed, float(self.loss.g_reg_interval))

  def _g_reg_replica(self, seed):
    grads, metrics, pl_mean, w_mean = self._g_reg_grads(seed)
    self._apply(self.g_opt, grads, self.G.trainable_variables)
    return metrics, w_mean, pl_mean

  def _d_main_grads(self, seed, reals, labels):
    inputs = sampling.generator_inputs(self.G, seed, self.batch, self.loss.style_mixing_prob,
                                       resolution=self.resolution)
    inputs.labels = labels
    reals = self._reals(reals)
    aug = (self._aug_params(seed, _AUG_REAL, self.batch),
           self._aug_params(seed, _AUG_FAKE, self.batch))
    grads, metrics, w_mean = self._split(self.chunks, self.batch_gpu, self._d_main_chunk,
                                         _as_tuple(inputs), reals, aug)
    return grads, metrics, w_mean / self.chunks

  def _d_main_chunk(self, inputs, reals, aug):
    G, D = self.G, self.D
    inputs = self._inputs(inputs)
    labels = inputs.labels
    aug_real, aug_fake = aug
    fakes, _, w_mean = sampling.generate(G, inputs)
    fakes = tf.stop_gradient(fakes)
    d_real = lambda x, c: self._run_D(x, c, aug_real)  # pylint: disable=unnecessary-lambda-assignment
    with tf.GradientTape() as tape:
      if not self.lazy and self.use_r1:
        real_logits, gp = self._r1(d_real, reals, labels)
      else:
        real_logits = d_real(reals, labels)
      fake_logits = self._run_D(fakes, labels, aug_fake)
      total = losses.scale_to_global(losses.d_main_loss(real_logits, fake_logits), self.batch)
      metrics = {'Loss/D/loss': total,
                 'Loss/scores/real': losses.scale_to_global(
                     tf.cast(real_logits[:, 0], tf.float32), self.batch),
                 'Loss/scores/fake': losses.scale_to_global(
                     tf.cast(fake_logits[:, 0], tf.float32), self.batch),
                 'Loss/signs/real': _signs(real_logits, self.batch)}
      if not self.lazy and self.use_r1:
        reg = gp * (self.loss.r1_gamma * 0.5)
        total = total + losses.scale_to_global(reg, self.batch)
        metrics['Loss/r1_penalty'] = losses.scale_to_global(gp, self.batch)
        metrics['Loss/D/reg'] = losses.scale_to_global(reg, self.batch)
    return accumulate.gradients(tape, total, D.trainable_variables), metrics, w_mean

  def _d_main_replica(self, seed, reals, labels):
    grads, metrics, w_mean = self._d_main_grads(seed, reals, labels)
    self._apply(self.d_opt, grads, self.D.trainable_variables)
    return metrics, w_mean

  def _d_reg_grads(self, seed, reals, labels):
    aug = None if seed is None else self._aug_params(seed, _AUG_REG, self.batch)
    reals = self._reals(reals)
    return self._split(self.chunks, self.batch_gpu, self._d_reg_chunk, reals, labels, aug)

  def _d_reg_chunk(self, reals, labels, aug):
    D = self.D
    with tf.GradientTape() as tape:
      logits, gp = self._r1(lambda x, c: self._run_D(x, c, aug), reals, labels)
      reg = gp * (self.loss.r1_gamma * 0.5)
      total = losses.scale_to_global(reg * float(self.loss.d_reg_interval), self.batch)
    metrics = {'Loss/r1_penalty': losses.scale_to_global(gp, self.batch),
               'Loss/D/reg': losses.scale_to_global(reg, self.batch),
               'Loss/signs/real': _signs(logits, self.batch)}
    return accumulate.gradients(tape, total, D.trainable_variables), metrics

  def _d_reg_replica(self, seed, reals, labels):
    grads, metrics = self._d_reg_grads(seed, reals, labels)
    self._apply(self.d_opt, grads, self.D.trainable_variables)
    return metrics

  # ------------------------------------------------------------------ inspection

  def gradients(self, phase: str, seed, reals=None, labels=None):
    """(gradients, metrics) of one phase ('Gmain', 'Greg', 'Dmain', 'Dreg') for one device,
    without applying them or updating any state. Call outside strategy.run."""
    fns = {'Gmain': lambda: self._g_main_grads(seed)[:2],
           'Greg': lambda: self._g_reg_grads(seed)[:2],
           'Dmain': lambda: self._d_main_grads(seed, reals, labels)[:2],
           'Dreg': lambda: self._d_reg_grads(
               seed if self.augment is not None else None, reals, labels)}
    return tf.function(self._scoped(fns[phase]), autograph=False)()


def _as_tuple(inputs: sampling.GeneratorInputs):
  """GeneratorInputs as a plain tuple (for tf.nest and tf.function arguments)."""
  return (inputs.z, inputs.z2, inputs.cutoff, list(inputs.noise), inputs.labels)


def _signs(logits, global_batch):
  """Sum of sign(D(x_real)) / global batch: the replicas sum to the r_t heuristic of ADA."""
  return losses.scale_to_global(tf.sign(tf.cast(logits[:, 0], tf.float32)), global_batch)
