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


class RealBuildTest(tf.test.TestCase):

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
