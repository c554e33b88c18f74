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

Filesystems: every helper here takes a local path or any TensorFlow filesystem path
(`gs://`, `s3://`, `hdfs://`, `ram://`, ... whatever `tf.io.gfile` knows). Local paths go
through `os` (no TensorFlow import); a path with a scheme goes through `tf.io.gfile`, imported
on first use. Use `open_file`, `exists`, `isdir`, `isfile`, `listdir`, `makedirs`, `remove`,
`rmtree`, `rename`, `getsize`, `getmtime`, `glob`, `abspath` instead of `open` / `os.path`, and
the TF ops (TFRecordDataset, Checkpoint, saved_model, summary writers) take such paths as they
are.

Where the atomic-write guarantee holds:
  - local disks and POSIX filesystems: files and directories are renamed into place (atomic).
  - filesystems whose `tf.io.gfile.rename` is a real rename (HDFS, TF's `ram://`): the same.
  - object stores (gs://, s3://, az://): there is no rename. A file is written to a temporary
    object and copied to its name (`rename` = copy + delete): each object appears only whole,
    never half-written, so single files keep the guarantee. A directory (AtomicDir: network
    directories, SavedModel exports, datasets) is copied object by object, so a reader that
    lists it during the commit can see part of it, and replacing an existing directory is
    not atomic either; an interrupted commit leaves a hidden `.<name>.tmp-*` prefix that
    `remove_leftovers` deletes. The directory lock (`lock_dir`) needs a local filesystem: on
    a remote path it is not taken (a warning says so); run one process per run directory.
  - `append_text` appends in place locally; elsewhere (no append on object stores) it rewrites
    the whole file atomically.

URLs: `fetch_url('https://.../x.pkl#sha256=HEX')` downloads once into the cache
(`cache_root()/downloads`: `$SG2TF_CACHE_DIR`, else the Keras cache `$KERAS_HOME` or
`~/.keras`), checks the length the server announced and the sha256 (from the `#sha256=`
fragment, or `KNOWN_SHA256` by URL), writes it atomically and returns the local path.
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
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

# errno values that mean "the disk refused the write", not a bug.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.EFBIG}
# The same conditions as TensorFlow's file system layer words them (its errors carry no errno).
_WRITE_MESSAGES = ('No space left on device', 'Read-only file system', 'Permission denied',
                   'Disk quota exceeded', 'File too large')
LEFTOVER_RE = re.compile(r'^\..+\.(tmp|old)-[0-9a-f]{8,}(\.[^/]*)?$')


# ------------------------------------------------------------------ filesystems

_SCHEME_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.\-]*://')
_URL_RE = re.compile(r'^https?://', re.IGNORECASE)


def is_url(path) -> bool:
  """http(s) URLs (downloaded through fetch_url, never opened as a filesystem path)."""
  return isinstance(path, str) and bool(_URL_RE.match(path))


def is_remote(path) -> bool:
  """A TensorFlow filesystem path with a scheme (gs://, ram://, ...), not http(s)."""
  path = os.fspath(path) if not isinstance(path, str) else path
  return bool(_SCHEME_RE.match(path)) and not is_url(path) and not path.startswith('file://')


def _local(path) -> str:
  path = os.fspath(path)
  return path[len('file://'):] if path.startswith('file://') else path


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def _tf_not_found():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.errors.NotFoundError


def abspath(path) -> str:
  """os.path.abspath for local paths; remote paths are returned as they are."""
  path = os.fspath(path)
  return path if is_remote(path) else os.path.abspath(_local(path))


def _listed(path: str) -> bool:
  """Whether a remote path is an entry of its parent's listing. Needed because TF's ram://
  reports every name prefix of a file as an existing directory (`ram://d/ckpt-4` when only
  `ram://d/ckpt-4.index` exists); object stores' implied folders are listed, so it holds."""
  parent, name = os.path.split(path.rstrip('/'))
  if not name or parent.endswith(':/'):  # the filesystem's root
    return True
  try:
    return name in listdir(parent)
  except Exception:  # pylint: disable=broad-except
    return False


def exists(path) -> bool:
  path = os.fspath(path)
  if is_remote(path):
    return _gfile().exists(path) and _listed(path)
  return os.path.exists(_local(path))


def isdir(path) -> bool:
  path = os.fspath(path)
  if is_remote(path):
    return _gfile().isdir(path) and _listed(path)
  return os.path.isdir(_local(path))


def isfile(path) -> bool:
  path = os.fspath(path)
  if is_remote(path):
    g = _gfile()
    return g.exists(path) and not g.isdir(path) and _listed(path)
  return os.path.isfile(_local(path))


def listdir(path) -> List[str]:
  """Entry names (no trailing '/', which some remote filesystems add to folders)."""
  path = os.fspath(path)
  if is_remote(path):
    return [n.rstrip('/') for n in _gfile().listdir(path)]
  return os.listdir(_local(path))


def makedirs(path) -> None:
  path = os.fspath(path)
  if is_remote(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(_local(path), exist_ok=True)


def remove(path) -> None:
  """Deletes a file (FileNotFoundError if absent)."""
  path = os.fspath(path)
  if not is_remote(path):
    os.remove(_local(path))
    return
  try:
    _gfile().remove(path)
  except _tf_not_found():
    raise FileNotFoundError(errno.ENOENT, 'no such file', path) from None


def rmtree(path) -> None:
  """Deletes a directory tree, ignoring what is already gone."""
  path = os.fspath(path)
  if not is_remote(path):
    shutil.rmtree(_local(path), ignore_errors=True)
    return
  g = _gfile()
  if not g.isdir(path):
    with contextlib.suppress(Exception):
      g.remove(path)
    return
  # File by file: gfile.rmtree fails on folders some filesystems only imply (ram://).
  for name in listdir(path):
    rmtree(join(path, name))
  with contextlib.suppress(Exception):
    g.remove(path) if not g.isdir(path) else g.rmtree(path)


def rename(src, dst) -> None:
  """Renames src (file or directory) to dst, replacing a file at dst. Atomic locally; on
  object stores a copy + delete (see the module docstring)."""
  src, dst = os.fspath(src), os.fspath(dst)
  if is_remote(src) or is_remote(dst):
    g = _gfile()
    if not g.isdir(src):
      g.rename(src, dst, overwrite=True)
      return
    # Entry by entry: gfile.rename of a directory moves only the folder itself on ram://
    # (its files stay under the old name), and object stores have no folders to rename.
    g.makedirs(dst)
    for name in listdir(src):
      rename(join(src, name), join(dst, name))
    rmtree(src)
  else:
    os.replace(_local(src), _local(dst))


def getsize(path) -> int:
  path = os.fspath(path)
  return _gfile().stat(path).length if is_remote(path) else os.path.getsize(_local(path))


def getmtime(path) -> float:
  path = os.fspath(path)
  if is_remote(path):
    return _gfile().stat(path).mtime_nsec / 1e9
  return os.path.getmtime(_local(path))


def glob(pattern) -> List[str]:
  pattern = os.fspath(pattern)
  if is_remote(pattern):
    return sorted(_gfile().glob(pattern))
  import glob as glob_lib  # pylint: disable=g-import-not-at-top
  return sorted(glob_lib.glob(_local(pattern)))


def join(path, *names) -> str:
  return os.path.join(os.fspath(path), *names)


def open_file(path, mode: str = 'r', encoding: Optional[str] = None):
  """open() for local paths, tf.io.gfile.GFile for TensorFlow filesystem paths."""
  path = os.fspath(path)
  if not is_remote(path):
    if 'b' in mode:
      return open(_local(path), mode)  # pylint: disable=unspecified-encoding
    return open(_local(path), mode, encoding=encoding or 'utf-8')
  f = _gfile().GFile(path, mode)
  if 'b' in mode or encoding in (None, 'utf-8', 'utf8'):
    return f  # GFile reads/writes str as UTF-8 in text mode.
  raise ValueError(f'{path}: only UTF-8 text is supported on TensorFlow filesystems.')


def read_bytes(path) -> bytes:
  with open_file(path, 'rb') as f:
    return f.read()


def read_text(path) -> str:
  with open_file(path, 'rb') as f:
    return f.read().decode('utf-8')


def read_json(path):
  return json.loads(read_text(path))


def append_text(path, text: str, what: str = 'file') -> str:
  """Appends text (one write: lines stay whole locally); remote: an atomic rewrite."""
  path = os.fspath(path)
  if not is_remote(path):
    _makedirs(os.path.dirname(os.path.abspath(_local(path))), what)
    with writing(what, path):
      with open(_local(path), 'a', encoding='utf-8') as f:
        f.write(text)
    return path
  old = read_text(path) if isfile(path) else ''
  return write_text(path, old + text, what)


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
  """Bytes free for this user on the file system holding path (or its nearest ancestor);
  None where it cannot be known (TensorFlow filesystems)."""
  if is_remote(path):
    return None
  p = os.path.abspath(_local(path))
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
  return DiskWriteError(what, abspath(path), _reason(e), free_space(path))


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
  with open_file(path, 'rb') as f:
    for chunk in iter(lambda: f.read(8 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def _tmp_name(path: str, kind: str = 'tmp') -> str:
  folder, base = os.path.split(abspath(path).rstrip('/'))
  stem, ext = os.path.splitext(base)
  # Keep the extension last: some writers (Pillow, numpy) pick the format from it.
  return os.path.join(folder, f'.{stem}.{kind}-{secrets.token_hex(6)}{ext}')


def _makedirs(folder: str, what: str) -> None:
  with writing(what, folder):
    makedirs(folder)


def atomic_write(path: str, write: Callable[[str], None], what: str = 'file') -> str:
  """Calls write(tmp) on a new temporary file beside path (mode 0666 minus the umask), then
  renames it to path. On any error the temporary file is removed and path is untouched.
  Disk refusals become DiskWriteError. Returns path."""
  path = os.fspath(path)
  if is_remote(path):
    return _atomic_write_remote(path, write, what)
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


def _atomic_write_remote(path: str, write: Callable[[str], None], what: str) -> str:
  """atomic_write on a TensorFlow filesystem: write(tmp) runs on a local temporary file (the
  writers are Pillow, numpy, open), which is copied to a hidden remote temporary and renamed
  (see the module docstring for what that guarantees on object stores)."""
  _makedirs(os.path.dirname(path), what)
  g = _gfile()
  remote_tmp = _tmp_name(path)
  ext = os.path.splitext(path)[1]
  fd, local = tempfile.mkstemp(prefix='.sg2tf-upload-', suffix=ext)
  os.close(fd)
  try:
    with writing(what, path):
      write(local)
      g.copy(local, remote_tmp, overwrite=True)
      g.rename(remote_tmp, path, overwrite=True)
  except BaseException:
    with contextlib.suppress(Exception):
      g.remove(remote_tmp)
    raise
  finally:
    with contextlib.suppress(OSError):
      os.remove(local)
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


def write_npy(path: str, array, what: str = 'array file') -> str:
  """One NumPy array as a .npy file, atomically."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  def write(tmp):
    with open(tmp, 'wb') as f:
      np.save(f, array)
  return atomic_write(path, write, what=what)


def write_npz(path: str, arrays: Dict[str, object], what: str = 'array file') -> str:
  """Named NumPy arrays as an (uncompressed) .npz file, atomically."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  def write(tmp):
    with open(tmp, 'wb') as f:
      np.savez(f, **arrays)
  return atomic_write(path, write, what=what)


def _is_occupied(path: str) -> bool:
  return exists(path) and (not isdir(path) or bool(listdir(path)))


class AtomicDir:
  """A directory built under a temporary name and renamed into place when complete.

      with AtomicDir(out, overwrite=True, what='network snapshot') as d:
        write_into(d.tmp)                  # committed on success, deleted on any error

  or explicitly: d = AtomicDir(out); ...; d.commit() / d.abort(). An existing non-empty
  destination is replaced only with overwrite=True (FileExistsError otherwise, before anything
  is written); the old one is swapped out and deleted only after the new one is in place.
  """

  def __init__(self, path: str, overwrite: bool = False, what: str = 'directory'):
    self.path = abspath(path).rstrip('/')
    self.overwrite, self.what = overwrite, what
    self.remote = is_remote(self.path)
    if exists(self.path) and not isdir(self.path):
      raise FileExistsError(f'{self.path} exists and is a file; choose a directory name.')
    if _is_occupied(self.path) and not overwrite:
      raise FileExistsError(f'{self.path} exists and is not empty; choose another directory '
                            'or allow replacing it (--overwrite).')
    _makedirs(os.path.dirname(self.path), what)
    self.tmp = _tmp_name(self.path)
    with writing(what, self.path):
      if self.remote:
        makedirs(self.tmp)
      else:
        os.mkdir(self.tmp, 0o777)
    self.done = False

  def commit(self) -> str:
    """Moves the finished temporary directory to its destination. Returns the destination."""
    try:
      with writing(self.what, self.path):
        if isdir(self.path) and not listdir(self.path):
          rmtree(self.path)
        if exists(self.path):
          if not self.overwrite:
            raise FileExistsError(f'{self.path} appeared while it was being written; it was '
                                  'left as it is.')
          old = _tmp_name(self.path, 'old')
          rename(self.path, old)
          rename(self.tmp, self.path)
          rmtree(old)
        else:
          rename(self.tmp, self.path)
    except BaseException:
      self.abort()
      raise
    self.done = True
    return self.path

  def abort(self) -> None:
    rmtree(self.tmp)
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
  if not isdir(folder):
    return []
  extra = [re.compile(p) for p in patterns]
  removed = []
  for name in sorted(listdir(folder)):
    if not (LEFTOVER_RE.match(name) or any(p.match(name) for p in extra)):
      continue
    path = join(folder, name)
    if isdir(path) and not os.path.islink(path):
      rmtree(path)
    else:
      with contextlib.suppress(OSError):
        remove(path)
    removed.append(path)
  return removed


_PROBE_BYTES = 64 << 10


def check_writable(folder: str, what: str = 'directory') -> None:
  """Creates folder if needed and proves that a file (64 KiB, synced) can be written and
  removed in it; raises DiskWriteError (naming folder, reason and free space) otherwise."""
  folder = abspath(folder)
  _makedirs(folder, what)
  probe = join(folder, f'.sg2tf-write-test.tmp-{secrets.token_hex(6)}')
  if is_remote(folder):
    with writing(what, folder):
      try:
        with open_file(probe, 'wb') as f:
          f.write(b'\0' * 1024)
      finally:
        with contextlib.suppress(Exception):
          remove(probe)
    return
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
  if is_remote(folder):
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.warning('%s %s is on a TensorFlow filesystem, where sg2tf takes no lock: make sure '
                    'only one process uses it at a time.', what, folder)
    return DirLock(os.fspath(folder), None, {'pid': os.getpid()})
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


# ------------------------------------------------------------------ URLs and their cache

CACHE_ENV = 'SG2TF_CACHE_DIR'
DOWNLOAD_DIR = 'downloads'
# sha256 of published network files by URL, used when a URL has no `#sha256=` fragment. Only
# digests verified from public records belong here; none of NVIDIA's StyleGAN2 pickles has a
# digest published alongside it that could be verified, so the table is empty for now and
# such files are checked for completeness (the announced length) only.
KNOWN_SHA256: Dict[str, str] = {}
_SHA256_RE = re.compile(r'^[0-9a-fA-F]{64}$')
_DOWNLOAD_TIMEOUT_S = 60


class DownloadError(OSError):
  """A URL could not be fetched or failed its check; one line naming the URL and what to do."""

  def __str__(self):
    return self.args[0] if self.args else super().__str__()


def cache_root() -> str:
  """$SG2TF_CACHE_DIR, else the Keras cache ($KERAS_HOME, else ~/.keras)."""
  root = os.environ.get(CACHE_ENV)
  if root:
    return os.path.expanduser(root)
  return os.path.expanduser(os.environ.get('KERAS_HOME') or os.path.join('~', '.keras'))


def split_url(url: str):
  """'URL#sha256=HEX' -> ('URL', 'hex' or None). ValueError for a malformed fragment."""
  base, _, fragment = url.partition('#')
  if not fragment:
    return base, None
  key, _, value = fragment.partition('=')
  if key.lower() != 'sha256' or not _SHA256_RE.match(value):
    raise ValueError(f'{url}: the URL fragment must be #sha256=<64 hex digits>, got '
                     f'#{fragment!r}.')
  return base, value.lower()


def url_cache_path(url: str) -> str:
  """Where fetch_url keeps a URL: <cache>/downloads/<16 hex of sha256(URL)>-<file name>."""
  import urllib.parse  # pylint: disable=g-import-not-at-top
  base, _ = split_url(url)
  name = os.path.basename(urllib.parse.urlparse(base).path) or 'download'
  name = re.sub(r'[^A-Za-z0-9._-]', '_', name)[-100:]
  key = hashlib.sha256(base.encode('utf-8')).hexdigest()[:16]
  return os.path.join(cache_root(), DOWNLOAD_DIR, f'{key}-{name}')


_verified_downloads: Dict[tuple, str] = {}


def _check_digest(url: str, path: str, expected: str, cached: bool) -> None:
  st = os.stat(path)
  memo = (path, st.st_size, st.st_mtime_ns)
  digest = _verified_downloads.get(memo) or sha256_file(path)
  if digest != expected:
    where = (f'the cached copy {path} (delete it to download again)' if cached else
             'the downloaded file (it was not kept)')
    raise DownloadError(f'{url}: sha256 mismatch: expected {expected}, {where} has {digest}. '
                        'Check the URL and the #sha256= value.')
  _verified_downloads[memo] = digest


def fetch_url(url: str, what: str = 'file', timeout: float = _DOWNLOAD_TIMEOUT_S) -> str:
  """The local path of http(s) URL `url` (optionally `#sha256=HEX`), downloaded once into
  the cache (see the module docstring). Raises DownloadError on HTTP/network failure, a cut
  short download or a sha256 mismatch; nothing partial is left in the cache."""
  import http.client  # pylint: disable=g-import-not-at-top
  import urllib.error  # pylint: disable=g-import-not-at-top
  import urllib.request  # pylint: disable=g-import-not-at-top
  base, expected = split_url(url)
  expected = expected or KNOWN_SHA256.get(base)
  dest = url_cache_path(url)
  if os.path.isfile(dest):
    if expected:
      _check_digest(base, dest, expected, cached=True)
    return dest
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.info('Downloading %s %s to %s ...', what, base, dest)

  def fetch(tmp):
    try:
      with open(tmp, 'wb') as out, urllib.request.urlopen(base, timeout=timeout) as resp:
        announced = resp.headers.get('Content-Length')
        got = 0
        for chunk in iter(lambda: resp.read(1 << 20), b''):
          out.write(chunk)
          got += len(chunk)
    except urllib.error.HTTPError as e:
      raise DownloadError(f'could not download {what} {base}: HTTP {e.code} {e.reason}. Check '
                          'the URL, or download the file yourself and pass its path.') from None
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout,
            ConnectionError) as e:
      reason = getattr(e, 'reason', None) or e
      raise DownloadError(f'could not download {what} {base}: {reason}. Check the URL and the '
                          'network, or download the file yourself and pass its path.') from None
    if announced is not None and got != int(announced):
      raise DownloadError(f'could not download {what} {base}: the transfer was cut short ('
                          f'{got} of {announced} bytes). Try again.')
    if expected:
      _check_digest(base, tmp, expected, cached=False)
    logging.info('Downloaded %s: %s, sha256 %s.', base, format_bytes(got), sha256_file(tmp))

  return atomic_write(dest, fetch, what=f'the download cache entry of {base}')
