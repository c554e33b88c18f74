"""The only way sg2tf reads pickles, .npy and .npz files: nothing in a file can run code.

A pickle names callables (any importable one: os.system, builtins.eval, pickle.loads, ...)
and has the unpickler call them. `load` / `loads` use an unpickler whose find_class answers
only from the allow-list its caller passes, and refuses every other global, and persistent
ids unless the caller handles them, with `UnsafePickleError` before anything is called.

`NUMPY_ARRAYS` is the allow-list entry set for plain numeric numpy arrays and scalars. It
does not hand numpy's own reconstruction functions to the file: passive stand-ins receive the
pickled dtype and array state, check them (bool, int, uint, float or complex; no object
dtypes, fields or subarrays; raw bytes of the right length), and only then build the array
from those bytes. Official network pickles need nothing else (plus their Network class).

`load_npy` / `load_npz` read numpy files without unpickling (allow_pickle=False) and say what
a file really is when it is not one (a pickle, a zip, text, ...): `describe_content`.

tests/utils/test_safe_pickle.py fails if code outside this module calls pickle.load(s),
pickle.Unpickler, numpy.load, or passes allow_pickle=True anywhere.
"""

import io
import os
import pickle
import zipfile
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from sg2tf.utils import files

Allowed = Mapping[Tuple[str, str], object]
UnpicklingError = pickle.UnpicklingError  # damaged data (truncated, bad opcode)


class UnsafePickleError(pickle.UnpicklingError, ValueError):
  """The data asks for something outside the allow-list; nothing was executed."""

  def __init__(self, message: str, module: str = '', name: str = ''):
    super().__init__(message)
    self.module, self.name = module, name


class NumpyFileError(ValueError):
  """A file is not the numeric .npy / .npz array it should be; the message says what it is."""


# ------------------------------------------------------------------ what a file is

def describe_content(head: bytes) -> str:
  """A short description of what bytes starting a file are (for error messages)."""
  if not head:
    return 'an empty file'
  if head[:1] == b'\x80' and len(head) > 1 and 2 <= head[1] <= 5:
    return f'a Python pickle (protocol {head[1]})'
  if head.startswith(b'\x93NUMPY'):
    return 'a NumPy .npy array'
  if head.startswith((b'PK\x03\x04', b'PK\x05\x06')):
    return 'a zip archive (e.g. a PyTorch checkpoint, an .npz or a .zip)'
  if head.startswith(b'\x1f\x8b'):
    return 'a gzip file (e.g. a .tgz)'
  if head.startswith(b'\x89HDF'):
    return 'an HDF5 file (e.g. a Keras .h5)'
  if head.startswith((b'\x89PNG', b'\xff\xd8\xff', b'GIF8')):
    return 'an image'
  try:
    text = head.decode('utf-8')
  except UnicodeDecodeError:
    text = None
  if text is not None and all(c.isprintable() or c in '\t\r\n' for c in text):
    snippet = text.strip().splitlines()[0][:40] if text.strip() else ''
    return f'a text file (starting {snippet!r})'
  return f'unrecognised binary data (first bytes {head[:8].hex()})'


def read_head(path: str, n: int = 256) -> bytes:
  with files.open_file(path, 'rb') as f:
    return f.read(n)


def is_pickle(head: bytes) -> bool:
  """Binary pickles (protocol 2+, everything Python 3 writes by default) start \\x80 <proto>."""
  return head[:1] == b'\x80' and len(head) > 1 and 2 <= head[1] <= 5


# ------------------------------------------------------------------ numeric numpy arrays

_NUMERIC_KINDS = 'biufc'


def _numeric_dtype(descr, endian='=', what='array'):
  try:
    dt = np.dtype(descr)
  except (TypeError, ValueError) as e:
    raise UnsafePickleError(f'a pickled {what} has an invalid dtype {descr!r} ({e})') from None
  if dt.kind not in _NUMERIC_KINDS or dt.fields or dt.subdtype or dt.hasobject:
    raise UnsafePickleError(
        f'a pickled {what} has dtype {dt} ({"Python objects" if dt.hasobject else "not a plain number"}'
        '); only numeric arrays are read, because object arrays are unpickled element by '
        'element and may hold anything.', 'numpy', 'dtype')
  if endian in '<>':
    dt = dt.newbyteorder(endian)
  return dt


class _DtypeSpec:
  """Stands in for numpy.dtype(...) while unpickling: records the spec and pickled state."""

  def __init__(self, descr, *unused_flags):
    if not isinstance(descr, str):
      raise UnsafePickleError(f'a pickled dtype is described by {type(descr).__name__}, not a '
                              'string', 'numpy', 'dtype')
    self.descr = descr
    self.endian = '='

  def __setstate__(self, state):
    if not isinstance(state, tuple) or len(state) < 5:
      raise UnsafePickleError('a pickled dtype has an unexpected state', 'numpy', 'dtype')
    endian, subarray, names, fields = state[1], state[2], state[3], state[4]
    if subarray is not None or names is not None or fields is not None:
      raise UnsafePickleError('a pickled dtype has fields or a subarray; only plain numeric '
                              'dtypes are read', 'numpy', 'dtype')
    self.endian = endian if endian in ('<', '>', '|', '=') else '='

  def real(self, what='array'):
    return _numeric_dtype(self.descr, self.endian, what)


def _dtype_of(spec, what):
  if not isinstance(spec, _DtypeSpec):
    raise UnsafePickleError(f'a pickled {what} names its dtype with a {type(spec).__name__}',
                            'numpy', 'dtype')
  return spec.real(what)


class _SafeArray(np.ndarray):
  """What numpy's _reconstruct returns while unpickling; __setstate__ checks the state."""

  def __setstate__(self, state):
    if not isinstance(state, tuple) or len(state) not in (4, 5):
      raise UnsafePickleError('a pickled array has an unexpected state', 'numpy', 'ndarray')
    shape, spec, fortran, raw = state[-4:]
    dt = _dtype_of(spec, 'array')
    if not isinstance(raw, (bytes, bytearray)):
      raise UnsafePickleError('a pickled array carries its data as '
                              f'{type(raw).__name__}, not raw bytes', 'numpy', 'ndarray')
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(raw):
      raise UnsafePickleError(f'a pickled array of shape {list(shape)} and dtype {dt} comes '
                              f'with {len(raw)} bytes', 'numpy', 'ndarray')
    super().__setstate__((shape, dt, bool(fortran), bytes(raw)))


_NDARRAY = object()  # What the global numpy.ndarray resolves to: only a marker.


def _reconstruct(subtype, shape, typecode):
  del shape, typecode
  if subtype is not _NDARRAY:
    raise UnsafePickleError('a pickled array has an unexpected array type', 'numpy',
                            '_reconstruct')
  return np.ndarray.__new__(_SafeArray, (0,), np.uint8)


def _scalar(spec, data=b''):
  dt = _dtype_of(spec, 'scalar')
  if not isinstance(data, bytes) or len(data) != dt.itemsize:
    raise UnsafePickleError('a pickled numpy scalar has the wrong number of bytes', 'numpy',
                            'scalar')
  return np.frombuffer(data, dt)[0]


def _frombuffer(buf, spec, shape, order):
  dt = _dtype_of(spec, 'array')
  if not isinstance(buf, (bytes, bytearray)):
    raise UnsafePickleError('a pickled array carries its data out of band', 'numpy',
                            '_frombuffer')
  shape = tuple(int(s) for s in shape)
  if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(buf):
    raise UnsafePickleError(f'a pickled array of shape {list(shape)} comes with {len(buf)} '
                            'bytes', 'numpy', '_frombuffer')
  return np.frombuffer(bytes(buf), dt).reshape(shape, order='F' if order == 'F' else 'C').copy()


def _latin1_bytes(text, encoding='latin1'):
  """How protocol-2 pickles spell bytes: _codecs.encode(str, 'latin1'); nothing else."""
  if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
    raise UnsafePickleError('forbidden use of _codecs.encode', '_codecs', 'encode')
  return text.encode('latin1')


def _empty_bytes(*args):
  """How protocol-2 pickles spell b'': bytes() (py2 name __builtin__.bytes)."""
  if args:
    raise UnsafePickleError('forbidden use of bytes(...)', 'builtins', 'bytes')
  return b''


# Plain data of protocol-2 pickles (bytes) and numeric numpy arrays / scalars.
PLAIN = {('_codecs', 'encode'): _latin1_bytes, ('__builtin__', 'bytes'): _empty_bytes,
         ('builtins', 'bytes'): _empty_bytes}
NUMPY_ARRAYS: Dict[Tuple[str, str], object] = {('numpy', 'ndarray'): _NDARRAY,
                                               ('numpy', 'dtype'): _DtypeSpec, **PLAIN}
for _mod in ('numpy.core', 'numpy._core'):  # numpy 1.x and 2.x module paths
  NUMPY_ARRAYS[(f'{_mod}.multiarray', '_reconstruct')] = _reconstruct
  NUMPY_ARRAYS[(f'{_mod}.multiarray', 'scalar')] = _scalar
  NUMPY_ARRAYS[(f'{_mod}.numeric', '_frombuffer')] = _frombuffer


def plain_arrays(obj):
  """obj with the arrays this module unpickled turned into plain np.ndarray (same data)."""
  if isinstance(obj, _SafeArray):
    return obj.view(np.ndarray)
  if isinstance(obj, dict):
    return type(obj)((k, plain_arrays(v)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(plain_arrays(v) for v in obj)
  return obj


# ------------------------------------------------------------------ the unpickler

class _Unpickler(pickle.Unpickler):

  def __init__(self, file, allowed: Allowed, persistent_load, encoding, what):
    super().__init__(file, encoding=encoding)
    self._allowed, self._persistent, self._what = allowed, persistent_load, what

  def find_class(self, module, name):
    try:
      return self._allowed[(module, name)]
    except (KeyError, TypeError):
      raise UnsafePickleError(f'forbidden global {module}.{name}', module, name) from None

  def persistent_load(self, pid):
    if self._persistent is None:
      raise UnsafePickleError('persistent ids are not allowed here')
    return self._persistent(pid)


def load(file, allowed: Optional[Allowed] = None, *,
         persistent_load: Optional[Callable[[object], object]] = None,
         encoding: str = 'ASCII', what: str = 'pickle'):
  """One pickle from a binary file object, resolving globals only through `allowed`
  ({(module, name): object}; None = PLAIN: dicts, lists, numbers, strings, bytes).

  Raises:
    UnsafePickleError: a global outside the allow-list, a persistent id nobody handles, or a
      non-numeric numpy array. Nothing named in the file was called.
    pickle.UnpicklingError, EOFError, ...: as pickle does for damaged data.
  """
  return _Unpickler(file, PLAIN if allowed is None else allowed, persistent_load, encoding,
                    what).load()


def loads(data: bytes, allowed: Optional[Allowed] = None, **kwargs):
  return load(io.BytesIO(data), allowed, **kwargs)


# ------------------------------------------------------------------ .npy / .npz

def _npy_error(path, what, e):
  text = str(e)
  if 'allow_pickle' in text or 'Object arrays' in text:
    return NumpyFileError(f'{path}: not a numeric {what}: it holds Python objects, which sg2tf '
                          'never unpickles.')
  return NumpyFileError(f'{path}: not a readable {what} ({type(e).__name__}: {text})')


def load_npy(path: str, what: str = '.npy array', mmap_mode: Optional[str] = None) -> np.ndarray:
  """A numeric array from a .npy file, never unpickling; NumpyFileError says what the file is
  when it is not one (text, a pickle, a zip, truncated, object dtype)."""
  path = os.fspath(path)
  head = read_head(path)
  if not head.startswith(b'\x93NUMPY'):
    raise NumpyFileError(f'{path}: not a {what} (a .npy file); it is {describe_content(head)}.')
  try:
    with files.open_file(path, 'rb') as f:
      version = np.lib.format.read_magic(f)
      header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)(f)
  except (ValueError, OSError, EOFError) as e:
    raise _npy_error(path, what, e) from None
  dtype = header[2]
  if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
    raise NumpyFileError(f'{path}: not a numeric {what}: its dtype is {dtype}'
                         f'{" (Python objects, which sg2tf never unpickles)" if dtype.hasobject else ""}.')
  try:
    if files.is_remote(path):  # no memory map of a TensorFlow filesystem file
      return np.load(io.BytesIO(files.read_bytes(path)), allow_pickle=False)
    return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise _npy_error(path, what, e) from None


def load_npz(path: str, what: str = '.npz file') -> Dict[str, np.ndarray]:
  """{name: array} of an .npz file, never unpickling (NumpyFileError otherwise)."""
  path = os.fspath(path)
  head = read_head(path)
  if not head.startswith((b'PK\x03\x04', b'PK\x05\x06')):
    raise NumpyFileError(f'{path}: not a {what} (a zip of .npy arrays); it is '
                         f'{describe_content(head)}.')
  try:
    with np.load(io.BytesIO(files.read_bytes(path)) if files.is_remote(path) else path,
                 allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
    raise _npy_error(path, what, e) from None
