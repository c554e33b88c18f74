"""Benchmark: training speed and memory on this machine, by phase.

Cases: the quickstart network (32x32 grayscale, configs/quickstart.flags, batch 16) and a
64x64 config-f-shaped network (fmap_base 16384, i.e. 512 channels at every resolution up to
64x64, 512-d latents, 8 mapping layers; batch 8), each with impl='custom' and impl='ref' ops,
on 1 replica and on 2 replicas (MirroredStrategy over 2 logical CPU devices, or 2 GPUs).

Every case runs in a fresh process (logical devices must be set before TensorFlow starts; the
peak-memory figure is that process's maximum resident set). All four phase functions are traced
first, then each phase runs `--reps` times (default: 4 for the quickstart network, 1 for the
big one) and the median wall time is taken (without the first call when reps > 2).
sec/kimg combines them with the official schedule: per minibatch Gmain + Dmain + Greg / 4 +
Dreg / 16 (G_ema is part of Dmain).

Case `b_grow`: paper config b WITH progressive growing (growing G_synthesis_stylegan_revised /
D_stylegan networks, fmap_base 8192, the official schedule) at its first two resolutions:
8x8 (lod 3, minibatch 256) and 16x16 while it fades in (lod 2.5, minibatch 128). The networks
are built for 64x64: at those levels they compute exactly what the 1024x1024 config-b networks
compute (the channel counts depend only on the resolution), without the memory of the unused
top layers. Config b has no lazy regularisation: every minibatch is Gmain + Dmain (R1 inside);
Greg and Dreg never run and show 0. Rows b_grow8 / b_grow16.

  python bench/train.py [--cases quickstart,f64] [--impls custom,ref] [--replicas 1,2]
                        [--reps N] [--runs case:impl:replicas[:key=value...],...]
                        [--out bench/results/train.json]
  python bench/train.py --suite batch_gpu   # acc64, batch 32: --batch_gpu 32, 8, 4
  python bench/train.py --suite precision   # f64 and quickstart: float32, bfloat16, float16

Run options (after the replicas): batch_gpu=N (gradient accumulation in chunks of N per
replica), precision=float16|bfloat16 (the --num_fp16_res=4 highest blocks; at 64x64 every
block from 8x8 up), aug=ada (bgc pipeline at p=0.3, fixed). The case `acc64` (64x64 RGB,
fmap_base 2048, fmap_max 256, batch 32) is sized so that activations dominate the memory.

The whole matrix takes well over 10 minutes on 2 CPU cores (a 64x64 config-f minibatch takes
minutes there); pick cases with the flags.
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

CASES = {
    # name: (resolution, channels, fmap_base, fmap_max, latent, mapping_layers, batch, gamma)
    'quickstart': (32, 1, 512, 64, 128, 4, 16, 1.0),
    'f64': (64, 3, 16384, 512, 512, 8, 8, 10.0),
    'acc64': (64, 3, 2048, 256, 256, 2, 32, 10.0),
}
DEFAULT_REPS = {'quickstart': 4, 'f64': 1, 'acc64': 2, 'b_grow': 1}
SUITES = {
    'batch_gpu': ['acc64:custom:1', 'acc64:custom:1:batch_gpu=8', 'acc64:custom:1:batch_gpu=4'],
    'precision': [f'{case}:custom:1{opt}' for case in ('quickstart', 'f64')
                  for opt in ('', ':precision=bfloat16', ':precision=float16')],
}
# Progressive-growing cases: network resolution and the lods to time.
GROWING_CASES = {'b_grow': (64, (3.0, 2.5))}

_CHILD = r'''
import json, os, resource, sys, tempfile, time
import numpy as np
case, impl, replicas, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
res, ch, fbase, fmax, latent, mlayers, batch, gamma = json.loads(sys.argv[5])
opts = json.loads(sys.argv[6])
import tensorflow as tf
gpus = tf.config.list_physical_devices('GPU')
if replicas > 1 and not gpus:
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
import dataclasses
from absl import logging
logging.set_verbosity(logging.WARNING)
from sg2tf.dataset_tool.writer import DatasetWriter
from sg2tf import paper_configs as net_configs
from sg2tf.training import config as config_lib, distribute, loop

root = tempfile.mkdtemp()
rnd = np.random.RandomState(0)
with DatasetWriter(os.path.join(root, 'data'), resolution=res, channels=ch) as w:
  for _ in range(max(4 * batch, 32)):
    w.add_image(rnd.randint(0, 256, size=[ch, res, res]).astype(np.uint8))
  w.commit()
base = net_configs.get_config('config-f')
g = dataclasses.replace(base.G, fmap_base=fbase, fmap_max=fmax, z_dim=latent, w_dim=latent,
                        mapping_dim=latent, mapping_layers=mlayers)
d = dataclasses.replace(base.D, fmap_base=fbase, fmap_max=fmax)
extra = {}
if 'batch_gpu' in opts:
  extra['batch_gpu'] = int(opts['batch_gpu'])
if 'precision' in opts:
  extra['precision'] = opts['precision']
if opts.get('aug') == 'ada':
  extra['augment'] = config_lib.AugmentConfig(mode='fixed', pipe='bgc', p=0.3)
cfg = config_lib.resolve_config(config_lib.TrainConfig(
    run_dir=os.path.join(root, 'run'), data=config_lib.DataConfig(os.path.join(root, 'data')),
    G=g, D=d, loss=config_lib.LossConfig(r1_gamma=gamma), batch_size=batch, total_kimg=1000,
    impl=impl, grid=(2, 2), **extra))
if gpus:
  strategy = distribute.make_strategy('mirrored', [f'/gpu:{i}' for i in range(replicas)])
elif replicas > 1:
  strategy = distribute.make_strategy('mirrored', [f'/cpu:{i}' for i in range(replicas)])
else:
  strategy = distribute.make_strategy('mirrored', ['/cpu:0'])
t0 = time.perf_counter()
tr = loop.Trainer(cfg, strategy)
build = time.perf_counter() - t0
ph = tr.phases
reals, labels = tr._next_batch(), None  # pylint: disable=protected-access
beta = tf.constant(0.99)
fns = {'Gmain': (ph.g_main, ()), 'Greg': (ph.g_reg, ()),
       'Dmain': (ph.d_main, (reals, labels, beta)), 'Dreg': (ph.d_reg, (reals, labels))}
t0 = time.perf_counter()
for fn, args in fns.values():
  fn.get_concrete_function(*args)  # trace and build every phase before timing any
trace = time.perf_counter() - t0
ms = {}
for name, (fn, args) in fns.items():
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    [v.numpy() for v in fn(*args).values()]
    times.append(time.perf_counter() - t)
  # The first call also initialises the graph's kernels: with more reps, drop it.
  ms[name] = 1000 * float(np.median(times[1:] if reps > 2 else times))
per_batch = ms['Gmain'] + ms['Dmain'] + ms['Greg'] / 4 + ms['Dreg'] / 16
params = lambda net: int(sum(np.prod(v.shape) for v in net.trainable_variables))
print('RESULT ' + json.dumps({
    'case': case, 'impl': impl, 'replicas': tr.replicas, 'batch': batch, 'resolution': res,
    'options': opts, 'batch_gpu': tr.phases.batch_gpu, 'precision': cfg.precision,
    'params_G': params(tr.G), 'params_D': params(tr.D), 'phase_ms': ms,
    'sec_per_kimg': per_batch / batch, 'img_per_sec': 1000 * batch / per_batch,
    'peak_host_mem_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    'build_sec': build, 'trace_sec': trace, 'device': 'gpu' if gpus else 'cpu'}))
'''


_GROWING_CHILD = r'''
import json, os, resource, sys, tempfile, time
import numpy as np
case, impl, replicas, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
res, lods = json.loads(sys.argv[5])
import tensorflow as tf
gpus = tf.config.list_physical_devices('GPU')
if replicas > 1 and not gpus:
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
from absl import logging
logging.set_verbosity(logging.WARNING)
from sg2tf.dataset_tool.writer import DatasetWriter
from sg2tf import paper_configs as net_configs
from sg2tf.training import config as config_lib, distribute, loop, schedule as schedule_lib

root = tempfile.mkdtemp()
rnd = np.random.RandomState(0)
with DatasetWriter(os.path.join(root, 'data'), resolution=res, channels=3) as w:
  for _ in range(256):
    w.add_image(rnd.randint(0, 256, size=[3, res, res]).astype(np.uint8))
  w.commit()
net = net_configs.get_config('config-b')
sched_cfg = schedule_lib.PAPER_GROWING
cfg = config_lib.resolve_config(config_lib.TrainConfig(
    run_dir=os.path.join(root, 'run'), data=config_lib.DataConfig(os.path.join(root, 'data')),
    cfg_name='config-b', G=net.G, D=net.D,
    loss=config_lib.LossConfig(r1_gamma=10.0, pl_weight=0.0, lazy_regularization=False),
    optimizer=config_lib.OptimizerConfig(learning_rate=net.learning_rate), schedule=sched_cfg,
    batch_size=32, total_kimg=25000, impl=impl, grid=(2, 2)))
devices = [f'/gpu:{i}' for i in range(replicas)] if gpus else (
    [f'/cpu:{i}' for i in range(replicas)] if replicas > 1 else ['/cpu:0'])
tr = loop.Trainer(cfg, distribute.make_strategy('mirrored', devices))
params = lambda n: int(sum(np.prod(v.shape) for v in n.trainable_variables))
beta = tf.constant(0.99)
for lod in lods:
  sched = schedule_lib.schedule_at_lod(lod, res, sched_cfg, 32, net.learning_rate)
  tr._apply_schedule(sched)  # pylint: disable=protected-access
  ph = tr.phases
  reals = tr._next_batch()  # pylint: disable=protected-access
  fns = {'Gmain': (ph.g_main, ()), 'Dmain': (ph.d_main, (reals, None, beta))}
  t0 = time.perf_counter()
  for fn, args in fns.values():
    fn.get_concrete_function(*args)
  trace = time.perf_counter() - t0
  ms = {'Greg': 0.0, 'Dreg': 0.0}
  for name, (fn, args) in fns.items():
    times = []
    for _ in range(reps):
      t = time.perf_counter()
      [v.numpy() for v in fn(*args).values()]
      times.append(time.perf_counter() - t)
    ms[name] = 1000 * float(np.median(times[1:] if reps > 2 else times))
  per_batch = ms['Gmain'] + ms['Dmain']
  batch = sched.minibatch_size
  print('RESULT ' + json.dumps({
      'case': f'{case}{sched.resolution}', 'impl': impl, 'replicas': tr.replicas,
      'batch': batch, 'resolution': sched.resolution, 'lod': lod, 'network_resolution': res,
      'params_G': params(tr.G), 'params_D': params(tr.D), 'phase_ms': ms,
      'sec_per_kimg': per_batch / batch, 'img_per_sec': 1000 * batch / per_batch,
      'peak_host_mem_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
      'trace_sec': trace, 'device': 'gpu' if gpus else 'cpu'}), flush=True)
'''


def run_case(case, impl, replicas, reps, timeout, opts=None):
  """One case in a fresh process: a list of results (growing cases: one per level)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
  if case in GROWING_CASES:
    cmd = [sys.executable, '-c', _GROWING_CHILD, case, impl, str(replicas), str(reps),
           json.dumps(GROWING_CASES[case])]
  else:
    cmd = [sys.executable, '-c', _CHILD, case, impl, str(replicas), str(reps),
           json.dumps(CASES[case]), json.dumps(opts or {})]
  t = time.time()
  load = os.getloadavg()[0]
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO),
                          timeout=timeout, check=False)
  except subprocess.TimeoutExpired:
    return [{'case': case, 'impl': impl, 'replicas': replicas, 'options': opts or {},
             'error': f'timeout {timeout}s'}]
  lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
  if proc.returncode != 0 or not lines:
    tail = proc.stderr.strip().splitlines()[-1:] or ['?']
    return [{'case': case, 'impl': impl, 'replicas': replicas, 'options': opts or {},
             'error': tail[0][:300]}]
  outs = [json.loads(line[len('RESULT '):]) for line in lines]
  for out in outs:
    out['reps'] = reps
    out['wall_sec'] = round(time.time() - t, 1)
    out['load_avg_1min_before'] = round(load, 2)
    out['load_avg_1min_after'] = round(os.getloadavg()[0], 2)
  return outs


def table(results):
  head = (f'{"case":<11}{"impl":<7}{"rep":>4}{"options":<22}{"sec/kimg":>10}{"img/s":>8}'
          f'{"Gmain":>9}{"Greg":>9}{"Dmain":>9}{"Dreg":>9}{"peak GB":>9}')
  rows = [head, '-' * len(head)]
  for r in results:
    opt = ' ' + ','.join(f'{k}={v}' for k, v in sorted((r.get('options') or {}).items()))
    if 'error' in r:
      rows.append(f'{r["case"]:<11}{r["impl"]:<7}{r["replicas"]:>4}{opt:<22}  error: '
                  f'{r["error"]}')
      continue
    p = r['phase_ms']
    rows.append(f'{r["case"]:<11}{r["impl"]:<7}{r["replicas"]:>4}{opt:<22}'
                f'{r["sec_per_kimg"]:>10.1f}{r["img_per_sec"]:>8.1f}{p["Gmain"]:>9.0f}'
                f'{p["Greg"]:>9.0f}{p["Dmain"]:>9.0f}{p["Dreg"]:>9.0f}'
                f'{r["peak_host_mem_gb"]:>9.2f}')
  rows.append('(phase columns: median ms per call; sec/kimg = (Gmain + Dmain + Greg/4 + '
              'Dreg/16) / batch)')
  return '\n'.join(rows)


def _cpu_model():
  from sg2tf.utils import cpu  # pylint: disable=g-import-not-at-top
  bf16 = sorted(cpu.flags() & {'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512f'})
  return f'{cpu.model()} ({", ".join(bf16) or "no AVX-512/AMX"})'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--cases', default='quickstart,f64,b_grow')
  parser.add_argument('--impls', default='custom,ref')
  parser.add_argument('--replicas', default='1,2')
  parser.add_argument('--runs', default='', help='explicit list '
                      'case:impl:replicas[:key=value...],... (instead of all combinations of '
                      '--cases, --impls, --replicas)')
  parser.add_argument('--suite', choices=sorted(SUITES), default=None,
                      help='a preset list of runs; writes bench/results/train_<suite>.json')
  parser.add_argument('--reps', type=int, default=None, help='calls per phase (default: '
                      'per case)')
  parser.add_argument('--timeout', type=int, default=900, help='seconds per case')
  parser.add_argument('--out', default=None, help='default: bench/results/train.json '
                      '(train_<suite>.json with --suite)')
  args = parser.parse_args()
  if args.out is None:
    name = f'train_{args.suite}.json' if args.suite else 'train.json'
    args.out = str(REPO / 'bench' / 'results' / name)
  if args.suite:
    runs = [tuple(r.split(':')) for r in SUITES[args.suite]]
  elif args.runs:
    runs = [tuple(r.split(':')) for r in args.runs.split(',')]
  else:
    runs = [(c, i, r) for c in args.cases.split(',') for i in args.impls.split(',')
            for r in args.replicas.split(',')]
  for run in runs:
    names = list(CASES) + list(GROWING_CASES)
    if (len(run) < 3 or run[0] not in names or run[1] not in ('custom', 'ref', 'auto') or
        any('=' not in o or o.split('=')[0] not in ('batch_gpu', 'precision', 'aug')
            for o in run[3:]) or (run[0] in GROWING_CASES and len(run) > 3)):
      parser.error(f'bad case {":".join(run)!r}: use <{"|".join(names)}>:<custom|ref>:<N>'
                   '[:batch_gpu=N][:precision=float16|bfloat16][:aug=ada] (no options for '
                   'the growing cases)')
  results = []
  for case, impl, replicas, *options in runs:
    opts = dict(o.split('=', 1) for o in options)
    for r in run_case(case, impl, int(replicas), args.reps or DEFAULT_REPS[case], args.timeout,
                      opts):
      results.append(r)
      print(table([r]).splitlines()[2], flush=True)
  print()
  print(table(results))
  meta = {'host': platform.node(), 'machine': platform.machine(), 'cpus': os.cpu_count(),
          'python': platform.python_version(), 'time': time.strftime('%Y-%m-%d %H:%M:%S'),
          'load_avg_1min': os.getloadavg()[0], 'cpu_model': _cpu_model()}
  from sg2tf.utils import files  # pylint: disable=g-import-not-at-top
  files.write_json(args.out, {'meta': meta, 'cases': CASES, 'growing_cases': GROWING_CASES,
                              'results': results})
  print(f'\nWrote {args.out}')


if __name__ == '__main__':
  main()
