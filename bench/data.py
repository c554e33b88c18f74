"""Dataset tool and input pipeline throughput: python bench/data.py [--quick].

Measures, at 64x64 and 256x256 (RGB):
  create_images  create_from_images on a folder of PNGs (decode + pyramid + write), img/s,
                 wall time of the whole call including inspection and hashing;
  create_npy     create_from_npy on a uint8 array, img/s;
  read_1         make_dataset(batch 32, mirror_augment, shuffle) -> float32 NHWC, img/s;
  read_2         the same through distribute() on MirroredStrategy over 2 logical CPU devices.
Each read runs in a fresh process, as in training (one pipeline per process): an earlier
pipeline's threads and allocations would otherwise skew the next one. Reads also report CPU
milliseconds per image (user + system), which other processes on a shared machine distort
less than wall-clock rates; cap = cores / cpu_ms is the rate with the cores to itself.

read_2 on logical CPU devices reads one host pipeline per replica (sg2tf.dataset.distribute);
TensorFlow's default for one worker -- one pipeline split by a MultiDeviceIterator -- page-faults
fresh memory for every batch and reached only 1.6-1.9k img/s at 256x256 here. On GPUs the
default path is kept: its copy is the host-to-device transfer that has to happen anyway.

Prints a table and writes bench/results/data.json. The target is >= 2,000 img/s for read_* at
256x256 on 2 cores: the pipeline must never limit training.
"""

import json
import os
import pathlib
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
# This file is bench/data.py: with bench/ first on sys.path, `import data` would import it
# instead of the repository's data/ package.
sys.path[:] = [str(REPO)] + [p for p in sys.path
                             if pathlib.Path(p or '.').resolve() != REPO / 'bench']
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

TARGET = 2000
BATCH = 32


def make_pngs(folder, n, res, rng):
  """Photo-like PNGs (smooth gradients plus noise, so they compress like real images)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import PIL.Image  # pylint: disable=g-import-not-at-top
  folder.mkdir(parents=True)
  yy, xx = np.mgrid[0:res, 0:res] / res
  for i in range(n):
    a, b, c = rng.uniform(0, 1, 3)
    base = np.stack([a * xx + (1 - a) * yy, b * yy, c * (1 - xx)], -1) * 200
    img = (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
    PIL.Image.fromarray(img).save(folder / f'{i:05d}.png', compress_level=6)


def _usage():
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def read_child(ds_dir, replicas, seconds):
  """In a fresh process: images/s and CPU ms/image of one pipeline; prints JSON."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if replicas > 1:  # Logical devices must exist before TensorFlow starts.
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
  from sg2tf import dataset  # pylint: disable=g-import-not-at-top
  if replicas > 1:
    strategy = tf.distribute.MirroredStrategy([f'/cpu:{i}' for i in range(replicas)])
    it = iter(dataset.distribute(strategy, ds_dir, BATCH, mirror_augment=True, seed=0))
  else:
    it = iter(dataset.make_dataset(ds_dir, BATCH, mirror_augment=True, seed=0))
  for _ in range(5):
    next(it)
  steps, t, c = 0, time.perf_counter(), _usage()
  while True:
    next(it)
    steps += 1
    dt = time.perf_counter() - t
    if dt >= seconds and steps >= 10:
      break
  n = steps * BATCH
  print(json.dumps({'img_s': n / dt, 'cpu_ms': (_usage() - c) * 1e3 / n}))


def read_rate(ds_dir, replicas, seconds):
  r = subprocess.run([sys.executable, __file__, '--read', str(ds_dir), str(replicas),
                      str(seconds)], capture_output=True, text=True, check=False)
  if r.returncode:
    raise RuntimeError(f'read benchmark failed:\n{r.stderr[-3000:]}')
  out = json.loads(r.stdout.strip().splitlines()[-1])
  return out['img_s'], out['cpu_ms']


def bench_resolution(root, res, n, seconds):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from sg2tf.dataset_tool import create  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(res)
  src = root / f'png{res}'
  make_pngs(src, n, res, rng)
  opts = create.Options(shuffle=True)
  t = time.perf_counter()
  ds_dir = create.create_from_images(root / f'ds{res}', src, opts)
  create_images = n / (time.perf_counter() - t)
  np.save(root / f'a{res}.npy', rng.integers(0, 256, (n, res, res, 3), dtype=np.uint8))
  t = time.perf_counter()
  create.create_from_npy(root / f'npy{res}', root / f'a{res}.npy', opts)
  create_npy = n / (time.perf_counter() - t)
  shutil.rmtree(root / f'npy{res}')
  (root / f'a{res}.npy').unlink()
  shutil.rmtree(src)
  read_1, cpu_1 = read_rate(ds_dir, 1, seconds)
  read_2, cpu_2 = read_rate(ds_dir, 2, seconds)
  shutil.rmtree(ds_dir)
  cores = create.cpu_count()
  return {'resolution': res, 'images': n, 'create_images_img_s': round(create_images, 1),
          'create_npy_img_s': round(create_npy, 1), 'read_1_replica_img_s': round(read_1, 1),
          'read_2_replicas_img_s': round(read_2, 1),
          'read_1_replica_cpu_ms_per_img': round(cpu_1, 3),
          'read_2_replicas_cpu_ms_per_img': round(cpu_2, 3),
          'read_1_replica_capacity_img_s': round(cores * 1e3 / cpu_1),
          'read_2_replicas_capacity_img_s': round(cores * 1e3 / cpu_2)}


def main():
  if sys.argv[1:2] == ['--read']:
    read_child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  quick = '--quick' in sys.argv
  logging.set_verbosity(logging.WARNING)
  sizes = [(64, 512 if quick else 2048), (256, 128 if quick else 512)]
  seconds = 2.0 if quick else 6.0
  load_before = os.getloadavg()
  root = pathlib.Path(tempfile.mkdtemp(prefix='bench_data_'))
  try:
    rows = [bench_resolution(root, res, n, seconds) for res, n in sizes]
  finally:
    shutil.rmtree(root, ignore_errors=True)
  load_after = os.getloadavg()
  print(f'{"res":>5} {"images":>7} {"create_images":>14} {"create_npy":>11} {"read_1":>8} '
        f'{"read_2":>8} {"cpu_ms_1":>9} {"cpu_ms_2":>9} {"cap_1":>7} {"cap_2":>7}')
  for r in rows:
    print(f'{r["resolution"]:>5} {r["images"]:>7} {r["create_images_img_s"]:>14.0f} '
          f'{r["create_npy_img_s"]:>11.0f} {r["read_1_replica_img_s"]:>8.0f} '
          f'{r["read_2_replicas_img_s"]:>8.0f} {r["read_1_replica_cpu_ms_per_img"]:>9.3f} '
          f'{r["read_2_replicas_cpu_ms_per_img"]:>9.3f} {r["read_1_replica_capacity_img_s"]:>7} '
          f'{r["read_2_replicas_capacity_img_s"]:>7}')
  print('img/s of wall time; cpu_ms = CPU milliseconds per image read; cap = cores / cpu_ms.')
  top = rows[-1]
  ok = min(top['read_1_replica_img_s'], top['read_2_replicas_img_s']) >= TARGET
  print(f'256x256 read target {TARGET} img/s (wall): {"met" if ok else "NOT met"}; load average '
        f'{load_before[0]:.1f} before, {load_after[0]:.1f} after (other processes share the '
        f'cores).')
  out = {'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                     'tensorflow': tf.__version__,
                     'loadavg_before': load_before, 'loadavg_after': load_after},
         'batch': BATCH, 'quick': quick, 'target_read_img_s_256': TARGET, 'target_met': ok,
         'results': rows}
  results = REPO / 'bench' / 'results'
  results.mkdir(parents=True, exist_ok=True)
  (results / 'data.json').write_text(json.dumps(out, indent=1))


if __name__ == '__main__':
  main()
