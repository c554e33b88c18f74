"""Feature networks of the metrics, loaded from their published files (see feature_files.py).

- `InceptionNet`: the 2015 Inception-v3 TensorFlow graph that FID and IS were defined with
  (`classify_image_graph_def.pb`). uint8 images of any size go in at the graph's
  `ExpandDims:0` tensor, so the graph's own bilinear resize to 299x299 and its [-1, 1]
  scaling run exactly as published; out come the 2048-d `pool_3` features and the 1008-way
  logits (`pool_3 @ softmax/weights + softmax/biases`).
- `VGG16`: torchvision's VGG16 (`vgg16-397923af.pth`). `features()` gives the 4096-d fc2
  activations (after ReLU) of 224x224 area-resized, ImageNet-normalised images, for P&R.
- `LPIPS`: Zhang et al.'s LPIPS v0.1 (`vgg.pth` linear weights) on that VGG16's
  relu1_2 .. relu5_3, for PPL. Images in [0, 255] NHWC.

NVIDIA's code loads its own pickled TF1 ports of these networks (inception_v3_features.pkl,
vgg16.pkl, vgg16_zhang_perceptual.pkl). Those pickles carry their network code as source
that the official loader executes; sg2tf never executes pickled code, so it rebuilds the
networks from the public source files above. FID and IS use the very graph NVIDIA ported;
P&R and PPL values can differ slightly from NVIDIA's if their ports differ in resizing or
weight origin (not verifiable here).
"""

import os
import tarfile
from typing import Dict, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.core.framework import types_pb2

from sg2tf.metrics import feature_files
from sg2tf.metrics import torch_checkpoint
from sg2tf.utils import safe_pickle

_INCEPTION_PB = 'classify_image_graph_def.pb'
_INCEPTION_INPUT = 'ExpandDims'
_INCEPTION_POOL = 'pool_3'
_INCEPTION_MATMUL = 'softmax/logits/MatMul'


class FeatureNetError(ValueError):
  """A feature network file has the wrong content; the message names the file."""


def _to_rgb_float(images):
  """uint8 (or float 0..255) [N, H, W, 1|3] -> float32 [N, H, W, 3]."""
  x = tf.cast(images, tf.float32)
  if x.shape[-1] == 1:
    x = tf.tile(x, [1, 1, 1, 3])
  return x


# ------------------------------------------------------------------------------ Inception

def _read_graph_def(path: str) -> graph_pb2.GraphDef:
  """The GraphDef of a .pb or of the .pb inside a .tgz (read in memory, nothing extracted;
  a protobuf holds data only, and _check_pure vets the ops before anything runs)."""
  if tarfile.is_tarfile(path):
    try:
      with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and os.path.basename(m.name) == _INCEPTION_PB]
        if not members:
          raise FeatureNetError(f'{path}: the archive holds no {_INCEPTION_PB}; is it '
                                f'inception-2015-12-05.tgz?')
        data = tar.extractfile(members[0]).read()
    except (tarfile.TarError, EOFError, OSError) as e:
      raise FeatureNetError(f'{path}: a damaged archive ({type(e).__name__}: {e}); fetch '
                            'inception-2015-12-05.tgz again.') from None
  else:
    with open(path, 'rb') as f:
      data = f.read()
  gd = graph_pb2.GraphDef()
  try:
    gd.ParseFromString(data)
  except Exception as e:  # pylint: disable=broad-except
    what = safe_pickle.describe_content(data[:256])
    raise FeatureNetError(f'{path}: not a TensorFlow GraphDef ({e}); it is {what}.') from None
  return gd


# Ops that touch files or run Python even though TensorFlow does not mark them stateful.
_IO_OPS = frozenset((
    'ReadFile', 'WriteFile', 'MatchingFiles', 'ImmutableConst', 'PyFunc', 'PyFuncStateless',
    'EagerPyFunc', 'Save', 'SaveV2', 'SaveSlices', 'Restore', 'RestoreV2', 'RestoreSlice',
    'MergeV2Checkpoints', 'ShardedFilename', 'ShardedFilespec', 'DecodeProtoV2', 'EncodeProto',
    'LoadAndRemapMatrix', 'Print', 'PrintV2', 'DebugIdentity', 'DebugIdentityV2',
    'DebugNanCount', 'DebugNumericSummary', 'DebugNumericSummaryV2'))


def _check_pure(gd: graph_pb2.GraphDef, path: str) -> None:
  """Refuses a graph that could do more than compute features when it runs: functions, file
  or Python ops, stateful ops. The published graph is plain tensor arithmetic."""
  from tensorflow.python.framework import op_def_registry  # pylint: disable=g-import-not-at-top
  if gd.library.function:
    raise FeatureNetError(f'{path}: the graph defines functions '
                          f'({", ".join(f.signature.name for f in gd.library.function[:3])}); '
                          'the Inception-v3 graph has none. Refusing to run it.')
  for n in gd.node:
    op_def = op_def_registry.get(n.op)
    if op_def is None or op_def.is_stateful or n.op in _IO_OPS:
      why = 'unknown to this TensorFlow' if op_def is None else 'not pure arithmetic'
      raise FeatureNetError(f'{path}: node {n.name} is a {n.op} op ({why}); the Inception-v3 '
                            'graph holds none. Refusing to run it.')


def _node_name(ref: str) -> str:
  return ref.lstrip('^').split(':')[0]


def _const_value(nodes: Dict[str, 'tf.compat.v1.NodeDef'], name: str, path: str) -> np.ndarray:
  seen = 0
  while nodes[name].op == 'Identity' and seen < 16:
    name, seen = _node_name(nodes[name].input[0]), seen + 1
  if nodes[name].op != 'Const':
    raise FeatureNetError(f'{path}: expected a constant at {name}, found op {nodes[name].op}')
  return tf.make_ndarray(nodes[name].attr['value'].tensor)


def _subgraph(gd: graph_pb2.GraphDef, output: str, cut: str) -> graph_pb2.GraphDef:
  """The nodes `output` depends on, with `cut` replaced by a float [?, ?, ?, 3] placeholder.

  Dropping everything else matters: the original graph reshapes pool_3 to a fixed batch of 1
  further on, which would fail shape inference for larger batches.
  """
  nodes = {n.name: n for n in gd.node}
  keep, stack = set(), [output]
  while stack:
    name = stack.pop()
    if name in keep:
      continue
    keep.add(name)
    if name != cut:
      stack.extend(_node_name(i) for i in nodes[name].input)
  out = graph_pb2.GraphDef()
  out.versions.CopyFrom(gd.versions)
  out.library.CopyFrom(gd.library)
  for n in gd.node:
    if n.name in keep and n.name != cut:
      out.node.add().CopyFrom(n)
  ph = out.node.add(name=cut, op='Placeholder')
  ph.attr['dtype'].type = types_pb2.DT_FLOAT
  ph.attr['shape'].shape.CopyFrom(tf.TensorShape([None, None, None, 3]).as_proto())
  return out


class InceptionNet:
  """The 2015 Inception-v3 graph. Call with uint8 images [N, H, W, 1|3] (any H, W)."""

  def __init__(self, graph_def: graph_pb2.GraphDef, source: str = '<graph>'):
    self.source = source
    nodes = {n.name: n for n in graph_def.node}
    for required in (_INCEPTION_INPUT, _INCEPTION_POOL, _INCEPTION_MATMUL):
      if required not in nodes:
        raise FeatureNetError(f'{source}: node {required} missing; this is not the 2015 '
                              f'Inception-v3 graph (classify_image_graph_def.pb).')
    weights = _const_value(nodes, _node_name(nodes[_INCEPTION_MATMUL].input[1]), source)
    bias = np.zeros([weights.shape[1]], np.float32)
    for n in graph_def.node:  # the op adding the bias to the MatMul
      if n.op in ('BiasAdd', 'Add', 'AddV2') and _INCEPTION_MATMUL in map(_node_name, n.input):
        other = [i for i in n.input if _node_name(i) != _INCEPTION_MATMUL][0]
        bias = _const_value(nodes, _node_name(other), source)
        break
    else:
      logging.warning('%s: no bias found after %s; logits without bias.', source,
                      _INCEPTION_MATMUL)
    self.num_features = int(weights.shape[0])
    self.num_classes = int(weights.shape[1])
    self._w = tf.constant(weights.astype(np.float32))
    self._b = tf.constant(bias.astype(np.float32).reshape([-1]))
    sub = _subgraph(graph_def, _INCEPTION_POOL, _INCEPTION_INPUT)
    _check_pure(sub, source)

    def _import(x):
      pool, = tf.compat.v1.import_graph_def(sub, input_map={_INCEPTION_INPUT + ':0': x},
                                            return_elements=[_INCEPTION_POOL + ':0'], name='')
      return pool

    try:
      self._pool = tf.compat.v1.wrap_function(
          _import, [tf.TensorSpec([None, None, None, 3], tf.float32)])
    except (ValueError, tf.errors.OpError) as e:
      raise FeatureNetError(f'{source}: the graph does not import into this TensorFlow '
                            f'({str(e).splitlines()[0]})') from None

  def features(self, images):
    """[N, 2048] pool_3 features of uint8 images [N, H, W, C]."""
    pool = self._pool(_to_rgb_float(images))  # [N, 1, 1, 2048]
    return tf.reshape(pool, [-1, self.num_features])

  def logits_from_features(self, features):
    return tf.matmul(features, self._w) + self._b  # [N, 1008]

  def __call__(self, images) -> Tuple[tf.Tensor, tf.Tensor]:
    """(pool_3 features [N, 2048], logits [N, 1008])."""
    feats = self.features(images)
    return feats, self.logits_from_features(feats)


def load_inception(path: str) -> InceptionNet:
  return InceptionNet(_read_graph_def(path), source=path)


# ------------------------------------------------------------------------------ VGG16

# torchvision vgg16 `features` indices of the 13 convs; a 2x2 max-pool follows the ones
# marked True, and their ReLU outputs are LPIPS's relu1_2 .. relu5_3.
_VGG_CONVS = ((0, False), (2, True), (5, False), (7, True), (10, False), (12, False),
              (14, True), (17, False), (19, False), (21, True), (24, False), (26, False),
              (28, True))
_NUM_TAPS = 5
_VGG_FCS = (0, 3)  # classifier.0 (fc1), classifier.3 (fc2); classifier.6 (logits) is unused
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_INPUT_SIZE = 224


def _get(state: Dict[str, np.ndarray], key: str, source: str, ndim: int) -> np.ndarray:
  if key not in state:
    raise FeatureNetError(f'{source}: no tensor {key}; expected torchvision VGG16 weights '
                          f'(vgg16-397923af.pth).')
  v = np.asarray(state[key], np.float32)
  if v.ndim != ndim:
    raise FeatureNetError(f'{source}: {key} has shape {v.shape}, expected {ndim} dimensions')
  return v


class VGG16(tf.Module):
  """torchvision VGG16 in NHWC. Weights are non-trainable variables (created in the current
  strategy scope, so they are mirrored like the generator's)."""

  def __init__(self, state: Dict[str, np.ndarray], source: str = '<state dict>',
               with_classifier: bool = True):
    super().__init__(name='vgg16')
    self.source = source
    self.convs = []
    for idx, pool in _VGG_CONVS:
      w = _get(state, f'features.{idx}.weight', source, 4)  # [O, I, 3, 3]
      b = _get(state, f'features.{idx}.bias', source, 1)
      self.convs.append((tf.Variable(w.transpose(2, 3, 1, 0), trainable=False),  # HWIO
                         tf.Variable(b, trainable=False), pool))
    self.channels = [int(c[1].shape[0]) for c in self.convs]
    self.fcs = []
    if with_classifier:
      c = self.channels[-1]
      for i, idx in enumerate(_VGG_FCS):
        w = _get(state, f'classifier.{idx}.weight', source, 2)  # [out, in]
        b = _get(state, f'classifier.{idx}.bias', source, 1)
        if i == 0:
          if w.shape[1] != c * 49:
            raise FeatureNetError(f'{source}: classifier.0 takes {w.shape[1]} inputs, expected '
                                  f'{c} x 7 x 7')
          # torch flattens [C, 7, 7]; this model flattens NHWC [7, 7, C].
          w = w.reshape(-1, c, 7, 7).transpose(2, 3, 1, 0).reshape(49 * c, -1)
        else:
          w = w.T
        self.fcs.append((tf.Variable(w, trainable=False), tf.Variable(b, trainable=False)))
    self.num_features = int(self.fcs[-1][1].shape[0]) if self.fcs else 0

  def conv_taps(self, x):
    """x: normalised [N, H, W, 3] -> the 5 ReLU outputs before each max-pool (the last
    max-pool is not applied: LPIPS does not use it, and small inputs would vanish)."""
    taps = []
    for w, b, pool in self.convs:
      x = tf.nn.relu(tf.nn.conv2d(x, w, 1, 'SAME') + b)
      if pool:
        taps.append(x)
        if len(taps) < _NUM_TAPS:
          x = tf.nn.max_pool2d(x, 2, 2, 'VALID')
    return taps

  def features(self, images):
    """fc2 activations [N, 4096] of uint8 images [N, H, W, 1|3] (any size)."""
    if not self.fcs:
      raise FeatureNetError(f'{self.source}: loaded without the classifier layers')
    x = _to_rgb_float(images) / 255.0
    x = tf.image.resize(x, [VGG_INPUT_SIZE, VGG_INPUT_SIZE], method='area')
    x = (x - tf.constant(_IMAGENET_MEAN)) / tf.constant(_IMAGENET_STD)
    x = tf.nn.max_pool2d(self.conv_taps(x)[-1], 2, 2, 'VALID')  # [N, 7, 7, 512]
    if x.shape[1] != 7 or x.shape[2] != 7:  # torchvision's adaptive pool (identity at 224)
      x = tf.image.resize(x, [7, 7], method='area')
    x = tf.reshape(x, [-1, 49 * self.channels[-1]])
    for w, b in self.fcs:
      x = tf.nn.relu(tf.matmul(x, w) + b)
    return x

  def __call__(self, images):
    return self.features(images)


def load_vgg16(path: str, with_classifier: bool = True) -> VGG16:
  return VGG16(torch_checkpoint.load_state_dict(path), source=path,
               with_classifier=with_classifier)


# ------------------------------------------------------------------------------ LPIPS

# LPIPS's ScalingLayer: inputs in [-1, 1] are mapped with these per-channel constants.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
_LPIPS_EPS = 1e-10


class LPIPS(tf.Module):
  """LPIPS v0.1 distance on a VGG16. Call with two NHWC float batches in [0, 255] -> [N]."""

  def __init__(self, vgg: VGG16, lin: Dict[str, np.ndarray], source: str = '<lpips>'):
    super().__init__(name='lpips')
    self.vgg = vgg
    self.lins = []
    for i, c in enumerate(vgg.channels[j] for j, (_, _, pool) in enumerate(vgg.convs) if pool):
      key = next((k for k in (f'lin{i}.model.1.weight', f'lin{i}.model.0.weight') if k in lin),
                 None)
      if key is None:
        raise FeatureNetError(f'{source}: no lin{i}.model.1.weight; expected the LPIPS v0.1 '
                              f'VGG weights (vgg.pth).')
      w = np.asarray(lin[key], np.float32).reshape(-1)
      if w.shape[0] != c:
        raise FeatureNetError(f'{source}: {key} has {w.shape[0]} channels, but the VGG16 layer '
                              f'has {c}; the two files do not belong together.')
      self.lins.append(tf.Variable(w, trainable=False))

  def __call__(self, img0, img1):
    x = tf.concat([img0, img1], axis=0)
    x = tf.cast(x, tf.float32) / 127.5 - 1.0
    x = (x - tf.constant(_LPIPS_SHIFT)) / tf.constant(_LPIPS_SCALE)
    taps = self.vgg.conv_taps(x)
    n = tf.shape(img0)[0]
    dist = 0.0
    for f, w in zip(taps, self.lins):
      f = f / (tf.sqrt(tf.reduce_sum(tf.square(f), axis=-1, keepdims=True)) + _LPIPS_EPS)
      d = tf.square(f[:n] - f[n:])  # [N, h, w, C]
      dist += tf.reduce_mean(tf.reduce_sum(d * w, axis=-1), axis=[1, 2])  # [N]
    return dist


def load_lpips(vgg_path: str, lin_path: str, vgg: Optional[VGG16] = None) -> LPIPS:
  if vgg is None:
    vgg = load_vgg16(vgg_path, with_classifier=False)
  return LPIPS(vgg, torch_checkpoint.load_state_dict(lin_path), source=lin_path)


# ------------------------------------------------------------------------------ by name

_loaded: Dict[Tuple, object] = {}


def get(kind: str, feature_dir: Optional[str] = None, download: bool = False):
  """A loaded network by kind ('inception', 'vgg16', 'lpips'), kept for later calls.

  Raises:
    FeatureFileMissingError: a file is missing (the message says which to fetch).
  """
  if kind == 'inception':
    paths = (feature_files.locate('inception', feature_dir, download),)
  elif kind == 'vgg16':
    paths = (feature_files.locate('vgg16', feature_dir, download),)
  elif kind == 'lpips':
    paths = (feature_files.locate('vgg16', feature_dir, download),
             feature_files.locate('lpips_vgg', feature_dir, download))
  else:
    raise KeyError(f'unknown feature network {kind!r}')
  # Variables belong to the strategy in scope (mirrored ones for MirroredStrategy).
  key = (kind, id(tf.distribute.get_strategy())) + tuple(
      (p, os.path.getmtime(p)) for p in paths)
  if key not in _loaded:
    logging.info('Loading feature network %s from %s', kind, ', '.join(paths))
    if kind == 'inception':
      _loaded[key] = load_inception(paths[0])
    elif kind == 'vgg16':
      _loaded[key] = load_vgg16(paths[0])
    else:
      _loaded[key] = load_lpips(*paths)
  return _loaded[key]


def identity(kind: str, feature_dir: Optional[str] = None, download: bool = False) -> str:
  """A string naming the exact weights of a feature network (file names + sha256)."""
  names = {'inception': ('inception',), 'vgg16': ('vgg16',), 'lpips': ('vgg16', 'lpips_vgg')}
  parts = []
  for key in names[kind]:
    path = feature_files.locate(key, feature_dir, download)
    digest = feature_files.verify(feature_files.FEATURE_FILES[key], path)
    parts.append(f'{os.path.basename(path)}:{digest}')
  return ','.join(parts)

