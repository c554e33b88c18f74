"""Builds the sg2tf custom-op libraries with g++ (and nvcc when a CUDA toolkit is found).

The TF custom-op toolchain without Bazel: compile flags and link flags come from
`tf.sysconfig`. Output is cached under `$SG2TF_CACHE_DIR` (default `~/.cache/sg2tf/ops`)
in a directory named by a hash of the sources, the flags, the compilers and the TF
version, so a changed source or a different TF never reuses a stale library. A build
happens in a temporary directory and the finished library is renamed into place under an
exclusive file lock, so concurrent processes (pytest-xdist, several trainers) are safe and
an interrupted build never leaves a library that looks complete.

Build variants (the CPU code; CUDA kernels are the same in both):
  baseline  portable: `-march=x86-64-v2` on x86-64 (every CPU TensorFlow runs on), the
            compiler's default on other architectures. Its cache entry does not depend on
            the CPU, so one cache can serve different machines.
  tuned     `-march=native` (`-mcpu=native` on ARM): this CPU's instruction set.
On x86-64 both remove the ISA features TF's bundled Eigen headers cannot be compiled with
(`-mno-avx512fp16`: Eigen 3.4's PacketMathFP16.h fails under g++ 12 with AVX512-FP16, e.g.
on Sapphire Rapids). `SG2TF_OPS_VARIANT=baseline|tuned|auto` (or `--variant`) chooses;
'auto' (default) builds DEFAULT_VARIANT and, if that one does not compile, the other.

Overrides: `CXX` (compiler, default g++), `CXXFLAGS` (appended to the compile flags, so
e.g. `CXXFLAGS=-march=haswell` wins), `LDFLAGS` (appended to the link), `NVCC` (nvcc path;
otherwise $CUDA_HOME/bin, PATH, /usr/local/cuda), `NVCCFLAGS` (appended to nvcc's flags).

A failed build is remembered next to its cache entry (same hash key): `build-failed.json`
with the reason and `build.log` with the compiler output. Later processes do not retry it
(they use the reference ops, see _loader.py); `--force` retries.

Usage: `python -m sg2tf.custom_ops.build [--cuda=auto|on|off] [--variant=...] [--force]
[--allow-failure | --allow-missing-compiler]`.
"""

import argparse
import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import pathlib
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging

from sg2tf.utils import cpu

_HERE = pathlib.Path(__file__).resolve().parent
CC_DIR = _HERE / 'cc'
CPU_SOURCES = (
    'ops/upfirdn2d_op.cc',
    'ops/bias_act_op.cc',
    'kernels/upfirdn2d_kernel.cc',
    'kernels/bias_act_kernel.cc',
)
CUDA_SOURCES = (
    'kernels/upfirdn2d_kernel.cu.cc',
    'kernels/bias_act_kernel.cu.cc',
)
CUDA_ARCHS = ('80', '90')
LIB_NAME = 'sg2tf_ops.so'
CUDA_LIB_NAME = 'sg2tf_ops_cuda.so'
FAILURE_FILE = 'build-failed.json'
LOG_FILE = 'build.log'
RETRY_HINT = 'python -m sg2tf.custom_ops.build --force'

VARIANTS = ('baseline', 'tuned')
# What 'auto' builds first (the other variant is the fallback when it does not compile).
DEFAULT_VARIANT = 'baseline'
# Compile-only matrix (tests/custom_ops/test_compile_matrix.py): targets the TF headers must
# compile for with this build's flags. Targets the compiler does not know are skipped.
X86_MATRIX = ('x86-64-v2', 'x86-64-v3', 'x86-64-v4', 'icelake-server', 'sapphirerapids',
              'znver4')
ARM_MATRIX = ('armv8-a', 'armv8.2-a+fp16+dotprod', 'armv9-a')


class BuildError(RuntimeError):
  """The custom ops could not be compiled; the message holds the command and its output.

  reason: one line (the first compiler error); log_path: the full output on disk (when the
  failure was recorded); cached: True when read back from an earlier process's record.
  """

  def __init__(self, message: str, reason: Optional[str] = None,
               log_path: Optional[str] = None, cached: bool = False):
    super().__init__(message)
    self.reason = reason or _first_error_line(message)
    self.log_path = log_path
    self.cached = cached

  def one_line(self) -> str:
    when = 'failed earlier (not retried)' if self.cached else 'failed'
    log = f'; compiler output: {self.log_path}' if self.log_path else ''
    return f'the custom-op build {when}: {self.reason}{log}; retry with: {RETRY_HINT}'


def _first_error_line(text: str) -> str:
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  for l in lines:
    if re.search(r'\berror\b', l, re.IGNORECASE) and not l.startswith('command failed'):
      return l[:400]
  return (lines[0] if lines else 'unknown error')[:400]


def cache_root() -> pathlib.Path:
  env = os.environ.get('SG2TF_CACHE_DIR')
  if env:
    return pathlib.Path(env).expanduser() / 'ops'
  return pathlib.Path.home() / '.cache' / 'sg2tf' / 'ops'


def disabled() -> bool:
  return os.environ.get('SG2TF_DISABLE_CUSTOM_OPS', '') not in ('', '0')


def find_nvcc() -> Optional[str]:
  """$NVCC, then nvcc from $CUDA_HOME, PATH, /usr/local/cuda; None when absent."""
  candidates = []
  if os.environ.get('NVCC'):
    candidates.append(shutil.which(os.environ['NVCC']) or os.environ['NVCC'])
  for var in ('CUDA_HOME', 'CUDA_PATH'):
    if os.environ.get(var):
      candidates.append(os.path.join(os.environ[var], 'bin', 'nvcc'))
  which = shutil.which('nvcc')
  if which:
    candidates.append(which)
  candidates.append('/usr/local/cuda/bin/nvcc')
  for c in candidates:
    if os.path.isfile(c) and os.access(c, os.X_OK):
      return c
  return None


def cuda_root(nvcc: str) -> pathlib.Path:
  """The toolkit directory that holds include/ and lib64/ for this nvcc."""
  for var in ('CUDA_HOME', 'CUDA_PATH'):
    if os.environ.get(var):
      return pathlib.Path(os.environ[var])
  # /usr/local/bin/nvcc is often a wrapper script; the toolkit is found by its headers.
  for root in (pathlib.Path(nvcc).resolve().parent.parent, pathlib.Path('/usr/local/cuda')):
    if (root / 'include' / 'cuda_runtime.h').exists():
      return root
  return pathlib.Path(nvcc).resolve().parent.parent


def _tf_flags():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return list(tf.sysconfig.get_compile_flags()), list(tf.sysconfig.get_link_flags()), tf.__version__


def _tool_version(tool: str) -> str:
  try:
    return subprocess.run([tool, '--version'], capture_output=True, text=True,
                          check=False).stdout
  except OSError:
    return ''


def cxx() -> str:
  return os.environ.get('CXX') or 'g++'


def compiler_found() -> bool:
  return shutil.which(cxx()) is not None


def _env_flags(var: str) -> List[str]:
  return shlex.split(os.environ.get(var, ''))


def machine() -> str:
  m = platform.machine().lower()
  return {'amd64': 'x86_64', 'arm64': 'aarch64'}.get(m, m)


def is_x86() -> bool:
  return machine() in ('x86_64', 'i386', 'i686')


@functools.lru_cache(maxsize=None)
def compiler_accepts(compiler: str, flag: str) -> bool:
  """Whether `compiler` knows a target flag (e.g. -march=znver4, -mno-avx512fp16)."""
  try:
    proc = subprocess.run([compiler, flag, '-x', 'c++', '-fsyntax-only', '-'], input='',
                          capture_output=True, text=True, check=False)
  except OSError:
    return False
  return proc.returncode == 0


def header_workarounds() -> List[str]:
  """ISA features TF's bundled Eigen cannot be compiled with, switched off."""
  if is_x86() and compiler_accepts(cxx(), '-mno-avx512fp16'):
    return ['-mno-avx512fp16']
  return []


def target_flags(march: str) -> List[str]:
  """The flags this build uses for a target CPU: -march (x86) / -march (ARM) + workarounds."""
  if is_x86():
    return [f'-march={march}'] + header_workarounds()
  return [f'-march={march}']


def variant_flags(variant: str) -> Optional[List[str]]:
  """Target flags of a build variant here; None when the variant does not exist here."""
  if variant not in VARIANTS:
    raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}')
  if is_x86():
    return target_flags('x86-64-v2' if variant == 'baseline' else 'native')
  if variant == 'baseline':
    return []
  if machine() in ('aarch64', 'ppc64le', 'ppc64'):
    return ['-mcpu=native']
  return None


def requested_variant(variant: Optional[str] = None) -> str:
  variant = variant or os.environ.get('SG2TF_OPS_VARIANT') or 'auto'
  if variant not in VARIANTS + ('auto',):
    raise ValueError(f'SG2TF_OPS_VARIANT / --variant must be auto, baseline or tuned, got '
                     f'{variant!r}')
  return variant


def variants_to_try(variant: Optional[str] = None) -> List[str]:
  """The variants a build tries, in order ('auto': the default first, then the other)."""
  variant = requested_variant(variant)
  if variant != 'auto':
    if variant_flags(variant) is None:
      raise ValueError(f'build variant {variant!r} does not exist on {machine()}')
    return [variant]
  order = [DEFAULT_VARIANT] + [v for v in VARIANTS if v != DEFAULT_VARIANT]
  return [v for v in order if variant_flags(v) is not None]


def cpu_compile_flags(tf_cflags: Sequence[str], arch_flags: Sequence[str]) -> List[str]:
  return (['-std=c++17', '-shared', '-fPIC', '-O3', '-DNDEBUG', '-Wno-deprecated-declarations',
           '-Wno-ignored-attributes', '-Wno-interference-size', f'-I{CC_DIR}']
          + list(arch_flags) + list(tf_cflags) + _env_flags('CXXFLAGS'))


def nvcc_flags() -> List[str]:
  flags = ['-x', 'cu', '-std=c++17', '-O3', '--expt-relaxed-constexpr', '-Xcompiler', '-fPIC',
           '-DNDEBUG', f'-I{CC_DIR}']
  for arch in CUDA_ARCHS:
    flags += ['-gencode', f'arch=compute_{arch},code=sm_{arch}']
  return flags + _env_flags('NVCCFLAGS')


def _hash(parts: Sequence[str]) -> str:
  h = hashlib.sha256()
  for rel in sorted(str(p.relative_to(CC_DIR)) for p in CC_DIR.rglob('*') if p.is_file()):
    h.update(rel.encode())
    h.update((CC_DIR / rel).read_bytes())
  for p in parts:
    h.update(b'\0' + p.encode())
  return h.hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: pathlib.Path):
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'w') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _run(cmd: Sequence[str]) -> None:
  logging.debug('sg2tf ops: %s', ' '.join(cmd))
  try:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
  except OSError as e:
    raise BuildError(f'command failed: {" ".join(cmd)}\n{e}', reason=str(e)) from None
  if proc.returncode != 0:
    out = proc.stdout + proc.stderr
    tail = out[-6000:]
    raise BuildError(f'command failed (exit {proc.returncode}):\n  {" ".join(cmd)}\n{tail}',
                     reason=_first_error_line(out) if out.strip() else
                     f'{cmd[0]} exited with status {proc.returncode} and no output')


def _compile_all(jobs) -> None:
  workers = max(1, min(len(jobs), os.cpu_count() or 1))
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    for fut in [pool.submit(_run, j) for j in jobs]:
      fut.result()


def library_dir(cuda: bool, variant: str = DEFAULT_VARIANT) -> pathlib.Path:
  """Where the library of one variant for the current sources/flags/TF lives (built or not)."""
  tf_cflags, tf_lflags, tf_version = _tf_flags()
  arch = variant_flags(variant)
  if arch is None:
    raise ValueError(f'build variant {variant!r} does not exist on {machine()}')
  parts = ['cuda' if cuda else 'cpu', variant, tf_version, cxx(), _tool_version(cxx()),
           ' '.join(cpu_compile_flags(tf_cflags, arch)), ' '.join(tf_lflags),
           ' '.join(_env_flags('LDFLAGS'))]
  if variant == 'tuned':
    parts.append(cpu.flags_line())  # the tuned variant is specific to this CPU
  if cuda:
    nvcc = find_nvcc()
    parts += [nvcc or '', _tool_version(nvcc or ''), ' '.join(nvcc_flags())]
  return cache_root() / _hash(parts)


def lib_name(cuda: bool) -> str:
  return CUDA_LIB_NAME if cuda else LIB_NAME


def read_failure(out_dir: pathlib.Path) -> Optional[Dict[str, str]]:
  """The recorded failure of a cache entry ({'reason', 'log', ...}) or None."""
  try:
    with open(out_dir / FAILURE_FILE, encoding='utf-8') as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) and record.get('reason') else None


def _record_failure(out_dir: pathlib.Path, err: BuildError, variant: str, cuda: bool) -> None:
  out_dir.mkdir(parents=True, exist_ok=True)
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  log = out_dir / LOG_FILE
  tool_util.save_text(str(log), str(err) + '\n')
  err.log_path = str(log)
  record = {'reason': err.reason, 'log': str(log), 'variant': variant,
            'library': lib_name(cuda), 'compiler': cxx(), 'retry': RETRY_HINT}
  tool_util.save_text(str(out_dir / FAILURE_FILE), json.dumps(record, indent=1) + '\n')


def _cached_failure(out_dir: pathlib.Path) -> Optional[BuildError]:
  record = read_failure(out_dir)
  if record is None:
    return None
  log = record.get('log', str(out_dir / LOG_FILE))
  return BuildError(f'{record["reason"]} (recorded in {out_dir / FAILURE_FILE})',
                    reason=record['reason'], log_path=log, cached=True)


def _build_variant(cuda: bool, variant: str, force: bool) -> pathlib.Path:
  out_dir = library_dir(cuda, variant)
  lib = out_dir / lib_name(cuda)
  if lib.exists() and not force:
    return lib
  if not force:
    err = _cached_failure(out_dir)
    if err is not None:
      raise err
  with _locked(out_dir.parent / (out_dir.name + '.lock')):
    if lib.exists() and not force:
      return lib  # Another process finished it while we waited for the lock.
    if not force:
      err = _cached_failure(out_dir)
      if err is not None:
        raise err
    with contextlib.suppress(OSError):
      (out_dir / FAILURE_FILE).unlink()
    try:
      _compile_and_link(cuda, variant, out_dir, lib)
    except BuildError as e:
      _record_failure(out_dir, e, variant, cuda)
      raise
  logging.info('sg2tf: custom ops built: %s', lib)
  return lib


def _compile_and_link(cuda: bool, variant: str, out_dir: pathlib.Path, lib: pathlib.Path):
  if not compiler_found():
    raise BuildError(f'C++ compiler {cxx()!r} not found; install g++ or set $CXX.',
                     reason=f'C++ compiler {cxx()!r} not found (install g++ or set $CXX)')
  tf_cflags, tf_lflags, _ = _tf_flags()
  out_dir.mkdir(parents=True, exist_ok=True)
  logging.info('sg2tf: building custom ops (%s, %s variant) into %s ...',
               'CPU+CUDA' if cuda else 'CPU', variant, out_dir)
  with tempfile.TemporaryDirectory(dir=out_dir, prefix='.tmp-') as tmp:
    tmp = pathlib.Path(tmp)
    cflags = cpu_compile_flags(tf_cflags, variant_flags(variant))
    objs, jobs = [], []
    extra = []
    if cuda:
      nvcc = find_nvcc()
      if nvcc is None:
        raise BuildError('cuda=True but nvcc was not found (set $NVCC or $CUDA_HOME, or put '
                         'nvcc on PATH).')
      root = cuda_root(nvcc)
      extra = ['-DGOOGLE_CUDA=1', f'-I{root / "include"}']
      for src in CUDA_SOURCES:
        obj = tmp / (pathlib.Path(src).name + '.o')
        jobs.append([nvcc] + nvcc_flags() + ['-c', str(CC_DIR / src), '-o', str(obj)])
        objs.append(obj)
    for src in CPU_SOURCES:
      obj = tmp / (pathlib.Path(src).name + '.o')
      jobs.append([cxx()] + cflags + extra + ['-c', str(CC_DIR / src), '-o', str(obj)])
      objs.append(obj)
    _compile_all(jobs)
    link = [cxx(), '-shared', '-fPIC'] + [str(o) for o in objs] + ['-o', str(tmp / lib.name)]
    link += list(tf_lflags)
    if cuda:
      root = cuda_root(find_nvcc())
      # Static cudart from the toolkit that compiled the kernels keeps versions consistent.
      link += [f'-L{root / "lib64"}', '-lcudart_static', '-ldl', '-lrt', '-lpthread']
    _run(link + _env_flags('LDFLAGS'))
    os.replace(tmp / lib.name, lib)


def matrix_targets() -> List[Tuple[str, List[str]]]:
  """(name, target flags) of the compile-only matrix here: the targets of X86_MATRIX /
  ARM_MATRIX the compiler knows, with this build's flags for them (target_flags), plus the
  real build variants' flags where they differ from those."""
  if is_x86():
    candidates = X86_MATRIX
  elif machine() == 'aarch64':
    candidates = ARM_MATRIX
  else:
    candidates = ()
  out = [(t, target_flags(t)) for t in candidates if compiler_accepts(cxx(), f'-march={t}')]
  for v in VARIANTS:
    flags = variant_flags(v)
    if flags is not None and all(flags != f for _, f in out):
      out.append((f'{v} build ({" ".join(flags) or "compiler default"})', flags))
  return out


def syntax_check(arch_flags: Sequence[str], sources: Sequence[str] = CPU_SOURCES) -> None:
  """Compiles (-fsyntax-only, no code generation) every source that includes TF/Eigen
  headers, as ONE translation unit, with the build's flags for a target. Raises BuildError."""
  tf_cflags, _, _ = _tf_flags()
  tu = ''.join(f'#include "{src}"\n' for src in sources)
  cmd = ([cxx()] + cpu_compile_flags(tf_cflags, arch_flags)
         + ['-fsyntax-only', '-Wno-subobject-linkage', '-x', 'c++', '-'])
  try:
    proc = subprocess.run(cmd, input=tu, capture_output=True, text=True, check=False)
  except OSError as e:
    raise BuildError(f'{cmd[0]}: {e}') from None
  if proc.returncode != 0:
    out = proc.stdout + proc.stderr
    raise BuildError(f'syntax check failed (exit {proc.returncode}):\n  {" ".join(cmd)}\n'
                     f'{out[-4000:]}', reason=_first_error_line(out))


def find_built(cuda: bool = False, variant: Optional[str] = None) -> Optional[pathlib.Path]:
  """The library `build` would return without compiling anything, or None."""
  for v in variants_to_try(variant):
    lib = library_dir(cuda, v) / lib_name(cuda)
    if lib.exists():
      return lib
  return None


def status(cuda: bool = False, variant: Optional[str] = None) -> List[Dict[str, str]]:
  """Per variant 'auto' would try: {'variant', 'dir', 'state' (built, failed, not built),
  'reason', 'log'} -- for the doctor and for logs."""
  rows = []
  for v in variants_to_try(variant):
    out_dir = library_dir(cuda, v)
    row = {'variant': v, 'dir': str(out_dir), 'state': 'not built', 'reason': '', 'log': ''}
    if (out_dir / lib_name(cuda)).exists():
      row['state'] = 'built'
    else:
      record = read_failure(out_dir)
      if record:
        row.update(state='failed', reason=record['reason'], log=record.get('log', ''))
    rows.append(row)
  return rows


def build(cuda: bool = False, force: bool = False, variant: Optional[str] = None) -> pathlib.Path:
  """Builds (or finds cached) the op library and returns its path.

  Args:
    cuda: also compile the CUDA kernels with nvcc and register GPU kernels.
    force: rebuild even when a cached library or a recorded failure exists.
    variant: 'baseline', 'tuned' or 'auto' (default: $SG2TF_OPS_VARIANT, else 'auto').
  Raises:
    BuildError: when a compiler is missing or fails (now or, recorded, earlier); the
      message has its output, `one_line()` a summary with the log path.
  """
  if not force:
    built = find_built(cuda, variant)
    if built is not None:
      return built
  order = variants_to_try(variant)
  first_error = None
  for i, v in enumerate(order):
    try:
      return _build_variant(cuda, v, force)
    except BuildError as e:
      first_error = first_error or e
      if i + 1 < len(order):
        logging.info('sg2tf: the %s op build did not succeed (%s); trying the %s variant.',
                     v, e.reason, order[i + 1])
  raise first_error


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--cuda', choices=('auto', 'on', 'off'), default='auto',
                      help='also build the CUDA kernels (auto: when nvcc is found)')
  parser.add_argument('--variant', choices=('auto',) + VARIANTS, default=None,
                      help='CPU build variant (default: $SG2TF_OPS_VARIANT, else auto)')
  parser.add_argument('--force', action='store_true',
                      help='rebuild even if cached or if an earlier build failed')
  parser.add_argument('--allow-failure', action='store_true',
                      help='on failure print one line and exit 0 (the reference ops are used)')
  parser.add_argument('--allow-missing-compiler', action='store_true',
                      help='exit 0 with one line when no C++ compiler exists (make test)')
  args = parser.parse_args(argv)
  # --allow-failure (make quickstart): one line of progress and one line of result.
  logging.set_verbosity(logging.WARNING if args.allow_failure else logging.INFO)
  if disabled() and not args.force:
    print('sg2tf: custom ops disabled by SG2TF_DISABLE_CUSTOM_OPS; not building them (the '
          'reference ops are used).')
    return 0
  if args.allow_missing_compiler and not compiler_found():
    print(f'sg2tf: no C++ compiler ({cxx()!r}) found: the custom ops are not built and the '
          'reference ops are used.')
    return 0
  try:
    if args.allow_failure and (args.force or find_built(False, args.variant) is None):
      print('sg2tf: building the custom ops (about a minute on 2 cores) ...', flush=True)
    print(build(cuda=False, force=args.force, variant=args.variant))
    want_cuda = args.cuda == 'on' or (args.cuda == 'auto' and find_nvcc() is not None)
    if want_cuda:
      print(build(cuda=True, force=args.force, variant=args.variant))
  except BuildError as e:
    if args.allow_failure:
      print(f'sg2tf: {e.one_line()}. Continuing with the reference ops.')
      return 0
    print(f'sg2tf: custom-op build failed: {e}\n{e.one_line()}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
