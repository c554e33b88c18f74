"""Builds the sg2tf custom-op libraries with g++ (and nvcc when a CUDA toolkit is found).

The TF custom-op toolchain without Bazel: compile flags and link flags come from
`tf.sysconfig`. Output is cached under `$SG2TF_CACHE_DIR` (default `~/.cache/sg2tf/ops`)
in a directory named by a hash of the sources, the flags, the compilers and the TF
version, so a changed source or a different TF never reuses a stale library. A build
happens in a temporary directory and the finished library is renamed into place under an
exclusive file lock, so concurrent processes (pytest-xdist, several trainers) are safe and
an interrupted build never leaves a library that looks complete.

Usage: `python -m sg2tf.custom_ops.build [--cuda=auto|on|off] [--force]`.
"""

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional, Sequence

from absl import logging

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


class BuildError(RuntimeError):
  """The custom ops could not be compiled; the message holds the command and its output."""


def cache_root() -> pathlib.Path:
  env = os.environ.get('SG2TF_CACHE_DIR')
  if env:
    return pathlib.Path(env).expanduser() / 'ops'
  return pathlib.Path.home() / '.cache' / 'sg2tf' / 'ops'


def find_nvcc() -> Optional[str]:
  """nvcc from $CUDA_HOME, then PATH, then /usr/local/cuda; None when absent."""
  candidates = []
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
    return subprocess.run([tool, '--version'], capture_output=True, text=True, check=False).stdout
  except OSError:
    return ''


def _cpu_signature() -> str:
  # -march=native makes the library specific to this CPU's instruction set.
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags'):
          return line
  except OSError:
    pass
  import platform  # pylint: disable=g-import-not-at-top
  return platform.machine()


def _cxx() -> str:
  return os.environ.get('CXX', 'g++')


def cpu_compile_flags(tf_cflags: Sequence[str]) -> List[str]:
  return ['-std=c++17', '-shared', '-fPIC', '-O3', '-march=native', '-DNDEBUG',
          '-Wno-deprecated-declarations', '-Wno-ignored-attributes', '-Wno-interference-size', f'-I{CC_DIR}'] + list(tf_cflags)


def nvcc_flags() -> List[str]:
  flags = ['-x', 'cu', '-std=c++17', '-O3', '--expt-relaxed-constexpr', '-Xcompiler', '-fPIC',
           '-DNDEBUG', f'-I{CC_DIR}']
  for arch in CUDA_ARCHS:
    flags += ['-gencode', f'arch=compute_{arch},code=sm_{arch}']
  return flags


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
  proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    tail = (proc.stdout + proc.stderr)[-6000:]
    raise BuildError(f'command failed (exit {proc.returncode}):\n  {" ".join(cmd)}\n{tail}')


def _compile_all(jobs) -> None:
  workers = max(1, min(len(jobs), os.cpu_count() or 1))
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    for fut in [pool.submit(_run, j) for j in jobs]:
      fut.result()


def library_dir(cuda: bool) -> pathlib.Path:
  """Where the library for the current sources/flags/TF lives (built or not)."""
  tf_cflags, tf_lflags, tf_version = _tf_flags()
  parts = ['cuda' if cuda else 'cpu', tf_version, _tool_version(_cxx()), _cpu_signature(),
           ' '.join(cpu_compile_flags(tf_cflags)), ' '.join(tf_lflags)]
  if cuda:
    nvcc = find_nvcc()
    parts += [_tool_version(nvcc or ''), ' '.join(nvcc_flags())]
  return cache_root() / _hash(parts)


def build(cuda: bool = False, force: bool = False) -> pathlib.Path:
  """Builds (or finds cached) the op library and returns its path.

  Args:
    cuda: also compile the CUDA kernels with nvcc and register GPU kernels.
    force: rebuild even when a cached library exists.
  Raises:
    BuildError: when a compiler is missing or fails; the message has its output.
  """
  out_dir = library_dir(cuda)
  lib = out_dir / (CUDA_LIB_NAME if cuda else LIB_NAME)
  if lib.exists() and not force:
    return lib
  with _locked(out_dir.parent / (out_dir.name + '.lock')):
    if lib.exists() and not force:
      return lib  # Another process finished it while we waited for the lock.
    if shutil.which(_cxx()) is None:
      raise BuildError(f'C++ compiler {_cxx()!r} not found; install g++ or set $CXX.')
    tf_cflags, tf_lflags, _ = _tf_flags()
    out_dir.mkdir(parents=True, exist_ok=True)
    logging.info('sg2tf: building custom ops (%s) into %s ...', 'CPU+CUDA' if cuda else 'CPU', out_dir)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.tmp-') as tmp:
      tmp = pathlib.Path(tmp)
      cflags = cpu_compile_flags(tf_cflags)
      objs, jobs = [], []
      extra = []
      if cuda:
        nvcc = find_nvcc()
        if nvcc is None:
          raise BuildError('cuda=True but nvcc was not found (set $CUDA_HOME or put nvcc on PATH).')
        root = cuda_root(nvcc)
        extra = ['-DGOOGLE_CUDA=1', f'-I{root / "include"}']
        for src in CUDA_SOURCES:
          obj = tmp / (pathlib.Path(src).name + '.o')
          jobs.append([nvcc] + nvcc_flags() + ['-c', str(CC_DIR / src), '-o', str(obj)])
          objs.append(obj)
      for src in CPU_SOURCES:
        obj = tmp / (pathlib.Path(src).name + '.o')
        jobs.append([_cxx()] + cflags + extra + ['-c', str(CC_DIR / src), '-o', str(obj)])
        objs.append(obj)
      _compile_all(jobs)
      link = [_cxx(), '-shared', '-fPIC'] + [str(o) for o in objs] + ['-o', str(tmp / lib.name)]
      link += list(tf_lflags)
      if cuda:
        root = cuda_root(find_nvcc())
        # Static cudart from the toolkit that compiled the kernels keeps versions consistent.
        link += [f'-L{root / "lib64"}', '-lcudart_static', '-ldl', '-lrt', '-lpthread']
      _run(link)
      os.replace(tmp / lib.name, lib)
    logging.info('sg2tf: custom ops built: %s', lib)
  return lib


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--cuda', choices=('auto', 'on', 'off'), default='auto',
                      help='also build the CUDA kernels (auto: when nvcc is found)')
  parser.add_argument('--force', action='store_true', help='rebuild even if cached')
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    print(build(cuda=False, force=args.force))
    want_cuda = args.cuda == 'on' or (args.cuda == 'auto' and find_nvcc() is not None)
    if want_cuda:
      print(build(cuda=True, force=args.force))
  except BuildError as e:
    print(f'sg2tf: custom-op build failed: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
