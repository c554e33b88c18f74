"""ADA augmentation pipeline: identity at p = 0, each transformation's matrix against NumPy,
the executed transforms against NumPy, the warp's exact gradient, gradients to G, XLA."""

import math

from absl.testing import parameterized
import numpy as np
import scipy.ndimage
import tensorflow as tf

from sg2tf.training import augment
from sg2tf.training import config as config_lib
from tests.training.tiny import tiny_d, tiny_g

SEED = tf.constant([7, 11], tf.int64)


def smooth_images(n=2, size=16, channels=3, seed=0):
  """Band-limited images in about [-1, 1] (the 2x low-pass resampling keeps them)."""
  rnd = np.random.RandomState(seed)
  low = rnd.uniform(-1, 1, [n, 4, 4, channels]).astype(np.float32)
  return tf.constant(tf.image.resize(low, [size, size], 'bicubic').numpy())


def forced(pipe_mult, values):
  """Parameters with every gate open (uniform 0 < any positive probability)."""
  n = len(next(iter(values.values())))
  params = {'n': tf.zeros([n])}
  for name, value in values.items():
    params[name] = (tf.zeros([n]), tf.constant(value, tf.float32))
  return augment.AugmentPipe(pipe_mult), params


# NumPy constructions of the same matrices (homogeneous, column vectors).
def np_translate(tx, ty):
  return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], np.float64)


def np_scale(sx, sy):
  return np.diag([sx, sy, 1.0])


def np_rotate(t):
  return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])


class PipelineTest(tf.test.TestCase, parameterized.TestCase):

  def test_pipeline_names(self):
    self.assertCountEqual(augment.PIPELINES, config_lib.AUG_PIPES)
    self.assertEqual(augment.PIPELINES['bgc'], {**augment.PIPELINES['blit'],
                                                **augment.PIPELINES['geom'],
                                                **augment.PIPELINES['color']})
    with self.assertRaisesRegex(ValueError, 'unknown augmentation pipeline'):
      augment.AugmentPipe('bgx')

  @parameterized.parameters(('bgcfnc', tf.float32), ('bgcfnc', tf.float16), ('bg', tf.float32))
  def test_p0_is_identity_bit_exact(self, name, dtype):
    x = tf.cast(smooth_images(2, 32), dtype)
    pipe = augment.AugmentPipe(name)
    params = pipe.sample(SEED, 2, (32, 32, 3))
    y = pipe(x, params, tf.constant(0.0))
    self.assertEqual(y.dtype, dtype)
    self.assertAllEqual(y.numpy().view(np.uint16 if dtype == tf.float16 else np.uint32),
                        x.numpy().view(np.uint16 if dtype == tf.float16 else np.uint32))
    # And with p = 1 every stage runs and changes the images.
    self.assertGreater(float(tf.reduce_mean(tf.abs(tf.cast(pipe(x, params, 1.0) - x,
                                                           tf.float32)))), 0.1)

  def test_sampling_is_per_sample_and_independent_of_p(self):
    pipe = augment.AugmentPipe('bgc')
    a = pipe.sample(SEED, 4, (16, 16, 3))
    b = pipe.sample(SEED, 4, (16, 16, 3))
    for k in a:
      tf.nest.map_structure(self.assertAllEqual, a[k], b[k])
    gates = np.stack([a[k][0].numpy() for k in a if k != 'n'])
    self.assertEqual(len(np.unique(gates)), gates.size)  # Independent uniform draws.

  # ------------------------------------------------------------------ matrices vs NumPy

  def test_geometric_matrices(self):
    w, h = 16, 12
    cases = {
        'xflip': ([0.0, 1.0], lambda i: np_scale(1 - 2 * i, 1)),
        'rotate90': ([1.0, 3.0], lambda i: np.linalg.inv(np_rotate(-math.pi / 2 * i))),
        'xint': ([[0.1, -0.05], [0.125, 0.0]],
                 lambda t: np.linalg.inv(np_translate(np.round(t[0] * w), np.round(t[1] * h)))),
        'scale': ([1.3, 0.7], lambda s: np.linalg.inv(np_scale(s, s))),
        'aniso': ([1.2, 0.9], lambda s: np.linalg.inv(np_scale(s, 1 / s))),
        'xfrac': ([[0.05, -0.1], [0.01, 0.2]],
                  lambda t: np.linalg.inv(np_translate(t[0] * w, t[1] * h))),
    }
    for name, (values, build) in cases.items():
      pipe, params = forced({name: 1}, {name: values})
      got = augment.geometric_matrix(params, 1.0, pipe.mult, w, h).numpy()
      for i, v in enumerate(values):
        self.assertAllClose(got[i], build(np.asarray(v)), atol=1e-6, msg=name)
    # Rotation before and after the anisotropic scaling: G_inv = R(-a)^-1 S^-1 R(-b)^-1 for
    # pre-rotation angle a, aniso s and post-rotation angle b (the inverses in pipeline order).
    pipe, params = forced({'rotate': 1, 'aniso': 1},
                          {'rotate_pre': [0.3], 'aniso': [1.4], 'rotate_post': [-1.1]})
    got = augment.geometric_matrix(params, 1.0, pipe.mult, w, h).numpy()[0]
    inv = np.linalg.inv
    self.assertAllClose(got, inv(np_rotate(-0.3)) @ inv(np_scale(1.4, 1 / 1.4)) @
                        inv(np_rotate(1.1)), atol=1e-6)

  def test_rotation_probability(self):
    # P(pre or post rotation) = p for each sample: 1 - (1 - p_rot)^2 with p_rot = 1-sqrt(1-p).
    pipe = augment.AugmentPipe({'rotate': 1})
    params = pipe.sample(SEED, 4000, (8, 8, 1))
    g = augment.geometric_matrix(params, 0.3, pipe.mult, 8, 8).numpy()
    rotated = np.mean(np.abs(g[:, 0, 1]) > 0)
    self.assertAllClose(rotated, 0.3, atol=0.025)

  def test_color_matrices(self):
    v = np.array([1, 1, 1, 0]) / math.sqrt(3)
    vv = np.outer(v, v)
    eye = np.eye(4)

    def rodrigues(t):
      k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
      r = np.eye(4)
      r[:3, :3] = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k
      return r

    cases = {
        'brightness': ([0.2, -0.3], lambda b: np.array([[1, 0, 0, b], [0, 1, 0, b],
                                                         [0, 0, 1, b], [0, 0, 0, 1.0]])),
        'contrast': ([1.5, 0.6], lambda c: np.diag([c, c, c, 1.0])),
        'lumaflip': ([1.0, 0.0], lambda i: eye - 2 * vv * i),
        'hue': ([0.7, -2.0], rodrigues),
        'saturation': ([2.0, 0.3], lambda s: vv + (eye - vv) * s),
    }
    for name, (values, build) in cases.items():
      pipe, params = forced({name: 1}, {name: values})
      got = augment.color_matrix(params, 1.0, pipe.mult, 3).numpy()
      for i, val in enumerate(values):
        self.assertAllClose(got[i], build(val), atol=1e-6, msg=name)
    # Order: C = S H L Ct B (brightness applied first).
    values = {'brightness': [0.1], 'contrast': [1.3], 'lumaflip': [1.0], 'hue': [0.4],
              'saturation': [0.5]}
    pipe, params = forced({k: 1 for k in values}, values)
    got = augment.color_matrix(params, 1.0, pipe.mult, 3).numpy()[0]
    want = ((vv + (eye - vv) * 0.5) @ rodrigues(0.4) @ (eye - 2 * vv) @
            np.diag([1.3, 1.3, 1.3, 1]) @ cases['brightness'][1](0.1))
    self.assertAllClose(got, want, atol=1e-6)
    # Grayscale: no hue / saturation.
    self.assertAllClose(augment.color_matrix(params, 1.0, pipe.mult, 1).numpy()[0],
                        (eye - 2 * vv) @ np.diag([1.3, 1.3, 1.3, 1]) @
                        cases['brightness'][1](0.1), atol=1e-6)

  def test_filter_bank_and_gains(self):
    bank = augment.filter_bank()
    self.assertEqual(bank.shape, (4, 43))
    impulse = np.zeros(43)
    impulse[21] = 1
    self.assertAllClose(bank.sum(0), impulse, atol=1e-12)  # Unit gains: the identity.
    self.assertAllClose(bank, bank[:, ::-1], atol=1e-12)  # Symmetric (zero phase).
    pipe, params = forced({'imgfilter': 1}, {f'imgfilter{i}': [2.0 if i == 2 else 1.0]
                                             for i in range(4)})
    g = augment.filter_gains(params, 1.0, pipe.mult).numpy()[0]
    t = np.array([1, 1, 2.0, 1])
    self.assertAllClose(g, t / np.sqrt(np.sum(augment.EXPECTED_POWER * t ** 2)), rtol=1e-6)

  # ------------------------------------------------------------------ execution vs NumPy

  @parameterized.parameters(False, True)
  def test_blit_against_numpy(self, xla):
    x = smooth_images(2, 32)
    xn = x.numpy()
    cases = [({'xflip': [1.0, 1.0]}, xn[:, :, ::-1]),
             ({'rotate90': [1.0, 1.0]}, np.rot90(xn, 1, axes=(1, 2))),
             ({'rotate90': [2.0, 2.0]}, xn[:, ::-1, ::-1])]
    for values, want in cases:
      pipe, params = forced(dict.fromkeys(values, 1), values)
      pipe = augment.AugmentPipe(pipe.mult, xla=xla)
      self.assertAllClose(pipe(x, params, 1.0), want, atol=0.01)
    # Integer translation by (3, -2) px: exact away from the reflected border.
    pipe, params = forced({'xint': 1}, {'xint': [[3 / 32, -2 / 32]] * 2})
    pipe = augment.AugmentPipe(pipe.mult, xla=xla)
    y = pipe(x, params, 1.0).numpy()
    self.assertAllClose(y[:, :-2, 3:], xn[:, 2:, :-3], atol=1e-5)
    # The reflected border (tf.pad REFLECT, edge not repeated).
    pad = np.pad(xn, [[0, 0], [0, 2], [3, 0], [0, 0]], mode='reflect')
    self.assertAllClose(y, pad[:, 2:, :32], atol=1e-5)

  def test_general_geometric_against_scipy(self):
    # Scaling and rotation of a smooth image against scipy's spline resampling of the same
    # inverse matrix (interior pixels; the pipeline's low-pass filtering costs ~1e-2).
    x = smooth_images(1, 32, channels=1)
    values = {'scale': [1.25], 'rotate_pre': [0.5], 'rotate_post': [0.0], 'aniso': [1.0]}
    pipe, params = forced({'scale': 1, 'rotate': 1, 'aniso': 1}, values)
    g = augment.geometric_matrix(params, 1.0, pipe.mult, 32, 32).numpy()[0]
    y = pipe(x, params, 1.0).numpy()[0, :, :, 0]
    c = 15.5
    # scipy works in (row, col) = (y, x): swap the axes of G_inv around the centre.
    m = g[[1, 0]][:, [1, 0]]
    offset = np.array([c, c]) - m @ np.array([c, c])
    want = scipy.ndimage.affine_transform(x.numpy()[0, :, :, 0], m, offset=offset, order=3,
                                          mode='mirror')
    self.assertAllClose(y[6:-6, 6:-6], want[6:-6, 6:-6], atol=0.03)

  def test_color_filter_noise_cutout_execution(self):
    x = smooth_images(2, 32)
    xn = x.numpy()
    values = {'brightness': [0.1, -0.2], 'saturation': [0.5, 2.0]}
    pipe, params = forced(dict.fromkeys(values, 1), values)
    cm = augment.color_matrix(params, 1.0, pipe.mult, 3).numpy()
    want = np.einsum('nij,nhwj->nhwi', cm[:, :3, :3], xn) + cm[:, None, None, :3, 3]
    self.assertAllClose(pipe(x, params, 1.0), want, atol=1e-5)
    gray = x[..., :1]
    pipe1, params1 = forced({'contrast': 1}, {'contrast': [1.5, 0.5]})
    self.assertAllClose(pipe1(gray, params1, 1.0), gray.numpy() * np.array([1.5, 0.5])[:, None,
                                                                               None, None],
                        atol=1e-6)
    # Filter: per-sample separable filter, reflect padding (scipy's 'mirror' mode).
    gains = {f'imgfilter{i}': [1.0, 3.0 if i == 3 else 0.5] for i in range(4)}
    pipe, params = forced({'imgfilter': 1}, gains)
    y = pipe(x, params, 1.0).numpy()
    k = augment.filter_gains(params, 1.0, pipe.mult).numpy() @ augment.filter_bank()
    self.assertAllClose(y[0], xn[0], atol=1e-5)  # Unit gains.
    want = scipy.ndimage.convolve1d(scipy.ndimage.convolve1d(xn[1], k[1], axis=0,
                                                             mode='mirror'),
                                    k[1], axis=1, mode='mirror')
    self.assertAllClose(y[1], want, atol=1e-4)
    # Noise: sigma per sample times the drawn pixel noise.
    pipe = augment.AugmentPipe('noise')
    params = pipe.sample(SEED, 2, (32, 32, 3))
    params['noise'] = (tf.zeros([2]), tf.constant([0.0, 0.3]))
    y = pipe(x, params, 1.0).numpy()
    self.assertAllClose(y, xn + params['noise_pixels'].numpy() *
                        np.array([0, 0.3])[:, None, None, None], atol=1e-6)
    # Cutout: a half-size rectangle around the centre set to 0.
    pipe = augment.AugmentPipe('cutout')
    params = pipe.sample(SEED, 2, (32, 32, 3))
    params['cutout_center'] = tf.constant([[0.5, 0.5], [0.0, 1.0]])
    y = pipe(x, params, 1.0).numpy()
    mask = np.ones([2, 32, 32, 1])
    mask[0, 8:24, 8:24] = 0
    mask[1, 24:, :8] = 0
    self.assertAllEqual(y, xn * mask)

  # ------------------------------------------------------------------ warp and gradients

  def test_warp_matches_image_projective_transform_and_has_exact_gradient(self):
    rnd = np.random.RandomState(0)
    x = tf.constant(rnd.randn(2, 7, 9, 2).astype(np.float32))
    m = tf.constant([[[1.3, -0.4, 1.2], [0.3, 0.8, -0.7], [0, 0, 1]],
                     [[0.6, 0.1, 3.3], [-0.2, 1.7, 2.1], [0, 0, 1]]], tf.float32)
    fast = augment.warp(x, m, [8, 6])
    ref = augment.warp(x, m, [8, 6], xla=True)
    self.assertAllClose(fast, ref, atol=1e-5)
    # The adjoint against finite differences (a small case: one column per input pixel),
    # where TF's own gradient of the op (the inverse warp) is visibly off.
    small, m1 = x[:1, :4, :5, :1], m[:1]
    warp_fn = tf.function(lambda v: augment.warp(v, m1, [5, 4]))
    theoretical, numerical = tf.test.compute_gradient(warp_fn, [small], delta=1e-2)
    self.assertAllClose(theoretical[0], numerical[0], atol=2e-3)
    with tf.GradientTape() as tape:
      tape.watch(small)
      y = tf.raw_ops.ImageProjectiveTransformV3(
          images=small, transforms=tf.reshape(m1, [1, 9])[:, :8], output_shape=[5, 4],
          fill_value=0.0, interpolation='BILINEAR', fill_mode='CONSTANT')
    tf_grad = tape.gradient(y, small).numpy().ravel()
    self.assertGreater(np.abs(tf_grad - numerical[0].sum(0)).max(), 0.1)
    # Second order (R1 through the warp): the two forms agree.
    dy = tf.constant(rnd.randn(2, 8, 6, 2).astype(np.float32))
    out = []
    for xla in (False, True):  # And the XLA form (autodiff of gathers) gives the same.
      with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
          inner.watch(x)
          loss = tf.reduce_sum(augment.warp(x, m, [8, 6], xla=xla) * dy)
        g = inner.gradient(loss, x)
        loss2 = tf.reduce_sum(tf.square(g) * x)
      out.append(outer.gradient(loss2, x))
    self.assertAllClose(out[0], out[1], atol=1e-5)

  def test_xla_pipeline_matches(self):
    x = smooth_images(2, 16)
    mult = {k: 1 for k in augment.TRANSFORMS if k != 'imgfilter'}  # (filter: >= 22x22)
    pipe = augment.AugmentPipe(mult)
    pipe_xla = augment.AugmentPipe(mult, xla=True)
    params = pipe.sample(SEED, 2, (16, 16, 3))
    fn = tf.function(lambda v: pipe_xla(v, params, tf.constant(0.7)), jit_compile=True)
    self.assertAllClose(pipe(x, params, 0.7), fn(x), atol=1e-4)

  def test_gradients_flow_to_G_through_augmented_fakes(self):
    G, D = tiny_g(), tiny_d(mbstd=1)
    pipe = augment.AugmentPipe('bgc')
    z = tf.random.stateless_normal([4, 8], [1, 2])
    params = pipe.sample(SEED, 4, (8, 8, 1))
    grads = {}
    for p in (0.0, 1.0):
      with tf.GradientTape() as tape:
        logits = D(pipe(G(z, impl='ref'), params, p), impl='ref')
        loss = tf.reduce_sum(tf.nn.softplus(-logits))
      grads[p] = tape.gradient(loss, G.trainable_variables)
    for g0, g1 in zip(grads[0.0], grads[1.0]):
      self.assertIsNotNone(g1)
      self.assertTrue(np.all(np.isfinite(g1.numpy())))
    diff = sum(float(tf.reduce_sum(tf.abs(a - b))) for a, b in zip(grads[0.0], grads[1.0]))
    total = sum(float(tf.reduce_sum(tf.abs(b))) for b in grads[1.0])
    self.assertGreater(total, 0)
    self.assertGreater(diff, 1e-3 * total)  # The augmentation is part of the gradient path.

  def test_check_shape(self):
    with self.assertRaisesRegex(ValueError, 'filter augmentation needs images larger'):
      augment.AugmentPipe('bgcf').check_shape(16, 16, 3)
    with self.assertRaisesRegex(ValueError, '1 or 3 channels'):
      augment.AugmentPipe('color').check_shape(16, 16, 2)
    augment.AugmentPipe('bgc').check_shape(16, 16, 1)


if __name__ == '__main__':
  tf.test.main()
