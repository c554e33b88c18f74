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
