"""Experiment: does ADA stop the discriminator from memorising a small dataset?

On the AT&T (ORL) faces (400 real photos, 92x112 grayscale), centre-cropped to 92x92 and
resized to 64x64: 360 training images (photos 1-9 of each of the 40 people) and 40 held out
(photo 10 of each). The same network, schedule and budget are trained with --aug=noaug and
--aug=ada (bgc pipeline, target 0.6). Every `--eval_kimg` the script records
  r_t          the mean sign of D on the (augmented) training reals since the last record,
  p            the augmentation strength,
  D(train)     D's mean logit on all 360 training images (not augmented),
  D(held-out)  D's mean logit on the 40 held-out images (not augmented),
  D(fakes)     D's mean logit on 64 fresh fakes of G,
and writes them to a JSON file after each record. Overfitting shows as D(train) - D(held-out)
growing: D recognises the images it was trained on rather than real faces (paper, Fig. 1b).

The run is ~50x shorter than the paper's, on one CPU core, so the network is small
(fmap_base 512, fmap_max 256: 16 channels at 64x64 ... 256 at 4x4; ~1M parameters each) and
ADA's speed is scaled with it: --ada_kimg 20 instead of 500 (p can move by 1 in 20 kimg).
Other settings follow the formulas of StyleGAN2-ADA's `auto` config for 64x64 at batch 16
(`auto` itself would take 32 on one GPU): R1 gamma 0.0002 * 64^2 / 16, lr 0.0025, G_ema
half-life 16 * 10 / 32 = 5 kimg with ramp-up 0.05.

  python experiments/ada_att_faces.py --mode=noaug        # 48 kimg: ~65 min on a free core
  python experiments/ada_att_faces.py --mode=ada          # ~110 min (the augmentation's cost)
  python experiments/ada_att_faces.py --plot              # results/ada_att_faces.png

The two runs can share a work folder (--work) once its datasets exist; run them on separate
cores (e.g. `taskset -c 0` and `taskset -c 1`). --plot draws running means over --smooth
records, and writes results/ada_att_faces_summary.json: means over the last --last_kimg kimg
and over the run's first half of r_t, the gap, and the held-out position (where D puts the
held-out photos between the training photos and the fakes).

Not a test: it runs for hours and its numbers depend on the machine's load. The
source folder must exist (`--source`, default ../shared/datasets/att_faces next to the repo).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / 'experiments' / 'results'


def _default_source():
  """../shared/datasets/att_faces next to the checkout (or next to its parent: worktrees)."""
  for up in (REPO.parent, REPO.parent.parent):
    path = up / 'shared' / 'datasets' / 'att_faces'
    if path.is_dir():
      return str(path)
  return str(REPO.parent / 'shared' / 'datasets' / 'att_faces')


def make_datasets(source, work):
  """train (photos 1-9 of each person) and held-out (photo 10) TFRecord datasets at 64x64."""
  out = {}
  for split, photos in (('train', range(1, 10)), ('held', [10])):
    ds = os.path.join(work, f'ds_{split}')
    out[split] = ds
    if os.path.isdir(ds):
      continue
    links = os.path.join(work, f'img_{split}')
    os.makedirs(links, exist_ok=True)
    for person in sorted(os.listdir(source)):
      if not person.startswith('s'):
        continue
      for k in photos:
        src = os.path.join(source, person, f'{k}.pgm')
        dst = os.path.join(links, f'{person}_{k}.pgm')
        if os.path.isfile(src) and not os.path.exists(dst):
          os.symlink(src, dst)
    subprocess.run([sys.executable, str(REPO / 'data' / 'dataset_tool.py'), 'create_from_images',
                    ds, links, '--center-crop', '--resolution=64', '--channels=1'],
                   check=True)
  return out


def train_config(mode, data_dir, run_dir, kimg, seed):
  from sg2tf import paper_configs as net_configs  # pylint: disable=g-import-not-at-top
  from sg2tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
  batch = 16
  base = net_configs.get_config('config-f')
  small = dict(fmap_base=512, fmap_max=256)
  g = dataclasses.replace(base.G, z_dim=256, w_dim=256, mapping_dim=256, mapping_layers=2,
                          **small)
  d = dataclasses.replace(base.D, **small)
  aug = (config_lib.AugmentConfig() if mode == 'noaug' else
         config_lib.AugmentConfig(mode='ada', pipe='bgc', target=0.6, kimg=20.0))
  return config_lib.resolve_config(config_lib.TrainConfig(
      run_dir=run_dir, data=config_lib.DataConfig(data_dir=data_dir), cfg_name='ada-att',
      G=g, D=d, loss=config_lib.LossConfig(r1_gamma=0.0002 * 64 ** 2 / batch),
      optimizer=config_lib.OptimizerConfig(learning_rate=0.0025), batch_size=batch,
      total_kimg=kimg, ema_kimg=batch * 10 / 32, ema_rampup=0.05, seed=seed, augment=aug,
      tick_kimg=4, image_snapshot_ticks=1000, checkpoint_ticks=1000,
      network_snapshot_ticks=1000, grid=(8, 4)))


def run(args):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  tf.config.threading.set_inter_op_parallelism_threads(args.threads)
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  from sg2tf import dataset as sg2tf_dataset  # pylint: disable=g-import-not-at-top
  from sg2tf.training import distribute, loop  # pylint: disable=g-import-not-at-top

  work = args.work or tempfile.mkdtemp(prefix='ada_att_')
  data = make_datasets(args.source, work)
  run_dir = os.path.join(work, f'run_{args.mode}_{args.seed}')
  cfg = train_config(args.mode, data['train'], run_dir, args.kimg, args.seed)
  tr = loop.Trainer(cfg, distribute.make_strategy('default'))

  def all_images(path):
    info = sg2tf_dataset.DatasetInfo.from_dir(path)
    ds = sg2tf_dataset.make_dataset(info, info.count, 64, shuffle_buffer=0, repeat=False,
                                    prefetch=None)
    return next(iter(ds))
  train_x, held_x = all_images(data['train']), all_images(data['held'])
  z = tf.constant(np.random.RandomState(123).randn(64, cfg.G.z_dim).astype(np.float32))
  mean_logit = tf.function(lambda x: tf.reduce_mean(tr.D(x, impl=cfg.impl)))
  fake_logit = tf.function(lambda z: tf.reduce_mean(tr.D(tr.G(z, impl=cfg.impl),
                                                         impl=cfg.impl)))

  records, signs = [], []
  out_path = args.out or str(RESULTS / f'ada_att_faces_{args.mode}.json')
  os.makedirs(os.path.dirname(out_path), exist_ok=True)
  total = int(cfg.total_kimg * 1000)
  t0 = time.time()
  next_eval = 0
  while True:
    nimg = int(tr.nimg.numpy())
    if nimg >= next_eval or nimg >= total:
      rec = {'kimg': nimg / 1000, 'sec': time.time() - t0,
             'r_t': float(np.mean(signs)) if signs else None,
             'p': float(tr.augment_p.numpy()),
             'D_train': float(mean_logit(train_x)), 'D_held': float(mean_logit(held_x)),
             'D_fake': float(fake_logit(z))}
      rec['gap'] = rec['D_train'] - rec['D_held']
      records.append(rec)
      signs = []
      rate = nimg / max(rec['sec'], 1e-9)
      eta = (total - nimg) / rate if rate > 0 else float('nan')
      logging.info('kimg %.1f  r_t %s  p %.3f  D train %.3f held %.3f gap %.3f fake %.3f  '
                   '(%.1f img/s, eta %.0f min)', rec['kimg'],
                   'n/a' if rec['r_t'] is None else f'{rec["r_t"]:.3f}', rec['p'],
                   rec['D_train'], rec['D_held'], rec['gap'], rec['D_fake'], rate, eta / 60)
      meta = {'mode': args.mode, 'seed': args.seed, 'threads': args.threads,
              'load_avg_at_end': os.getloadavg(), 'cpus': os.cpu_count(),
              'config': cfg.to_dict()}
      tmp = out_path + '.tmp'
      with open(tmp, 'w') as f:
        json.dump({'meta': meta, 'records': records}, f, indent=1)
      os.replace(tmp, out_path)
      next_eval += int(args.eval_kimg * 1000)
      if nimg >= total:
        break
    m = tr.train_step()
    signs.append(m['Loss/signs/real'])
  grid = tr.generate_grid()
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  tool_util.save_png(str(RESULTS / f'ada_att_faces_{args.mode}_fakes.png'), grid)
  print(f'Wrote {out_path}')


def _smooth(values, window):
  """Trailing running mean over `window` records (the first ones over what exists)."""
  out = []
  for i in range(len(values)):
    part = values[max(0, i - window + 1):i + 1]
    out.append(sum(part) / len(part))
  return out


def held_out_position(rec):
  """Where D puts the held-out photos between the training photos (0) and G's fakes (1):
  (D(train) - D(held)) / (D(train) - D(fakes)). The raw gap moves with D's overall logit
  scale, which swings by several units between records; this ratio does not."""
  spread = rec['D_train'] - rec['D_fake']
  return rec['gap'] / spread if spread > 1e-6 else float('nan')


def summarize(recs, last_kimg):
  """Means over the records of the last `last_kimg` kimg and over the first half of the run."""
  end = recs[-1]['kimg']
  late = [r for r in recs if r['kimg'] > end - last_kimg and r['r_t'] is not None]
  early = [r for r in recs if 0 < r['kimg'] <= end / 2 and r['r_t'] is not None]
  mean = lambda rs, f: sum(f(r) for r in rs) / max(len(rs), 1)  # pylint: disable=unnecessary-lambda-assignment
  return {
      'kimg': end, 'minutes': recs[-1]['sec'] / 60, 'p_final': recs[-1]['p'],
      'late_from_kimg': end - last_kimg,
      'r_t_late': mean(late, lambda r: r['r_t']), 'gap_late': mean(late, lambda r: r['gap']),
      'gap_early': mean(early, lambda r: r['gap']),
      'held_pos_late': mean(late, held_out_position),
      'held_pos_early': mean(early, held_out_position),
      'gap_max': max(r['gap'] for r in recs)}


def plot(args):
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(REPO / 'experiments'))
  import plot as plot_lib  # pylint: disable=g-import-not-at-top
  runs = {}
  for mode in ('noaug', 'ada'):
    path = RESULTS / f'ada_att_faces_{mode}.json'
    if path.is_file():
      runs[mode] = [r for r in json.loads(path.read_text())['records'] if r['kimg'] > 0]
  colors = {'noaug': plot_lib.COLORS[1], 'ada': plot_lib.COLORS[0]}
  w = args.smooth

  def series(mode, recs, key, smooth=True, label=None, dashed=False):
    pts = [(r['kimg'], key(r) if callable(key) else r[key]) for r in recs]
    pts = [(x, y) for x, y in pts if y is not None]
    ys = [y for _, y in pts]
    return plot_lib.Series(label or mode, [x for x, _ in pts], _smooth(ys, w) if smooth else ys,
                           colors[mode], dashed=dashed)
  sm = f' ({w}-kimg running mean)' if w > 1 else ''
  panels = [
      plot_lib.Panel(f'r_t = E[sign D(augmented train reals)]{sm}; target 0.6', 'kimg', 'r_t',
                     [series(m, r, 'r_t') for m, r in runs.items()], hlines=[0.6]),
      plot_lib.Panel(f'D(train) - D(held-out): mean logit gap{sm}', 'kimg', 'gap',
                     [series(m, r, 'gap') for m, r in runs.items()], hlines=[0.0]),
      plot_lib.Panel(f'held-out between train (0) and fakes (1){sm}', 'kimg', 'position',
                     [series(m, r, held_out_position) for m, r in runs.items()], hlines=[0.0]),
      plot_lib.Panel('mean D logit: train (solid), held-out (dashed), per record', 'kimg',
                     'logit',
                     [series(m, r, 'D_train', False, f'{m} train') for m, r in runs.items()] +
                     [series(m, r, 'D_held', False, f'{m} held', True)
                      for m, r in runs.items()]),
      plot_lib.Panel('augmentation strength p', 'kimg', 'p',
                     [series(m, r, 'p', False) for m, r in runs.items()]),
  ]
  extra = []
  for mode in runs:
    png = RESULTS / f'ada_att_faces_{mode}_fakes.png'
    if png.is_file():
      grid = Image.open(png).convert('RGB')
      tile = Image.new('RGB', (grid.width, grid.height + 20), (255, 255, 255))
      ImageDraw.Draw(tile).text((4, 4), f'{mode}: G_ema samples at the end of the run',
                                fill=(0, 0, 0))
      tile.paste(grid, (0, 20))
      extra.append(tile)
  out = plot_lib.save_panels(str(RESULTS / 'ada_att_faces.png'), panels, columns=2,
                             extra=extra)
  summary = {m: summarize(r, args.last_kimg) for m, r in runs.items() if r}
  for mode, s in summary.items():
    print(f'{mode}: {s["kimg"]:.0f} kimg in {s["minutes"]:.0f} min; over kimg '
          f'{s["late_from_kimg"]:.0f}-{s["kimg"]:.0f}: r_t {s["r_t_late"]:.3f}, gap '
          f'{s["gap_late"]:.3f} (first half {s["gap_early"]:.3f}), held-out position '
          f'{s["held_pos_late"]:.3f} (first half {s["held_pos_early"]:.3f}); max gap '
          f'{s["gap_max"]:.3f}; final p {s["p_final"]:.3f}')
  tmp = str(RESULTS / 'ada_att_faces_summary.json.tmp')
  with open(tmp, 'w') as f:
    json.dump(summary, f, indent=1)
  os.replace(tmp, str(RESULTS / 'ada_att_faces_summary.json'))
  print(f'Wrote {out}')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--mode', choices=['noaug', 'ada'])
  parser.add_argument('--plot', action='store_true')
  parser.add_argument('--kimg', type=float, default=48.0)
  parser.add_argument('--eval_kimg', type=float, default=1.0)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--threads', type=int, default=1)
  parser.add_argument('--source', default=_default_source())
  parser.add_argument('--work', default=None, help='folder for datasets and run dirs')
  parser.add_argument('--out', default=None)
  parser.add_argument('--smooth', type=int, default=5,
                      help='--plot: running mean over this many records')
  parser.add_argument('--last_kimg', type=float, default=16.0,
                      help='--plot: the summary averages over the last this many kimg')
  args = parser.parse_args()
  if args.plot:
    plot(args)
    return
  if not args.mode:
    parser.error('give --mode=noaug|ada or --plot')
  if not os.path.isdir(args.source):
    parser.error(f'--source={args.source}: no such folder (the AT&T faces, s1 ... s40).')
  run(args)


if __name__ == '__main__':
  main()
