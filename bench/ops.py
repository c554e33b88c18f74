"""Benchmark: compiled ops vs pure-TF reference at StyleGAN2 shapes, on this machine.

For each op (up2, down2, filter-only upfirdn2d; bias_act lrelu with bias) and each shape
(N=4: [C=512, 8x8] ... [C=64, 256x256]) it measures, for impl='custom' and impl='ref' side by
side, the median time of the forward pass and of forward+backward inside tf.function, and
the peak memory of one forward+backward from TF's own allocator statistics (BFC CPU
allocator, a fresh process per case, so both impls are measured the same way). Prints a table, writes bench/results/ops.json.

  python bench/ops.py [--quick] [--out bench/results/ops.json]
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
SHAPES = [(512, 8), (512, 16), (512, 32), (256, 64), (128, 128), (64, 256)]
OPS = ['up2', 'down2', 'filter', 'bias_lrelu']

_CASE = r"""
import json, sys, time
import numpy as np, tensorflow as tf
from sg2tf.custom_ops import bias_act, downsample2d, filter2d, setup_filter, upsample2d
op, c, r, impl, min_time = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
f = setup_filter([1, 3, 3, 1])
x = tf.constant(np.random.RandomState(0).standard_normal([4, r, r, c]).astype(np.float32))
b = tf.constant(np.zeros([c], np.float32))
fn = {'up2': lambda t: upsample2d(t, f, impl=impl),
      'down2': lambda t: downsample2d(t, f, impl=impl),
      'filter': lambda t: filter2d(t, f, impl=impl),
      'bias_lrelu': lambda t: bias_act(t, b, act='lrelu', impl=impl)}[op]
fwd = tf.function(lambda t: fn(t))
@tf.function
def fwd_bwd(t):
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = fn(t)
    return tape.gradient(y, t, output_gradients=y)
fwd_bwd(x)
base = tf.config.experimental.get_memory_info('CPU:0')['current']
tf.config.experimental.reset_memory_stats('CPU:0')
out = fwd_bwd(x)
peak = tf.config.experimental.get_memory_info('CPU:0')['peak'] - base
del out
def timeit(g):
    g(x)
    times = []
    t_end = time.perf_counter() + min_time
    # CPU function calls return when the result is computed: no host copy is timed.
    while time.perf_counter() < t_end or len(times) < 5:
        t0 = time.perf_counter(); g(x); times.append(time.perf_counter() - t0)
    return float(np.median(times))
print(json.dumps({'fwd_ms': 1e3 * timeit(fwd), 'fwd_bwd_ms': 1e3 * timeit(fwd_bwd), 'peak_mib': peak / 2**20}))
"""


def run_case(op, c, r, impl, min_time):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(REPO), TF_CPU_ALLOCATOR_USE_BFC='true')
  proc = subprocess.run([sys.executable, '-c', _CASE, op, str(c), str(r), impl, str(min_time)],
                        capture_output=True, text=True, env=env, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f'{op} {c}x{r}x{r} {impl} failed:\n{proc.stderr[-3000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='fewer shapes, shorter timing')
  parser.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'ops.json'))
  args = parser.parse_args()
  shapes = SHAPES[::2] if args.quick else SHAPES
  min_time = 0.3 if args.quick else 1.0
  sys.path.insert(0, str(REPO))
  from sg2tf.custom_ops import resolve_impl  # pylint: disable=g-import-not-at-top
  resolve_impl('custom')  # Build once up front; fail loudly if the ops are unavailable.

  rows = []
  header = (f'{"op":<11}{"shape [C,H,W]":<17}{"ref fwd":>9}{"cus fwd":>9}{"x":>6}'
            f'{"ref f+b":>9}{"cus f+b":>9}{"x":>6}{"ref MiB":>9}{"cus MiB":>9}')
  print(header)
  print('-' * len(header))
  t_start = time.time()
  for op in OPS:
    for c, r in shapes:
      res = {impl: run_case(op, c, r, impl, min_time) for impl in ('ref', 'custom')}
      row = {'op': op, 'N': 4, 'C': c, 'H': r, 'W': r, 'ref': res['ref'], 'custom': res['custom'],
             'speedup_fwd': res['ref']['fwd_ms'] / res['custom']['fwd_ms'],
             'speedup_fwd_bwd': res['ref']['fwd_bwd_ms'] / res['custom']['fwd_bwd_ms']}
      rows.append(row)
      print(f'{op:<11}{f"[{c},{r},{r}]":<17}{res["ref"]["fwd_ms"]:>9.2f}{res["custom"]["fwd_ms"]:>9.2f}'
            f'{row["speedup_fwd"]:>6.2f}{res["ref"]["fwd_bwd_ms"]:>9.2f}{res["custom"]["fwd_bwd_ms"]:>9.2f}'
            f'{row["speedup_fwd_bwd"]:>6.2f}{res["ref"]["peak_mib"]:>9.1f}{res["custom"]["peak_mib"]:>9.1f}',
            flush=True)
  print('times in ms (median); x = ref / custom; MiB = peak TF allocation during one forward+backward')
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  payload = {'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                         'python': platform.python_version()},
             'seconds': time.time() - t_start, 'quick': args.quick, 'rows': rows}
  tmp = out.with_suffix('.json.tmp')
  tmp.write_text(json.dumps(payload, indent=1))
  os.replace(tmp, out)
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
