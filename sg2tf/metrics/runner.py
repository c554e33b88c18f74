"""Runs the official metrics on a generator: registry, sampling over replicas, reporting.

    results = evaluate(G, ['fid50k', 'pr50k3'], data='datasets/ffhq', options=Options(),
                       strategy=strategy, network_name='network-snapshot-001000',
                       output_dir=run_dir, step=kimg)

Each result is logged, appended as one JSON line to `<output_dir>/metrics.jsonl` and written
as TensorBoard scalars `Metrics/<name>` (the official autosummary names) at `step`.
`format_table(results)` gives the stdout table. The training loop calls `evaluate` too.

Sample counts follow the official definitions unless `Options.num_fakes` / `num_reals`
reduce them. The table, the log and the JSON line report the counts actually used
(`num_fakes`, `num_reals`: the reals that went into the statistics, which is fewer than asked
when the dataset is smaller); anything short of the protocol is marked
(`official_sample_counts: false`, a note starting `REDUCED sample counts:` that says what was
used, what the protocol asks and whether the dataset was too small).
"""

import dataclasses
import datetime
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence
import zlib

from absl import logging
import numpy as np
import tensorflow as tf

from sg2tf import loading
from sg2tf.metrics import feature_nets
from sg2tf.metrics import fid as fid_lib
from sg2tf.metrics import iscore as is_lib
from sg2tf.metrics import ppl as ppl_lib
from sg2tf.metrics import pr as pr_lib
from sg2tf.metrics import real_data
from sg2tf.metrics import registry
from sg2tf.metrics import stats_cache
from sg2tf.utils import files
from sg2tf.utils import images as image_lib
from sg2tf.utils import progress as progress_lib

# The registry lives in the TF-free sg2tf.metrics.registry; these names stay importable here.
MetricSpec = registry.MetricSpec
METRICS = registry.METRICS
check_metric_names = registry.check_metric_names
result_names = registry.result_names


@dataclasses.dataclass(frozen=True)
class Options:
  """How to run the metrics (not what they are)."""
  feature_dir: Optional[str] = None
  cache_dir: Optional[str] = None
  download: bool = True
  num_fakes: Optional[int] = None  # None = the official count
  num_reals: Optional[int] = None  # None = the official count (pr50k3: = num_fakes)
  batch_per_replica: int = 8  # images (PPL: half as many pairs)
  seed: int = 0
  truncation_psi: float = 1.0  # the official protocols use 1
  pr_block_size: int = pr_lib.DEFAULT_ROW_BATCH
  progress_every_s: float = 15.0


@dataclasses.dataclass(frozen=True)
class MetricResult:
  metric: str
  results: Dict[str, float]  # official result names, e.g. pr50k3_precision
  num_fakes: int
  num_reals: int
  official_sample_counts: bool
  seconds: float
  network: str = ''
  dataset: str = ''
  note: str = ''
  feature_net: str = ''  # file names + sha256 of the feature network weights

  @property
  def value(self) -> float:
    return next(iter(self.results.values()))

  def to_json(self, step=None) -> Dict[str, object]:
    d = dataclasses.asdict(self)
    d.update(value=self.value, step=step,
             time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))
    return d


class _Replicas:
  """Runs a tf.function on global batches split evenly over the strategy's replicas."""

  def __init__(self, strategy: Optional[tf.distribute.Strategy], batch_per_replica: int):
    self.strategy = strategy or tf.distribute.get_strategy()
    self.per_replica = int(batch_per_replica)
    if self.per_replica < 1:
      raise ValueError(f'batch size per replica must be >= 1, got {batch_per_replica}')
    self.global_batch = self.per_replica * self.strategy.num_replicas_in_sync

  def run(self, fn: Callable, *arrays: np.ndarray) -> List[np.ndarray]:
    """fn(*per_replica_tensors) -> tensor or tuple; arrays have <= global_batch rows."""
    n = arrays[0].shape[0]
    if n > self.global_batch:
      raise ValueError(f'_Replicas.run: {n} rows > global batch {self.global_batch}')
    padded = [np.concatenate([a, np.repeat(a[-1:], self.global_batch - n, axis=0)])
              if n < self.global_batch else a for a in arrays]
    b = self.per_replica

    def value_fn(ctx):
      i = ctx.replica_id_in_sync_group
      return tuple(tf.constant(a[i * b:(i + 1) * b]) for a in padded)

    inputs = self.strategy.experimental_distribute_values_from_function(value_fn)
    out = self.strategy.run(fn, args=inputs)
    out = out if isinstance(out, (tuple, list)) else (out,)
    # One gather per tensor: gathering a tuple of PerReplica values in one call returns only
    # the first replica's part (TF 2.21).
    return [self.strategy.gather(o, axis=0).numpy()[:n] for o in out]


class _Context:
  """What one evaluate() call shares between metrics."""

  def __init__(self, G, data, options, strategy, network_name):
    self.G, self.data, self.opt = G, data, options
    self.replicas = _Replicas(strategy, options.batch_per_replica)
    self.network_name = network_name
    self.data_path, self.data_shape = real_data.find_tfrecord(data) if data else (None, None)
    self._data_hash = None

  def net(self, kind):
    with self.replicas.strategy.scope():
      return feature_nets.get(kind, self.opt.feature_dir, self.opt.download)

  def data_key(self, stat: str, net_kind: str, num_reals: Optional[int]) -> Dict[str, object]:
    if self.data_path is None:
      raise ValueError('this metric needs real images: pass --data=<TFRecord dataset dir>.')
    if self._data_hash is None:
      self._data_hash = real_data.dataset_hash(self.data_path)
    return dict(stat=stat, dataset=self._data_hash, file=os.path.basename(self.data_path),
                shape=list(self.data_shape), num_reals=num_reals if num_reals else 'all',
                net=feature_nets.identity(net_kind, self.opt.feature_dir, self.opt.download))

  def real_features(self, what: str, feature_fn, num_reals: Optional[int],
                    stats: fid_lib.FeatureStats) -> fid_lib.FeatureStats:
    step = tf.function(lambda images: feature_fn(images))
    total = num_reals
    if total is None:
      c, h, w = self.data_shape
      total = files.getsize(self.data_path) // (c * h * w + 40)  # approximate, for the ETA
    progress = progress_lib.Progress(total, f'{what} reals', 'img', self.opt.progress_every_s)
    for images in real_data.real_image_batches(self.data_path, self.replicas.global_batch,
                                               num_reals):
      stats.append(self.replicas.run(step, images)[0])
      progress.update(stats.num_items)
    progress.update(stats.num_items, force=True)
    return stats

  def fake_outputs(self, what: str, fn, num: int, rng: np.random.Generator,
                   sinks: Sequence[fid_lib.FeatureStats], noise_mode='random'):
    """Generates `num` images, runs fn(uint8 images) -> tuple, appends output i to sinks[i]."""
    G, psi = self.G, self.opt.truncation_psi

    @tf.function
    def step(z):
      images = G(z, truncation_psi=psi, noise_mode=noise_mode)  # [B, H, W, C]
      out = fn(image_lib.to_uint8_tf(images))
      return out if isinstance(out, tuple) else (out,)

    progress = progress_lib.Progress(num, f'{what} fakes', 'img', self.opt.progress_every_s)
    done = 0
    while done < num:
      n = min(self.replicas.global_batch, num - done)
      z = rng.standard_normal([n, int(G.z_dim)]).astype(np.float32)
      for sink, out in zip(sinks, self.replicas.run(step, z)):
        sink.append(out)
      done += n
      progress.update(done)
    progress.update(done, force=True)


def _counts(spec: MetricSpec, opt: Options):
  fakes = opt.num_fakes or spec.num_fakes
  reals = spec.num_reals
  if spec.kind == 'pr':
    reals = opt.num_reals or (opt.num_fakes or spec.num_reals)
  elif reals != 0 and opt.num_reals:
    reals = opt.num_reals
  official = fakes == spec.num_fakes and reals == spec.num_reals
  return fakes, reals, official


def sample_note(spec: MetricSpec, fakes: int, asked_reals: Optional[int], used_reals: int):
  """(official, note) from the counts actually used: empty note when they are the
  protocol's; else 'REDUCED sample counts: ...' naming each shortfall and its cause."""
  parts = []
  if fakes != spec.num_fakes:
    parts.append(f'{fakes} fakes (protocol: {spec.num_fakes})')
  if spec.num_reals != 0:
    if spec.num_reals is None:  # all the reals there are
      if asked_reals is not None:
        parts.append(f'{used_reals} reals (protocol: the whole dataset)')
    elif used_reals != spec.num_reals:
      small = asked_reals is None or used_reals < asked_reals
      parts.append(f'{used_reals} reals (protocol: {spec.num_reals}' +
                   (f'; the dataset holds only {used_reals} images)' if small else ')'))
  if not parts:
    return True, ''
  return False, 'REDUCED sample counts: ' + ', '.join(parts)


def _rng(opt: Options, name: str, stream: int = 0) -> np.random.Generator:
  return np.random.default_rng([opt.seed, zlib.crc32(name.encode()), stream])


def _run_fid(ctx: _Context, spec, fakes, reals) -> Dict[str, float]:
  net = ctx.net('inception')
  key = ctx.data_key('inception2015_pool3_mean_cov', 'inception', reals)

  def compute():
    st = ctx.real_features(spec.name, net.features, reals, fid_lib.FeatureStats())
    mu, sigma = st.get_mean_cov()
    return {'mu': mu, 'sigma': sigma, 'num_reals': np.array(st.num_items)}

  real = stats_cache.get_or_compute(ctx.opt.cache_dir, key, f'fid-{spec.name}', compute)
  fake = fid_lib.FeatureStats()
  ctx.fake_outputs(spec.name, net.features, fakes, _rng(ctx.opt, spec.name), [fake])
  mu, sigma = fake.get_mean_cov()
  value = fid_lib.frechet_distance(mu, sigma, real['mu'], real['sigma'])
  return {spec.name: value}, int(real['num_reals'])


def _run_is(ctx: _Context, spec, fakes, reals) -> Dict[str, float]:
  del reals
  net = ctx.net('inception')
  probs = fid_lib.FeatureStats(capture_mean_cov=False, capture_all=True)
  ctx.fake_outputs(spec.name, lambda im: tf.nn.softmax(net(im)[1]), fakes,
                   _rng(ctx.opt, spec.name), [probs])
  mean, std = is_lib.inception_score(probs.get_all(), spec.num_splits)
  return {f'{spec.name}_mean': mean, f'{spec.name}_std': std}, 0


def _run_pr(ctx: _Context, spec, fakes, reals) -> Dict[str, float]:
  net = ctx.net('vgg16')
  key = ctx.data_key('vgg16_fc2_features', 'vgg16', reals)

  block = ctx.opt.pr_block_size

  def compute():
    st = ctx.real_features(spec.name, net.features, reals,
                           fid_lib.FeatureStats(capture_mean_cov=False, capture_all=True))
    feats = st.get_all()
    # The reals' k-NN radii are a quarter of the work; they are cached with the features.
    return {'features': feats, 'radii': pr_lib.knn_radii(feats, spec.k, block, block)}

  key['k'] = spec.k
  real = stats_cache.get_or_compute(ctx.opt.cache_dir, key, f'pr-{spec.name}', compute)
  fake = fid_lib.FeatureStats(capture_mean_cov=False, capture_all=True)
  ctx.fake_outputs(spec.name, net.features, fakes, _rng(ctx.opt, spec.name), [fake])
  p, r = pr_lib.precision_recall(real['features'], fake.get_all(), k=spec.k,
                                 row_batch_size=block, col_batch_size=block,
                                 real_radii=real['radii'])
  return {f'{spec.name}_precision': p, f'{spec.name}_recall': r}, len(real['features'])


def _run_ppl(ctx: _Context, spec, fakes, reals) -> Dict[str, float]:
  del reals
  lpips = ctx.net('lpips')
  dist = ppl_lib.make_distance_fn(ctx.G, lpips, spec.ppl, ctx.opt.truncation_psi)
  pairs = _Replicas(ctx.replicas.strategy, max(1, ctx.opt.batch_per_replica // 2))
  rng_z, rng_t = _rng(ctx.opt, spec.name, 0), _rng(ctx.opt, spec.name, 1)
  z_dim = int(ctx.G.z_dim)

  @tf.function
  def step(z, t):
    return dist(tf.reshape(z, [-1, z_dim]), t)

  out = fid_lib.FeatureStats(capture_mean_cov=False, capture_all=True)
  progress = progress_lib.Progress(fakes, f'{spec.name} pairs', 'pairs',
                                  ctx.opt.progress_every_s)
  while out.num_items < fakes:
    n = min(pairs.global_batch, fakes - out.num_items)
    z01, t = ppl_lib.sample_inputs(rng_z, rng_t, n, z_dim, spec.ppl.sampling)
    # Pairs stay together on a replica: [n, 2, z_dim] is split along n.
    z = z01.reshape(n, 2, z_dim)
    d, = pairs.run(step, z, t)
    out.append(d[:, np.newaxis])
    progress.update(out.num_items)
  progress.update(out.num_items, force=True)
  return {spec.name: ppl_lib.filtered_mean(out.get_all()[:, 0])}, 0


_RUNNERS = {'fid': _run_fid, 'is': _run_is, 'pr': _run_pr, 'ppl': _run_ppl}
_FEATURE_NET = {'fid': 'inception', 'is': 'inception', 'pr': 'vgg16', 'ppl': 'lpips'}
_writers: Dict[str, tf.summary.SummaryWriter] = {}


def evaluate(G, metrics: Sequence[str], data: Optional[str], options: Options = Options(), *,
             strategy: Optional[tf.distribute.Strategy] = None, network_name: str = '',
             output_dir: Optional[str] = None, step: Optional[int] = None
             ) -> List[MetricResult]:
  """Computes `metrics` for generator G; reports each as soon as it is done.

  Args:
    G: the generator (see sg2tf.loading for the protocol).
    metrics: official metric names (METRICS).
    data: TFRecord dataset directory (or file) for the real images; None if no metric needs it.
    options: feature files, caches, sample counts, batch size, seed.
    strategy: distribute batches over its replicas (default: the current strategy).
    network_name, output_dir, step: for reporting; no files are written without output_dir.
  """
  names = check_metric_names(metrics)
  loading.check_generator(G)
  ctx = _Context(G, data, options, strategy, network_name)
  results = []
  for name in names:
    spec = METRICS[name]
    fakes, reals, _ = _counts(spec, options)
    logging.info('Evaluating %s (%d fakes%s)...', name, fakes,
                 '' if spec.num_reals == 0 else f', {reals or "all"} reals asked')
    t0 = time.time()
    values, n_reals = _RUNNERS[spec.kind](ctx, spec, fakes, reals)
    official, note = sample_note(spec, fakes, reals, n_reals)
    if note:
      logging.warning('%s: %s; the value is not comparable with published numbers.', name, note)
    net_id = feature_nets.identity(_FEATURE_NET[spec.kind], options.feature_dir, False)
    res = MetricResult(metric=name, results=values, num_fakes=fakes, num_reals=n_reals,
                       official_sample_counts=official, seconds=round(time.time() - t0, 3),
                       network=network_name, dataset=os.fspath(data or ''), note=note,
                       feature_net=net_id)
    logging.info('%s', format_row(res))
    if output_dir:
      append_jsonl(output_dir, [res], step)
      write_tensorboard(output_dir, [res], step)
    results.append(res)
  return results


def append_jsonl(output_dir: str, results: Sequence[MetricResult], step=None) -> str:
  """Appends one JSON line per result to <output_dir>/metrics.jsonl; returns its path."""
  path = os.path.join(output_dir, 'metrics.jsonl')
  lines = ''.join(json.dumps(r.to_json(step), sort_keys=True) + '\n' for r in results)
  # One write per call: lines stay whole (a rewrite on filesystems without append).
  return files.append_text(path, lines, what='the metrics log')


def write_tensorboard(output_dir: str, results: Sequence[MetricResult], step=None) -> None:
  """Scalars Metrics/<result name> at `step` (one event file per output dir and process)."""
  key = files.abspath(output_dir)
  if key not in _writers:
    _writers[key] = tf.summary.create_file_writer(output_dir)
  writer = _writers[key]
  with writer.as_default():
    for r in results:
      for key, value in r.results.items():
        tf.summary.scalar(f'Metrics/{key}', value, step=int(step or 0))
  writer.flush()


def format_row(r: MetricResult) -> str:
  vals = '  '.join(f'{k} {v:.4f}' for k, v in r.results.items())
  reals = '-' if r.num_reals == 0 else str(r.num_reals)
  return (f'{r.metric:<12} {vals:<48} {r.num_fakes:>7} {reals:>7} {r.seconds:>9.1f}s'
          + (f'  {r.note}' if r.note else ''))


def format_table(results: Sequence[MetricResult]) -> str:
  head = f'{"metric":<12} {"value":<48} {"fakes":>7} {"reals":>7} {"time":>10}'
  return '\n'.join([head, '-' * len(head)] + [format_row(r) for r in results])
