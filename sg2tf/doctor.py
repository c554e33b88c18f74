"""Will sg2tf work here, and which paths will it use? Output meant for bug reports.

    sg2tf-doctor [--checks=ops,fused]      (or python -m sg2tf.doctor)

Prints versions, the CPU and its relevant instruction sets, GPUs (compute capability) and
the CUDA/cuDNN TensorFlow was built with, the compilers found, the state of each op library
(built / failed earlier, with the reason and log / disabled / not built), which
implementation each path uses on each device and why, and a numerical self-check on every
visible device: compiled vs reference ops (forward, first and second order) and the fused vs
non-fused modulated convolution (forward and gradients; up, down, none; on a CPU under XLA,
where TF has grouped-convolution gradients). Exit status 0 when every self-check that ran
passed, 1 otherwise.
"""

import dataclasses
import os
import platform
import shutil
import subprocess
import time
from typing import FrozenSet, List, Optional, Sequence

from absl import flags

from sg2tf import cli
from sg2tf.utils import cpu

# The ISA extensions that matter for TF, Eigen and the op build (x86 and ARM names).
_ISA = ('sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq',
        'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'amx_bf16', 'amx_int8',
        'asimd', 'asimdhp', 'sve', 'sve2', 'bf16', 'i8mm')


def _cpu_flags() -> List[str]:
  have = cpu.flags()
  return [x for x in _ISA if x in have]


def _version_line(tool: Optional[str]) -> str:
  if not tool:
    return 'not found'
  path = shutil.which(tool)
  if path is None:
    return f'{tool}: not found'
  try:
    out = subprocess.run([path, '--version'], capture_output=True, text=True, check=False,
                         timeout=30)
  except (OSError, subprocess.TimeoutExpired) as e:
    return f'{path}: {e}'
  lines = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
  if 'nvcc' in path:
    lines = [l for l in lines if 'release' in l] or lines
  return f'{path}: {lines[0].strip() if lines else "(no version output)"}'


def _fmt_errors(max_errors) -> str:
  return ', '.join(f'{k} {v:.1e}' for k, v in max_errors.items()) or '-'


CHECKS = ('ops', 'fused')
TOPICS = cli.Topics()


@dataclasses.dataclass(frozen=True)
class DoctorConfig:
  checks: FrozenSet[str] = frozenset(CHECKS)


def define_flags(fv=flags.FLAGS) -> None:
  if 'checks' in fv:
    return
  TOPICS.mark('Self-checks', fv)
  flags.DEFINE_list('checks', list(CHECKS), 'Self-checks to run: ops (compiled vs reference), '
                    'fused (fused vs non-fused modulated conv); empty for none.', flag_values=fv)
  TOPICS.mark(None)


def config_from_flags(fv=flags.FLAGS) -> DoctorConfig:
  checks = {c.strip() for c in fv.checks if c.strip()}
  bad = checks - set(CHECKS)
  if bad:
    raise cli.UsageError(f'--checks: unknown {", ".join(sorted(bad))}; use ops and/or fused.')
  return DoctorConfig(frozenset(checks))


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The report for flags argv (without the program name); the exit status."""
  fv = flags.FlagValues()
  define_flags(fv)
  cli.parse(['doctor'] + list(argv or []), fv)
  return run(config_from_flags(fv))


def cli_main(argv: Optional[Sequence[str]] = None) -> None:
  """The `sg2tf-doctor` command (python -m sg2tf.doctor)."""
  define_flags()

  def _main(args):
    if len(args) > 1:
      raise cli.UsageError(f'unexpected arguments: {" ".join(args[1:])}')
    return run(config_from_flags(flags.FLAGS))
  cli.run_tool(_main, argv, doc=__doc__, topics=TOPICS)


def run(config: DoctorConfig) -> int:
  """Prints the report; 0 when every self-check that ran passed, 1 otherwise."""
  checks = set(config.checks)

  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  import sg2tf  # pylint: disable=g-import-not-at-top
  from sg2tf import selfcheck  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from sg2tf.custom_ops import _device, _loader, build, policy

  def section(title):
    print(f'\n== {title}')

  print('sg2tf doctor')
  section('versions')
  print(f'sg2tf {sg2tf.__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}, '
        f'Python {platform.python_version()}, NumPy {np.__version__}')
  print(f'platform {platform.platform()}')

  section('CPU')
  print(f'{_device.cpu_model()} ({build.machine()}, {os.cpu_count()} cores)')
  print(f'ISA: {" ".join(_cpu_flags()) or "unknown"}')

  section('GPUs')
  info = tf.sysconfig.get_build_info()
  print(f'TensorFlow built with CUDA: {info.get("is_cuda_build", False)} (CUDA '
        f'{info.get("cuda_version", "-")}, cuDNN {info.get("cudnn_version", "-")})')
  gpus = tf.config.list_physical_devices('GPU')
  for i, _ in enumerate(gpus):
    print(_device.describe(f'/GPU:{i}'))
  if not gpus:
    print('no GPU visible to TensorFlow')

  section('compilers')
  print(f'CXX={build.cxx()}: {_version_line(build.cxx())}')
  print(f'nvcc: {_version_line(build.find_nvcc())}')

  section('op libraries')
  if build.disabled():
    print('disabled by SG2TF_DISABLE_CUSTOM_OPS: the reference ops are used everywhere')
  libs = [False] + ([True] if build.find_nvcc() or gpus else [])
  for cuda in libs:
    name = build.lib_name(cuda)
    try:
      rows = build.status(cuda)
    except ValueError as e:
      print(f'{name}: {e}')
      continue
    for row in rows:
      flags = ' '.join(build.variant_flags(row['variant']))
      line = f'{name} [{row["variant"]}: {flags or "compiler default"}]: {row["state"]}'
      if row['state'] == 'failed':
        line += f' -- {row["reason"]} (log {row["log"]}; retry: {build.RETRY_HINT})'
      print(f'{line}\n    {row["dir"]}')
  available = _loader.available() if not build.disabled() else False
  if available:
    print(f'loaded: {_loader.library_path()}')
  else:
    try:
      _loader.get_library()
    except _loader.CustomOpUnavailableError as e:
      print(f'not loaded: {e}')

  section('paths (the policy: sg2tf.custom_ops.policy)')
  impl, form = policy.current_implementation(), policy.current_formulation()
  print(f'implementation policy: {impl}; formulation policy: {form}')
  devices = ['/CPU:0'] + [f'/GPU:{i}' for i in range(len(gpus))]
  for dev in devices:
    kind = 'GPU' if 'GPU' in dev else 'CPU'
    for op in ('bias_act', 'upfirdn2d'):
      if available and (kind == 'CPU' or _device.gpus_visible()):
        why = f'compiled kernel in {_loader.library_path()}'
        choice = 'custom'
      else:
        why = 'compiled library unavailable' if not available else 'no GPU kernels loaded'
        choice = 'ref'
      print(f'{dev} {op}: {choice} ({why})')
    fused = policy.fused_modconv()
    why = ('TensorFlow sees a GPU' if _device.gpus_visible() else
           'no GPU visible: TF has no CPU grouped-convolution gradient without XLA')
    if form != 'auto':
      why = f'formulation {form!r} chosen explicitly'
    print(f'{dev} modulated conv: {"fused" if fused else "non-fused"} ({why})')

  failures = 0
  section('self-check (max |a - b| / max(1, max |b|); tolerance '
          f'{selfcheck.TOLERANCE:g})')
  for dev in devices:
    desc = _device.describe(dev)
    if 'ops' in checks:
      if available:
        t0 = time.time()
        for op, r in selfcheck.check_ops(dev).items():
          failures += not r['ok']
          status = 'PASS' if r['ok'] else f'FAIL ({r["error"]})'
          print(f'{desc}: custom vs ref {op} (forward, 1st, 2nd order): '
                f'{_fmt_errors(r["max_error"])}: {status}')
        print(f'    {time.time() - t0:.1f} s')
      else:
        print(f'{desc}: custom vs ref: not run (compiled ops unavailable)')
    if 'fused' in checks:
      t0 = time.time()
      jit = 'GPU' not in dev
      r = selfcheck.check_fused_modconv(dev, jit_compile=jit)['fused_modconv']
      failures += not r['ok']
      status = 'PASS' if r['ok'] else f'FAIL ({r["error"]})'
      how = 'under XLA, reference ops' if jit else 'policy ops, no XLA'
      print(f'{desc}: fused vs non-fused modulated conv (up, down, none; forward, gradients; '
            f'{how}): {_fmt_errors(r["max_error"])}: {status}')
      print(f'    {time.time() - t0:.1f} s')
  print(f'\n{"all self-checks passed" if not failures else f"{failures} self-check(s) FAILED"}')
  return 1 if failures else 0


if __name__ == '__main__':
  cli_main()
