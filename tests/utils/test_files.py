"""sg2tf.utils.files: atomic writes, modes under the umask (for every kind of output the
project writes), leftovers, write errors, and the run-directory lock (two processes)."""

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf.utils import files
from tests import testutil


@contextlib.contextmanager
def umask(mask):
  old = os.umask(mask)
  try:
    yield
  finally:
    os.umask(old)


def _modes(path):
  """{relative path: permission bits} of path and everything below it."""
  out = {'.': stat.S_IMODE(os.stat(path).st_mode)}
  for root, dirs, names in os.walk(path):
    for n in dirs + names:
      full = os.path.join(root, n)
      out[os.path.relpath(full, path)] = stat.S_IMODE(os.stat(full).st_mode)
  return out


class AtomicWriteTest(tf.test.TestCase):

  def test_write_replaces_only_when_complete(self):
    d = self.get_temp_dir()
    path = os.path.join(d, 'sub', 'a.json')
    files.write_json(path, {'x': 1})
    self.assertEqual(json.load(open(path)), {'x': 1})

    def fail(tmp):
      with open(tmp, 'w') as f:
        f.write('half')
      raise RuntimeError('interrupted')
    with self.assertRaisesRegex(RuntimeError, 'interrupted'):
      files.atomic_write(path, fail)
    self.assertEqual(json.load(open(path)), {'x': 1})
    self.assertEqual(os.listdir(os.path.dirname(path)), ['a.json'])

  def test_atomic_dir(self):
    d = self.get_temp_dir()
    out = os.path.join(d, 'out')
    with files.AtomicDir(out, what='thing') as a:
      files.write_text(os.path.join(a.tmp, 'f'), 'one')
      self.assertFalse(os.path.exists(out))
      self.assertTrue(os.path.basename(a.tmp).startswith('.out.tmp-'))
    self.assertEqual(open(os.path.join(out, 'f')).read(), 'one')
    with self.assertRaisesRegex(FileExistsError, 'out exists and is not empty'):
      files.AtomicDir(out)
    with self.assertRaisesRegex(RuntimeError, 'boom'):
      with files.AtomicDir(out, overwrite=True) as a:
        files.write_text(os.path.join(a.tmp, 'f'), 'two')
        raise RuntimeError('boom')
    self.assertEqual(open(os.path.join(out, 'f')).read(), 'one')  # old one intact
    with files.AtomicDir(out, overwrite=True) as a:
      files.write_text(os.path.join(a.tmp, 'f'), 'three')
    self.assertEqual(open(os.path.join(out, 'f')).read(), 'three')
    self.assertEqual(sorted(os.listdir(d)), ['out'])  # no temporaries

  def test_remove_leftovers(self):
    d = self.get_temp_dir()
    for name in ('.x.tmp-0123456789ab', '.y.old-0123456789ab', '.img.tmp-0123456789ab.png',
                 'keep.png', '.hidden', 'ckpt-4_temp'):
      open(os.path.join(d, name), 'w').close()
    os.makedirs(os.path.join(d, '.dir.tmp-abcdef012345'))
    removed = files.remove_leftovers(d, [r'^ckpt-\d+_temp$'])
    self.assertLen(removed, 5)
    self.assertEqual(sorted(os.listdir(d)), ['.hidden', 'keep.png'])

  def test_sha256_and_errors(self):
    path = files.write_bytes(os.path.join(self.get_temp_dir(), 'b'), b'abc')
    self.assertEqual(files.sha256_file(path),
                     'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    e = files.write_error('image', '/x/y.png', OSError(28, 'No space left on device'))
    self.assertIsInstance(e, OSError)
    self.assertRegex(str(e), r'^could not write image /x/y.png: No space left on device; .* '
                     r'free there\.$')
    self.assertTrue(files.is_write_error(OSError(30, 'Read-only file system')))
    self.assertFalse(files.is_write_error(ValueError('Permission denied')))


class OutputModesTest(tf.test.TestCase, parameterized.TestCase):
  """Every kind of file and folder sg2tf writes gets 0666 / 0777 minus the umask."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    from tests.training import tiny  # pylint: disable=g-import-not-at-top
    cls.G, cls.D, cls.G_ema = tiny.tiny_g(), tiny.tiny_d(), tiny.tiny_g()

  def _check(self, path, mask):
    want_file, want_dir = 0o666 & ~mask, 0o777 & ~mask
    for rel, mode in _modes(path).items():
      full = os.path.join(path, rel) if rel != '.' else path
      self.assertEqual(mode, want_dir if os.path.isdir(full) else want_file,
                       f'{full}: {oct(mode)} under umask {oct(mask)}')

  @parameterized.parameters(0o022, 0o077)
  def test_modes(self, mask):
    from sg2tf.dataset_tool.writer import DatasetWriter  # pylint: disable=g-import-not-at-top
    from sg2tf import export as export_lib  # pylint: disable=g-import-not-at-top
    from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
    from sg2tf.metrics import stats_cache  # pylint: disable=g-import-not-at-top
    from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
    from sg2tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
    d = tempfile.mkdtemp(dir=self.get_temp_dir())
    with umask(mask):
      outputs = [
          tool_util.save_png(os.path.join(d, 'png', 'seed0000.png'),
                             np.zeros([4, 4, 3], np.uint8)),
          config_lib.write_config(config_lib.TrainConfig(
              run_dir=os.path.join(d, 'run'), data=config_lib.DataConfig(data_dir='x'))),
          stats_cache.save(os.path.join(d, 'cache', 's.npz'), {'mu': np.zeros(2)}, {'k': 1}) or
          os.path.join(d, 'cache', 's.npz'),
          serialization.save_networks(os.path.join(d, 'converted'), self.G, self.D, self.G_ema),
          export_lib.export_generator(self.G, os.path.join(d, 'export', 'saved_model')),
          files.write_text(os.path.join(d, 'text.txt'), 'x'),
      ]
      with DatasetWriter(os.path.join(d, 'dataset'), resolution=4, channels=1) as w:
        partial = w.tmp_dir
        self._check(partial, mask)
        w.add_image(np.zeros([1, 4, 4], np.uint8))
        outputs.append(w.commit())
    for path in outputs + [os.path.join(d, 'png'), os.path.join(d, 'cache')]:
      with self.subTest(path=os.path.relpath(path, d)):
        self._check(path, mask)


# ------------------------------------------------------------------ the lock

_HOLDER = '''
import sys, time
from sg2tf.utils import files
files.lock_dir(sys.argv[1], 'run directory')
print('LOCKED', flush=True)
time.sleep(600)
'''

_TAKER = '''
import sys
from sg2tf.utils import files
try:
  lock = files.lock_dir(sys.argv[1], 'run directory')
except files.DirectoryLockedError as e:
  print(e)
  sys.exit(3)
print('GOT', lock.info['pid'])
'''


def _python(code, *args):
  env = dict(os.environ, PYTHONPATH=str(testutil.REPO) + os.pathsep +
             os.environ.get('PYTHONPATH', ''))
  return [sys.executable, '-c', code, *args], env


class DirLockTest(tf.test.TestCase):

  def _start_holder(self, folder):
    cmd, env = _python(_HOLDER, folder)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    self.addCleanup(lambda: proc.poll() is None and proc.kill())
    self.assertEqual(proc.stdout.readline().strip(), 'LOCKED')
    return proc

  def _take(self, folder):
    cmd, env = _python(_TAKER, folder)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)

  def test_second_process_refused_then_stale_lock_does_not_block(self):
    folder = os.path.join(self.get_temp_dir(), 'run')
    holder = self._start_holder(folder)
    got = self._take(folder)
    self.assertEqual(got.returncode, 3, got.stderr)
    self.assertRegex(got.stdout, rf'run directory .*run is in use by pid {holder.pid} on host '
                     rf'{socket.gethostname()}, started 20\d\d-\d\d-\d\dT')
    with self.assertRaisesRegex(files.DirectoryLockedError, f'pid {holder.pid}'):
      files.lock_dir(folder, 'run directory')
    holder.send_signal(signal.SIGKILL)  # the kernel drops the lock; its file stays behind
    holder.wait(timeout=60)
    self.assertTrue(os.path.exists(os.path.join(folder, files.LOCK_NAME)))
    got = self._take(folder)
    self.assertEqual(got.returncode, 0, got.stdout + got.stderr)
    self.assertIn('GOT', got.stdout)
    lock = files.lock_dir(folder, 'run directory')
    self.assertIs(files.lock_dir(folder, 'run directory'), lock)  # same process: same lock
    self.assertEqual(json.load(open(lock.path))['pid'], os.getpid())
    lock.release()
    self.assertFalse(os.path.exists(lock.path))

  def test_second_training_refused_at_once(self):
    from tests.training import tiny  # pylint: disable=g-import-not-at-top
    data = tiny.make_dataset(os.path.join(self.get_temp_dir(), 'data'), count=4, resolution=8)
    run_dir = os.path.join(self.get_temp_dir(), 'train_run')
    holder = self._start_holder(run_dir)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    start = time.time()
    proc = subprocess.run([sys.executable, str(testutil.REPO / 'train_main.py'),
                           f'--data_dir={data}', f'--run_dir={run_dir}', '--batch_size=4'],
                          cwd=str(testutil.REPO), capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    print(f'second train_main refused after {time.time() - start:.1f} s')
    self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
    self.assertEqual(proc.stderr.strip().count('\n'), 0, proc.stderr)
    self.assertRegex(proc.stderr, rf'^error: run directory .*train_run is in use by pid '
                     rf'{holder.pid} on host {socket.gethostname()}, started ')
    self.assertEqual(sorted(os.listdir(run_dir)), [files.LOCK_NAME])  # nothing else written


if __name__ == '__main__':
  tf.test.main()
