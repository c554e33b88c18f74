"""No loader in sg2tf executes code from a file.

1. A static check: no project module (outside sg2tf/utils/safe_pickle.py) calls pickle.load /
   pickle.loads / pickle.Unpickler / numpy.load or passes allow_pickle=True.
2. Every malicious variant (os.system, subprocess, builtins exec / eval, getattr and
   __import__ chains, importlib, a nested pickle.loads, numpy.load with allow_pickle,
   numpy.ctypeslib.load_library, object-dtype arrays) is fed to EVERY loader (network pickles,
   torch checkpoints in both formats and in every part of the legacy format, the Inception
   graph reader, dataset and dataset-tool label files, image arrays, statistics caches); a
   marker file that each payload would create proves that nothing ran.
"""

import ast
import builtins
import functools
import importlib
import io
import os
import pathlib
import pickle
import pickletools
import shutil
import subprocess
import tarfile
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf.utils import safe_pickle
from tests import testutil

_ALLOWED_HOME = pathlib.Path('sg2tf') / 'utils' / 'safe_pickle.py'
_PICKLE_MODULES = {'pickle', '_pickle', 'cPickle', 'dill', 'cloudpickle', 'joblib', 'marshal',
                   'shelve'}
_PICKLE_FUNCS = {'load', 'loads', 'Unpickler', 'open'}


def unsafe_calls(source: str, filename: str = '<src>'):
  """(line, what) for every direct pickle / numpy.load use in Python source."""
  tree = ast.parse(source, filename)
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module in _PICKLE_MODULES:
      for alias in node.names:
        if alias.name in _PICKLE_FUNCS:
          found.append((node.lineno, f'from {node.module} import {alias.name}'))
    if isinstance(node, ast.ImportFrom) and node.module == 'numpy':
      found += [(node.lineno, 'from numpy import load') for a in node.names if a.name == 'load']
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
      if node.value.id in _PICKLE_MODULES and node.attr in _PICKLE_FUNCS:
        found.append((node.lineno, f'{node.value.id}.{node.attr}'))
      if node.value.id in ('np', 'numpy') and node.attr == 'load':
        found.append((node.lineno, f'{node.value.id}.load'))
    if isinstance(node, ast.keyword) and node.arg == 'allow_pickle' and not (
        isinstance(node.value, ast.Constant) and node.value.value is False):
      found.append((node.value.lineno, 'allow_pickle=<not False>'))
  return found


def project_sources():
  """Every Python file of the project that is not a test (tests write malicious pickles).
  The walk never enters the virtual environment, caches or other dot folders (a .venv inside
  the checkout holds tens of thousands of files) and does not follow links."""
  root = testutil.REPO
  skip = {'tests', 'build', 'site-packages', 'node_modules', '__pycache__'}
  for folder, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith('.'))
    for name in sorted(names):
      if name.endswith('.py'):
        path = pathlib.Path(folder) / name
        yield path.relative_to(root), path


class StaticCheckTest(tf.test.TestCase):

  def test_no_direct_unpickling_outside_safe_pickle(self):
    offenders, checked = [], 0
    for rel, path in project_sources():
      checked += 1
      if rel == _ALLOWED_HOME:
        continue
      for line, what in unsafe_calls(path.read_text(encoding='utf-8'), str(rel)):
        offenders.append(f'{rel}:{line}: {what}')
    self.assertGreater(checked, 50)  # the walk found the project
    self.assertEqual(offenders, [], 'read pickles / .npy only through sg2tf.utils.safe_pickle')

  def test_the_check_finds_each_form(self):
    src = ('import pickle, numpy as np\nfrom pickle import loads\nx = pickle.load(f)\n'
           'class U(pickle.Unpickler): pass\ny = np.load(p, allow_pickle=True)\n'
           'z = numpy.load(p)\nw = something(allow_pickle=flag)\n')
    got = [what for _, what in unsafe_calls(src)]
    for want in ('from pickle import loads', 'pickle.load', 'pickle.Unpickler', 'np.load',
                 'numpy.load', 'allow_pickle=<not False>'):
      self.assertIn(want, got)
    self.assertEqual(unsafe_calls('np.save(f, x)\nload(f, allow_pickle=False)\n'), [])


# ------------------------------------------------------------------ malicious payloads

class _R:
  """Pickles as `func(*args)`: func may itself be an _R, which pickle evaluates first."""

  def __init__(self, func, *args):
    self.func, self.args = func, args

  def __reduce__(self):
    return (self.func, self.args)

  def __call__(self, *args):  # pickle wants a callable in __reduce__; never called here
    raise AssertionError('not meant to be called')


def _touch_code(marker):
  return f'open({marker!r}, "w").close()'


def payloads(marker, evil_npy, lib_dir, lib_name):
  """{variant: object whose unpickling would create marker}."""
  os_mod = _R(builtins.__import__, 'os')
  return {
      'os.system': _R(os.system, f'touch {marker}'),
      'subprocess': _R(subprocess.call, ['touch', marker]),
      'builtins.exec': _R(exec, _touch_code(marker)),
      'builtins.eval': _R(eval, _touch_code(marker)),
      'getattr chain': _R(_R(getattr, os_mod, 'system'), f'touch {marker}'),
      '__import__ chain': _R(_R(getattr, _R(builtins.__import__, 'subprocess'), 'call'),
                             ['touch', marker]),
      'importlib': _R(_R(getattr, _R(importlib.import_module, 'os'), 'system'),
                      f'touch {marker}'),
      'nested pickle.loads': _R(pickle.loads, pickle.dumps(_R(os.system, f'touch {marker}'))),
      'numpy.load allow_pickle': _R(functools.partial(np.load, allow_pickle=True), evil_npy),
      'numpy.ctypeslib': _R(np.ctypeslib.load_library, lib_name, lib_dir),
      'object array': np.array([_R(os.system, f'touch {marker}'), 1], dtype=object),
  }


_LIB_SRC = r'''
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void run_on_load(void) {
  const char *p = getenv("SG2TF_EVIL_MARKER");
  FILE *f = fopen(p ? p : "/tmp/sg2tf_evil_marker", "w");
  if (f) fclose(f);
}
'''


class MaliciousFilesTest(tf.test.TestCase):
  """Each variant x each loader: refused with the loader's own error, marker never created."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='evil_')
    src = os.path.join(cls.root, 'evil.c')
    with open(src, 'w') as f:
      f.write(_LIB_SRC)
    cls.lib = os.path.join(cls.root, 'libevil.so')
    cc = shutil.which('cc') or shutil.which('gcc')
    cls.lib_ok = bool(cc) and subprocess.run(
        [cc, '-shared', '-fPIC', '-o', cls.lib, src], capture_output=True).returncode == 0
    if not cls.lib_ok:
      print('numpy.ctypeslib variant: no C compiler here, the library payload is not built '
            '(the pickle that asks for load_library is still tested)')
    from tests.training import tiny  # pylint: disable=g-import-not-at-top
    cls.dataset = tiny.make_dataset(os.path.join(cls.root, 'ds'), count=4, resolution=8,
                                    label_dim=2)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.n = 0

  def _variants(self):
    """(name, payload object, marker) with a fresh marker (and library copy) per use."""
    self.n += 1
    folder = tempfile.mkdtemp(dir=self.root)
    marker = os.path.join(folder, 'RAN')
    evil_npy = os.path.join(folder, 'evil.npy')
    np.save(evil_npy, np.array([_R(os.system, f'touch {marker}')], dtype=object),
            allow_pickle=True)
    lib_name = 'libevil.so'
    if self.lib_ok:
      shutil.copy(self.lib, os.path.join(folder, lib_name))
    os.environ['SG2TF_EVIL_MARKER'] = marker
    for name, obj in payloads(marker, evil_npy, folder, lib_name).items():
      yield name, obj, marker, folder

  def _check(self, loader, write, errors):
    """write(folder, payload) -> path; loader(path) must raise one of errors (or return
    nothing usable) without creating the marker."""
    for variant, obj, marker, folder in self._variants():
      with self.subTest(variant=variant):
        path = write(folder, obj)
        try:
          loader(path)
        except errors:
          pass
        self.assertFalse(os.path.exists(marker), f'{variant}: the file ran code')

  def test_payloads_are_live(self):
    # Guards the rest: unpickled WITHOUT the allow-list, every payload does run.
    for variant, obj, marker, _ in self._variants():
      if variant == 'numpy.ctypeslib' and not self.lib_ok:
        continue
      with self.subTest(variant=variant):
        pickle.loads(pickle.dumps(obj, protocol=4))
        self.assertTrue(os.path.exists(marker), f'{variant} is not a working payload')

  def test_safe_pickle_itself(self):
    self._check(lambda p: safe_pickle.load(open(p, 'rb'), safe_pickle.NUMPY_ARRAYS),
                lambda d, o: _write(d, 'x.pkl', pickle.dumps(o, protocol=4)),
                safe_pickle.UnsafePickleError)

  def test_network_pickles(self):
    from sg2tf import convert  # pylint: disable=g-import-not-at-top
    for proto in (2, 4):
      self._check(convert.load_official_pkl,
                  lambda d, o, p=proto: _write(d, 'net.pkl', pickle.dumps((o, 1, 2), protocol=p)),
                  convert.OfficialPickleError)
    # Deep inside an official-format (G, D, Gs): a Network whose static_kwargs hold it.
    from tests import test_convert as tc  # pylint: disable=g-import-not-at-top
    cls, restore = tc._official_class()  # pylint: disable=protected-access
    try:
      def nested(d, o):
        net = tc._net(cls, 'G', 'G_main', {'resolution': o}, {})  # pylint: disable=protected-access
        return _write(d, 'nested.pkl', pickle.dumps((net, net, net), protocol=4))
      self._check(convert.load_official_pkl, nested, convert.OfficialPickleError)
    finally:
      restore()

  def test_torch_checkpoints_every_part(self):
    from sg2tf.metrics import torch_checkpoint  # pylint: disable=g-import-not-at-top
    from tests.metrics import standins  # pylint: disable=g-import-not-at-top
    load, err = torch_checkpoint.load_state_dict, torch_checkpoint.TorchCheckpointError
    for fmt in ('zip', 'legacy'):
      self._check(load, lambda d, o, f=fmt: standins.write_torch_state_dict(
          os.path.join(d, f'sd_{f}.pth'), {'x': np.ones(2)}, f, extra_global=o), err)
    good = os.path.join(self.root, 'good_legacy.pth')
    standins.write_torch_state_dict(good, {'x': np.ones(2)}, 'legacy')
    parts = _legacy_parts(good)
    for part in range(4):  # magic number, protocol, sys_info, storage keys
      def write(d, o, part=part):
        chunks = list(parts)
        chunks[part if part < 3 else 4] = pickle.dumps(o, protocol=2)
        return _write(d, f'legacy_part{part}.pth', b''.join(chunks))
      with self.subTest(part=part):
        self._check(load, write, err)
    # The same legacy file reached the way eval_main reaches it: vgg16.pth in --feature_dir.
    from sg2tf.metrics import feature_nets  # pylint: disable=g-import-not-at-top

    def as_feature_dir(d, o):
      chunks = list(parts)
      chunks[0] = pickle.dumps(o, protocol=2)
      return _write(d, 'vgg16.pth', b''.join(chunks))
    self._check(lambda p: feature_nets.get('vgg16', feature_dir=os.path.dirname(p)),
                as_feature_dir, (err, ValueError))

  def test_inception_graph_reader(self):
    from sg2tf.metrics import feature_nets  # pylint: disable=g-import-not-at-top

    def tgz(d, o):
      path = os.path.join(d, 'inception-2015-12-05.tgz')
      blob = pickle.dumps(o, protocol=4)
      with tarfile.open(path, 'w:gz') as tar:
        info = tarfile.TarInfo('classify_image_graph_def.pb')
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
      return path
    for write in (lambda d, o: _write(d, 'classify_image_graph_def.pb', pickle.dumps(o)), tgz):
      self._check(feature_nets.load_inception, write, feature_nets.FeatureNetError)

  def test_label_files_and_arrays(self):
    from sg2tf.dataset_tool import create  # pylint: disable=g-import-not-at-top
    from sg2tf.dataset_tool import labels as labels_lib  # pylint: disable=g-import-not-at-top
    from sg2tf.dataset_info import DatasetError  # pylint: disable=g-import-not-at-top
    from sg2tf.dataset_info import DatasetInfo  # pylint: disable=g-import-not-at-top

    def npy(d, o, name):
      path = os.path.join(d, name)
      with open(path, 'wb') as f:
        np.save(f, np.array([o, o], dtype=object), allow_pickle=True)
      return path

    def dataset_with(d, o, raw):
      ds = os.path.join(tempfile.mkdtemp(dir=d), 'ds')
      shutil.copytree(self.dataset, ds)
      labels = os.path.join(ds, 'ds-rxx.labels')
      if raw:
        _write(ds, 'ds-rxx.labels', pickle.dumps(o, protocol=4))
      else:
        os.replace(npy(d, o, 'l.npy'), labels)
      return ds
    for raw in (True, False):
      self._check(DatasetInfo.from_dir, lambda d, o, r=raw: dataset_with(d, o, r), DatasetError)
    self._check(lambda p: labels_lib.from_npy(p, 2), lambda d, o: npy(d, o, 'labels.npy'),
                DatasetError)
    self._check(lambda p: labels_lib.from_npy(p, 2),
                lambda d, o: _write(d, 'labels.npy', pickle.dumps(o)), DatasetError)
    self._check(lambda p: create.create_from_npy(p + '.out', p, create.Options()),
                lambda d, o: npy(d, o, 'images.npy'), DatasetError)

  def test_statistics_cache(self):
    from sg2tf.metrics import stats_cache  # pylint: disable=g-import-not-at-top

    def npz(d, o):
      path = os.path.join(d, 'stats.npz')
      with open(path, 'wb') as f:
        np.savez(f, mu=np.zeros(2), evil=np.array([o], dtype=object))
      return path

    def check_ignored(path):
      self.assertIsNone(stats_cache.load(path))  # a damaged entry: recomputed, never run
    self._check(check_ignored, npz, ())
    self._check(check_ignored, lambda d, o: _write(d, 'stats.npz', pickle.dumps(o)), ())


def _write(folder, name, data):
  path = os.path.join(folder, name)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _legacy_parts(path):
  """The bytes of a legacy torch.save file split into its 5 pickles (magic number, protocol,
  sys_info, object, storage keys) and the raw storages; found with pickletools, which only
  parses opcodes."""
  with open(path, 'rb') as f:
    data = f.read()
  out, pos = [], 0
  for _ in range(5):
    end = pos + max(p for _, _, p in pickletools.genops(io.BytesIO(data[pos:]))) + 1
    out.append(data[pos:end])
    pos = end
  out.append(data[pos:])
  return out


class NumpyFilesTest(tf.test.TestCase):

  def test_describe_content(self):
    self.assertIn('pickle (protocol 4)', safe_pickle.describe_content(pickle.dumps(1, 4)))
    self.assertIn('zip archive', safe_pickle.describe_content(b'PK\x03\x04rest'))
    self.assertIn("text file (starting 'hello')", safe_pickle.describe_content(b'hello\nworld'))
    self.assertIn('empty', safe_pickle.describe_content(b''))
    self.assertIn('binary data (first bytes 00ff', safe_pickle.describe_content(b'\x00\xff\xfe'))

  def test_load_npy_says_what_a_file_is(self):
    d = self.get_temp_dir()
    good = os.path.join(d, 'good.npy')
    np.save(good, np.arange(6, dtype=np.float32).reshape(2, 3))
    self.assertAllEqual(safe_pickle.load_npy(good), np.arange(6).reshape(2, 3))
    cases = {'text.npy': (b'1,2,3\n', 'text file'), 'pkl.npy': (pickle.dumps([1]), 'pickle'),
             'zip.npy': (b'PK\x03\x04xxxx', 'zip archive'), 'empty.npy': (b'', 'empty')}
    for name, (data, what) in cases.items():
      with self.assertRaisesRegex(safe_pickle.NumpyFileError, f'{name}: not a .* it is .*{what}'):
        safe_pickle.load_npy(_write(d, name, data))
    with open(good, 'rb') as f:
      raw = f.read()
    with self.assertRaisesRegex(safe_pickle.NumpyFileError, 'cut.npy: not a readable'):
      safe_pickle.load_npy(_write(d, 'cut.npy', raw[:-5]))
    obj = os.path.join(d, 'obj.npy')
    np.save(obj, np.array([1, 'a'], dtype=object), allow_pickle=True)
    with self.assertRaisesRegex(safe_pickle.NumpyFileError, 'Python objects'):
      safe_pickle.load_npy(obj)

  def test_numeric_arrays_round_trip(self):
    values = [np.arange(6, dtype='>f4').reshape(2, 3), np.asfortranarray(np.ones([3, 2])),
              np.float32(2.5), np.int64(-3), np.zeros([0, 4], np.uint8), b'\x00\xff', b'']
    for proto in (2, 4, 5):
      for v in values:
        got = safe_pickle.plain_arrays(safe_pickle.loads(pickle.dumps(v, protocol=proto),
                                                         safe_pickle.NUMPY_ARRAYS))
        self.assertEqual(type(got), type(v))
        self.assertAllEqual(got, v)
    for bad in (np.array([1, 2], dtype=object), np.zeros(2, dtype=[('a', 'f4')])):
      with self.assertRaises(safe_pickle.UnsafePickleError):
        safe_pickle.loads(pickle.dumps(bad, protocol=4), safe_pickle.NUMPY_ARRAYS)


if __name__ == '__main__':
  tf.test.main()
