"""Compiles CUDA kernel sources with nvcc into a small shared library, without TensorFlow,
so tests can drive the kernels through ctypes with CuPy device pointers."""

import ctypes
import os
import pathlib
import shutil
import subprocess
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
CC_DIR = REPO / 'sg2tf' / 'custom_ops' / 'cc'


def nvcc_path():
  """nvcc from $CUDA_HOME, PATH or /usr/local/cuda. Self-contained on purpose: the GPU
  machines that run these tests have no TensorFlow, so nothing from sg2tf is imported."""
  for var in ('CUDA_HOME', 'CUDA_PATH'):
    if os.environ.get(var):
      cand = os.path.join(os.environ[var], 'bin', 'nvcc')
      if os.access(cand, os.X_OK):
        return cand
  return shutil.which('nvcc') or (
      '/usr/local/cuda/bin/nvcc' if os.access('/usr/local/cuda/bin/nvcc', os.X_OK) else None)


def gpu_available():
  """(ok, reason): a CUDA device usable from CuPy."""
  try:
    import cupy  # pylint: disable=g-import-not-at-top
    if cupy.cuda.runtime.getDeviceCount() < 1:
      return False, 'no CUDA device'
  except Exception as e:  # pylint: disable=broad-except
    return False, f'CuPy/CUDA not usable: {e}'
  if nvcc_path() is None:
    return False, 'nvcc not found'
  return True, ''


def compile_shared(sources, name, arch=None):
  """nvcc -shared the given .cu/.cu.cc files; returns a loaded ctypes.CDLL."""
  out_dir = pathlib.Path(tempfile.mkdtemp(prefix='sg2tf_gpu_'))
  lib = out_dir / f'{name}.so'
  cmd = [nvcc_path(), '-shared', '-std=c++17', '-O2', '-Xcompiler', '-fPIC',
         '--expt-relaxed-constexpr', f'-I{CC_DIR}', '-o', str(lib)]
  if arch:
    cmd += ['-arch', arch]
  for s in sources:
    cmd += ['-x', 'cu', str(s)]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f'nvcc failed: {" ".join(cmd)}\n{proc.stdout}{proc.stderr}')
  return ctypes.CDLL(str(lib))
