"""Reads PyTorch `torch.save` state dicts into NumPy without PyTorch and without running code.

Both on-disk formats are handled:
- zip (PyTorch >= 1.6): `<dir>/data.pkl` plus one raw little-endian file per storage,
  `<dir>/data/<key>`;
- legacy (older, e.g. torchvision's 2017 model-zoo files): a stream of pickles (magic number,
  protocol version, system info, the object, the storage keys) followed by each storage as an
  int64 element count and the raw bytes.

Every pickle in the file, the legacy header and key list included, is read by the allow-list
unpickler of sg2tf.utils.safe_pickle: tensors are rebuilt by a local function, storages are
placeholders filled from the file, and any other global (which in a pickle could run code)
is refused with an error naming it.
"""

import collections
import io
import os
import struct
import tarfile
import zipfile
from typing import Dict

import numpy as np

from sg2tf.utils import safe_pickle

_MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
_PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}


class TorchCheckpointError(ValueError):
  """The file is not a readable PyTorch state dict (or needs something not allowed)."""


class _StorageType:
  def __init__(self, name):
    self.name = name
    self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
  """A storage placeholder; `array` (1-D) is filled in once the raw bytes are read."""

  def __init__(self, dtype, numel):
    self.dtype = dtype
    self.numel = numel
    self.array = None


class _LazyTensor:
  """A tensor view into a storage, materialised once the storage's bytes are known."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, int(offset)
    self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

  def to_numpy(self) -> np.ndarray:
    base = self.storage.array
    if base is None:
      raise TorchCheckpointError('a tensor refers to a storage that the file does not contain')
    if not self.size:
      return np.array(base[self.offset])
    needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
    if needed > base.size or min(self.stride) < 0:
      raise TorchCheckpointError(f'tensor of size {self.size}, stride {self.stride} at offset '
                                 f'{self.offset} runs past its storage ({base.size} elements)')
    view = np.lib.stride_tricks.as_strided(
        base[self.offset:], shape=self.size,
        strides=[s * base.itemsize for s in self.stride], writeable=False)
    return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


_ALLOWED_GLOBALS = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
}
_ALLOWED_GLOBALS.update({('torch', name): _StorageType(name) for name in _STORAGE_DTYPES})


def _persistent_loader(path, storages):
  """persistent_load for torch.save's ('storage', type, key, location, numel[, view])."""

  def persistent_load(pid):
    if not isinstance(pid, tuple) or not pid:
      raise TorchCheckpointError(f'{path}: unexpected persistent id {pid!r}')
    kind = pid[0].decode('ascii') if isinstance(pid[0], bytes) else pid[0]
    if kind != 'storage' or len(pid) < 5:
      raise TorchCheckpointError(f'{path}: unsupported persistent id type {kind!r}')
    storage_type, key, _location, numel = pid[1:5]
    view = pid[5] if len(pid) > 5 else None
    if not isinstance(storage_type, _StorageType):
      raise TorchCheckpointError(f'{path}: unknown storage type {storage_type!r}')
    key = str(key)
    if key not in storages:
      storages[key] = _Storage(storage_type.dtype, int(numel))
    storage = storages[key]
    if view is not None:  # legacy views: (view_key, offset, size) into the root storage
      _, offset, size = view
      return _StorageView(storage, int(offset), int(size))
    return storage
  return persistent_load


def _unpickle(f, path, allowed=None, storages=None):
  """One pickle of the file through the allow-list reader (sg2tf.utils.safe_pickle); None:
  plain data only (the legacy header and key list)."""
  try:
    return safe_pickle.load(
        f, allowed, encoding='latin1', what=path,
        persistent_load=None if storages is None else _persistent_loader(path, storages))
  except safe_pickle.UnsafePickleError as e:
    if not e.module:
      raise TorchCheckpointError(f'{path}: {e}; refusing to load it (nothing was run).') from None
    raise TorchCheckpointError(
        f'{path}: refers to {e.module}.{e.name}, which is not part of a plain state dict '
        f'(tensors in OrderedDicts); refusing to load it because unpickling it could run '
        f'code. Save the weights with torch.save(model.state_dict(), ...).') from None


class _StorageView(_Storage):

  def __init__(self, root, offset, size):
    super().__init__(root.dtype, size)
    self.root, self.view_offset = root, offset

  @property
  def array(self):
    if self.root.array is None:
      return None
    return self.root.array[self.view_offset:self.view_offset + self.numel]

  @array.setter
  def array(self, value):
    del value  # views never own data


def _materialise(obj, path):
  if isinstance(obj, _LazyTensor):
    return obj.to_numpy()
  if isinstance(obj, dict):
    return collections.OrderedDict((k, _materialise(v, path)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialise(v, path) for v in obj)
  return obj


def _load_zip(path) -> object:
  with zipfile.ZipFile(path) as zf:
    names = zf.namelist()
    pkl = [n for n in names if n.endswith('/data.pkl') or n == 'data.pkl']
    if len(pkl) != 1:
      raise TorchCheckpointError(f'{path}: a zip file but not a torch.save archive (no single '
                                 f'data.pkl; has {names[:5]}...)')
    prefix = pkl[0][:-len('data.pkl')]
    storages = {}
    obj = _unpickle(io.BytesIO(zf.read(pkl[0])), path, _ALLOWED_GLOBALS, storages)
    for key, storage in storages.items():
      member = f'{prefix}data/{key}'
      try:
        raw = zf.read(member)
      except KeyError:
        raise TorchCheckpointError(f'{path}: storage {member} is missing') from None
      nbytes = storage.numel * storage.dtype.itemsize
      if len(raw) < nbytes:
        raise TorchCheckpointError(f'{path}: storage {member} has {len(raw)} bytes, expected '
                                   f'{nbytes}; the file is truncated')
      storage.array = np.frombuffer(raw[:nbytes], dtype=storage.dtype.newbyteorder('<'))
  return obj


def _load_legacy(path) -> object:
  if tarfile.is_tarfile(path):
    raise TorchCheckpointError(f'{path}: a tar-format checkpoint from PyTorch < 0.4, which is not '
                               f'supported; re-save it with a current PyTorch '
                               f'(torch.save(torch.load(path), new_path)).')
  head = safe_pickle.read_head(path)
  if not safe_pickle.is_pickle(head):
    raise TorchCheckpointError(f'{path}: not a PyTorch checkpoint: it is '
                               f'{safe_pickle.describe_content(head)}.')
  with open(path, 'rb') as f:
    # The header pickles (magic number, protocol, sys_info) are plain data: nothing is allowed.
    try:
      magic = _unpickle(f, path)
      protocol = _unpickle(f, path) if magic == _MAGIC_NUMBER else None
      if protocol == _PROTOCOL_VERSION:
        _ = _unpickle(f, path)  # sys_info: a dict of plain values
    except TorchCheckpointError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise TorchCheckpointError(f'{path}: not a PyTorch checkpoint ({e})') from None
    if magic != _MAGIC_NUMBER or protocol != _PROTOCOL_VERSION:
      raise TorchCheckpointError(f'{path}: not a PyTorch checkpoint (bad magic number or '
                                 f'protocol {protocol!r})')
    storages = {}
    try:
      obj = _unpickle(f, path, _ALLOWED_GLOBALS, storages)
      keys = _unpickle(f, path)
    except TorchCheckpointError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise TorchCheckpointError(f'{path}: the checkpoint is truncated or damaged ({e})') from None
    if not isinstance(keys, list):
      raise TorchCheckpointError(f'{path}: the storage key list is damaged')
    for key in keys:
      storage = storages.get(str(key))
      header = f.read(8)
      if storage is None or len(header) < 8:
        raise TorchCheckpointError(f'{path}: storage {key} is missing or truncated')
      (numel,) = struct.unpack('<q', header)
      raw = f.read(numel * storage.dtype.itemsize)
      if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
        raise TorchCheckpointError(f'{path}: storage {key} is truncated or has the wrong size')
      storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder('<'))
  return obj


def load_state_dict(path) -> Dict[str, np.ndarray]:
  """{name: ndarray} from a PyTorch state-dict file (zip or legacy format).

  Raises:
    FileNotFoundError: no such file.
    TorchCheckpointError: not a state dict, truncated, or needs a global outside the allow-list.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such file')
  try:
    obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
  except TorchCheckpointError:
    raise
  except (safe_pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
          AttributeError, zipfile.BadZipFile) as e:
    raise TorchCheckpointError(f'{path}: not a readable PyTorch checkpoint ({type(e).__name__}: '
                               f'{e}); the file is truncated or damaged.') from None
  if isinstance(obj, dict) and 'state_dict' in obj and isinstance(obj['state_dict'], dict):
    obj = obj['state_dict']
  if not isinstance(obj, dict):
    raise TorchCheckpointError(f'{path}: holds a {type(obj).__name__}, not a state dict')
  out = _materialise(obj, path)
  return {str(k): v for k, v in out.items() if isinstance(v, np.ndarray)}
