"""Files: atomic writes that respect the umask, sha256, clear disk errors, a directory lock.

Every output goes to a temporary name beside its destination and is renamed into place only
when complete, so a reader sees the old version or the new one, never half of one:
  atomic_write(path, write) and write_bytes / write_text / write_json   files
  AtomicDir(path)                                                        directories
Temporary names are hidden, `.<name>.tmp-<random>` (and, for the instant of a directory swap,
`.<name>.old-<random>`); `remove_leftovers` deletes the ones a killed process left behind.

Modes: temporaries are created by os.open(..., 0o666) and os.mkdir(..., 0o777), so the kernel
applies the user's umask exactly as for any file the user makes (tempfile.mkstemp / mkdtemp
would give 0600 / 0700 whatever the umask, and chmod-ing afterwards would need the umask,
which a process can only read by changing it).

Write failures of the disk (full, read-only, permissions, quota) become `DiskWriteError`: one
line saying what could not be written, where, why and how much space is free there. The
temporary output is removed; what was at the destination before stays as it was.

`lock_dir(folder)` takes an exclusive lock (fcntl.flock) on `<folder>/.sg2tf.lock`, held
until release() or the end of the process however it ends (the kernel drops it, also on
kill -9), so a lock left by a dead process never blocks. No TensorFlow here: the tools use
this module before TensorFlow starts.
"""

import atexit
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
from typing import Callable, Dict, List, Optional, Sequence

# errno values that mean "the disk refused the write", not a bug.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.EFBIG}
# The same conditions as TensorFlow's file system layer words them (its errors carry no errno).
_WRITE_MESSAGES = ('No space left on device', 'Read-only file system', 'Permission denied',
                   'Disk quota exceeded', 'File too large')
LEFTOVER_RE = re.compile(r'^\..+\.(tmp|old)-[0-9a-f]{8,}(\.[^/]*)?$')


class DiskWriteError(OSError):
  """An output could not be written (disk full, read-only, no permission); one clear line."""

  def __init__(self, what: str, path: str, reason: str, free: Optional[int], note: str = ''):
    self.what, self.path, self.reason, self.free = what, path, reason, free
    space = f'; {format_bytes(free)} free there' if free is not None else ''
    super().__init__(f'could not write {what} {path}: {reason}{space}.'
                     f'{" " + note if note else ""}')

  def __str__(self):
    return self.args[0] if self.args else super().__str__()


def format_bytes(n: Optional[int]) -> str:
  if n is None:
    return '?'
  for unit in ('bytes', 'KiB', 'MiB', 'GiB', 'TiB'):
    if n < 1024 or unit == 'TiB':
      return f'{n} {unit}' if unit == 'bytes' else f'{n:.1f} {unit}'
    n /= 1024.0
  return str(n)


def free_space(path: str) -> Optional[int]:
  """Bytes free for this user on the file system holding path (or its nearest ancestor)."""
  p = os.path.abspath(os.fspath(path))
  while p and not os.path.exists(p):
    parent = os.path.dirname(p)
    if parent == p:
      break
    p = parent
  try:
    return shutil.disk_usage(p).free
  except OSError:
    return None


def is_write_error(e: BaseException) -> bool:
  """Whether e is the disk refusing a write (OSError errno, or TensorFlow's wording of it)."""
  if isinstance(e, DiskWriteError):
    return True
  if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
    return True
  text = str(getattr(e, 'message', '') or e)
  return type(e).__module__.startswith('tensorflow') and any(m in text for m in _WRITE_MESSAGES)


def _reason(e: BaseException) -> str:
  if isinstance(e, OSError) and e.errno is not None:
    return os.strerror(e.errno)
  text = str(getattr(e, 'message', '') or e)
  return next((m for m in _WRITE_MESSAGES if m in text), text.splitlines()[0] if text else
              type(e).__name__)


def write_error(what: str, path: str, e: BaseException) -> DiskWriteError:
  if isinstance(e, DiskWriteError):
    return e
  return DiskWriteError(what, os.path.abspath(os.fspath(path)), _reason(e), free_space(path))


@contextlib.contextmanager
def writing(what: str, path: str):
  """Turns a disk's refusal inside the block into a DiskWriteError naming what and where."""
  try:
    yield
  except DiskWriteError:
    raise
  except BaseException as e:  # pylint: disable=broad-except
    if is_write_error(e):
      raise write_error(what, path, e) from None
    raise


def sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(8 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def _tmp_name(path: str, kind: str = 'tmp') -> str:
  folder, base = os.path.split(os.path.abspath(os.fspath(path)))
  stem, ext = os.path.splitext(base)
  # Keep the extension last: some writers (Pillow, numpy) pick the format from it.
  return os.path.join(folder, f'.{stem}.{kind}-{secrets.token_hex(6)}{ext}')


def _makedirs(folder: str, what: str) -> None:
  with writing(what, folder):
    os.makedirs(folder, exist_ok=True)


def atomic_write(path: str, write: Callable[[str], None], what: str = 'file') -> str:
  """Calls write(tmp) on a new temporary file beside path (mode 0666 minus the umask), then
  renames it to path. On any error the temporary file is removed and path is untouched.
  Disk refusals become DiskWriteError. Returns path."""
  path = os.fspath(path)
  _makedirs(os.path.dirname(os.path.abspath(path)), what)
  tmp = _tmp_name(path)
  try:
    with writing(what, path):
      os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666))
      write(tmp)
      os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise
  return path


def write_bytes(path: str, data: bytes, what: str = 'file') -> str:
  def write(tmp):
    with open(tmp, 'wb') as f:
      f.write(data)
  return atomic_write(path, write, what)


def write_text(path: str, text: str, what: str = 'file') -> str:
  return write_bytes(path, text.encode('utf-8'), what)


def write_json(path: str, obj, what: str = 'file', indent: int = 1) -> str:
  return write_text(path, json.dumps(obj, indent=indent) + '\n', what)


def _is_occupied(path: str) -> bool:
  return os.path.exists(path) and (not os.path.isdir(path) or bool(os.listdir(path)))


class AtomicDir:
  """A directory built under a temporary name and renamed into place when complete.

      with AtomicDir(out, overwrite=True, what='network snapshot') as d:
        write_into(d.tmp)                  # committed on success, deleted on any error

  or explicitly: d = AtomicDir(out); ...; d.commit() / d.abort(). An existing non-empty
  destination is replaced only with overwrite=True (FileExistsError otherwise, before anything
  is written); the old one is swapped out and deleted only after the new one is in place.
  """

  def __init__(self, path: str, overwrite: bool = False, what: str = 'directory'):
    self.path = os.path.abspath(os.fspath(path))
    self.overwrite, self.what = overwrite, what
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise FileExistsError(f'{self.path} exists and is a file; choose a directory name.')
    if _is_occupied(self.path) and not overwrite:
      raise FileExistsError(f'{self.path} exists and is not empty; choose another directory '
                            'or allow replacing it (--overwrite).')
    _makedirs(os.path.dirname(self.path), what)
    self.tmp = _tmp_name(self.path)
    with writing(what, self.path):
      os.mkdir(self.tmp, 0o777)
    self.done = False

  def commit(self) -> str:
    """Moves the finished temporary directory to its destination. Returns the destination."""
    try:
      with writing(self.what, self.path):
        if os.path.isdir(self.path) and not os.listdir(self.path):
          os.rmdir(self.path)
        if os.path.exists(self.path):
          if not self.overwrite:
            raise FileExistsError(f'{self.path} appeared while it was being written; it was '
                                  'left as it is.')
          old = _tmp_name(self.path, 'old')
          os.replace(self.path, old)
          os.replace(self.tmp, self.path)
          shutil.rmtree(old, ignore_errors=True)
        else:
          os.replace(self.tmp, self.path)
    except BaseException:
      self.abort()
      raise
    self.done = True
    return self.path

  def abort(self) -> None:
    shutil.rmtree(self.tmp, ignore_errors=True)
    self.done = True

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if self.done:
      return False
    if exc_type is not None:
      self.abort()
      if is_write_error(exc) and not isinstance(exc, DiskWriteError):
        raise write_error(self.what, self.path, exc) from None
      return False
    self.commit()
    return False


def remove_leftovers(folder: str, patterns: Sequence[str] = ()) -> List[str]:
  """Deletes the temporaries of interrupted writes in folder: this module's hidden
  `.<name>.tmp-*` / `.<name>.old-*` entries and names matching `patterns` (regexes). Only for
  folders this process owns (e.g. a locked run directory). Returns what was removed."""
  if not os.path.isdir(folder):
    return []
  extra = [re.compile(p) for p in patterns]
  removed = []
  for name in sorted(os.listdir(folder)):
    if not (LEFTOVER_RE.match(name) or any(p.match(name) for p in extra)):
      continue
    path = os.path.join(folder, name)
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      with contextlib.suppress(OSError):
        os.remove(path)
    removed.append(path)
  return removed


_PROBE_BYTES = 64 << 10


def check_writable(folder: str, what: str = 'directory') -> None:
  """Creates folder if needed and proves that a file (64 KiB, synced) can be written and
  removed in it; raises DiskWriteError (naming folder, reason and free space) otherwise."""
  folder = os.path.abspath(os.fspath(folder))
  _makedirs(folder, what)
  probe = os.path.join(folder, f'.sg2tf-write-test.tmp-{secrets.token_hex(6)}')
  with writing(what, folder):
    try:
      fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666)
      try:
        os.write(fd, b'\0' * _PROBE_BYTES)
        os.fsync(fd)
      finally:
        os.close(fd)
    finally:
      with contextlib.suppress(OSError):
        os.remove(probe)


# ------------------------------------------------------------------ directory lock

LOCK_NAME = '.sg2tf.lock'


class DirectoryLockedError(RuntimeError):
  """Another process holds the directory's lock; the message names it (pid, host, start)."""


class DirLock:
  """An exclusive flock on `<folder>/.sg2tf.lock`; see lock_dir."""

  def __init__(self, folder: str, fd: int, info: Dict[str, object]):
    self.folder, self.fd, self.info = folder, fd, info
    self.path = os.path.join(folder, LOCK_NAME)

  def release(self) -> None:
    """Drops the lock (and its file, while still holding it, so no one locks a stale inode)."""
    if self.fd is None:
      return
    _held.pop(self.folder, None)
    with contextlib.suppress(OSError):
      if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
        os.remove(self.path)
    os.close(self.fd)
    self.fd = None


_held: Dict[str, DirLock] = {}


def _describe_holder(text: str) -> str:
  try:
    info = json.loads(text)
    return (f'pid {info.get("pid")} on host {info.get("host")}, started {info.get("started")}'
            f'{": " + info["command"] if info.get("command") else ""}')
  except (ValueError, TypeError, AttributeError):
    return 'another process (it has not written its details yet)'


def lock_dir(folder: str, what: str = 'directory') -> DirLock:
  """Takes the exclusive lock of folder for this process (again: the same lock).

  Raises:
    DirectoryLockedError: another live process holds it (the message names pid, host, start).
    DiskWriteError: the lock file cannot be created (read-only disk, ...).
  """
  folder = os.path.realpath(os.fspath(folder))
  held = _held.get(folder)
  if held is not None and held.fd is not None and held.info.get('pid') == os.getpid():
    return held
  _makedirs(folder, what)
  path = os.path.join(folder, LOCK_NAME)
  for _ in range(10):
    with writing(f'the lock file of {what}', path):
      fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise write_error(f'the lock file of {what}', path, e) from None
      try:
        with open(path, encoding='utf-8', errors='replace') as f:
          holder = _describe_holder(f.read())
      except OSError:
        holder = 'another process'
      raise DirectoryLockedError(
          f'{what} {folder} is in use by {holder}. Only one process may use it at a time: '
          f'wait for that one to finish (or stop it), or choose another directory.') from None
    # The holder before us may have removed the file after we opened it: lock the live one.
    try:
      same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
      same = False
    if same:
      break
    os.close(fd)
  else:
    raise DirectoryLockedError(f'{what} {folder}: could not take its lock {path} (it keeps '
                               'being replaced by another process).')
  info = {'pid': os.getpid(), 'host': socket.gethostname(),
          'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
          'command': ' '.join(sys.argv)[:500]}
  with writing(f'the lock file of {what}', path):
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + '\n').encode('utf-8'), 0)
  lock = DirLock(folder, fd, info)
  _held[folder] = lock
  return lock


@atexit.register
def _release_all():
  for lock in list(_held.values()):
    if lock.info.get('pid') == os.getpid():
      lock.release()
