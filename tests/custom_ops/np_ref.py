"""NumPy float64 references for the ops, independent of TF."""

import numpy as np


def np_upfirdn2d(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip=False, gain=1.0):
  """x: NHWC; f: 1-D (separable) or 2-D; up/down: (x, y); pad: (x0, x1, y0, y1)."""
  x = np.asarray(x, np.float64)
  f = np.asarray(f, np.float64)
  if f.ndim == 1:
    f = np.outer(f, f)
  f = f * gain
  upx, upy = up
  downx, downy = down
  px0, px1, py0, py1 = pad
  n, h, w, c = x.shape
  u = np.zeros((n, h * upy, w * upx, c))
  u[:, ::upy, ::upx] = x
  u = np.pad(u, ((0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0)), (0, 0)))
  u = u[:, max(-py0, 0):u.shape[1] - max(-py1, 0), max(-px0, 0):u.shape[2] - max(-px1, 0)]
  g = f if flip else f[::-1, ::-1]
  fh, fw = g.shape
  oh, ow = u.shape[1] - fh + 1, u.shape[2] - fw + 1
  out = np.zeros((n, oh, ow, c))
  for i in range(fh):
    for j in range(fw):
      out += u[:, i:i + oh, j:j + ow] * g[i, j]
  return out[:, ::downy, ::downx]


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


# NVIDIA's bias_act defaults (stylegan2-ada-pytorch torch_utils/ops/bias_act.py), written out
# here on purpose so that tests compare the library against them, not against itself:
# act -> (default alpha, default gain). elu's alpha is its saturation value (1 = the usual
# ELU, as torch.nn.functional.elu computes it in NVIDIA's table).
NVIDIA_DEFAULTS = {
    'linear': (0.0, 1.0),
    'relu': (0.0, np.sqrt(2)),
    'lrelu': (0.2, np.sqrt(2)),
    'tanh': (0.0, 1.0),
    'sigmoid': (0.0, 1.0),
    'elu': (1.0, 1.0),
    'selu': (0.0, 1.0),
    'softplus': (0.0, 1.0),
    'swish': (0.0, np.sqrt(2)),
}


def np_bias_act(x, b=None, axis=-1, act='linear', alpha=None, gain=None, clamp=None):
  """NumPy float64 reference of bias_act (independent of TF and of sg2tf's table)."""
  def_alpha, def_gain = NVIDIA_DEFAULTS[act]
  alpha = def_alpha if alpha is None else alpha
  gain = def_gain if gain is None else gain
  x = np.asarray(x, np.float64)
  if b is not None:
    shape = [1] * x.ndim
    shape[axis] = -1
    x = x + np.asarray(b, np.float64).reshape(shape)
  fn = {
      'linear': lambda v: v,
      'relu': lambda v: np.maximum(v, 0),
      'lrelu': lambda v: np.where(v > 0, v, v * alpha),
      'tanh': np.tanh,
      'sigmoid': lambda v: 1 / (1 + np.exp(-v)),
      'elu': lambda v: np.where(v >= 0, v, alpha * np.expm1(np.minimum(v, 0))),
      'selu': lambda v: SELU_SCALE * np.where(v > 0, v, SELU_ALPHA * np.expm1(np.minimum(v, 0))),
      'softplus': lambda v: np.logaddexp(0, v),
      'swish': lambda v: v / (1 + np.exp(-v)),
  }[act]
  y = fn(x) * gain
  if clamp is not None:
    y = np.clip(y, -clamp, clamp)
  return y


def np_act(act, v, alpha):
  """bias_act's activation `act` at the pre-activation v (before gain and clamp), and its
  first and second derivatives in v: (f, f', f''), float64."""
  v = np.asarray(v, np.float64)
  with np.errstate(over='ignore', invalid='ignore'):
    sg = 1 / (1 + np.exp(-v))
    t = np.tanh(v)
    em = np.exp(np.minimum(v, 0))
    return {
        'linear': lambda: (v, np.ones_like(v), np.zeros_like(v)),
        'relu': lambda: (np.maximum(v, 0), (v > 0) * 1.0, np.zeros_like(v)),
        'lrelu': lambda: (np.where(v > 0, v, alpha * v), np.where(v > 0, 1.0, alpha),
                          np.zeros_like(v)),
        'tanh': lambda: (t, 1 - t**2, -2 * t * (1 - t**2)),
        'sigmoid': lambda: (sg, sg * (1 - sg), sg * (1 - sg) * (1 - 2 * sg)),
        'elu': lambda: (np.where(v >= 0, v, alpha * (em - 1)), np.where(v >= 0, 1.0, alpha * em),
                        np.where(v >= 0, 0.0, alpha * em)),
        'selu': lambda: (SELU_SCALE * np.where(v > 0, v, SELU_ALPHA * (em - 1)),
                         SELU_SCALE * np.where(v > 0, 1.0, SELU_ALPHA * em),
                         SELU_SCALE * np.where(v > 0, 0.0, SELU_ALPHA * em)),
        'softplus': lambda: (np.logaddexp(0, v), sg, sg * (1 - sg)),
        'swish': lambda: (v * sg, sg * (1 + v * (1 - sg)), sg * (1 - sg) * (2 + v * (1 - 2 * sg))),
    }[act]()
