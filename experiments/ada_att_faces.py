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
Other settings follow StyleGAN2-ADA's `auto` config for 64x64: R1 gamma 0.0002 * 64^2 / 16,
lr 0.0025, G_ema half-life 5 kimg with ramp-up 0.05, batch 16.

  python experiments/ada_att_faces.py --mode=noaug        # ~25 min on one core
  python experiments/ada_att_faces.py --mode=ada          # ~35 min
  python experiments/ada_att_faces.py --plot              # results/ada_att_faces.png

Not a test: it runs for half an hour and its numbers depend on the machine's load. The
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


def plot(args):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(REPO / 'experiments'))
  import plot as plot_lib  # pylint: disable=g-import-not-at-top
  runs = {}
  for mode in ('noaug', 'ada'):
    path = RESULTS / f'ada_att_faces_{mode}.json'
    if path.is_file():
      runs[mode] = json.loads(path.read_text())['records']
  colors = {'noaug': plot_lib.COLORS[1], 'ada': plot_lib.COLORS[0]}
  get = lambda recs, k: ([r['kimg'] for r in recs if r[k] is not None],  # pylint: disable=unnecessary-lambda-assignment
                         [r[k] for r in recs if r[k] is not None])
  panels = [
      plot_lib.Panel('r_t = E[sign D(augmented train reals)]; ADA target 0.6', 'kimg', 'r_t',
                     [plot_lib.Series(m, *get(r, 'r_t'), colors[m]) for m, r in runs.items()],
                     hlines=[0.6]),
      plot_lib.Panel('D(train) - D(held-out): mean logit gap', 'kimg', 'gap',
                     [plot_lib.Series(m, *get(r, 'gap'), colors[m]) for m, r in runs.items()],
                     hlines=[0.0]),
      plot_lib.Panel('mean D logit: train (solid), held-out (dashed)', 'kimg', 'logit',
                     [plot_lib.Series(f'{m} train', *get(r, 'D_train'), colors[m])
                      for m, r in runs.items()] +
                     [plot_lib.Series(f'{m} held', *get(r, 'D_held'), colors[m], dashed=True)
                      for m, r in runs.items()]),
      plot_lib.Panel('augmentation strength p (ada)', 'kimg', 'p',
                     [plot_lib.Series(m, *get(r, 'p'), colors[m]) for m, r in runs.items()]),
  ]
  extra = []
  for mode in runs:
    png = RESULTS / f'ada_att_faces_{mode}_fakes.png'
    if png.is_file():
      extra.append(Image.open(png).convert('RGB'))
  out = plot_lib.save_panels(str(RESULTS / 'ada_att_faces.png'), panels, columns=2,
                             extra=extra)
  for mode, recs in runs.items():
    last = recs[-1]
    print(f'{mode}: kimg {last["kimg"]:.1f}, gap {last["gap"]:.3f}, p {last["p"]:.3f}, '
          f'max gap {max(r["gap"] for r in recs):.3f}, time {last["sec"] / 60:.0f} min')
  print(f'Wrote {out}')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--mode', choices=['noaug', 'ada'])
  parser.add_argument('--plot', action='store_true')
  parser.add_argument('--kimg', type=float, default=16.0)
  parser.add_argument('--eval_kimg', type=float, default=0.5)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--threads', type=int, default=1)
  parser.add_argument('--source', default=_default_source())
  parser.add_argument('--work', default=None, help='folder for datasets and run dirs')
  parser.add_argument('--out', default=None)
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
