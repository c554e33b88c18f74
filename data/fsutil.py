"""Output folders that appear only when complete (no TensorFlow here: imported early)."""

import os
import shutil
import uuid

from sg2tf.dataset_info import DatasetError


def check_target(path: str, overwrite: bool) -> None:
  """Fails early when writing `path` would clobber something."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise DatasetError(f'{path} exists and is a file; choose a directory name.')
  if os.path.isdir(path) and os.listdir(path) and not overwrite:
    raise DatasetError(f'{path} exists and is not empty; choose another directory or pass '
                       f'--overwrite to replace it.')


def make_partial_dir(path: str) -> str:
  """A hidden sibling `.<name>.partial-<pid>-<random>` to build `path` in."""
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = os.path.join(parent, f'.{os.path.basename(os.path.normpath(path))}.partial-'
                             f'{os.getpid()}-{uuid.uuid4().hex[:8]}')
  os.makedirs(tmp)
  return tmp


def move_into_place(tmp: str, path: str, overwrite: bool) -> None:
  """Renames the finished folder `tmp` to `path`, replacing an old one if allowed."""
  old = None
  if os.path.isdir(path):
    if os.listdir(path):
      check_target(path, overwrite)  # Something may have appeared meanwhile.
      old = f'{tmp}.old'
      os.rename(path, old)
    else:
      os.rmdir(path)
  os.rename(tmp, path)
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)
