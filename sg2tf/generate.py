r"""Images from seeds, style-mixing figures, truncation sweeps and latent interpolations.

    sg2tf-generate --network=<run dir | checkpoint | network dir | .pkl | URL |
                                       exported SavedModel> --outdir=out \
        [--seeds=0-9] [--trunc=1.0] [--noise_mode=const] [--class_idx=N]
        [--projected_w=projected_w.npy]                (a projector output)
        [--style_mixing_rows=85,100,75 --style_mixing_cols=55,821,1789 --style_mixing_styles=0-6]
        [--truncation_sweep=-1,-0.5,0,0.5,1]           (rows: --seeds)
        [--interpolate=1,2,3 --interpolation_frames=8 --interpolation_space=w]

Outputs (PNG, uint8 = clip(x * 127.5 + 128, 0, 255)): seed<NNNN>.png per seed;
style-mixing.png (first row: the column seeds, first column: the row seeds, cell (r, c): the
row seed's w with the layers of --style_mixing_styles taken from the column seed, as in the
paper's figure); truncation-sweep.png (one row per seed, one column per psi);
interpolation.png (a strip of frames) and interpolation.gif; proj00.png, proj01.png, ... for
the ws of --projected_w (sg2tf.project's projected_w.npy [1, num_ws, w_dim], or an .npz with
`w` [N, num_ws, w_dim] as stylegan2-ada-pytorch's projector writes; [N, w_dim] is broadcast to
all layers). Those images use --noise_mode (default const); the projector's optimised noise
maps (noise.npz) are not applied, so they match proj.png only up to the noise.

An exported SavedModel (`python -m sg2tf.export`; a model directory of numbered versions uses
the highest) works as --network through its signatures (sg2tf.saved_model_generator): every
figure is the same, but --noise_mode must be the exported one (random is refused) and
--truncation_cutoff the exported cutoff.

Determinism: z of a seed is np.random.RandomState(seed).randn(z_dim), as in the official
code. --noise_mode=const uses the network's stored noise buffers, none disables noise, and
random draws the noise maps from the same RandomState after z, like the official
run_generator.py (so the output is still a function of the seed). In the figures a mixed
image uses its row seed's noise, an interpolation the first seed's.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

from absl import flags
from absl import logging
import numpy as np

from sg2tf import cli
from sg2tf import tool_util
from sg2tf.conventions import NOISE_MODES



class ImageGenerator:
  """Deterministic seed -> image for one generator (tf.function-compiled pieces)."""

  def __init__(self, G, noise_mode: str = 'const', class_idx: Optional[int] = None,
               truncation_cutoff: Optional[int] = None, batch_size: int = 8, impl=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if noise_mode not in NOISE_MODES:
      raise tool_util.ToolError(f'--noise_mode={noise_mode!r}: use one of '
                                f'{", ".join(NOISE_MODES)}.')
    check = getattr(G, 'check_generate_options', None)  # SavedModels fix some at export
    if check is not None:
      try:
        check(noise_mode, truncation_cutoff)
      except ValueError as e:
        raise tool_util.ToolError(str(e)) from None
    self.G, self.noise_mode, self.class_idx = G, noise_mode, class_idx
    self.truncation_cutoff, self.batch_size, self.impl = truncation_cutoff, batch_size, impl
    self.z_dim, self.num_ws = int(G.z_dim), int(G.num_ws)
    self.c_dim = int(getattr(G, 'c_dim', 0) or 0)
    tool_util.labels_for(self.c_dim, class_idx, 1)  # fail early on bad labels
    self.noise_shapes = [tuple(s) for s in G.synthesis.noise_shapes]
    self._mapping = tf.function(lambda z, c: G.mapping(z, c, impl=impl), reduce_retracing=True)
    self._synth_noise = tf.function(
        lambda ws, noise: G.synthesis(ws, noise=noise, impl=impl), reduce_retracing=True)
    self._synth_mode = tf.function(
        lambda ws: G.synthesis(ws, noise_mode=noise_mode, impl=impl), reduce_retracing=True)

  def zs(self, seeds: Sequence[int]) -> np.ndarray:
    return np.stack([tool_util.z_from_seed(s, self.z_dim) for s in seeds])  # [N, z_dim]

  def ws(self, zs: np.ndarray, truncation_psi: float = 1.0) -> np.ndarray:
    """Truncated w [N, num_ws, w_dim] of latents zs [N, z_dim]."""
    out = []
    for i in range(0, len(zs), self.batch_size):
      zb = zs[i:i + self.batch_size]
      c = tool_util.labels_for(self.c_dim, self.class_idx, len(zb))
      w = self._mapping(zb, c)
      out.append(self.G.mapping.truncate(w, truncation_psi, self.truncation_cutoff).numpy())
    return np.concatenate(out)

  def images(self, ws: np.ndarray, noise_seeds: Sequence[int]) -> np.ndarray:
    """uint8 [N, R, R, C] of ws [N, num_ws, w_dim]; noise_seeds[i] seeds image i's noise
    in --noise_mode=random."""
    out = []
    for i in range(0, len(ws), self.batch_size):
      wb = ws[i:i + self.batch_size]
      if self.noise_mode == 'random':
        per_seed = [tool_util.noise_from_seed(s, self.z_dim, self.noise_shapes)
                    for s in noise_seeds[i:i + self.batch_size]]
        noise = [np.concatenate([n[k] for n in per_seed]) for k in range(len(self.noise_shapes))]
        x = self._synth_noise(wb, noise)
      else:
        x = self._synth_mode(wb)
      out.append(tool_util.to_uint8(x.numpy()))
    return np.concatenate(out)

  def from_seeds(self, seeds: Sequence[int], truncation_psi: float = 1.0) -> np.ndarray:
    return self.images(self.ws(self.zs(seeds), truncation_psi), seeds)


def generate_seed_images(gen: ImageGenerator, seeds: Sequence[int], truncation_psi: float,
                         outdir: str) -> List[str]:
  """seed<NNNN>.png for every seed, in batches, with progress logging."""
  paths = []
  progress = tool_util.Progress(len(seeds), 'generate', unit='img')
  for i in range(0, len(seeds), gen.batch_size):
    batch = list(seeds[i:i + gen.batch_size])
    for seed, img in zip(batch, gen.from_seeds(batch, truncation_psi)):
      paths.append(tool_util.save_png(os.path.join(outdir, f'seed{seed:04d}.png'), img))
    progress.update(len(paths))
  return paths


def style_mixing_figure(gen: ImageGenerator, row_seeds: Sequence[int],
                        col_seeds: Sequence[int], styles: Sequence[int],
                        truncation_psi: float = 1.0) -> np.ndarray:
  """uint8 [(rows + 1) * R, (cols + 1) * R, C]; top-left cell black."""
  bad = [s for s in styles if not 0 <= s < gen.num_ws]
  if bad:
    raise tool_util.ToolError(f'--style_mixing_styles: layers {bad} do not exist; the network '
                              f'has layers 0..{gen.num_ws - 1}.')
  row_w = gen.ws(gen.zs(row_seeds), truncation_psi)
  col_w = gen.ws(gen.zs(col_seeds), truncation_psi)
  row_img = gen.images(row_w, row_seeds)
  col_img = gen.images(col_w, col_seeds)
  mixed_w, noise_seeds = [], []
  for r, row_seed in enumerate(row_seeds):
    for c in range(len(col_seeds)):
      w = row_w[r].copy()
      w[list(styles)] = col_w[c][list(styles)]
      mixed_w.append(w)
      noise_seeds.append(row_seed)
  mixed = gen.images(np.stack(mixed_w), noise_seeds)
  n, res, _, ch = row_img.shape
  cells = np.zeros([len(row_seeds) + 1, len(col_seeds) + 1, res, res, ch], np.uint8)
  cells[0, 1:] = col_img
  cells[1:, 0] = row_img
  cells[1:, 1:] = mixed.reshape(len(row_seeds), len(col_seeds), res, res, ch)
  del n
  return tool_util.grid(cells.reshape(-1, res, res, ch), len(col_seeds) + 1)


def truncation_sweep(gen: ImageGenerator, seeds: Sequence[int],
                     psis: Sequence[float]) -> np.ndarray:
  """uint8 grid: one row per seed, one column per truncation psi."""
  zs = gen.zs(seeds)
  cols = [gen.images(gen.ws(zs, psi), seeds) for psi in psis]  # each [rows, R, R, C]
  cells = np.stack(cols, axis=1)  # [rows, cols, R, R, C]
  return tool_util.grid(cells.reshape((-1,) + cells.shape[2:]), len(psis))


def _slerp(a, b, t):
  a_n, b_n = a / np.linalg.norm(a), b / np.linalg.norm(b)
  omega = np.arccos(np.clip(np.dot(a_n, b_n), -1.0, 1.0))
  if omega < 1e-6:
    return (1 - t) * a + t * b
  return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolation_frames(gen: ImageGenerator, seeds: Sequence[int], frames_per_step: int,
                         space: str = 'w', truncation_psi: float = 1.0) -> np.ndarray:
  """uint8 [F, R, R, C]: seeds[0] -> seeds[1] -> ... with frames_per_step frames per pair
  (the last seed's own frame appended): lerp in W, or slerp in Z then mapping."""
  if len(seeds) < 2:
    raise tool_util.ToolError('--interpolate needs at least two seeds, e.g. --interpolate=1,2.')
  if space not in ('w', 'z'):
    raise tool_util.ToolError(f'--interpolation_space={space!r}: use w or z.')
  ts = np.arange(frames_per_step) / frames_per_step
  zs = gen.zs(seeds)
  if space == 'z':
    path = [_slerp(zs[i], zs[i + 1], t) for i in range(len(seeds) - 1) for t in ts] + [zs[-1]]
    ws = gen.ws(np.stack(path).astype(np.float32), truncation_psi)
  else:
    key_w = gen.ws(zs, truncation_psi)
    ws = np.stack([(1 - t) * key_w[i] + t * key_w[i + 1]
                   for i in range(len(seeds) - 1) for t in ts] + [key_w[-1]]).astype(np.float32)
  return gen.images(ws, [seeds[0]] * len(ws))


def load_projected_w(path: str, num_ws: int, w_dim: int) -> np.ndarray:
  """float32 [N, num_ws, w_dim] from a projector output (.npy, or .npz with `w`)."""
  from sg2tf.utils import files  # pylint: disable=g-import-not-at-top
  from sg2tf.utils import safe_pickle  # pylint: disable=g-import-not-at-top
  if not files.isfile(path):
    raise tool_util.ToolError(f'--projected_w={path}: no such file (pass the projected_w.npy '
                              f'that python -m sg2tf.project wrote).')
  try:
    if path.endswith('.npz'):
      arrays = safe_pickle.load_npz(path, 'projected w (.npz)')
      if 'w' not in arrays:
        raise tool_util.ToolError(f'--projected_w={path}: no array named w in it (it holds '
                                  f'{", ".join(sorted(arrays)) or "nothing"}).')
      w = arrays['w']
    else:
      w = safe_pickle.load_npy(path, 'projected w (.npy)')
  except safe_pickle.NumpyFileError as e:
    raise tool_util.ToolError(f'--projected_w: {e}') from None
  w = np.asarray(w, np.float32)
  if w.ndim == 2 and w.shape[-1] == w_dim and w.shape[0] != num_ws:
    w = np.repeat(w[:, np.newaxis], num_ws, axis=1)  # [N, w_dim] -> every layer
  if w.ndim == 2:
    w = w[np.newaxis]
  if w.ndim != 3 or w.shape[1:] != (num_ws, w_dim) or not len(w):
    raise tool_util.ToolError(f'--projected_w={path}: shape {list(w.shape)}, but the network '
                              f'takes w [N, {num_ws}, {w_dim}]; project with this network.')
  if not np.all(np.isfinite(w)):
    raise tool_util.ToolError(f'--projected_w={path}: holds NaN or Inf.')
  return w


# ------------------------------------------------------------------ command line

@dataclasses.dataclass(frozen=True)
class GenerateConfig:
  """What `sg2tf-generate` does (built from its flags by config_from_flags)."""
  network: str
  outdir: str
  seeds: Optional[Tuple[int, ...]] = None
  trunc: float = 1.0
  truncation_cutoff: Optional[int] = None
  noise_mode: str = 'const'
  class_idx: Optional[int] = None
  style_mixing_rows: Optional[Tuple[int, ...]] = None
  style_mixing_cols: Optional[Tuple[int, ...]] = None
  style_mixing_styles: Tuple[int, ...] = tuple(range(7))
  truncation_sweep: Optional[Tuple[float, ...]] = None
  interpolate: Optional[Tuple[int, ...]] = None
  interpolation_frames: int = 8
  interpolation_space: str = 'w'
  gif: bool = True
  gif_ms: int = 80
  batch_size: int = 8
  impl: str = 'auto'
  projected_w: Optional[str] = None


TOPICS = cli.Topics()


def define_flags(fv=flags.FLAGS):
  """Only when run as a program (or on a test's FlagValues): importing defines no flags."""
  if 'network' in fv:
    return
  d = GenerateConfig('', '')
  kw = dict(flag_values=fv)
  TOPICS.mark('Network and output', fv)
  flags.DEFINE_string('network', None, 'Network: a training run directory, a checkpoint '
                      'prefix, an sg2tf network directory, an official StyleGAN2 .pkl (path or '
                      'http(s) URL[#sha256=HEX]) or an exported SavedModel directory.', **kw)
  flags.DEFINE_string('outdir', None, 'Output folder.', **kw)
  flags.DEFINE_alias('out', 'outdir', flag_values=fv)
  flags.DEFINE_integer('batch_size', d.batch_size, 'Images per generator call.', lower_bound=1,
                       **kw)
  flags.DEFINE_enum('impl', d.impl, ['auto', 'custom', 'ref'], 'Op implementation.', **kw)
  TOPICS.mark('Images from seeds', fv)
  flags.DEFINE_string('seeds', None, 'Seeds of single images (and the rows of '
                      '--truncation_sweep), e.g. 0-9,42.', **kw)
  flags.DEFINE_float('trunc', d.trunc, 'Truncation psi (1 = none).', **kw)
  flags.DEFINE_integer('truncation_cutoff', d.truncation_cutoff,
                       'Truncate only the first N w layers.', **kw)
  flags.DEFINE_enum('noise_mode', d.noise_mode, list(NOISE_MODES),
                    'const: stored noise buffers; random: noise drawn from the seed (official '
                    'run_generator.py); none: no noise.', **kw)
  flags.DEFINE_integer('class_idx', d.class_idx, 'Class label of conditional networks.', **kw)
  flags.DEFINE_string('projected_w', d.projected_w, 'Render the ws of a projector output '
                      '(projected_w.npy, or an .npz with w) as proj00.png, ...', **kw)
  TOPICS.mark('Figures', fv)
  flags.DEFINE_string('style_mixing_rows', None, 'Row seeds of a style-mixing figure.', **kw)
  flags.DEFINE_string('style_mixing_cols', None, 'Column seeds of a style-mixing figure.', **kw)
  flags.DEFINE_string('style_mixing_styles', '0-6', 'w layers the column seeds supply '
                      '(0-3 coarse, 4-7 middle, 8+ fine at 1024x1024).', **kw)
  flags.DEFINE_string('truncation_sweep', None, 'Truncation psi values of a sweep grid '
                      '(rows: --seeds), e.g. -1,-0.5,0,0.5,1.', **kw)
  flags.DEFINE_string('interpolate', None, 'Seeds to interpolate between, e.g. 1,2,3.', **kw)
  flags.DEFINE_integer('interpolation_frames', d.interpolation_frames, 'Frames per pair of '
                       'seeds.', lower_bound=1, **kw)
  flags.DEFINE_enum('interpolation_space', d.interpolation_space, ['w', 'z'],
                    'lerp in W or slerp in Z.', **kw)
  flags.DEFINE_bool('gif', d.gif, 'Also write interpolation.gif.', **kw)
  flags.DEFINE_integer('gif_ms', d.gif_ms, 'GIF frame duration in milliseconds.', lower_bound=1,
                       **kw)
  TOPICS.mark(None)


def config_from_flags(f) -> GenerateConfig:
  """The checked GenerateConfig from parsed flags (a FlagValues, or anything with the same
  attributes); ToolError names the flag. Reads no network and imports no TensorFlow."""
  if not f.network or not f.outdir:
    raise tool_util.ToolError('--network and --outdir are required (see --help).')
  mixing = f.style_mixing_rows or f.style_mixing_cols
  projected_w = getattr(f, 'projected_w', None)
  if not (f.seeds or mixing or f.interpolate or projected_w):
    raise tool_util.ToolError('nothing to do: pass --seeds, --style_mixing_rows/--style_mixing_'
                              'cols, --truncation_sweep (with --seeds), --interpolate or '
                              '--projected_w.')
  if mixing and not (f.style_mixing_rows and f.style_mixing_cols):
    raise tool_util.ToolError('a style-mixing figure needs both --style_mixing_rows and '
                              '--style_mixing_cols.')

  def ints(name):
    text = getattr(f, name)
    return tuple(tool_util.parse_int_list(text, name)) if text else None
  seeds = ints('seeds')
  psis = (tuple(tool_util.parse_float_list(f.truncation_sweep, 'truncation_sweep'))
          if f.truncation_sweep else None)
  if psis and not seeds:
    raise tool_util.ToolError('--truncation_sweep needs --seeds (one row per seed).')
  if f.noise_mode not in NOISE_MODES:
    raise tool_util.ToolError(f'--noise_mode={f.noise_mode!r}: use one of '
                              f'{", ".join(NOISE_MODES)}.')
  from sg2tf.utils import files  # pylint: disable=g-import-not-at-top
  if files.exists(f.outdir) and not files.isdir(f.outdir):
    raise tool_util.ToolError(f'--outdir={f.outdir} is a file; choose a folder.')
  if projected_w and not files.isfile(projected_w):
    raise tool_util.ToolError(f'--projected_w={projected_w}: no such file (pass the '
                              'projected_w.npy that sg2tf-project wrote).')
  tool_util.check_network_path(f.network)
  return GenerateConfig(
      network=f.network, outdir=f.outdir, seeds=seeds, trunc=f.trunc,
      truncation_cutoff=f.truncation_cutoff, noise_mode=f.noise_mode, class_idx=f.class_idx,
      style_mixing_rows=ints('style_mixing_rows') if mixing else None,
      style_mixing_cols=ints('style_mixing_cols') if mixing else None,
      style_mixing_styles=(ints('style_mixing_styles') if mixing else
                           GenerateConfig.style_mixing_styles),
      truncation_sweep=psis, interpolate=ints('interpolate'),
      interpolation_frames=f.interpolation_frames, interpolation_space=f.interpolation_space,
      gif=f.gif, gif_ms=f.gif_ms, batch_size=f.batch_size, impl=f.impl,
      projected_w=projected_w or None)


def run(config: GenerateConfig) -> List[str]:
  """Writes what config asks for; returns the written files."""
  c = config
  from sg2tf import loading as network_loader  # pylint: disable=g-import-not-at-top
  G = network_loader.load_for_generate(c.network, impl=c.impl)
  gen = ImageGenerator(G, c.noise_mode, c.class_idx, c.truncation_cutoff, c.batch_size,
                       impl=c.impl)
  out, written = c.outdir, []
  if c.projected_w:
    ws = load_projected_w(c.projected_w, gen.num_ws, int(G.w_dim))
    for i, img in enumerate(gen.images(ws, [0] * len(ws))):
      written.append(tool_util.save_png(os.path.join(out, f'proj{i:02d}.png'), img))
  if c.seeds and not c.truncation_sweep:
    written += generate_seed_images(gen, c.seeds, c.trunc, out)
  if c.truncation_sweep:
    written.append(tool_util.save_png(os.path.join(out, 'truncation-sweep.png'),
                                      truncation_sweep(gen, c.seeds, c.truncation_sweep)))
  if c.style_mixing_rows:
    written.append(tool_util.save_png(
        os.path.join(out, 'style-mixing.png'),
        style_mixing_figure(gen, c.style_mixing_rows, c.style_mixing_cols,
                            c.style_mixing_styles, c.trunc)))
  if c.interpolate:
    frames = interpolation_frames(gen, c.interpolate, c.interpolation_frames,
                                  c.interpolation_space, c.trunc)
    written.append(tool_util.save_png(os.path.join(out, 'interpolation.png'),
                                      tool_util.grid(frames, len(frames))))
    if c.gif:
      written.append(tool_util.save_gif(os.path.join(out, 'interpolation.gif'), frames,
                                        c.gif_ms))
  logging.info('Wrote %d files to %s', len(written), out)
  return written


def _main(argv):
  return cli.run_config(
      argv, config_from_flags, run, expected=tool_util.expected_errors(),
      report=lambda c, written: print(f'Wrote {len(written)} file(s) to {c.outdir}'))


def main(argv=None):
  """The `sg2tf-generate` command (python -m sg2tf.generate)."""
  define_flags()
  cli.run_tool(_main, argv, doc=__doc__, topics=TOPICS)


if __name__ == '__main__':
  main()
