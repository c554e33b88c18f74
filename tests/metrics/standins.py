"""Stand-ins for the metric tests, written in the REAL file formats with random weights.

- Inception: a tiny GraphDef with the node names of the 2015 graph (ExpandDims, ResizeBilinear,
  pool_3, pool_3/_reshape fixed to batch 1, softmax/logits/MatMul, bias, softmax), as a .pb
  and inside a .tgz like inception-2015-12-05.tgz.
- VGG16 / LPIPS: PyTorch state dicts with torchvision / LPIPS key names (tiny widths), in the
  zip and the legacy torch.save formats, written without PyTorch.
- A linear generator following the generator protocol, and an official-layout TFRecord dataset.
"""

import collections
import contextlib
import io
import os
import pickle
import struct
import sys
import tarfile
import types
import zipfile

import numpy as np
import tensorflow as tf

# ------------------------------------------------------------------ inception GraphDef


def inception_graph_def(num_features=16, num_classes=10, size=19, bias_op='Add', seed=0):
  """A GraphDef shaped like classify_image_graph_def.pb (uint8 -> pool_3 -> logits)."""
  rng = np.random.default_rng(seed)
  g = tf.Graph()
  with g.as_default():
    contents = tf.compat.v1.placeholder(tf.string, [], name='DecodeJpeg/contents')
    dec = tf.io.decode_jpeg(contents, channels=3, name='DecodeJpeg')
    cast = tf.cast(dec, tf.float32, name='Cast')
    x = tf.expand_dims(cast, 0, name='ExpandDims')
    x = tf.raw_ops.ResizeBilinear(
        images=x, size=tf.constant([size, size], name='ResizeBilinear/size'),
        name='ResizeBilinear')
    x = tf.subtract(x, tf.constant(128.0, name='Sub/y'), name='Sub')
    x = tf.multiply(x, tf.constant(1 / 128.0, name='Mul/y'), name='Mul')
    w1 = rng.standard_normal([3, 3, 3, 8]).astype(np.float32) * 0.3
    x = tf.nn.relu(tf.nn.conv2d(x, tf.constant(w1, name='conv/conv2d_params'), 2, 'VALID',
                                name='conv/Conv2D'), name='conv')
    w2 = rng.standard_normal([3, 3, 8, num_features]).astype(np.float32) * 0.3
    x = tf.nn.relu(tf.nn.conv2d(x, tf.constant(w2, name='conv_1/conv2d_params'), 1, 'VALID',
                                name='conv_1/Conv2D'), name='conv_1')
    k = x.shape[1]
    pool = tf.nn.avg_pool2d(x, [1, k, k, 1], [1, 1, 1, 1], 'VALID', name='pool_3')
    flat = tf.reshape(pool, [1, num_features], name='pool_3/_reshape')  # batch 1, as published
    sw = tf.constant(rng.standard_normal([num_features, num_classes]).astype(np.float32),
                     name='softmax/weights')
    sb = tf.constant(rng.standard_normal([num_classes]).astype(np.float32), name='softmax/biases')
    mm = tf.matmul(flat, sw, name='softmax/logits/MatMul')
    if bias_op == 'Add':
      logits = tf.add(mm, sb, name='softmax/logits')
    else:
      logits = tf.nn.bias_add(mm, sb, name='softmax/logits')
    tf.nn.softmax(logits, name='softmax')
  return g.as_graph_def()


def write_inception(folder, tgz=True, **kwargs) -> str:
  gd = inception_graph_def(**kwargs)
  data = gd.SerializeToString()
  os.makedirs(folder, exist_ok=True)
  if not tgz:
    path = os.path.join(folder, 'classify_image_graph_def.pb')
    with open(path, 'wb') as f:
      f.write(data)
    return path
  path = os.path.join(folder, 'inception-2015-12-05.tgz')
  with tarfile.open(path, 'w:gz') as tar:
    for name, blob in [('imagenet_synset_to_human_label_map.txt', b'n0\tthing\n'),
                       ('classify_image_graph_def.pb', data)]:
      info = tarfile.TarInfo(name)
      info.size = len(blob)
      tar.addfile(info, io.BytesIO(blob))
  return path


# ------------------------------------------------------------------ torch.save formats


class _FakeStorage:

  def __init__(self, key, array):
    self.key, self.array = key, np.ascontiguousarray(array).reshape(-1)


class _FakeTensor:

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def __reduce__(self):
    rebuild = sys.modules['torch._utils']._rebuild_tensor_v2
    return rebuild, (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
                     collections.OrderedDict())


@contextlib.contextmanager
def _fake_torch_modules():
  """Temporary `torch` / `torch._utils` modules so pickle can name their globals."""
  torch = types.ModuleType('torch')
  utils = types.ModuleType('torch._utils')

  def _rebuild_tensor_v2(*args):
    return args

  _rebuild_tensor_v2.__module__ = 'torch._utils'
  _rebuild_tensor_v2.__qualname__ = '_rebuild_tensor_v2'
  utils._rebuild_tensor_v2 = _rebuild_tensor_v2
  for name in ('FloatStorage', 'LongStorage'):
    cls = type(name, (), {'__module__': 'torch', '__qualname__': name})
    setattr(torch, name, cls)
  torch._utils = utils
  saved = {k: sys.modules.get(k) for k in ('torch', 'torch._utils')}
  sys.modules.update({'torch': torch, 'torch._utils': utils})
  try:
    yield torch
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v


def _storage_type(torch, array):
  return torch.LongStorage if array.dtype == np.int64 else torch.FloatStorage


def _tensors(state):
  """OrderedDict of _FakeTensor; every 2-D tensor is stored transposed (strided view) and the
  1-D ones share one storage at offsets, to exercise strides and offsets."""
  out, storages = collections.OrderedDict(), []
  shared = [v for v in state.values() if v.ndim == 1]
  shared_storage = None
  if shared:
    shared_storage = _FakeStorage(str(len(storages)), np.concatenate(shared).astype(np.float32))
    storages.append(shared_storage)
  offset = 0
  for name, v in state.items():
    if v.ndim == 1:
      out[name] = _FakeTensor(shared_storage, offset, v.shape, (1,))
      offset += v.size
    elif v.ndim == 2:
      st = _FakeStorage(str(len(storages)), v.T)
      storages.append(st)
      out[name] = _FakeTensor(st, 0, v.shape, (1, v.shape[0]))
    else:
      st = _FakeStorage(str(len(storages)), v)
      storages.append(st)
      strides = np.cumprod((v.shape[1:] + (1,))[::-1])[::-1]
      out[name] = _FakeTensor(st, 0, v.shape, tuple(int(s) for s in strides))
  return out, storages


def write_torch_state_dict(path, state, fmt='zip', extra_global=None):
  """Writes {name: float32 ndarray} as torch.save would (fmt 'zip' or 'legacy')."""
  state = collections.OrderedDict((k, np.asarray(v, np.float32)) for k, v in state.items())
  with _fake_torch_modules() as torch:
    tensors, storages = _tensors(state)
    if extra_global is not None:
      tensors['evil'] = extra_global

    def persistent_id(obj):
      if isinstance(obj, _FakeStorage):
        pid = ('storage', _storage_type(torch, obj.array), obj.key, 'cpu', obj.array.size)
        return pid + (None,) if fmt == 'legacy' else pid
      return None

    class _Pickler(pickle.Pickler):
      # A method, not an instance attribute: Python 3.13 made the C Pickler's read-only.
      def persistent_id(self, obj):
        return persistent_id(obj)

    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(tensors)
  if fmt == 'zip':
    with zipfile.ZipFile(path, 'w') as zf:
      zf.writestr('archive/data.pkl', buf.getvalue())
      zf.writestr('archive/version', '3\n')
      for st in storages:
        zf.writestr(f'archive/data/{st.key}', st.array.astype('<f4').tobytes())
  else:
    with open(path, 'wb') as f:
      pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
      pickle.dump(1001, f, protocol=2)
      pickle.dump({'protocol_version': 1001, 'little_endian': True,
                   'type_sizes': {'short': 2, 'int': 4, 'long': 4}}, f, protocol=2)
      f.write(buf.getvalue())
      pickle.dump([st.key for st in storages], f, protocol=2)
      for st in storages:
        f.write(struct.pack('<q', st.array.size))
        f.write(st.array.astype('<f4').tobytes())
  return path


VGG_CONV_IDX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def vgg16_state(widths=(4, 4, 6, 6, 8), fc=(12, 12, 10), seed=0):
  """torchvision vgg16 key names with tiny widths (one width per block)."""
  rng = np.random.default_rng(seed)
  per_block = (2, 2, 3, 3, 3)
  state, cin, i = collections.OrderedDict(), 3, 0
  for block, n in enumerate(per_block):
    for _ in range(n):
      cout = widths[block]
      idx = VGG_CONV_IDX[i]
      state[f'features.{idx}.weight'] = rng.standard_normal([cout, cin, 3, 3]) * np.sqrt(
          2.0 / (9 * cin))
      state[f'features.{idx}.bias'] = rng.standard_normal([cout]) * 0.1
      cin, i = cout, i + 1
  fin = cin * 49
  for idx, fout in zip((0, 3, 6), fc):
    state[f'classifier.{idx}.weight'] = rng.standard_normal([fout, fin]) * np.sqrt(2.0 / fin)
    state[f'classifier.{idx}.bias'] = rng.standard_normal([fout]) * 0.1
    fin = fout
  return state


def lpips_state(widths=(4, 4, 6, 6, 8), seed=1):
  rng = np.random.default_rng(seed)
  return collections.OrderedDict(
      (f'lin{i}.model.1.weight', np.abs(rng.standard_normal([1, c, 1, 1])))
      for i, c in enumerate(widths))


def write_feature_dir(folder, legacy=False) -> str:
  """All three feature files under their published names."""
  os.makedirs(folder, exist_ok=True)
  write_inception(folder)
  fmt = 'legacy' if legacy else 'zip'
  # The published name promises a sha256 prefix the stand-in cannot have: use the alias.
  write_torch_state_dict(os.path.join(folder, 'vgg16.pth'), vgg16_state(), fmt)
  write_torch_state_dict(os.path.join(folder, 'lpips_vgg_v0.1.pth'), lpips_state(), fmt)
  return folder


# ------------------------------------------------------------------ generator and data


class LinearGenerator:
  """w = z M (broadcast to num_ws layers), image = reshape(w[:, 0] A): the generator protocol
  with closed-form behaviour."""

  def __init__(self, z_dim=8, num_ws=4, resolution=16, channels=3, scale=0.05, seed=0):
    rng = np.random.default_rng(seed)
    self.z_dim, self.num_ws, self.resolution, self.channels = z_dim, num_ws, resolution, channels
    self.M = rng.standard_normal([z_dim, z_dim]).astype(np.float32) / np.sqrt(z_dim)
    self.A = (rng.standard_normal([z_dim, resolution * resolution * channels]) * scale
              ).astype(np.float32)

  def mapping(self, z, truncation_psi=1.0):
    w = tf.matmul(tf.cast(z, tf.float32), self.M) * truncation_psi  # w_avg = 0
    return tf.tile(w[:, tf.newaxis, :], [1, self.num_ws, 1])

  def synthesis(self, w, noise_mode='const'):
    del noise_mode
    x = tf.matmul(w[:, 0], self.A)
    return tf.reshape(x, [-1, self.resolution, self.resolution, self.channels])

  def __call__(self, z, truncation_psi=1.0, noise_mode='random'):
    return self.synthesis(self.mapping(z, truncation_psi), noise_mode)


def write_tfrecord_dataset(folder, images, name='tiny') -> str:
  """images: uint8 [N, H, W, C] -> <folder>/<name>-rNN.tfrecords (official layout)."""
  os.makedirs(folder, exist_ok=True)
  n, h, w, c = images.shape
  path = os.path.join(folder, f'{name}-r{int(np.log2(h)):02d}.tfrecords')
  with tf.io.TFRecordWriter(path) as writer:
    for img in images:
      chw = np.ascontiguousarray(img.transpose(2, 0, 1))
      ex = tf.train.Example(features=tf.train.Features(feature={
          'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=[c, h, w])),
          'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()]))}))
      writer.write(ex.SerializeToString())
  return path
