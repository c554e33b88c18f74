"""Benchmark: compiled ops vs pure-TF reference at StyleGAN2 shapes, on this machine.

For each op (up2, down2, filter-only upfirdn2d; bias_act lrelu with a bias) and each shape
(N=4: [C=512, 8x8] ... [C=64, 256x256]) it measures, for impl='custom' and impl='ref' side by
side in one run:

- time: the median time per op of the forward pass and of forward+backward inside
  tf.function. Each call runs K ops (K = 16 at the small shapes, down to 1 at [64, 256x256],
  so that a call handles ~64 MiB of input): a training step is one call of hundreds of ops,
  so the ~0.3-0.7 ms a Python call into a tf.function costs here is paid once per step, not
  once per op, and is left out the same way (`call`, the cost of an empty call, is printed
  beside it). Shape-preserving ops (filter, bias_act) run as a chain of K layers, each reading
  the previous one's output (as in a network: bias_act always follows the conv or dense layer
  that produced its input); up2/down2 change the shape, so they run on K separate inputs,
  all in DRAM (a harder case for both). The backward pass takes fixed random upstream
  gradients and, for bias_act, also computes the bias gradients (a trainable, nonzero bias
  per layer), as in training; it starts after the forward pass and the outputs are returned
  (a network's loss needs the whole forward pass first). inter-op parallelism is 1, so ops
  run one after another, each with every core.
- memory: the peak of TF's own allocator (the BFC CPU allocator) during one forward+backward
  of a single op, above what was allocated before (the inputs), in a fresh process per case.
- variant: the custom ops' build variant (sg2tf/custom_ops/build.py): `baseline` (portable,
  -march=x86-64-v2) and `tuned` (-march=native), each in its own process
  (SG2TF_OPS_VARIANT), side by side with the same reference timing; the summary gives the
  tuned / baseline time ratio.

Prints a table, writes bench/results/ops.json.

  python bench/ops.py [--quick] [--variants baseline,tuned] [--out bench/results/ops.json]
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
SHAPES = [(512, 8), (512, 16), (512, 32), (256, 64), (128, 128), (64, 256)]
OPS = ['up2', 'down2', 'filter', 'bias_lrelu']
WORK_BYTES = 64 << 20  # Input bytes per timed call: sets K.
MAX_K = 16

_CASE = r"""
import json, sys, time
import numpy as np, tensorflow as tf
tf.config.threading.set_inter_op_parallelism_threads(1)
from sg2tf.custom_ops import bias_act, downsample2d, filter2d, setup_filter, upsample2d
op, c, r, impl, k, min_time = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                               int(sys.argv[5]), float(sys.argv[6]))
chain = op in ('filter', 'bias_lrelu')  # Shape-preserving: K layers in a row.
rng = np.random.RandomState(0)
f = setup_filter([1, 3, 3, 1])
biases = [tf.Variable(rng.standard_normal([c]).astype(np.float32) * 0.1, name=f'b{i}')
          for i in range(k if op == 'bias_lrelu' else 0)]

def layer(t, i):
    if op == 'up2':
        return upsample2d(t, f, impl=impl)
    if op == 'down2':
        return downsample2d(t, f, impl=impl)
    if op == 'filter':
        return filter2d(t, f, impl=impl)
    return bias_act(t, biases[i], act='lrelu', impl=impl)

def run(ts, n):
    if chain:
        t = ts[0]
        for i in range(n):
            t = layer(t, i)
        return [t]
    return [layer(t, i) for i, t in enumerate(ts[:n])]

rand = lambda shape: tf.constant(rng.standard_normal(shape).astype(np.float32))
xs = [rand([4, r, r, c]) for _ in range(1 if chain else k)]
dys = [rand(layer(x, 0).shape) for x in xs]

def fwd_bwd(ts, gs, n):
    with tf.GradientTape() as tape:
        tape.watch(ts)
        ys = run(ts, n)
    # As in a network, the backward pass starts after the whole forward pass (the loss needs
    # it), and the outputs are consumed (returned; without that the forward pass of a linear
    # op such as upfirdn2d would be pruned away). Without the ordering TF may run the
    # backward first and let the forward reuse buffers no real network could free early.
    with tf.control_dependencies(ys):
        gs = [tf.identity(g) for g in gs[:len(ys)]]
    wrt = list(ts[:len(ys)]) + biases[:n]
    return ys, tape.gradient(ys, wrt, output_gradients=gs)

fwd_k = tf.function(lambda ts: run(ts, k))
fwd_bwd_k = tf.function(lambda ts, gs: fwd_bwd(ts, gs, k))
fwd_bwd_1 = tf.function(lambda ts, gs: fwd_bwd(ts, gs, 1))
empty = tf.function(lambda ts: ts[0][0, 0, 0, 0])

# Peak memory: one op, forward + backward.
fwd_bwd_1(xs, dys)
base = tf.config.experimental.get_memory_info('CPU:0')['current']
tf.config.experimental.reset_memory_stats('CPU:0')
out = fwd_bwd_1(xs, dys)
peak = tf.config.experimental.get_memory_info('CPU:0')['peak'] - base
del out

def timeit(g, *args):
    g(*args)
    times = []
    t_end = time.perf_counter() + min_time
    # CPU function calls return when the results are computed: no host copy is timed.
    while time.perf_counter() < t_end or len(times) < 5:
        t0 = time.perf_counter(); g(*args); times.append(time.perf_counter() - t0)
    return float(np.median(times))
print(json.dumps({'fwd_ms': 1e3 * timeit(fwd_k, xs) / k,
                  'fwd_bwd_ms': 1e3 * timeit(fwd_bwd_k, xs, dys) / k,
                  'call_ms': 1e3 * timeit(empty, xs), 'k': k, 'chain': chain,
                  'peak_mib': peak / 2**20}))
"""


def ops_per_call(c, r):
  return max(1, min(MAX_K, WORK_BYTES // (4 * 4 * r * r * c)))


def run_case(op, c, r, impl, min_time, variant=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(REPO),
             TF_CPU_ALLOCATOR_USE_BFC='true')
  if variant:
    env['SG2TF_OPS_VARIANT'] = variant
  proc = subprocess.run([sys.executable, '-c', _CASE, op, str(c), str(r), impl,
                         str(ops_per_call(c, r)), str(min_time)],
                        capture_output=True, text=True, env=env, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f'{op} {c}x{r}x{r} {impl} {variant or ""} failed:\n'
                       f'{proc.stderr[-3000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='fewer shapes, shorter timing')
  parser.add_argument('--variants', default='baseline,tuned',
                      help='build variants of the custom ops to measure (those that exist here)')
  parser.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'ops.json'))
  args = parser.parse_args()
  shapes = SHAPES[::2] if args.quick else SHAPES
  min_time = 0.3 if args.quick else 1.0
  sys.path.insert(0, str(REPO))
  from sg2tf.custom_ops import build  # pylint: disable=g-import-not-at-top
  variants = [v for v in args.variants.split(',') if build.variant_flags(v) is not None]
  flags = {}
  for v in variants:  # Build once up front; fail loudly if the ops are unavailable.
    build.build(variant=v)
    flags[v] = ' '.join(build.variant_flags(v))

  rows = []
  header = (f'{"op":<11}{"shape [C,H,W]":<15}{"variant":<9}{"K":>3}{"ref fwd":>9}{"cus fwd":>9}'
            f'{"x":>6}{"ref f+b":>9}{"cus f+b":>9}{"x":>6}{"ref MiB":>9}{"cus MiB":>9}'
            f'{"call":>7}')
  print(header)
  print('-' * len(header))
  t_start = time.time()
  load_before = os.getloadavg()
  for op in OPS:
    for c, r in shapes:
      ref = run_case(op, c, r, 'ref', min_time)
      for v in variants:
        cus = run_case(op, c, r, 'custom', min_time, v)
        row = {'op': op, 'N': 4, 'C': c, 'H': r, 'W': r, 'ops_per_call': ref['k'],
               'variant': v, 'variant_flags': flags[v], 'ref': ref, 'custom': cus,
               'speedup_fwd': ref['fwd_ms'] / cus['fwd_ms'],
               'speedup_fwd_bwd': ref['fwd_bwd_ms'] / cus['fwd_bwd_ms'],
               'memory_ratio': cus['peak_mib'] / ref['peak_mib']}
        rows.append(row)
        print(f'{op:<11}{f"[{c},{r},{r}]":<15}{v:<9}{row["ops_per_call"]:>3}'
              f'{ref["fwd_ms"]:>9.3f}{cus["fwd_ms"]:>9.3f}{row["speedup_fwd"]:>6.2f}'
              f'{ref["fwd_bwd_ms"]:>9.3f}{cus["fwd_bwd_ms"]:>9.3f}'
              f'{row["speedup_fwd_bwd"]:>6.2f}{ref["peak_mib"]:>9.1f}{cus["peak_mib"]:>9.1f}'
              f'{cus["call_ms"]:>7.3f}', flush=True)
  load_after = os.getloadavg()
  variant_ratio = {}
  if 'baseline' in variants and 'tuned' in variants:
    for key in ('fwd_ms', 'fwd_bwd_ms'):
      pairs = {}
      for row in rows:
        case = pairs.setdefault((row['op'], row['C'], row['H']), {})
        case[row['variant']] = row['custom'][key]
      ratios = [p['tuned'] / p['baseline'] for p in pairs.values()]
      variant_ratio[key] = {'geomean': float(np.exp(np.mean(np.log(ratios)))),
                            'min': min(ratios), 'max': max(ratios)}
    for key, r in variant_ratio.items():
      print(f'tuned / baseline custom time, {key[:-3]}: geometric mean {r["geomean"]:.3f} '
            f'(range {r["min"]:.2f}-{r["max"]:.2f}; < 1 = tuned faster)')
  print('ms per op (median; K ops per tf.function call); x = ref / custom; MiB = peak TF '
        'allocation during one forward+backward; call = ms of an empty tf.function call')
  bias = [r for r in rows if r['op'] == 'bias_lrelu']
  fir = [r for r in rows if r['op'] != 'bias_lrelu']
  targets = {
      'bias_act_fwd_bwd_at_least_1.5x': min(r['speedup_fwd_bwd'] for r in bias) >= 1.5,
      'upfirdn2d_never_slower': min(min(r['speedup_fwd'], r['speedup_fwd_bwd'])
                                    for r in fir) >= 1.0,
      'lower_peak_memory': all(r['memory_ratio'] < 1.0 for r in rows),
  }
  for name, ok in targets.items():
    print(f'target {name}: {"met" if ok else "NOT met"}')
  print(f'load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (other processes '
        'share the cores).')
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  payload = {'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                         'python': platform.python_version(),
                         'loadavg_before': load_before, 'loadavg_after': load_after},
             'seconds': time.time() - t_start, 'quick': args.quick, 'targets': targets,
             'variants': flags, 'tuned_over_baseline': variant_ratio, 'rows': rows}
  tmp = out.with_suffix('.json.tmp')
  tmp.write_text(json.dumps(payload, indent=1))
  os.replace(tmp, out)
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
