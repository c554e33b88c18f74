"""Output folders that appear only when complete (no TensorFlow here: imported early).

Paths may be TensorFlow filesystem paths (gs://, ram://); sg2tf.utils.files says where the
rename that commits a folder is atomic and where (object stores) it is not.
"""

import os
import uuid

from sg2tf.dataset_info import DatasetError
from sg2tf.utils import files


def check_target(path: str, overwrite: bool) -> None:
  """Fails early when writing `path` would clobber something."""
  if files.exists(path) and not files.isdir(path):
    raise DatasetError(f'{path} exists and is a file; choose a directory name.')
  if files.isdir(path) and files.listdir(path) and not overwrite:
    raise DatasetError(f'{path} exists and is not empty; choose another directory or pass '
                       f'--overwrite to replace it.')


def make_partial_dir(path: str) -> str:
  """A hidden sibling `.<name>.partial-<pid>-<random>` to build `path` in."""
  parent = os.path.dirname(files.abspath(path).rstrip('/'))
  files.makedirs(parent)
  tmp = os.path.join(parent, f'.{os.path.basename(os.path.normpath(path))}.partial-'
                             f'{os.getpid()}-{uuid.uuid4().hex[:8]}')
  files.makedirs(tmp)
  return tmp


def move_into_place(tmp: str, path: str, overwrite: bool) -> None:
  """Renames the finished folder `tmp` to `path`, replacing an old one if allowed."""
  old = None
  if files.isdir(path):
    if files.listdir(path):
      check_target(path, overwrite)  # Something may have appeared meanwhile.
      old = f'{tmp}.old'
      files.rename(path, old)
    else:
      files.rmtree(path)
  files.rename(tmp, path)
  if old is not None:
    files.rmtree(old)
