"""python -m sg2tf.doctor: the report a user pastes into a bug report; exit 0 iff every
self-check passes."""

import io
import os
import subprocess
import sys
from contextlib import redirect_stdout

import tensorflow as tf

from sg2tf import doctor
from sg2tf import selfcheck
from tests import testutil


class DoctorTest(tf.test.TestCase):

  def test_report_and_exit_status(self):
    env = dict(os.environ, PYTHONPATH=str(testutil.REPO), TF_CPP_MIN_LOG_LEVEL='2')
    proc = subprocess.run([sys.executable, '-m', 'sg2tf.doctor'], capture_output=True,
                          text=True, env=env, check=False, cwd=str(testutil.REPO), timeout=600)
    self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])
    out = proc.stdout
    for part in ('TensorFlow 2.', 'Keras', 'Python', 'NumPy', '== CPU', 'ISA:', '== GPUs',
                 'TensorFlow built with CUDA', '== compilers', 'CXX=', 'nvcc',
                 '== op libraries', 'sg2tf_ops.so [baseline', '/CPU:0 bias_act:',
                 '/CPU:0 upfirdn2d:', '/CPU:0 modulated conv:',
                 'fused vs non-fused modulated conv', 'all self-checks passed'):
      self.assertIn(part, out)
    if 'custom vs ref: not run' not in out:
      self.assertRegex(out, r'custom vs ref bias_act .*forward \S+, grad \S+, grad2 \S+: PASS')

  def test_mismatch_gives_nonzero_exit(self):
    testutil.custom_ops_or_skip(self)
    buf = io.StringIO()
    with selfcheck.inject_fault_for_tests('bias_act', 'wrong'), redirect_stdout(buf):
      rc = doctor.main(['--checks=ops'])
    self.assertEqual(rc, 1, buf.getvalue())
    self.assertRegex(buf.getvalue(), r'custom vs ref bias_act .*FAIL')
    self.assertIn('1 self-check(s) FAILED', buf.getvalue())


if __name__ == '__main__':
  tf.test.main()
