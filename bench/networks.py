"""Benchmark: StyleGAN2 networks (config-f channel widths, batch 4) on this machine.

For 64^2 and 256^2, impl custom vs ref and fused vs non-fused modulated conv, it measures
the median time of a G forward pass and of a G+D forward+backward (non-saturating G loss,
gradients for all G and D weights), each inside tf.function, and the peak memory they add:
ru_maxrss delta in a fresh process per case on CPU (tracemalloc does not see TF's
allocations), tf.config.experimental.get_memory_info peak on GPU. TF has no CPU gradient
for grouped convolutions, so fused forward+backward is reported as n/a on CPU.
Prints a table and writes bench/results/networks.json.

  python bench/networks.py [--quick] [--iters N] [--resolutions 64,256] [--out PATH]
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

_CASE = r"""
import json, resource, sys, time
import numpy as np, tensorflow as tf
from sg2tf import paper_configs as configs
from sg2tf import custom_ops
res, impl, mode, iters = int(sys.argv[1]), sys.argv[2], sys.argv[4], int(sys.argv[5])
fused = sys.argv[3] == '1'
gpu = bool(tf.config.list_physical_devices('GPU'))
if gpu:
    tf.config.experimental.enable_tensor_float_32_execution(False)
custom_ops.set_implementation(impl)
G, D = configs.build_networks(configs.get_config('config-f', resolution=res))
z = tf.constant(np.random.RandomState(0).standard_normal([4, G.z_dim]).astype(np.float32))

@tf.function
def g_fwd(z):
    return G(z, noise_mode='random', fused_modconv=fused)

@tf.function
def gd_fwd_bwd(z):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.softplus(-D(G(z, noise_mode='random', fused_modconv=fused))))
    grads = tape.gradient(loss, G.trainable_variables + D.trainable_variables)
    return loss, tf.add_n([tf.reduce_sum(g) for g in grads])

fn = g_fwd if mode == 'g_fwd' else gd_fwd_bwd
def kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fn.get_concrete_function(z)
if gpu:
    tf.config.experimental.reset_memory_stats('GPU:0')
m0 = kib()
t0 = time.perf_counter()
tf.nest.map_structure(lambda t: t.numpy(), fn(z))
first = time.perf_counter() - t0
peak_mib = (tf.config.experimental.get_memory_info('GPU:0')['peak'] / 2**20 if gpu
            else (kib() - m0) / 1024)
times = []
for _ in range(iters):
    t0 = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), fn(z))
    times.append(time.perf_counter() - t0)
print(json.dumps({'ms': 1e3 * float(np.median(times)) if times else 1e3 * first,
                  'first_ms': 1e3 * first, 'peak_mib': peak_mib, 'iters': iters,
                  'device': 'GPU' if gpu else 'CPU'}))
"""


def _gpu_visible():
  proc = subprocess.run([sys.executable, '-c', 'import tensorflow as tf; '
                         'print(len(tf.config.list_physical_devices("GPU")))'],
                        capture_output=True, text=True, check=False,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  return proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] != ['0']


def run_case(res, impl, fused, mode, iters):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(REPO))
  proc = subprocess.run([sys.executable, '-c', _CASE, str(res), impl, '1' if fused else '0', mode,
                         str(iters)], capture_output=True, text=True, env=env, check=False)
  if proc.returncode != 0:
    return {'error': proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(r, key, spec):
  if 'skipped' in r or 'error' in r:
    return 'n/a'
  return format(r[key], spec)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='1 timed iteration per case')
  parser.add_argument('--iters', type=int, default=None, help='timed iterations per case')
  parser.add_argument('--resolutions', default='64,256')
  parser.add_argument('--impls', default='ref,custom')
  parser.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'networks.json'))
  args = parser.parse_args()
  iters = args.iters if args.iters is not None else (1 if args.quick else 5)
  resolutions = [int(r) for r in args.resolutions.split(',')]
  impls = args.impls.split(',')
  sys.path.insert(0, str(REPO))
  # pylint: disable=g-import-not-at-top
  from sg2tf.custom_ops import CustomOpUnavailableError, resolve_impl
  notes = []
  if 'custom' in impls:
    try:
      resolve_impl('custom')  # Build once up front, outside the timed subprocesses.
    except CustomOpUnavailableError as e:
      impls.remove('custom')
      notes.append(f'custom ops unavailable, ref only: {e}')
  gpu = _gpu_visible()

  header = (f'{"res":>5} {"impl":<7}{"modconv":<10}{"G fwd ms":>10}{"MiB":>8}'
            f'{"G+D f+b ms":>12}{"MiB":>8}')
  print(header)
  print('-' * len(header))
  rows, t_start = [], time.time()
  for res in resolutions:
    for impl in impls:
      for fused in (False, True):
        row = {'resolution': res, 'batch': 4, 'config': 'config-f', 'impl': impl,
               'fused_modconv': fused}
        for mode in ('g_fwd', 'gd_fwd_bwd'):
          if fused and mode == 'gd_fwd_bwd' and not gpu:
            row[mode] = {'skipped': 'TF has no CPU gradient for grouped convolutions'}
          else:
            row[mode] = run_case(res, impl, fused, mode, iters)
        rows.append(row)
        g, gd = row['g_fwd'], row['gd_fwd_bwd']
        kind = 'fused' if fused else 'non-fused'
        print(f'{res:>5} {impl:<7}{kind:<10}{_fmt(g, "ms", ".1f"):>10}'
              f'{_fmt(g, "peak_mib", ".0f"):>8}{_fmt(gd, "ms", ".1f"):>12}'
              f'{_fmt(gd, "peak_mib", ".0f"):>8}', flush=True)
        for mode in ('g_fwd', 'gd_fwd_bwd'):
          if 'error' in row[mode]:
            print(f'      {mode} failed: {row[mode]["error"]}')
  print(f'median of {iters} iteration(s) after one warm-up; MiB = peak '
        f'{"GPU memory" if gpu else "RSS added (ru_maxrss delta)"} during the first call')
  for n in notes:
    print('note:', n)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  payload = {'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                         'python': platform.python_version(), 'gpu': gpu},
             'seconds': time.time() - t_start, 'iters': iters, 'notes': notes, 'rows': rows}
  tmp = out.with_suffix('.json.tmp')
  tmp.write_text(json.dumps(payload, indent=1))
  os.replace(tmp, out)
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
