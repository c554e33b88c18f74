"""Feature networks loaded through the real loaders from stand-in files in the real formats,
checked against the original graph (Inception) and NumPy references in PyTorch's layout
(VGG16, LPIPS)."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf.metrics import feature_files
from sg2tf.metrics import feature_nets
from tests.metrics import standins

_MEAN = np.array([0.485, 0.456, 0.406])[None, :, None, None]
_STD = np.array([0.229, 0.224, 0.225])[None, :, None, None]


def np_conv3x3(x, w, b):
  """torch Conv2d(padding=1) in float64: x NCHW, w OIHW."""
  n, _, h, wd = x.shape
  xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
  out = np.zeros((n, w.shape[0], h, wd)) + b[None, :, None, None]
  for i in range(3):
    for j in range(3):
      out += np.einsum('nchw,oc->nohw', xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
  return out


def np_vgg_taps(state, x, final_pool=True):
  taps = []
  for idx in standins.VGG_CONV_IDX:
    x = np.maximum(np_conv3x3(x, state[f'features.{idx}.weight'],
                              state[f'features.{idx}.bias']), 0)
    if idx + 2 in (4, 9, 16, 23, 30):  # a max-pool follows
      taps.append(x)
      if len(taps) < 5 or final_pool:
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
  return taps, x


def np_vgg_fc2(state, images_u8):
  x = images_u8.astype(np.float64).transpose(0, 3, 1, 2) / 255.0
  x = (x - _MEAN) / _STD
  _, x = np_vgg_taps(state, x)
  x = x.reshape(len(x), -1)  # torch flattens C, H, W
  for idx in (0, 3):
    x = np.maximum(x @ state[f'classifier.{idx}.weight'].T + state[f'classifier.{idx}.bias'], 0)
  return x


def np_lpips(state, lin, img0, img1):
  shift = np.array([-.030, -.088, -.188])[None, :, None, None]
  scale = np.array([.458, .448, .450])[None, :, None, None]
  def feats(img):
    x = (img.astype(np.float64).transpose(0, 3, 1, 2) / 127.5 - 1 - shift) / scale
    return np_vgg_taps(state, x, final_pool=False)[0]
  total = 0
  for i, (f0, f1) in enumerate(zip(feats(img0), feats(img1))):
    f0 = f0 / (np.sqrt(np.sum(f0 ** 2, axis=1, keepdims=True)) + 1e-10)
    f1 = f1 / (np.sqrt(np.sum(f1 ** 2, axis=1, keepdims=True)) + 1e-10)
    w = lin[f'lin{i}.model.1.weight'].reshape(1, -1, 1, 1)
    total = total + np.sum((f0 - f1) ** 2 * w, axis=1).mean(axis=(1, 2))
  return total


class InceptionTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((True, 'Add'), (False, 'BiasAdd'))
  def test_matches_the_original_graph_image_by_image(self, tgz, bias_op):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    path = standins.write_inception(folder, tgz=tgz, bias_op=bias_op)
    net = feature_nets.load_inception(path)
    images = np.random.default_rng(0).integers(0, 256, [3, 23, 23, 3], dtype=np.uint8)
    feats, logits = tf.function(net)(tf.constant(images))  # batch of 3 through the cut graph
    feats, logits = feats.numpy(), logits.numpy()
    g = tf.Graph()
    with g.as_default():
      tf.compat.v1.import_graph_def(standins.inception_graph_def(bias_op=bias_op), name='')
    with tf.compat.v1.Session(graph=g) as sess:
      for i in range(3):  # the published graph only runs one image at a time
        ref_f, ref_l = sess.run(['pool_3:0', 'softmax/logits:0'],
                                {'ExpandDims:0': images[i:i + 1].astype(np.float32)})
        self.assertAllClose(feats[i], ref_f.reshape(-1), rtol=1e-5, atol=1e-5)
        self.assertAllClose(logits[i], ref_l.reshape(-1), rtol=1e-5, atol=1e-5)
    self.assertEqual((net.num_features, net.num_classes), (16, 10))

  def test_grayscale_is_tiled(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    net = feature_nets.load_inception(standins.write_inception(folder))
    gray = np.random.default_rng(1).integers(0, 256, [2, 20, 20, 1], dtype=np.uint8)
    self.assertAllClose(net.features(gray), net.features(np.tile(gray, [1, 1, 1, 3])))

  def test_wrong_files(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    junk = os.path.join(folder, 'classify_image_graph_def.pb')
    with open(junk, 'wb') as f:
      f.write(b'\xff' * 100)
    with self.assertRaisesRegex(feature_nets.FeatureNetError, 'not a TensorFlow GraphDef'):
      feature_nets.load_inception(junk)
    g = tf.Graph()
    with g.as_default():
      tf.constant(1.0, name='something')
    with open(junk, 'wb') as f:
      f.write(g.as_graph_def().SerializeToString())
    with self.assertRaisesRegex(feature_nets.FeatureNetError, 'node ExpandDims missing'):
      feature_nets.load_inception(junk)


class VGGTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('zip', 'legacy')
  def test_fc2_features_match_torch_semantics(self, fmt):
    state = standins.vgg16_state()
    path = standins.write_torch_state_dict(
        os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'vgg16.pth'), state, fmt)
    net = feature_nets.load_vgg16(path)
    images = np.random.default_rng(2).integers(0, 256, [2, 224, 224, 3], dtype=np.uint8)
    got = tf.function(net.features)(tf.constant(images)).numpy()
    self.assertEqual(got.shape, (2, 12))
    self.assertAllClose(got, np_vgg_fc2(state, images), rtol=1e-4, atol=1e-4)

  def test_lpips_matches_reference(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    state, lin = standins.vgg16_state(), standins.lpips_state()
    vgg_path = standins.write_torch_state_dict(os.path.join(folder, 'v.pth'), state)
    lin_path = standins.write_torch_state_dict(os.path.join(folder, 'l.pth'), lin, 'legacy')
    lpips = feature_nets.load_lpips(vgg_path, lin_path)
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 255, [3, 32, 32, 3]).astype(np.float32)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.float32)
    got = lpips(tf.constant(a), tf.constant(b)).numpy()
    self.assertAllClose(got, np_lpips(state, lin, a, b), rtol=1e-4)
    self.assertAllClose(lpips(a, a), np.zeros(3), atol=1e-7)
    self.assertAllClose(lpips(b, a), got, rtol=1e-5)

  def test_mismatched_files(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    vgg_path = standins.write_torch_state_dict(os.path.join(folder, 'v.pth'),
                                               standins.vgg16_state())
    lin_path = standins.write_torch_state_dict(os.path.join(folder, 'l.pth'),
                                               standins.lpips_state(widths=(4, 4, 6, 6, 9)))
    with self.assertRaisesRegex(feature_nets.FeatureNetError, 'do not belong together'):
      feature_nets.load_lpips(vgg_path, lin_path)
    with self.assertRaisesRegex(feature_nets.FeatureNetError, 'no tensor features.0.weight'):
      feature_nets.load_vgg16(lin_path)


class GetTest(tf.test.TestCase):

  def test_loads_once_and_reports_missing_files(self):
    folder = standins.write_feature_dir(tempfile.mkdtemp(dir=self.get_temp_dir()))
    a = feature_nets.get('lpips', folder)
    self.assertIs(feature_nets.get('lpips', folder), a)
    self.assertIn('vgg16.pth:', feature_nets.identity('lpips', folder))
    os.remove(os.path.join(folder, 'lpips_vgg_v0.1.pth'))
    with self.assertRaisesRegex(feature_files.FeatureFileMissingError, 'lpips_vgg_v0.1.pth'):
      feature_nets.get('lpips', folder, download=False)


if __name__ == '__main__':
  tf.test.main()
