"""Compile-only matrix: the TF/Eigen headers and every C++ source that includes them compile
for each target CPU with this build's flags (issue: -march=native on Sapphire Rapids turned on
AVX512-FP16, which TF 2.21's Eigen cannot compile under g++ 12). One translation unit per
target, targets in parallel; a target that does not compile fails the suite."""

import concurrent.futures
import os

import tensorflow as tf

from sg2tf.custom_ops import build


class CompileMatrixTest(tf.test.TestCase):

  def test_every_target_compiles(self):
    if build.disabled():
      self.skipTest('SG2TF_DISABLE_CUSTOM_OPS is set')
    if not build.compiler_found():
      self.skipTest(f'no C++ compiler {build.cxx()!r}')
    targets = build.matrix_targets()
    names = [name for name, _ in targets]
    if build.is_x86() and build.compiler_accepts(build.cxx(), '-march=sapphirerapids'):
      for must in ('x86-64-v2', 'x86-64-v3', 'x86-64-v4', 'icelake-server', 'sapphirerapids'):
        self.assertIn(must, names)
    self.assertTrue(any(n.startswith('tuned') or n == 'x86-64-v2' for n in names), names)
    with concurrent.futures.ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
      futures = {name: pool.submit(build.syntax_check, flags) for name, flags in targets}
    failures = []
    for name, fut in futures.items():
      try:
        fut.result()
      except build.BuildError as e:
        failures.append(f'{name}: {e.reason}\n{str(e)[-1500:]}')
    self.assertEmpty(failures, '\n\n'.join(failures))


if __name__ == '__main__':
  tf.test.main()
