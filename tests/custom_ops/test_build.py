"""The op build: caching by content hash, concurrency safety, atomic output, CUDA compile."""

import os
import pathlib
import subprocess
import tempfile
from unittest import mock

import tensorflow as tf

from sg2tf.custom_ops import build
from tests import testutil

_TINY_SRC = 'extern "C" int sg2tf_tiny() { return %d; }\n'


class BuildCacheTest(tf.test.TestCase):

  def _tiny_tree(self, value=1):
    root = pathlib.Path(tempfile.mkdtemp())
    (root / 'ops').mkdir()
    (root / 'ops' / 'tiny.cc').write_text(_TINY_SRC % value)
    return root

  def test_cached_by_content_and_rebuilt_on_change(self):
    cc = self._tiny_tree()
    cache = tempfile.mkdtemp()
    with mock.patch.dict(os.environ, {'SG2TF_CACHE_DIR': cache}), \
         mock.patch.object(build, 'CC_DIR', cc), \
         mock.patch.object(build, 'CPU_SOURCES', ('ops/tiny.cc',)):
      lib1 = build.build()
      mtime = lib1.stat().st_mtime_ns
      self.assertEqual(build.build(), lib1)              # Cached: same file, untouched.
      self.assertEqual(lib1.stat().st_mtime_ns, mtime)
      (cc / 'ops' / 'tiny.cc').write_text(_TINY_SRC % 2)  # New source -> new directory.
      lib2 = build.build()
      self.assertNotEqual(lib2.parent, lib1.parent)
      self.assertTrue(lib1.exists() and lib2.exists())
      self.assertEmpty([p for p in lib2.parent.iterdir() if p.name.startswith('.tmp-')])

  def test_concurrent_processes_build_once(self):
    cc = self._tiny_tree(7)
    cache = tempfile.mkdtemp()
    code = f"""
import os
from unittest import mock
from sg2tf.custom_ops import build
calls = []
real_run = build._run
def counting_run(cmd):
    calls.append(cmd)
    real_run(cmd)
with mock.patch.object(build, 'CC_DIR', __import__('pathlib').Path({str(cc)!r})), \\
     mock.patch.object(build, 'CPU_SOURCES', ('ops/tiny.cc',)), \\
     mock.patch.object(build, '_run', counting_run):
    print(build.build(), len(calls))
"""
    env = dict(os.environ, SG2TF_CACHE_DIR=cache, PYTHONPATH=str(testutil.REPO),
               TF_CPP_MIN_LOG_LEVEL='2')
    procs = [subprocess.Popen([os.sys.executable, '-c', code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
      self.assertEqual(p.returncode, 0, err[-3000:])
    paths = {o.split()[0] for o, _ in outs}
    compiles = sum(int(o.split()[1]) for o, _ in outs)
    self.assertLen(paths, 1)
    self.assertEqual(compiles, 2)  # One compile + one link in total, by whichever got the lock.

  def test_compile_error_is_a_build_error_with_output(self):
    cc = self._tiny_tree()
    (cc / 'ops' / 'tiny.cc').write_text('this is not C++;\n')
    with mock.patch.dict(os.environ, {'SG2TF_CACHE_DIR': tempfile.mkdtemp()}), \
         mock.patch.object(build, 'CC_DIR', cc), \
         mock.patch.object(build, 'CPU_SOURCES', ('ops/tiny.cc',)):
      with self.assertRaisesRegex(build.BuildError, 'tiny.cc'):
        build.build()
      self.assertFalse(list(build.cache_root().rglob('*.so')))


  def test_failure_is_remembered_on_disk_and_force_retries(self):
    cc = self._tiny_tree()
    (cc / 'ops' / 'tiny.cc').write_text('this is not C++;\n')
    calls = []
    real_run = build._run  # pylint: disable=protected-access

    def counting_run(cmd):
      calls.append(cmd)
      real_run(cmd)
    with mock.patch.dict(os.environ, {'SG2TF_CACHE_DIR': tempfile.mkdtemp()}), \
         mock.patch.object(build, 'CC_DIR', cc), \
         mock.patch.object(build, 'CPU_SOURCES', ('ops/tiny.cc',)), \
         mock.patch.object(build, '_run', counting_run):
      with self.assertRaises(build.BuildError):
        build.build(variant='baseline')
      out_dir = build.library_dir(False, 'baseline')
      record = build.read_failure(out_dir)  # Next to the cache entry, same hash key.
      self.assertIn('error', record['reason'])
      self.assertTrue((out_dir / build.LOG_FILE).read_text().count('tiny.cc'))
      n = len(calls)
      with self.assertRaises(build.BuildError) as ctx:
        build.build(variant='baseline')  # A later process: no rebuild.
      self.assertEqual(len(calls), n)
      self.assertTrue(ctx.exception.cached)
      line = ctx.exception.one_line()
      self.assertNotIn('\n', line)
      for part in ('failed earlier', str(out_dir / build.LOG_FILE), build.RETRY_HINT):
        self.assertIn(part, line)
      self.assertEqual(build.status(False, 'baseline')[0]['state'], 'failed')
      (cc / 'ops' / 'tiny.cc').write_text(_TINY_SRC % 3)  # Same sources? No: new key, builds.
      self.assertTrue(build.build(variant='baseline').exists())
      (cc / 'ops' / 'tiny.cc').write_text('this is not C++;\n')
      with self.assertRaises(build.BuildError):
        build.build(variant='baseline', force=True)  # --force retries the recorded failure.
      self.assertGreater(len(calls), n + 2)

  def test_overrides_change_flags_and_cache_key(self):
    with mock.patch.dict(os.environ, {'CXXFLAGS': '-march=haswell -DX=1', 'LDFLAGS': ''}):
      flags = build.cpu_compile_flags([], build.variant_flags('baseline'))
      key = build.library_dir(False, 'baseline')
    self.assertEqual(flags[-2:], ['-march=haswell', '-DX=1'])  # Last: the user's flags win.
    self.assertNotEqual(key, build.library_dir(False, 'baseline'))
    with mock.patch.dict(os.environ, {'SG2TF_OPS_VARIANT': 'fastest'}):
      with self.assertRaisesRegex(ValueError, 'SG2TF_OPS_VARIANT'):
        build.variants_to_try()
    if build.is_x86():
      self.assertIn('-march=x86-64-v2', build.variant_flags('baseline'))
      self.assertIn('-march=native', build.variant_flags('tuned'))
      self.assertNotIn('-march=native', build.variant_flags('baseline'))

  def test_cli_exit_codes(self):
    env = {'SG2TF_CACHE_DIR': tempfile.mkdtemp(), 'CXX': '/nonexistent/g++'}
    with mock.patch.dict(os.environ, env):
      self.assertEqual(build.main(['--cuda=off', '--allow-missing-compiler']), 0)
      self.assertEqual(build.main(['--cuda=off']), 1)  # Strict by default.
    with mock.patch.dict(os.environ, dict(env, CXX='false')):  # A compiler that fails.
      self.assertEqual(build.main(['--cuda=off', '--allow-missing-compiler']), 1)
      self.assertEqual(build.main(['--cuda=off', '--allow-failure']), 0)


class FailedBuildInLaterProcessesTest(tf.test.TestCase):

  def test_one_line_then_reference_ops_without_rebuilding(self):
    env = dict(SG2TF_CACHE_DIR=tempfile.mkdtemp(), CXX='false', SG2TF_OPS_VARIANT='baseline')
    env.pop('SG2TF_DISABLE_CUSTOM_OPS', None)
    first = subprocess.run([os.sys.executable, '-m', 'sg2tf.custom_ops.build', '--cuda=off',
                            '--allow-failure'], capture_output=True, text=True, check=False,
                           env=dict(os.environ, PYTHONPATH=str(testutil.REPO),
                                    TF_CPP_MIN_LOG_LEVEL='2', **env), cwd=str(testutil.REPO))
    self.assertEqual(first.returncode, 0, first.stderr[-2000:])
    last = first.stdout.strip().splitlines()[-1]
    self.assertIn('Continuing with the reference ops', last)
    self.assertIn(build.RETRY_HINT, last)
    code = '''
import numpy as np, tensorflow as tf
from sg2tf.custom_ops import bias_act, build
calls = []
build._run = lambda cmd: calls.append(cmd)
y = bias_act(tf.constant([[-1.0, 2.0]]), act='lrelu')
bias_act(y, act='relu')
print('RESULT', [round(float(v), 4) for v in y.numpy()[0]], len(calls))
'''
    proc = subprocess.run([os.sys.executable, '-c', code], capture_output=True, text=True,
                          check=False, cwd=str(testutil.REPO),
                          env=dict(os.environ, PYTHONPATH=str(testutil.REPO),
                                   TF_CPP_MIN_LOG_LEVEL='2', **env))
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn('RESULT [-0.2828, 2.8284] 0', proc.stdout)  # Reference ops, no compile.
    lines = [l for l in proc.stderr.splitlines() if 'sg2tf' in l]
    self.assertLen(lines, 1, proc.stderr[-3000:])
    for part in ('failed earlier', build.LOG_FILE, build.RETRY_HINT, 'reference ops'):
      self.assertIn(part, lines[0])


class RealBuildTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    if build.disabled():
      self.skipTest('SG2TF_DISABLE_CUSTOM_OPS is set')
    if not build.compiler_found():
      self.skipTest(f'no C++ compiler {build.cxx()!r}')

  def test_cpu_library_builds_and_loads(self):
    lib = build.build(cuda=False)
    module = tf.load_op_library(str(lib))
    self.assertTrue(hasattr(module, 'sg2tf_upfirdn2d'))
    self.assertTrue(hasattr(module, 'sg2tf_bias_act'))

  def test_cuda_sources_compile_with_nvcc(self):
    """The CUDA build (nvcc -gencode sm_80 and sm_90) compiles and links; it is only loaded
    on a machine where TF sees a GPU."""
    if build.find_nvcc() is None:
      self.skipTest('nvcc not found')
    lib = build.build(cuda=True)
    symbols = subprocess.run(['nm', '-C', '--defined-only', str(lib)], capture_output=True,
                             text=True, check=True).stdout
    self.assertIn('LaunchUpfirdn2d', symbols)
    self.assertIn('LaunchBiasAct', symbols)
    cuobjdump = build.cuda_root(build.find_nvcc()) / 'bin' / 'cuobjdump'
    if cuobjdump.exists():
      cubins = subprocess.run([str(cuobjdump), '--list-elf', str(lib)], capture_output=True,
                              text=True, check=True)
      self.assertIn('sm_80', cubins.stdout)
      self.assertIn('sm_90', cubins.stdout)


if __name__ == '__main__':
  tf.test.main()
