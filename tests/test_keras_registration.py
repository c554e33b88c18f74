"""Keras conventions of sg2tf's layers and networks: every class registered as `sg2tf>Name`,
get_config / from_config round trips, summary() shapes, and `keras.models.load_model` after
`import sg2tf` (sg2tf/_keras_registration.py) in a fresh process, in either import order."""

import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from sg2tf import export
from sg2tf import layers
from sg2tf import networks
from sg2tf.networks import stylegan1
from tests.tiny_generator import tiny_generator

_NET = dict(img_resolution=16, fmap_base=32, fmap_max=8)
_G = dict(z_dim=8, w_dim=8, mapping_layers=2, mapping_dim=8, **_NET)

# One small, non-default instance of every registered class.
_FACTORIES = {
    'EqualizedDense': lambda: layers.EqualizedDense(5, activation='lrelu', lr_multiplier=0.1,
                                                    bias_init=1.0),
    'EqualizedConv2D': lambda: layers.EqualizedConv2D(4, 3, down=2, conv_clamp=256),
    'ModulatedConv2D': lambda: layers.ModulatedConv2D(4, 3, 8, demodulate=False, up=2),
    'SynthesisLayer': lambda: layers.SynthesisLayer(4, 8, 8, up=2, conv_clamp=64),
    'ToRGB': lambda: layers.ToRGB(3, 8, conv_clamp=32),
    'ConstantInput': lambda: layers.ConstantInput(6, size=4),
    'MinibatchStddev': lambda: layers.MinibatchStddev(2, 1),
    'MappingNetwork': lambda: networks.MappingNetwork(z_dim=8, c_dim=2, w_dim=8, num_ws=4,
                                                      num_layers=2, layer_dim=8),
    'SynthesisBlock': lambda: networks.SynthesisBlock(8, 4, 8, 8, 3, 'resnet', is_last=True,
                                                      use_fp16=True),
    'SynthesisNetwork': lambda: networks.SynthesisNetwork(w_dim=8, architecture='orig', **_NET),
    'Generator': lambda: networks.Generator(c_dim=2, architecture='resnet', **_G),
    'DiscriminatorBlock': lambda: networks.DiscriminatorBlock(4, 8, 16, 3, 'skip', is_top=True),
    'DiscriminatorEpilogue': lambda: networks.DiscriminatorEpilogue(8, 8, 3, 2, 'skip'),
    'Discriminator': lambda: networks.Discriminator(c_dim=2, architecture='orig', **_NET),
    'GrowingSynthesisNetwork': lambda: networks.GrowingSynthesisNetwork(w_dim=8, **_NET),
    'GrowingGenerator': lambda: networks.GrowingGenerator(truncation_psi=0.7, **_G),
    'GrowingDiscriminator': lambda: networks.GrowingDiscriminator(**_NET),
    'StyleGANDense': lambda: stylegan1.StyleGANDense(4, gain=1.0, activation='lrelu'),
    'StyleGANConv2D': lambda: stylegan1.StyleGANConv2D(4, 3, resample='up', fused_scale=True),
    'StyleGANConvLayer': lambda: stylegan1.StyleGANConvLayer(4, 3, down=True,
                                                             blur_filter=(1, 2, 1)),
    'StyleGANSynthesisLayer': lambda: stylegan1.StyleGANSynthesisLayer(4, 8, 8, kind='up'),
    'StyleGANSynthesisBlock': lambda: stylegan1.StyleGANSynthesisBlock(8, 4, 8, 8, 3),
    'StyleGANSynthesisNetwork': lambda: networks.StyleGANSynthesisNetwork(w_dim=8, **_NET),
    'StyleGANMapping': lambda: networks.StyleGANMapping(z_dim=8, w_dim=8, num_ws=4,
                                                        num_layers=2, layer_dim=8),
    'StyleGANGenerator': lambda: networks.StyleGANGenerator(truncation_cutoff=4, **_G),
    'StyleGANDiscriminator': lambda: networks.StyleGANDiscriminator(**_NET),
}

_FRESH_LOAD = '''
import sys
{imports}
assert 'tensorflow' in sys.modules
import numpy as np
path, io_path = sys.argv[1:]
K = keras.models.load_model(path)
assert type(K).__module__ == 'sg2tf.networks.generator', type(K)
inputs = dict(np.load(io_path))
np.save(io_path + '.out.npy', K(inputs['z'], inputs['c'], truncation_psi=0.8,
                                noise_mode='const').numpy())
print('FRESH_LOAD_OK')
'''


def _registered():
  return sorted(k.split('>', 1)[1] for k in keras.saving.get_custom_objects()
                if k.startswith('sg2tf>'))


class RegistrationTest(tf.test.TestCase, parameterized.TestCase):

  def test_every_layer_and_network_is_registered(self):
    # The concrete Keras classes of layers.py and sg2tf.networks (the bases are abstract).
    classes = set()
    for mod in (layers, networks, stylegan1):
      for name in dir(mod):
        obj = getattr(mod, name)
        if (isinstance(obj, type) and issubclass(obj, keras.layers.Layer)
            and obj.__module__.startswith('sg2tf.') and not name.endswith('Base')):
          classes.add(name)
    self.assertCountEqual(_registered(), classes)
    self.assertCountEqual(_FACTORIES, classes)
    for name in classes:
      cls = keras.saving.get_registered_object(f'sg2tf>{name}')
      self.assertEqual(keras.saving.get_registered_name(cls), f'sg2tf>{name}')

  @parameterized.named_parameters((n, n) for n in sorted(_FACTORIES))
  def test_config_round_trip(self, name):
    obj = _FACTORIES[name]()
    cls = keras.saving.get_registered_object(f'sg2tf>{name}')
    self.assertIs(type(obj), cls)
    config = obj.get_config()
    again = cls.from_config(config)
    self.assertEqual(again.get_config(), config)
    # Through Keras' own (de)serialisation, by registered name.
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    self.assertIs(type(again), cls)
    self.assertEqual(again.get_config(), config)
    if obj.built:  # The networks build themselves: the same variables.
      self.assertEqual([(v.path, tuple(v.shape)) for v in again.variables],
                       [(v.path, tuple(v.shape)) for v in obj.variables])

  def _summary(self, net):
    out = io.StringIO()
    net.summary(print_fn=lambda s, **_: out.write(s + '\n'))
    return out.getvalue()

  def test_summary_shows_shapes(self):
    G = networks.Generator(**_G)
    text = self._summary(G)
    self.assertNotIn('?', text)
    self.assertIn('(None, 16, 16, 3)', text)  # synthesis
    self.assertIn('(None, 6, 8)', text)  # mapping
    D = networks.Discriminator(**_NET)
    text = self._summary(D)
    self.assertNotIn('?', text)
    for shape in ('(None, 8, 8, 8)', '(None, 4, 4, 8)', '(None, 1)'):
      self.assertIn(shape, text)
    for net in (networks.GrowingGenerator(**_G), networks.StyleGANGenerator(**_G),
                networks.GrowingDiscriminator(**_NET), networks.StyleGANDiscriminator(**_NET)):
      text = self._summary(net)
      self.assertNotIn('?', text, type(net).__name__)
      self.assertIn('(None, 1)' if 'Discriminator' in type(net).__name__ else
                    '(None, 16, 16, 3)', text)

  def test_output_shapes_are_those_of_the_call(self):
    G = networks.Generator(**_G)
    z = tf.zeros([2, 8])
    self.assertEqual(G.compute_output_shape((None, 8)), (None, 16, 16, 3))
    self.assertEqual(tuple(G(z).shape[1:]), G.compute_output_shape((2, 8))[1:])
    ws = G.mapping(z)
    self.assertEqual(tuple(ws.shape), G.mapping.compute_output_shape((2, 8)))
    x = img = None
    for blk in G.synthesis.blocks:
      x, img = blk(x, img, ws[:, :blk.num_ws])
      want_x, want_img = blk.compute_output_shape((2, blk.num_ws, 8))
      self.assertEqual((tuple(x.shape), tuple(img.shape)), (want_x, want_img))
    D = networks.Discriminator(architecture='orig', **_NET)
    x = None
    img = tf.zeros([2, 16, 16, 3])
    for blk in D.blocks:
      x, _ = blk(x, img)
      img = None
      self.assertEqual(tuple(x.shape), blk.compute_output_shape((2,) + tuple(x.shape[1:])))


class FreshProcessLoadTest(tf.test.TestCase, parameterized.TestCase):
  """`import sg2tf` then `keras.models.load_model` on an exported generator.keras."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='test_keras_registration_')
    cls.G = tiny_generator(c_dim=3, seed=2)
    # What `--keras` writes (export_generator(..., keras_file=True) calls it; test_export
    # loads that file too), without tracing a SavedModel here.
    cls.path = os.path.join(cls.tmp, export.KERAS_FILE)
    export.save_keras(cls.G, cls.path)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_load_keras_equals_original(self):
    z, c = np.random.RandomState(1).randn(3, 16).astype(np.float32), np.eye(3, dtype='float32')
    K = export.load_keras(self.path)
    self.assertAllClose(K(z, c, truncation_psi=0.8, noise_mode='const'),
                        self.G(z, c, truncation_psi=0.8, noise_mode='const'), atol=1e-5)

  @parameterized.named_parameters(
      ('sg2tf_first', 'import sg2tf\nassert "tensorflow" not in sys.modules\nimport keras'),
      ('keras_first', 'import keras\nimport sg2tf'))
  def test_load_model_in_fresh_process(self, imports):
    z, c = np.random.RandomState(1).randn(3, 16).astype(np.float32), np.eye(3, dtype='float32')
    io_path = os.path.join(self.tmp, f'io_{self.id().rsplit("_", 1)[-1]}.npz')
    np.savez(io_path, z=z, c=c)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    code = textwrap.dedent(_FRESH_LOAD).format(imports=imports)
    proc = subprocess.run([sys.executable, '-c', code, self.path, io_path], capture_output=True,
                          text=True, env=env, cwd=os.path.dirname(os.path.dirname(__file__)),
                          timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr[-4000:])
    self.assertIn('FRESH_LOAD_OK', proc.stdout)
    self.assertNotIn('could not register', proc.stderr)
    self.assertAllClose(np.load(io_path + '.out.npy'),
                        self.G(z, c, truncation_psi=0.8, noise_mode='const'), atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
