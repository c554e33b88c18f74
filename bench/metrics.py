"""Benchmark: metric feature extraction, metric run times, and P&R memory, on this machine.

1. Feature extraction throughput (images/s, batch 8, inside tf.function) of networks with
   the real architectures and random weights (the published weights cannot be downloaded
   here): sg2tf's VGG16 (fc2 features at 224^2, what pr50k3 runs), sg2tf's LPIPS-VGG16
   (pairs at 256^2, what ppl_* runs), and Keras' InceptionV3 at 299^2 as a stand-in for the
   cost of the 2015 Inception graph (same architecture family and input size; the 2015 graph
   itself is not available here). From these: the estimated feature time of the full
   protocols (50k images; PPL 50k pairs).
2. Wall time of each metric at reduced sample counts through runner.evaluate (tiny stand-in
   feature networks, a linear generator, a 32x32 dataset): the pipeline's own overhead.
3. Precision/recall memory: random 4096-d features (the VGG16 fc2 width), peak RSS added by
   precision_recall (ru_maxrss delta in a fresh process per case) for growing N at a fixed
   block size, and for one block holding the whole N x N matrix, plus the time; the time of
   50k x 50k is extrapolated as t * (50000 / N)^2.

Prints tables and writes bench/results/metrics.json.

  python bench/metrics.py [--quick] [--out bench/results/metrics.json]
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

from sg2tf.utils import files

REPO = pathlib.Path(__file__).resolve().parents[1]

_THROUGHPUT = r"""
import json, sys, time
import numpy as np, tensorflow as tf
from sg2tf.metrics import feature_nets
kind, iters = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
B = 8

def vgg16_state():
    state, cin = {}, 3
    for idx, cout in zip((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
                         (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)):
        state[f'features.{idx}.weight'] = (rng.standard_normal([cout, cin, 3, 3], np.float32)
                                           * np.sqrt(2 / (9 * cin))).astype(np.float32)
        state[f'features.{idx}.bias'] = np.zeros([cout], np.float32)
        cin = cout
    for idx, (fin, fout) in zip((0, 3), ((25088, 4096), (4096, 4096))):
        state[f'classifier.{idx}.weight'] = (rng.standard_normal([fout, fin], np.float32)
                                             * np.sqrt(2 / fin)).astype(np.float32)
        state[f'classifier.{idx}.bias'] = np.zeros([fout], np.float32)
    return state

if kind == 'vgg16':
    net = feature_nets.VGG16(vgg16_state())
    x = tf.constant(rng.integers(0, 256, [B, 256, 256, 3], dtype=np.uint8))
    fn = tf.function(lambda x: net.features(x))
    per_call = B
elif kind == 'lpips':
    vgg = feature_nets.VGG16(vgg16_state(), with_classifier=False)
    lin = {f'lin{i}.model.1.weight': np.abs(rng.standard_normal([1, c, 1, 1])).astype(np.float32)
           for i, c in enumerate((64, 128, 256, 512, 512))}
    net = feature_nets.LPIPS(vgg, lin)
    x = tf.constant(rng.uniform(0, 255, [B, 256, 256, 3]).astype(np.float32))
    fn = tf.function(lambda x: net(x[: B // 2], x[B // 2:]))
    per_call = B // 2
else:
    model = tf.keras.applications.InceptionV3(weights=None, include_top=True, classes=1008)
    x = tf.constant(rng.integers(0, 256, [B, 256, 256, 3], dtype=np.uint8))
    fn = tf.function(lambda x: model(tf.image.resize(tf.cast(x, tf.float32), [299, 299]) / 128 - 1))
    per_call = B
fn(x)
t0 = time.perf_counter()
for _ in range(iters):
    np.asarray(fn(x))
dt = (time.perf_counter() - t0) / iters
item = 'pair' if kind == 'lpips' else 'image'
print(json.dumps({'items_per_s': per_call / dt, 'batch': B, 'item': item}))
"""

_PR_MEMORY = r"""
import json, resource, sys, time
import numpy as np
n, block = int(sys.argv[1]), int(sys.argv[2])
from sg2tf import metrics
rng = np.random.default_rng(0)
real = rng.standard_normal([n, 4096], dtype=np.float32)
fake = rng.standard_normal([n, 4096], dtype=np.float32) * 1.1
metrics.precision_recall(real[:50], fake[:50], row_batch_size=16, col_batch_size=16)  # warm up TF
m0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
p, r = metrics.precision_recall(real, fake, k=3, row_batch_size=block, col_batch_size=block)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - m0
print(json.dumps({'seconds': dt, 'peak_added_mib': peak / 1024, 'precision': p, 'recall': r,
                  'features_mib': 2 * real.nbytes / 2**20}))
"""

_METRIC_TIMES = r"""
import json, os, sys, tempfile, time
import numpy as np
from absl import logging
logging.set_verbosity(logging.WARNING)
from sg2tf.metrics import runner
from tests.metrics import standins
num = int(sys.argv[1])
root = tempfile.mkdtemp()
feat = standins.write_feature_dir(os.path.join(root, 'f'))
data = os.path.join(root, 'd')
reals = np.random.default_rng(0).integers(0, 256, [num, 32, 32, 3], np.uint8)
standins.write_tfrecord_dataset(data, reals)
G = standins.LinearGenerator(resolution=32)
out = {}
for name in ['fid50k', 'is50k', 'pr50k3', 'ppl2_wend', 'ppl_zfull']:
    opt = runner.Options(feature_dir=feat, cache_dir=os.path.join(root, 'c'), download=False,
                         num_fakes=num, num_reals=num, batch_per_replica=16)
    t0 = time.perf_counter()
    runner.evaluate(G, [name], data, opt)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    runner.evaluate(G, [name], data, opt)  # reals cached, functions traced again
    out[name] = {'cold_s': cold, 'cached_reals_s': time.perf_counter() - t0, 'samples': num}
print(json.dumps(out))
"""


def _run(code, *args, timeout=900):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(REPO))
  proc = subprocess.run([sys.executable, '-c', code] + [str(a) for a in args],
                        capture_output=True, text=True, env=env, timeout=timeout, cwd=str(REPO),
                        check=False)
  if proc.returncode != 0:
    raise RuntimeError(f'case {args} failed:\n{proc.stderr[-4000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--quick', action='store_true', help='fewer iterations and smaller N')
  ap.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'metrics.json'))
  args = ap.parse_args()
  iters = 1 if args.quick else 2
  t_start = time.time()
  result = {'machine': {'platform': platform.platform(), 'cpus': os.cpu_count(),
                        'load_avg_at_start': os.getloadavg()[0]}}

  print('== feature extraction (real architectures, random weights, batch 8) ==')
  thr = {}
  for kind, label in [('inception_proxy', 'InceptionV3 299^2 (Keras, proxy for 2015 graph)'),
                      ('vgg16', 'VGG16 fc2 224^2 (pr50k3)'), ('lpips', 'LPIPS-VGG16 256^2 (ppl)')]:
    r = _run(_THROUGHPUT, kind, iters)
    r['est_50k_minutes'] = 50000 / r['items_per_s'] / 60
    thr[kind] = r
    print(f'{label:<50} {r["items_per_s"]:8.2f} {r["item"]}s/s   '
          f'50k: ~{r["est_50k_minutes"]:.0f} min')
  result['feature_throughput'] = thr

  print('\n== metric wall time, reduced counts, tiny stand-in nets (pipeline overhead) ==')
  num = 64 if args.quick else 128
  times = _run(_METRIC_TIMES, num)
  for name, r in times.items():
    print(f'{name:<12} {num} samples: {r["cold_s"]:6.1f} s first run, '
          f'{r["cached_reals_s"]:6.1f} s with cached reals')
  result['metric_times'] = times

  print('\n== precision/recall memory (4096-d random features, k=3) ==')
  cases = [(1500, 500), (3000, 500), (3000, 3000)] if args.quick else [
      (2000, 500), (4000, 500), (4000, 4000)]
  pr = []
  for n, block in cases:
    r = _run(_PR_MEMORY, n, block)
    r.update(n=n, block=block, est_50k_seconds=r['seconds'] * (50000 / n) ** 2)
    pr.append(r)
    print(f'N={n:>6} block={block:>5}: {r["seconds"]:6.1f} s, peak added '
          f'{r["peak_added_mib"]:7.1f} MiB (features {r["features_mib"]:.0f} MiB)  '
          f'-> 50k x 50k ~{r["est_50k_seconds"] / 60:.0f} min')
  result['pr_memory'] = pr
  result['total_seconds'] = time.time() - t_start
  result['load_avg_at_end'] = os.getloadavg()[0]
  files.write_json(args.out, result, indent=2)  # atomic; the mode follows the umask
  print(f'\nwrote {args.out} ({result["total_seconds"]:.0f} s)')


if __name__ == '__main__':
  main()
