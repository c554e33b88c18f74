"""Shared test helpers: custom-op availability, subprocess runs, shared data paths, the
official dataset pyramid."""

import os
import pathlib
import subprocess
import sys
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = (REPO / '..' / 'shared').resolve()


def custom_ops_or_skip(testcase):
  """Skips only when allowed: SG2TF_DISABLE_CUSTOM_OPS=1 (the documented way to test without
  the ops), no C++ compiler on the machine, or SG2TF_ALLOW_NO_CUSTOM_OPS=1. Where a compiler
  exists (CI: make test builds the ops first) a library that fails to build or load must fail
  the suite, not hide behind a skip."""
  from sg2tf.custom_ops import _loader, build  # pylint: disable=g-import-not-at-top
  try:
    _loader.get_library()
  except _loader.CustomOpUnavailableError as e:
    if (build.disabled() or not build.compiler_found()
        or os.environ.get('SG2TF_ALLOW_NO_CUSTOM_OPS', '') not in ('', '0')):
      testcase.skipTest(f'custom ops unavailable: {e}')
    raise


def run_python(code: str, env_extra=None, timeout=600) -> str:
  """Runs code in a fresh interpreter (for logical-device or multi-process set-ups that
  must happen before TF initialises). Returns stdout; raises with output on failure."""
  env = dict(os.environ)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
  env.update(env_extra or {})
  proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True,
                        text=True, env=env, timeout=timeout, check=False, cwd=str(REPO))
  if proc.returncode != 0:
    raise AssertionError(f'subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-8000:]}')
  return proc.stdout


# ------------------------------------------------------------------ small file systems

def small_filesystem(testcase, size='4m') -> str:
  """A fresh tmpfs of `size` mounted for this test and unmounted at its cleanup. Skips the
  test, saying why, where this machine does not let the test mount one (needs root with
  CAP_SYS_ADMIN; CI containers may not allow it)."""
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  path = tempfile.mkdtemp(prefix='sg2tf_smallfs_')
  reason = None
  if not shutil.which('mount'):
    reason = 'no mount command'
  else:
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size},mode=0777',
                           'sg2tf-test', path], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
      reason = (proc.stderr or proc.stdout).strip() or f'mount exited {proc.returncode}'
  if reason:
    os.rmdir(path)
    why = (f'cannot mount a small tmpfs here ({reason}); the full / read-only disk cases '
           'need root with CAP_SYS_ADMIN')
    print(f'SKIPPED {testcase.id()}: {why}')
    testcase.skipTest(why)
  testcase.addCleanup(_unmount, path)
  return path


def _unmount(path):
  import shutil  # pylint: disable=g-import-not-at-top
  subprocess.run(['umount', '-l', path], capture_output=True, check=False)
  shutil.rmtree(path, ignore_errors=True)


def fill_filesystem(path) -> None:
  """Grows a filler file in the file system holding path until the file system is full."""
  block = b'\0' * (64 << 10)
  with open(os.path.join(path, '.filler'), 'ab', buffering=0) as f:
    try:
      while True:
        f.write(block)
    except OSError:
      pass
    try:
      while True:
        f.write(b'\0' * 512)
    except OSError:
      pass


def remount_readonly(testcase, path) -> None:
  proc = subprocess.run(['mount', '-o', 'remount,ro', path], capture_output=True, text=True,
                        check=False)
  if proc.returncode != 0:
    testcase.skipTest(f'cannot remount {path} read-only here ({proc.stderr.strip()})')


def reference_ops():
  """Runs the block with every op on its pure-TF reference: the op policy's scope."""
  from sg2tf import custom_ops  # pylint: disable=g-import-not-at-top
  return custom_ops.implementation('ref')


def official_levels(img):
  """NVIDIA's dataset_tool pyramid, restated with strided slicing: img [C, H, W] uint8 -> one
  uint8 array per level. Each level is the 2x2 mean of the previous level's float values (not
  of its rounded ones), rounded with rint for writing, as the official TFRecordExporter does."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  out = [img]
  x = img
  for _ in range(int(np.log2(img.shape[1])) - 2):
    x = x.astype(np.float32)
    x = (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) * 0.25
    out.append(np.rint(x).clip(0, 255).astype(np.uint8))
  return out
