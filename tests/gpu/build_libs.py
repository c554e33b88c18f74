"""Builds the small ctypes libraries the GPU check drives, without importing TensorFlow.

- CUDA: the two `.cu.cc` kernels and their extern "C" harnesses, with nvcc, for one compute
  capability (SASS + PTX), into `sg2tf_gpu_check.so` (cudart static, as build.py links it).
- CPU: `cpu_harness.cc` over Upfirdn2dCpu/BiasActCpu, linked against the op library
  TensorFlow loads (`--cpu-ops-lib`, the shipped kernels), or with the kernels compiled
  from their sources: upfirdn2d_cpu.h with plain g++, and bias_act_kernel.cc against
  TensorFlow's headers when the tensorflow package is installed (BiasActCpu is defined next
  to its TF OpKernels). The package is only located, never imported.

Flags are those of sg2tf/custom_ops/build.py (tests/gpu/test_gpu_check.py checks that they
stay in step). Libraries are cached under `$SG2TF_CACHE_DIR/gpu_check` (or
`~/.cache/sg2tf/gpu_check`) in a directory named by a hash of sources, flags and compiler, and
renamed into place when complete.
"""

import concurrent.futures
import hashlib
import importlib.util
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
CC_DIR = REPO / 'sg2tf' / 'custom_ops' / 'cc'
CUDA_SOURCES = (CC_DIR / 'kernels' / 'upfirdn2d_kernel.cu.cc',
                CC_DIR / 'kernels' / 'bias_act_kernel.cu.cc',
                HERE / 'upfirdn2d_harness.cu', HERE / 'bias_act_harness.cu',
                HERE / 'spin_harness.cu')
CPU_HARNESS = HERE / 'cpu_harness.cc'
BIAS_ACT_CPU = CC_DIR / 'kernels' / 'bias_act_kernel.cc'
CUDA_LIB = 'sg2tf_gpu_check.so'
CPU_LIB = 'sg2tf_cpu_check.so'

# build.py's nvcc_flags() without its -gencode list (this build targets the GPU it finds).
NVCC_FLAGS = ('-x', 'cu', '-std=c++17', '-O3', '--expt-relaxed-constexpr', '-Xcompiler', '-fPIC',
              '-DNDEBUG', f'-I{CC_DIR}')
# build.py's cpu_compile_flags() without TF's flags (added only for bias_act_kernel.cc) and
# without the target, which cxx_arch_flags() adds: the op build's portable baseline (never
# -march=native: TF's Eigen does not compile with AVX512-FP16 under g++ 12).
# -Wno-psabi silences GCC's note about 64-byte vectors, which never cross this library's ABI.
CXX_FLAGS = ('-std=c++17', '-shared', '-fPIC', '-O3', '-DNDEBUG',
             '-Wno-deprecated-declarations', '-Wno-ignored-attributes', '-Wno-interference-size',
             f'-I{CC_DIR}')
CXX_EXTRA = ('-Wno-psabi',)


def _accepts(cxx, flag):
  try:
    return subprocess.run([cxx, flag, '-x', 'c++', '-fsyntax-only', '-'], input='',
                          capture_output=True, text=True, check=False).returncode == 0
  except OSError:
    return False


def cxx_arch_flags(cxx):
  """build.variant_flags('baseline') without TensorFlow: -march=x86-64-v2 (and AVX512-FP16
  off where the compiler knows it) on x86-64, the compiler's default elsewhere."""
  if platform.machine().lower() in ('x86_64', 'amd64', 'i386', 'i686'):
    return ['-march=x86-64-v2'] + (['-mno-avx512fp16'] if _accepts(cxx, '-mno-avx512fp16')
                                   else [])
  return []


class BuildError(RuntimeError):
  """A compiler is missing or failed; the message holds the command and its output."""


def _first_executable(candidates):
  for c in candidates:
    if c and os.path.isfile(c) and os.access(c, os.X_OK):
      return c
  return None


def nvcc_path():
  """nvcc from $CUDA_HOME/$CUDA_PATH, PATH, or /usr/local/cuda (as build.py looks)."""
  env = [os.path.join(os.environ[v], 'bin', 'nvcc') for v in ('CUDA_HOME', 'CUDA_PATH')
         if os.environ.get(v)]
  return _first_executable(env + [shutil.which('nvcc'), '/usr/local/cuda/bin/nvcc'])


def sanitizer_path():
  """compute-sanitizer from PATH, next to nvcc's toolkit, or /usr/local/cuda."""
  cands = [shutil.which('compute-sanitizer')]
  nvcc = nvcc_path()
  if nvcc:
    root = pathlib.Path(nvcc).resolve().parent.parent
    cands += [str(root / 'bin' / 'compute-sanitizer'),
              str(root / 'compute-sanitizer' / 'compute-sanitizer')]
  cands += ['/usr/local/cuda/bin/compute-sanitizer',
            '/usr/local/cuda/compute-sanitizer/compute-sanitizer']
  return _first_executable(cands)


def tensorflow_dirs():
  """(include_dir, lib_dir) of an installed tensorflow package, or None. Found with
  importlib's spec lookup, which does not execute the package."""
  try:
    spec = importlib.util.find_spec('tensorflow')
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  for loc in spec.submodule_search_locations:
    root = pathlib.Path(loc)
    inc, lib = root / 'include', root / 'libtensorflow_framework.so.2'
    if (inc / 'tensorflow' / 'core' / 'framework' / 'op_kernel.h').exists() and lib.exists():
      return inc, root
  return None


def _cxx():
  return os.environ.get('CXX', 'g++')


def cache_root():
  env = os.environ.get('SG2TF_CACHE_DIR')
  base = pathlib.Path(env).expanduser() if env else pathlib.Path.home() / '.cache' / 'sg2tf'
  return base / 'gpu_check'


def _version(tool):
  try:
    return subprocess.run([tool, '--version'], capture_output=True, text=True,
                          check=False).stdout
  except OSError:
    return ''


def _key(files, parts):
  h = hashlib.sha256()
  headers = sorted((CC_DIR / 'kernels').glob('*.h')) + sorted(HERE.glob('*.h'))
  for f in list(files) + headers:
    h.update(str(f.name).encode() + b'\0' + pathlib.Path(f).read_bytes())
  for p in parts:
    h.update(b'\0' + str(p).encode())
  return h.hexdigest()[:20]


def _run(cmd):
  proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    tail = (proc.stdout + proc.stderr)[-6000:]
    raise BuildError(f'command failed (exit {proc.returncode}):\n  '
                     f'{" ".join(map(str, cmd))}\n{tail}')


def _build(name, key, compile_jobs, link_cmd_fn, log):
  """Compiles `compile_jobs` (lists ending in '-o', obj) in parallel, links with
  link_cmd_fn(objs, out), caches by key. Returns (path, seconds, cached)."""
  out_dir = cache_root() / key
  lib = out_dir / name
  if lib.exists():
    return lib, 0.0, True
  out_dir.mkdir(parents=True, exist_ok=True)
  start = time.time()
  with tempfile.TemporaryDirectory(dir=out_dir, prefix='.tmp-') as tmp:
    tmp = pathlib.Path(tmp)
    jobs, objs = [], []
    for i, (cmd, src) in enumerate(compile_jobs):
      obj = tmp / f'{i}_{pathlib.Path(src).name}.o'
      jobs.append(list(cmd) + ['-o', str(obj)])
      objs.append(obj)
    log(f'building {name} ({len(jobs)} compiles) ...')
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      for fut in [pool.submit(_run, j) for j in jobs]:
        fut.result()
    _run(link_cmd_fn(objs, tmp / name))
    os.replace(tmp / name, lib)
  return lib, time.time() - start, False


def cuda_gencode(arch):
  """SASS for compute capability `arch` ('90') plus its PTX (for newer GPUs' JIT)."""
  return ['-gencode', f'arch=compute_{arch},code=[sm_{arch},compute_{arch}]']


def build_cuda_library(arch, log=print):
  """Kernels + harnesses for one compute capability; returns (path, info dict)."""
  nvcc = nvcc_path()
  if nvcc is None:
    raise BuildError('nvcc not found: set $CUDA_HOME or put nvcc on PATH')
  flags = list(NVCC_FLAGS) + cuda_gencode(arch)
  key = _key(CUDA_SOURCES, ['cuda', _version(nvcc), *flags])
  jobs = [([nvcc] + flags + ['-c', str(s)], s) for s in CUDA_SOURCES]
  link = lambda objs, out: [nvcc, '-shared', *map(str, objs), '-o', str(out)]
  path, secs, cached = _build(CUDA_LIB, key, jobs, link, log)
  return path, {'compiler': nvcc, 'flags': flags, 'seconds': round(secs, 1), 'cached': cached,
                'nvcc_version': _version(nvcc).strip().splitlines()[-1:]}


def build_cpu_library(ops_lib=None, log=print):
  """The CPU harness; returns (path, info). info['bias_act'] is None when BiasActCpu is
  linked in, else the reason it is not.

  ops_lib: the op library TensorFlow loads (sg2tf_ops.so, built by `make ops`): the harness
  is linked against its Upfirdn2dCpu/BiasActCpu (the kernels as shipped; compiles in
  seconds). Without it, the kernels are compiled from their sources (module docstring).
  """
  cxx = _cxx()
  if shutil.which(cxx) is None:
    raise BuildError(f'C++ compiler {cxx!r} not found; install g++ or set $CXX')
  tf = tensorflow_dirs()
  flags = list(CXX_FLAGS) + cxx_arch_flags(cxx) + list(CXX_EXTRA)
  parts, reason = [_version(cxx), *flags], None
  if ops_lib is not None:
    ops_lib = pathlib.Path(ops_lib).resolve()
    if not ops_lib.exists():
      raise BuildError(f'--cpu-ops-lib {ops_lib} does not exist (build it: make ops)')
    if tf is None:
      raise BuildError(f'{ops_lib} needs libtensorflow_framework.so.2 from the tensorflow '
                       'package, which is not installed here')
    sources = [CPU_HARNESS, ops_lib]
    jobs = [([cxx] + flags + ['-DSG2TF_CPU_HARNESS_BIAS_ACT', '-c', str(CPU_HARNESS)],
             CPU_HARNESS)]
    # The op library finds libtensorflow_framework through whoever loads it (TF's Python
    # module normally): a transitive DT_RPATH (not RUNPATH) and a NEEDED entry kept even
    # though the harness calls nothing in it do that here.
    link_extra = ['-Wl,--no-as-needed', '-Wl,--disable-new-dtags', f'-L{tf[1]}',
                  '-l:libtensorflow_framework.so.2', str(ops_lib),
                  f'-Wl,-rpath,{tf[1]}:{ops_lib.parent}']
    parts += ['ops_lib', str(ops_lib)]
  else:
    sources = [CPU_HARNESS]
    impl = ['-DSG2TF_CPU_HARNESS_UPFIRDN2D_IMPL']
    link_extra = []
    if tf is None:
      reason = ('BiasActCpu is defined in bias_act_kernel.cc next to its TF OpKernels and '
                'needs the tensorflow package\'s headers, which are not installed here')
      jobs = [([cxx] + flags + impl + ['-c', str(CPU_HARNESS)], CPU_HARNESS)]
    else:
      inc, libdir = tf
      tf_cflags = [f'-I{inc}', '-D_GLIBCXX_USE_CXX11_ABI=1', '-DEIGEN_MAX_ALIGN_BYTES=64']
      jobs = [([cxx] + flags + impl + ['-DSG2TF_CPU_HARNESS_BIAS_ACT', '-c', str(CPU_HARNESS)],
               CPU_HARNESS),
              ([cxx] + flags + tf_cflags + ['-c', str(BIAS_ACT_CPU)], BIAS_ACT_CPU)]
      sources.append(BIAS_ACT_CPU)
      link_extra = [f'-L{libdir}', '-l:libtensorflow_framework.so.2', f'-Wl,-rpath,{libdir}']
      parts += [str(inc), *tf_cflags]
  key = _key(sources, ['cpu', *parts, *link_extra])
  link = lambda objs, out: [cxx, '-shared', '-fPIC', *map(str, objs), '-o', str(out),
                            *link_extra, '-lpthread']
  path, secs, cached = _build(CPU_LIB, key, jobs, link, log)
  return path, {'compiler': cxx, 'flags': flags, 'seconds': round(secs, 1), 'cached': cached,
                'kernels_from': str(ops_lib) if ops_lib else 'sources', 'bias_act': reason}
