r"""Projection of images into the latent space W (paper section 5 and appendix D), and
attribution of an image to the network.

    sg2tf-project --network=<run dir | checkpoint | network dir | .pkl> \
        --target=img.png[,more.png] --outdir=out [--num_steps=1000] [--attribute] \
        [--threshold=0.15] [--feature_dir=<LPIPS files>]

Method (appendix D): mu_w = mean of f(z) over 10,000 random z, sigma_w = sqrt(mean
||f(z) - mu_w||^2) (as the official projector). w (ONE w for all layers) starts at mu_w,
every noise map n_i at N(0, I). 1000 Adam steps (default betas 0.9, 0.999, eps 1e-8); the
learning rate ramps up linearly from 0 to 0.1 over the first 5% of the steps (50) and down to
0 with a cosine over the last 25% (250). During the first 75% of the steps (750) the loss is
evaluated at w + N(0, (0.05 sigma_w t^2)^2), t going from 1 to 0. Loss = LPIPS(target,
image) on images downsampled to 256x256 by area averaging when larger, plus
alpha (1e5) * sum_{i,j} L_ij, the squared normalised autocorrelations (shifts of one pixel in
x and y, wrapping at the edges) of every noise map and of its pyramid down to 8x8 (2x2 averages
times 2, appendix D; the official code omits the x2, `noise_pyramid_gain=1`). After every
step each noise map is renormalised to zero mean, unit variance.

Outputs per target in <outdir>/<target name>/: projected_w.npy (float32 [1, num_ws, w_dim]:
the w broadcast to all layers, ready for G.synthesis or the exported `synthesis`
signature), noise.npz (noise0, noise1, ... NHWC [1, R, R, 1] in synthesis order), proj.png (the
re-synthesised image), target.png, progress.png (target, then the image at evenly spaced
steps, the last one final) and result.json (the LPIPS distance and, with --attribute, the
verdict).

Attribution (section 5.1): an image is attributed to the network when the LPIPS distance
between it and its projection is below --threshold. The paper gives no threshold: it shows
that generated images project much closer than real ones. The default 0.15 is an
uncalibrated placeholder; calibrate it for each network (and LPIPS weights) by projecting some
images the network generated (python -m sg2tf.generate) and some real training images, and
pick a value between the two groups of distances.

LPIPS needs the VGG16 and LPIPS v0.1 weight files (see sg2tf/metrics/feature_files.py).
"""

import dataclasses
import json
import math
import os
from typing import Callable, List, Optional, Tuple

from absl import flags
from absl import logging
import numpy as np

from sg2tf import cli

DEFAULT_THRESHOLD = 0.15
_W_AVG_SEED = 123  # the official projector's RandomState for the mu_w samples


@dataclasses.dataclass(frozen=True)
class ProjectorConfig:
  """Appendix D defaults. The ramps are fractions of num_steps (as in the official code)."""
  num_steps: int = 1000
  w_avg_samples: int = 10000
  initial_learning_rate: float = 0.1
  lr_rampup: float = 0.05            # 50 of 1000 steps
  lr_rampdown: float = 0.25          # 250 of 1000 steps
  initial_noise_factor: float = 0.05
  noise_ramp: float = 0.75           # 750 of 1000 steps
  regularize_noise_weight: float = 1e5
  noise_pyramid_gain: float = 2.0    # paper; the official code uses 1.0
  noise_pyramid_min: int = 8
  lpips_resolution: int = 256
  adam_beta1: float = 0.9
  adam_beta2: float = 0.999
  adam_epsilon: float = 1e-8
  seed: int = 0                      # initial noise maps and the noise added to w
  num_snapshots: int = 8             # images in the progress strip (besides the target)

  def check(self):
    if self.num_steps < 1:
      raise ValueError(f'--num_steps={self.num_steps} must be >= 1.')
    if self.w_avg_samples < 2:
      raise ValueError(f'--w_avg_samples={self.w_avg_samples} must be >= 2.')
    if self.regularize_noise_weight < 0:
      raise ValueError(f'--noise_regularize={self.regularize_noise_weight} must be >= 0.')


def schedule(step: int, config: ProjectorConfig):
  """(learning rate, noise factor t^2 * initial_noise_factor) of step 0..num_steps-1."""
  t = step / config.num_steps
  noise = config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp) ** 2
  ramp = min(1.0, (1.0 - t) / config.lr_rampdown)
  ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
  ramp *= min(1.0, t / config.lr_rampup)
  return config.initial_learning_rate * ramp, noise


def noise_regularization(noise_maps, gain: float = 2.0, min_size: int = 8):
  """sum_{i,j} L_ij of appendix D for NHWC maps [1, R, R, 1] (a float32 scalar tensor)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reg = tf.constant(0.0)
  for v in noise_maps:
    x = tf.convert_to_tensor(v)[0, :, :, 0]  # [R, R]
    size = int(x.shape[0])
    while True:
      reg += (tf.square(tf.reduce_mean(x * tf.roll(x, 1, axis=1))) +
              tf.square(tf.reduce_mean(x * tf.roll(x, 1, axis=0))))
      if size <= min_size:
        break
      size //= 2
      x = tf.reduce_mean(tf.reshape(x, [size, 2, size, 2]), axis=[1, 3]) * gain
  return reg


def downsample_area(images, resolution: int):
  """NHWC [N, R, R, C] -> [N, r, r, C] by averaging (R/r)^2 blocks when R > r."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  size = int(images.shape[1])
  if size <= resolution:
    return images
  f = size // resolution
  c = int(images.shape[3])
  x = tf.reshape(images, [-1, size // f, f, size // f, f, c])
  return tf.reduce_mean(x, axis=[2, 4])


@dataclasses.dataclass
class Projection:
  w: np.ndarray                 # [1, num_ws, w_dim]
  noise: List[np.ndarray]       # NHWC [1, R, R, 1] per conv layer
  image: np.ndarray             # float [R, R, C], ~[-1, 1]
  distance: float               # LPIPS(target, image) at the end, without w noise
  snapshots: List[tuple]        # (step, uint8 [R, R, C])
  history: dict                 # per step: 'distance', 'noise_reg', 'loss', 'lr'


class Projector:
  """Projects target images of G's resolution into W (and the noise inputs)."""

  def __init__(self, G, lpips, config: ProjectorConfig = ProjectorConfig(),
               labels: Optional[np.ndarray] = None, impl: Optional[str] = None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    config.check()
    self.G, self.lpips, self.config, self.impl = G, lpips, config, impl
    self.resolution = int(G.synthesis.img_resolution)
    self.channels = int(G.synthesis.img_channels)
    self.num_ws = int(G.num_ws)
    self.noise_shapes = [tuple(s) for s in G.synthesis.noise_shapes]
    self.w_avg, self.w_std = self._w_stats(labels)
    logging.info('Projector: mu_w from %d samples, sigma_w = %g; %d noise maps.',
                 config.w_avg_samples, self.w_std, len(self.noise_shapes))
    self.w = tf.Variable(tf.zeros([1, G.w_dim]), name='w')
    self.noise = [tf.Variable(tf.zeros(s), name=f'noise{i}')
                  for i, s in enumerate(self.noise_shapes)]
    self.params = [self.w] + self.noise
    self.m = [tf.Variable(tf.zeros_like(p)) for p in self.params]
    self.v = [tf.Variable(tf.zeros_like(p)) for p in self.params]
    self.t = tf.Variable(0.0)
    r = min(self.resolution, config.lpips_resolution)
    self.target = tf.Variable(tf.zeros([1, r, r, 3]))  # [0, 255], at LPIPS resolution
    self.rng = tf.random.Generator.from_seed(config.seed)
    self._step_fn = tf.function(self._step)
    self._render_fn = tf.function(self._render)

  def _w_stats(self, labels):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    n = self.config.w_avg_samples
    z = np.random.RandomState(_W_AVG_SEED).randn(n, self.G.z_dim).astype(np.float32)
    mapping = tf.function(lambda z, c: self.G.mapping(z, c, impl=self.impl)[:, 0])
    ws = []
    for i in range(0, n, 1000):
      zb = z[i:i + 1000]
      c = None if labels is None else np.repeat(labels[:1], len(zb), axis=0)
      ws.append(mapping(zb, c).numpy())
    ws = np.concatenate(ws).astype(np.float64)  # [n, w_dim]
    w_avg = ws.mean(axis=0, keepdims=True)
    w_std = float(np.sqrt(np.sum((ws - w_avg) ** 2) / n))
    return w_avg.astype(np.float32), w_std

  def _synthesize(self, w):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    ws = tf.tile(w[:, tf.newaxis, :], [1, self.num_ws, 1])  # [1, num_ws, w_dim]
    return self.G.synthesis(ws, noise=list(self.noise), fused_modconv=False, impl=self.impl)

  def _to_lpips_input(self, images):
    """[N, R, R, C] in [0, 255] -> RGB at the LPIPS resolution."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    x = downsample_area(images, self.config.lpips_resolution)
    if self.channels == 1:
      x = tf.tile(x, [1, 1, 1, 3])
    return x

  def _step(self, lr, noise_strength):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    cfg = self.config
    with tf.GradientTape() as tape:
      w_noise = self.rng.normal(tf.shape(self.w)) * noise_strength
      images = self._synthesize(self.w + w_noise)  # [1, R, R, C]
      dist = self.lpips(self._to_lpips_input((images + 1) * (255 / 2)), self.target)  # [1]
      reg = noise_regularization(self.noise, cfg.noise_pyramid_gain, cfg.noise_pyramid_min)
      loss = tf.reduce_sum(dist) + cfg.regularize_noise_weight * reg
    grads = tape.gradient(loss, self.params)
    # Adam as tf.compat.v1.train.AdamOptimizer (the official projector's), default betas.
    self.t.assign_add(1.0)
    b1, b2 = cfg.adam_beta1, cfg.adam_beta2
    alpha = lr * tf.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
    for p, g, m, v in zip(self.params, grads, self.m, self.v):
      g = tf.zeros_like(p) if g is None else g
      m.assign(b1 * m + (1 - b1) * g)
      v.assign(b2 * v + (1 - b2) * tf.square(g))
      p.assign_sub(alpha * m / (tf.sqrt(v) + cfg.adam_epsilon))
    self._normalize_noise()
    return dist[0], reg, loss

  def _normalize_noise(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    for v in self.noise:
      centered = v - tf.reduce_mean(v)
      v.assign(centered * tf.math.rsqrt(tf.reduce_mean(tf.square(centered))))

  def _render(self):
    """(image [1, R, R, C], LPIPS distance [1]) at the current w, without w noise."""
    images = self._synthesize(self.w)
    return images, self.lpips(self._to_lpips_input((images + 1) * (255 / 2)), self.target)

  def project(self, target: np.ndarray,
              callback: Optional[Callable[[int, float, float], None]] = None) -> Projection:
    """target: [R, R, C] at G's resolution, uint8 or float in [0, 255] (unclipped floats
    allowed). callback(step, distance, loss) is called after every step."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
    cfg = self.config
    target = np.asarray(target, np.float32)
    if target.shape != (self.resolution, self.resolution, self.channels):
      raise ValueError(f'target must be [{self.resolution}, {self.resolution}, {self.channels}], '
                       f'got {list(target.shape)}')
    self.target.assign(self._to_lpips_input(tf.constant(target[np.newaxis], tf.float32)))
    self.w.assign(self.w_avg)
    for v in self.noise:
      v.assign(self.rng.normal(v.shape))
    for s in self.m + self.v:
      s.assign(tf.zeros_like(s))
    self.t.assign(0.0)

    every = max(1, cfg.num_steps // max(1, cfg.num_snapshots))
    history = {k: np.zeros([cfg.num_steps], np.float32)
               for k in ('distance', 'noise_reg', 'loss', 'lr')}
    snapshots = []
    progress = tool_util.Progress(cfg.num_steps, 'projection', unit='steps')
    for step in range(cfg.num_steps):
      lr, noise_factor = schedule(step, cfg)
      dist, reg, loss = self._step_fn(tf.constant(lr, tf.float32),
                                      tf.constant(noise_factor * self.w_std, tf.float32))
      dist, reg, loss = float(dist), float(reg), float(loss)
      for key, val in (('distance', dist), ('noise_reg', reg), ('loss', loss), ('lr', lr)):
        history[key][step] = val
      if callback is not None:
        callback(step, dist, loss)
      if (step + 1) % every == 0 or step + 1 == cfg.num_steps:
        img, _ = self._render_fn()
        snapshots.append((step + 1, tool_util.to_uint8(img.numpy()[0])))
      progress.update(step + 1, f'lpips {dist:.4f}, loss {loss:.4f}')
    img, dist = self._render_fn()
    w = np.tile(self.w.numpy()[:, np.newaxis, :], [1, self.num_ws, 1])
    return Projection(w=w, noise=[v.numpy() for v in self.noise], image=img.numpy()[0],
                      distance=float(dist.numpy()[0]), snapshots=snapshots, history=history)


def attribute(distance: float, threshold: float = DEFAULT_THRESHOLD) -> bool:
  """True when the projection distance says the image is likely generated by the network."""
  return distance < threshold


def write_outputs(outdir: str, target: np.ndarray, result: Projection,
                  info: Optional[dict] = None) -> str:
  """The files listed in the module docstring, each written atomically. Returns outdir."""
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  os.makedirs(outdir, exist_ok=True)
  tool_util.save_npy(os.path.join(outdir, 'projected_w.npy'), result.w.astype(np.float32))
  tool_util.save_npz(os.path.join(outdir, 'noise.npz'),
                     **{f'noise{i}': n.astype(np.float32) for i, n in enumerate(result.noise)})
  tool_util.save_png(os.path.join(outdir, 'target.png'), target)
  tool_util.save_png(os.path.join(outdir, 'proj.png'), tool_util.to_uint8(result.image))
  strip = np.stack([target] + [img for _, img in result.snapshots])
  tool_util.save_png(os.path.join(outdir, 'progress.png'), tool_util.grid(strip, len(strip)))
  summary = {'lpips_distance': result.distance,
             'progress_steps': [s for s, _ in result.snapshots]}
  summary.update(info or {})
  tool_util.save_text(os.path.join(outdir, 'result.json'), json.dumps(summary, indent=1) + '\n')
  return outdir


def load_lpips(feature_dir: Optional[str] = None, download: bool = False):
  """The LPIPS network of the metrics (sg2tf.metrics.feature_nets)."""
  from sg2tf.metrics import feature_files  # pylint: disable=g-import-not-at-top
  from sg2tf.metrics import feature_nets  # pylint: disable=g-import-not-at-top
  try:
    return feature_nets.get('lpips', feature_dir, download=download)
  except feature_files.FeatureFileMissingError as e:
    raise feature_files.FeatureFileMissingError(
        f'the projector needs LPIPS (VGG16 + LPIPS v0.1 weights). {e}') from None


# ------------------------------------------------------------------ command line

@dataclasses.dataclass(frozen=True)
class ProjectConfig:
  """What `sg2tf-project` does (built from its flags by config_from_flags)."""
  network: str
  targets: Tuple[str, ...]
  outdir: str
  projector: ProjectorConfig = ProjectorConfig()
  class_idx: Optional[int] = None
  attribute: bool = False
  threshold: float = DEFAULT_THRESHOLD
  feature_dir: Optional[str] = None
  download_features: bool = True
  impl: str = 'auto'


TOPICS = cli.Topics()


def define_flags(fv=flags.FLAGS):
  """Only when run as a program (or on a test's own FlagValues): importing this module
  defines no flags."""
  t, p, c = TOPICS, ProjectorConfig(), ProjectConfig('', (), '')
  d = dict(flag_values=fv)
  t.mark('Network, targets and output', fv)
  flags.DEFINE_string('network', None, 'Network: a training run directory, a checkpoint '
                      'prefix, an sg2tf network directory or an official StyleGAN2 .pkl.', **d)
  flags.DEFINE_list('target', None, 'Image file(s) to project, at the network resolution.', **d)
  flags.DEFINE_string('outdir', None, 'Output folder; one sub-folder per target.', **d)
  flags.DEFINE_alias('out', 'outdir', flag_values=fv)
  flags.DEFINE_integer('class_idx', c.class_idx, 'Class label of conditional networks.', **d)
  flags.DEFINE_enum('impl', c.impl, ['auto', 'custom', 'ref'], 'Op implementation.', **d)
  t.mark('Optimisation (paper appendix D)', fv)
  flags.DEFINE_integer('num_steps', p.num_steps, 'Optimisation steps (paper: 1000).',
                       lower_bound=1, **d)
  flags.DEFINE_integer('w_avg_samples', p.w_avg_samples, 'Samples for mu_w and sigma_w (paper: '
                       '10000).', lower_bound=2, **d)
  flags.DEFINE_float('noise_regularize', p.regularize_noise_weight, 'Noise regularisation '
                     'weight alpha (paper: 1e5).', **d)
  flags.DEFINE_integer('seed', p.seed, 'Seed of the initial noise maps and of the noise on w.',
                       **d)
  t.mark('Attribution (paper section 5.1)', fv)
  flags.DEFINE_bool('attribute', c.attribute, 'Report whether each target is likely generated '
                    'by this network (projection LPIPS distance < --threshold).', **d)
  flags.DEFINE_float('threshold', c.threshold, 'LPIPS distance below which --attribute '
                     'says "generated by this network"; uncalibrated default, calibrate it per '
                     'network (see the module docstring).', **d)
  t.mark('LPIPS files', fv)
  flags.DEFINE_string('feature_dir', c.feature_dir, 'Folder with the VGG16 and LPIPS weight '
                      'files (also $SG2TF_FEATURE_DIR); see sg2tf/metrics/feature_files.py.',
                      **d)
  flags.DEFINE_bool('download_features', c.download_features, 'Download missing LPIPS files '
                    'into the cache.', **d)
  t.mark(None)


def config_from_flags(f) -> ProjectConfig:
  """The checked ProjectConfig (targets readable, network present); no TensorFlow."""
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  if not f.network or not f.target or not f.outdir:
    raise tool_util.ToolError('--network, --target and --outdir are required (see --help).')
  tool_util.check_network_path(f.network)
  for path in f.target:
    tool_util.read_image(path)
  projector = ProjectorConfig(num_steps=f.num_steps, w_avg_samples=f.w_avg_samples,
                              regularize_noise_weight=f.noise_regularize, seed=f.seed)
  try:
    projector.check()
  except ValueError as e:
    raise tool_util.ToolError(str(e)) from None
  return ProjectConfig(network=f.network, targets=tuple(f.target), outdir=f.outdir,
                       projector=projector, class_idx=f.class_idx, attribute=f.attribute,
                       threshold=f.threshold, feature_dir=f.feature_dir,
                       download_features=f.download_features, impl=f.impl)


def run(c: ProjectConfig) -> List[dict]:
  """Projects every target; returns one result dict per target."""
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  images = [(path, tool_util.read_image(path)) for path in c.targets]
  lpips = load_lpips(c.feature_dir, c.download_features)
  from sg2tf import loading as network_loader  # pylint: disable=g-import-not-at-top
  G = network_loader.load_generator(c.network, impl=c.impl, allow_conditional=True)
  res, ch = int(G.synthesis.img_resolution), int(G.synthesis.img_channels)
  targets = [(path, tool_util.image_array(img, path, res, ch)) for path, img in images]
  labels = tool_util.labels_for(int(getattr(G, 'c_dim', 0) or 0), c.class_idx, 1)
  config = c.projector
  projector = Projector(G, lpips, config, labels=labels, impl=c.impl)
  results = []
  names = set()
  for path, target in targets:
    name = os.path.splitext(os.path.basename(path))[0]
    while name in names:
      name += '_'
    names.add(name)
    logging.info('Projecting %s (%d steps)...', path, config.num_steps)
    result = projector.project(target)
    info = {'target': os.path.abspath(path),
            'network': c.network if '://' in c.network else os.path.abspath(c.network),
            'num_steps': config.num_steps, 'config': dataclasses.asdict(config)}
    line = f'{path}: LPIPS distance {result.distance:.4f}'
    if c.attribute:
      verdict = attribute(result.distance, c.threshold)
      info['attribution'] = {'threshold': c.threshold, 'generated_by_network': verdict}
      line += (f' {"<" if verdict else ">="} threshold {c.threshold:g}: '
               f'{"likely" if verdict else "not likely"} generated by this network')
    out = write_outputs(os.path.join(c.outdir, name), target, result, info)
    print(f'{line} -> {out}')
    results.append(dict(info, lpips_distance=result.distance))
  return results


def _main(argv):
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  return cli.run_config(argv, config_from_flags, run, expected=tool_util.expected_errors())


def main(argv=None):
  """The `sg2tf-project` command (python -m sg2tf.project)."""
  define_flags()
  cli.run_tool(_main, argv, doc=__doc__, topics=TOPICS)


if __name__ == '__main__':
  main()
