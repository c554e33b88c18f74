"""Checkpoints: a killed save leaves an intact checkpoint to resume from (the previous one,
or the new one when its files were complete), found from the files themselves."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from sg2tf.training import checkpointing
from tests import testutil

# Saves checkpoint 1, prints SAVED, then saves big checkpoints 2, 3, ... with every element
# equal to the checkpoint number until killed (mode 'loop'), or kills itself after the data
# of checkpoint 2 is written but before the `checkpoint` file names it (mode 'state').
_WRITER = '''
import os, signal, sys
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management
from sg2tf.training import checkpointing
run_dir, mode = sys.argv[1], sys.argv[2]
v = tf.Variable(tf.zeros([4 << 20]))
n = tf.Variable(0, dtype=tf.int64)
ck = checkpointing.Checkpointer(run_dir, keep=2, v=v, n=n)
def save(i):
  v.assign(tf.fill(v.shape, float(i)))
  n.assign(i)
  ck.save(i)
save(1)
print('SAVED', flush=True)
if mode == 'state':
  def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
  checkpoint_management.update_checkpoint_state_internal = die
  save(2)
i = 2
while True:
  save(i)
  i += 1
'''


def _restore(run_dir):
  v = tf.Variable(tf.zeros([4 << 20]))
  n = tf.Variable(0, dtype=tf.int64)
  ck = checkpointing.Checkpointer(run_dir, keep=2, v=v, n=n)
  path = checkpointing.find_resume(run_dir).latest
  ck.restore(path)
  return path, int(n.numpy()), v.numpy()


class InterruptedSaveTest(tf.test.TestCase):

  def start(self, run_dir, mode):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    env['PYTHONPATH'] = str(testutil.REPO) + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.Popen([sys.executable, '-c', _WRITER, run_dir, mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(testutil.REPO))

  def test_killed_before_the_state_file(self):
    run_dir = tempfile.mkdtemp()
    proc = self.start(run_dir, 'state')
    _, err = proc.communicate(timeout=120)
    self.assertEqual(proc.returncode, -signal.SIGKILL, err[-3000:])
    files = os.listdir(os.path.join(run_dir, 'checkpoints'))
    self.assertIn('ckpt-2.index', files)  # written, but the state file never named it
    self.assertIn('ckpt-1', open(os.path.join(run_dir, 'checkpoints', 'checkpoint')).read())
    # Its files are complete (every tensor passes its checksum): it is the one to resume.
    path, n, v = _restore(run_dir)
    self.assertEqual((os.path.basename(path), n), ('ckpt-2', 2))
    self.assertTrue(np.all(v == 2))
    shutil.rmtree(run_dir)

  def test_killed_at_random_moments(self):
    for delay in (0.3, 0.7):
      run_dir = tempfile.mkdtemp()
      proc = self.start(run_dir, 'loop')
      self.assertEqual(proc.stdout.readline().strip(), 'SAVED', proc.stderr.read()[-3000:]
                       if proc.poll() is not None else '')
      time.sleep(delay)
      proc.kill()
      proc.communicate(timeout=60)
      path, n, v = _restore(run_dir)
      self.assertEqual(os.path.basename(path), f'ckpt-{n}')
      self.assertTrue(np.all(v == n), f'torn checkpoint {path}')
      shutil.rmtree(run_dir)


if __name__ == '__main__':
  tf.test.main()
