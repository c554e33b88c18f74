"""Experiment: does bfloat16 training give the same quality as float32?

The quickstart configuration (configs/quickstart.flags: 32x32 grayscale, small skip G /
resnet D, R1 + path length + style mixing + G_ema, 12 kimg) on the 400 AT&T faces
(centre-cropped, resized to 32x32), three times with the same budget:
  float32 seed 0, float32 seed 1, bfloat16 seed 0 (--precision=bfloat16, num_fp16_res 4:
  every block from 8x8 up; mapping, 4x4 block, weights and losses float32).
Outputs (experiments/results/): bf16_quickstart.json (per-tick losses, the statistic below,
timings, load) and bf16_quickstart.png (loss curves and the final G_ema grids side by side).

The statistic: a pixel-space Frechet distance, FD8 = ||mu_f - mu_r||^2 +
tr(S_f + S_r - 2 (S_f S_r)^(1/2)) between Gaussians fitted to 8x8 average-pooled images
(64 dimensions) of 2000 G_ema samples and of all 400 real faces. It is FID's formula on raw
coarse pixels instead of Inception features: no feature network is needed (none can be
downloaded here), it is cheap, and it sees what a 12 kimg run gets right or wrong (overall
layout, brightness, contrast, variety). The two float32 seeds give the seed-to-seed spread;
bfloat16 passes if its FD8 lies within that spread: |FD8_bf16 - mean_fp32| <= |FD8_s0 - FD8_s1|
(or inside [min, max] of the two).

  python experiments/bf16_quickstart.py [--threads 1] [--kimg 12]   # ~1 h on one core
  python experiments/bf16_quickstart.py --report          # from existing run dirs
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'experiments'))
RESULTS = REPO / 'experiments' / 'results'
RUNS = (('float32 seed 0', 'float32', 0), ('float32 seed 1', 'float32', 1),
        ('bfloat16 seed 0', 'bfloat16', 0))


def _source():
  for up in (REPO.parent, REPO.parent.parent):
    path = up / 'shared' / 'datasets' / 'att_faces'
    if path.is_dir():
      return str(path)
  return str(REPO.parent / 'shared' / 'datasets' / 'att_faces')


def run_dir(work, precision, seed):
  return os.path.join(work, f'run_{precision}_{seed}')


def train(args):
  data = os.path.join(args.work, 'dataset')
  if not os.path.isdir(data):
    subprocess.run([sys.executable, str(REPO / 'data' / 'dataset_tool.py'), 'create_from_images',
                    data, args.source, '--center-crop', '--resolution=32', '--channels=1'],
                   check=True)
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(args.threads),
             TF_NUM_INTEROP_THREADS=str(args.threads), TF_CPP_MIN_LOG_LEVEL='2')
  timings = {}
  for _, precision, seed in RUNS:
    rd = run_dir(args.work, precision, seed)
    t, load = time.time(), os.getloadavg()[0]
    subprocess.run([sys.executable, str(REPO / 'train_main.py'),
                    f'--flagfile={REPO / "configs" / "quickstart.flags"}', f'--data_dir={data}',
                    f'--run_dir={rd}', f'--precision={precision}', f'--seed={seed}'] +
                   ([f'--total_kimg={args.kimg}'] if args.kimg else []),
                   check=True, env=env, cwd=str(REPO))
    timings[f'{precision}_{seed}'] = {'sec': time.time() - t, 'load_before': load,
                                      'load_after': os.getloadavg()[0]}
  with open(os.path.join(args.work, 'timings.json'), 'w') as f:
    json.dump(timings, f)


def fd8(a, b):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import scipy.linalg  # pylint: disable=g-import-not-at-top
  mu_a, mu_b = a.mean(0), b.mean(0)
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  root = scipy.linalg.sqrtm(s_a @ s_b).real
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * root))


def pooled(images):
  """[N, 32, 32, 1] in [-1, 1] -> [N, 64] 8x8 average-pooled pixels."""
  n = images.shape[0]
  return images.reshape(n, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(n, 64).astype('float64')


def report(args):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  import plot as plot_lib  # pylint: disable=g-import-not-at-top
  from sg2tf import dataset as sg2tf_dataset  # pylint: disable=g-import-not-at-top
  from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top

  info = sg2tf_dataset.DatasetInfo.from_dir(os.path.join(args.work, 'dataset'))
  reals = next(iter(sg2tf_dataset.make_dataset(info, info.count, 32, shuffle_buffer=0,
                                               repeat=False, prefetch=None))).numpy()
  real_feats = pooled(reals)
  timings = {}
  path = os.path.join(args.work, 'timings.json')
  if os.path.isfile(path):
    with open(path) as f:
      timings = json.load(f)
  out, curves, grids = {}, {}, []
  for label, precision, seed in RUNS:
    rd = run_dir(args.work, precision, seed)
    _, _, G_ema = serialization.load_networks(
        os.path.join(rd, 'export', 'networks-final'))
    z = np.random.RandomState(1234).randn(2000, G_ema.z_dim).astype(np.float32)
    fakes = np.concatenate([G_ema(tf.constant(z[i:i + 200]), noise_mode='const').numpy()
                            for i in range(0, 2000, 200)])
    acc = event_accumulator.EventAccumulator(rd, size_guidance={'tensors': 0})
    acc.Reload()
    series = {}
    for tag in ('Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake'):
      ev = acc.Tensors(tag)
      series[tag] = ([e.step / 1000 for e in ev],
                     [float(tf.make_ndarray(e.tensor_proto)) for e in ev])
    finite = all(np.all(np.isfinite(v[1])) for v in series.values()) and np.all(
        np.isfinite(fakes))
    out[label] = {'fd8': fd8(pooled(fakes), real_feats), 'finite': bool(finite),
                  'losses': {k: v[1] for k, v in series.items()}, 'kimg': series['Loss/G/loss'][0],
                  'timing': timings.get(f'{precision}_{seed}')}
    curves[label] = series
    png = sorted(p for p in os.listdir(rd) if p.startswith('fakes0') and p.endswith('.png'))[-1]
    grids.append((label, Image.open(os.path.join(rd, png)).convert('RGB')))
  fp = [out[l]['fd8'] for l, p, _ in RUNS if p == 'float32']
  bf = out['bfloat16 seed 0']['fd8']
  spread = abs(fp[0] - fp[1])
  verdict = {'fd8_float32': fp, 'fd8_bfloat16': bf, 'spread': spread,
             'within_spread': bool(abs(bf - np.mean(fp)) <= spread or min(fp) <= bf <= max(fp))}
  colors = dict(zip([l for l, _, _ in RUNS], plot_lib.COLORS))
  panels = [plot_lib.Panel(tag, 'kimg', tag.split('/')[-1],
                           [plot_lib.Series(l, *curves[l][tag], colors[l]) for l in curves])
            for tag in ('Loss/G/loss', 'Loss/D/loss')]
  labelled = []
  for label, img in grids:
    canvas = Image.new('RGB', (img.width, img.height + 16), (255, 255, 255))
    canvas.paste(img, (0, 16))
    from PIL import ImageDraw  # pylint: disable=g-import-not-at-top
    ImageDraw.Draw(canvas).text((4, 2), f'{label}: FD8 {out[label]["fd8"]:.3f}', fill=(0, 0, 0))
    labelled.append(canvas.resize((canvas.width * 2 // 3, canvas.height * 2 // 3)))
  RESULTS.mkdir(parents=True, exist_ok=True)
  plot_lib.save_panels(str(RESULTS / 'bf16_quickstart.png'), panels, columns=2,
                       size=(560, 320), extra=labelled)
  with open(RESULTS / 'bf16_quickstart.json', 'w') as f:
    json.dump({'runs': out, 'verdict': verdict, 'cpus': os.cpu_count()}, f, indent=1)
  for label in out:
    print(f'{label}: FD8 {out[label]["fd8"]:.4f} finite {out[label]["finite"]} '
          f'time {out[label]["timing"]}')
  print('verdict', verdict)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--work', default='/tmp/sg2tf_bf16_quickstart')
  parser.add_argument('--source', default=_source())
  parser.add_argument('--threads', type=int, default=1)
  parser.add_argument('--kimg', type=float, default=None,
                      help='training length (default: the quickstart\'s 12 kimg)')
  parser.add_argument('--report', action='store_true', help='only evaluate existing runs')
  args = parser.parse_args()
  os.makedirs(args.work, exist_ok=True)
  if not args.report:
    if not os.path.isdir(args.source):
      parser.error(f'--source={args.source}: no such folder (the AT&T faces, s1 ... s40).')
    train(args)
  report(args)


if __name__ == '__main__':
  main()
