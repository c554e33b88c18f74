#!/usr/bin/env python3
"""One-command verification of sg2tf's CUDA kernels: `make gpu-check`, or

    python3 tests/gpu/run_gpu_check.py --json PATH [--backend=cuda|cpu] [...]

1. Builds the kernels + ctypes harnesses with nvcc for the GPU it finds (no TensorFlow).
2. Correctness against float64 NumPy: check_upfirdn2d.py and check_bias_act.py (the CPU
   tests' sweep and more, float32/float16/bfloat16, documented tolerances in
   check_common.py).
3. Speed at StyleGAN2 shapes (speed.py): per-call time, GB/s, fraction of the measured
   copy bandwidth, PyTorch eager and torch.compile side by side; targets printed as met /
   NOT MET (reported, not asserted).
4. compute-sanitizer memcheck on a reduced sweep (skipped, with the reason, where it cannot
   run).
Prints tables; --json writes everything to one file (rewritten after every phase, so a run
cut short still leaves its results). Exit status: 0 when every correctness case passed (and
memcheck found nothing, and every timed kernel launched), 1 when one failed, 2 when the
check could not run (no GPU, no CuPy, build failure).

--backend=cpu runs the same driver through the CPU kernels (NumPy arrays, small speed
shapes): how CI tests everything here except the CUDA code itself.
"""

import argparse
import pathlib
import sys
import time
import traceback

REPO = pathlib.Path(__file__).resolve().parents[2]
# Imported as the tests.gpu package; this folder itself must not shadow anyone's `report` or
# `speed` module (Python puts a script's folder first on the path).
_HERE = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or '.').resolve() != _HERE]
sys.path.insert(0, str(REPO))

# pylint: disable=g-import-not-at-top,wrong-import-position
from tests.gpu import backends
from tests.gpu import build_libs
from tests.gpu import check_bias_act
from tests.gpu import check_upfirdn2d
from tests.gpu import report
from tests.gpu import sanitizer
from tests.gpu import speed
from tests.gpu.check_common import Results


def _parse(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--json', metavar='PATH', help='write the full report to PATH')
  p.add_argument('--backend', choices=('cuda', 'cpu'), default='cuda')
  p.add_argument('--arch', help='compute capability to build for, e.g. 90 (default: the '
                 "GPU's)")
  p.add_argument('--reduced', action='store_true', help='the reduced correctness sweep')
  p.add_argument('--skip-correctness', action='store_true')
  p.add_argument('--skip-sanitizer', action='store_true')
  p.add_argument('--skip-speed', action='store_true')
  p.add_argument('--sanitizer-timeout-s', type=float, default=150.0)
  p.add_argument('--deadline-s', type=float, help='whole-run budget: memcheck (the last '
                 'phase) gets at most what is left of it')
  p.add_argument('--speed-dtypes', default='float16,float32')
  p.add_argument('--speed-n', type=int, help='batch size (default 32 on cuda, 2 on cpu)')
  p.add_argument('--speed-shapes', help='C x R list, e.g. 512x8,64x256 (default: StyleGAN2 '
                 '[512, 8x8] ... [64, 256x256], [32, 1024x1024]; small ones on cpu)')
  p.add_argument('--no-torch', action='store_true', help='skip the PyTorch comparison')
  p.add_argument('--no-compile', action='store_true', help='skip torch.compile')
  p.add_argument('--compile-dtypes', default='float16')
  p.add_argument('--compile-budget-s', type=float, default=90.0,
                 help='stop compiling new torch.compile variants after this many seconds')
  p.add_argument('--threads', type=int, help='cpu backend: threads per kernel call')
  p.add_argument('--cpu-ops-lib', metavar='SO', help='cpu backend: run the kernels of this '
                 'op library (sg2tf_ops.so from `make ops`) instead of compiling their sources')
  p.add_argument('--sanitizer-child', action='store_true', help=argparse.SUPPRESS)
  return p.parse_args(argv)


def _log(msg):
  print(msg, flush=True)


def _shapes(text):
  out = []
  for item in text.split(','):
    c, r = item.lower().split('x')
    out.append((int(c), int(r)))
  return out


def main(argv=None):
  args = _parse(argv)
  if args.sanitizer_child:
    args.reduced, args.skip_sanitizer, args.skip_speed = True, True, True
  rep = dict(command=' '.join(sys.argv), started=time.strftime('%Y-%m-%dT%H:%M:%S'),
             correctness=None, sanitizer=None, speed=None, error=None)

  def save():
    if args.json:
      report.write_json(args.json, rep)

  t0 = time.time()
  try:
    if args.backend == 'cuda':
      try:
        import cupy  # pylint: disable=unused-import  # noqa: F401
      except ImportError as e:
        raise SystemExit(_fatal(rep, save, f'CuPy is not importable ({e}); install the '
                                'cupy-cuda12x or cupy-cuda13x wheel matching your CUDA, or '
                                'use --backend=cpu'))
      be = backends.CudaBackend(arch=args.arch, log=_log, pool=not args.sanitizer_child)
    else:
      be = backends.CpuBackend(log=_log, threads=args.threads, ops_lib=args.cpu_ops_lib)
  except build_libs.BuildError as e:
    raise SystemExit(_fatal(rep, save, f'build failed: {e}'))
  except SystemExit:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise SystemExit(_fatal(rep, save, f'{args.backend} backend unusable: '
                            f'{type(e).__name__}: {e}'))
  rep['device'] = be.describe()
  rep['build'] = be.build_info
  _log(f'device: {rep["device"]}')
  _log(f'build: {be.build_info.get("seconds")} s (cached: {be.build_info.get("cached")})')
  save()

  res = Results()
  if not args.skip_correctness:
    t = time.time()
    for name, mod in (('upfirdn2d', check_upfirdn2d), ('bias_act', check_bias_act)):
      _log(f'correctness: {name}{" (reduced)" if args.reduced else ""} ...')
      try:
        mod.run_all(be, res, reduced=args.reduced)
      except Exception as e:  # pylint: disable=broad-except
        res.add(name, 'driver', '-', False,
                detail=f'{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}')
    rep['correctness'] = dict(res.to_json(), seconds=round(time.time() - t, 1))
    _log('\ncorrectness vs float64 NumPy:')
    _log(report.correctness_table(res))
    if res.failures:
      _log(report.failures_text(res))
    _log(f'{len(res.cases) - len(res.failures)} passed, {len(res.failures)} failed '
         f'({rep["correctness"]["seconds"]} s)')
    save()

  if not args.skip_speed:
    t = time.time()
    cuda = be.name == 'cuda'
    shapes = _shapes(args.speed_shapes) if args.speed_shapes else (
        speed.GPU_SHAPES if cuda else speed.CPU_SHAPES)
    n = args.speed_n or (speed.GPU_N if cuda else speed.CPU_N)
    partial = []

    def on_row(row):
      partial.append(row)
      rep['speed'] = dict(rows=partial, partial=True)
      save()

    try:
      rep['speed'] = speed.run(be, [d for d in args.speed_dtypes.split(',') if d], n, shapes,
                               use_torch=not args.no_torch, use_compile=not args.no_compile,
                               compile_budget_s=args.compile_budget_s,
                               compile_dtypes=tuple(args.compile_dtypes.split(',')),
                               log=_log, on_row=on_row)
      rep['speed']['seconds'] = round(time.time() - t, 1)
      _log('\nspeed (per call; GB/s = bytes the kernel must move / time; ratios measured '
           'side by side in this run):')
      _log(report.speed_table(rep['speed']))
      _log('targets (reported, not asserted):')
      _log(report.targets_text(rep['speed']))
    except Exception as e:  # pylint: disable=broad-except
      rep['speed'] = dict(rows=partial, error=f'{type(e).__name__}: {e}',
                          traceback=traceback.format_exc()[-3000:])
      _log(f'speed section failed: {rep["speed"]["error"]}')
    save()

  sanitizer_failed = False
  if not args.skip_sanitizer:
    if be.name != 'cuda':
      rep['sanitizer'] = dict(status='skipped', reason='memcheck applies to the CUDA backend')
    else:
      t = time.time()
      timeout = args.sanitizer_timeout_s
      if args.deadline_s:  # what is left of the run's budget, less a margin to write the report
        timeout = max(10.0, min(timeout, args.deadline_s - (t - t0) - 15))
      rep['sanitizer'] = sanitizer.run_memcheck(pathlib.Path(__file__).resolve(), be.arch,
                                                timeout, log=_log)
      rep['sanitizer']['seconds'] = round(time.time() - t, 1)
      sanitizer_failed = rep['sanitizer']['status'] == 'failed'
    _log(f"\ncompute-sanitizer memcheck: {rep['sanitizer']['status']}"
         f"{': ' + rep['sanitizer']['reason'] if rep['sanitizer'].get('reason') else ''}")
    if sanitizer_failed:
      _log(rep['sanitizer'].get('output_tail', ''))
    save()

  # A kernel that fails to launch in the speed section is a failure too (times are not).
  speed_failed = [r for r in (rep['speed'] or {}).get('rows', []) if r.get('ours_s') is None]
  if speed_failed:
    _log(f'{len(speed_failed)} speed case(s) failed to launch: '
         f"{speed_failed[0]['torch_note']}")
  ok = res.passed and not sanitizer_failed and not speed_failed
  rep['exit_code'] = 0 if ok else 1
  rep['seconds'] = round(time.time() - t0, 1)
  save()
  _log(f"\ngpu check ({be.name}): {'PASSED' if ok else 'FAILED'} in {rep['seconds']} s"
       f"{'; report: ' + args.json if args.json else ''}")
  return rep['exit_code']


def _fatal(rep, save, msg):
  print(f'gpu check: {msg}', file=sys.stderr, flush=True)
  rep['error'] = msg
  rep['exit_code'] = 2
  save()
  return 2


if __name__ == '__main__':
  sys.exit(main())
