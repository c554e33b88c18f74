"""Seeded parameter sweeps shared by the CPU op tests (test_upfirdn2d.py) and the GPU check
(tests/gpu/run_gpu_check.py), so both run the same cases. NumPy only: the GPU machines have
no TensorFlow."""

import numpy as np


def upfirdn2d_sweep(num=48, seed=1234):
  """A seeded sample of the issue's sweep: up/down in {1,2,4}, filters 1-8 taps (separable,
  2-D, asymmetric), positive/negative/asymmetric padding, flip, gain, odd sizes, N, C.

  Each case: testcase_name, n, h, w, c, up [x, y], down [x, y], fshape ((fw,) for a separable
  filter, else (fh, fw)), pad [x0, x1, y0, y1], flip, gain (the arguments of upfirdn2d()).
  """
  rng = np.random.RandomState(seed)
  cases = []
  for i in range(num):
    up = [int(rng.choice([1, 2, 4])), int(rng.choice([1, 2, 4]))]
    down = [int(rng.choice([1, 2, 4])), int(rng.choice([1, 2, 4]))]
    fh, fw = int(rng.randint(1, 9)), int(rng.randint(1, 9))
    kind = ['separable', '2d', '2d-square'][i % 3]
    h, w = int(rng.randint(3, 12)), int(rng.randint(3, 12))
    pad = [int(rng.randint(-2, 5)) for _ in range(4)]
    # Keep the output non-empty: the filter must fit in the padded, upsampled input.
    pad[1] = max(pad[1], fw - w * up[0] - pad[0])
    pad[3] = max(pad[3], fh - h * up[1] - pad[2])
    cases.append(dict(
        testcase_name=f'{i:02d}_{kind}_up{up[0]}{up[1]}_down{down[0]}{down[1]}_f{fh}x{fw}_p{"_".join(map(str, pad))}',
        n=int(rng.choice([1, 3])), h=h, w=w, c=int(rng.choice([1, 5])), up=up, down=down,
        fshape=(fw,) if kind == 'separable' else ((fh, fh) if kind == '2d-square' else (fh, fw)),
        pad=pad, flip=bool(rng.randint(2)), gain=float(rng.choice([1.0, 2.5]))))
  return cases


def upfirdn2d_wide_sweep(num=80, seed=2024):
  """Seeded cases at the kernel level (2-D filter, gain folded in), wider than
  upfirdn2d_sweep: sizes from 1, padding -4..6 per side, channel counts that take every
  vector path of the CPU kernel (1, 3, 8, 33, 64, 130), plus StyleGAN2's three uses of
  [1,3,3,1] (up 2, down 2, filter only) padded as upsample2d/downsample2d/filter2d pad them.

  Each case: the kernel's arguments n, in_h, in_w, c, fh, fw, upx, upy, downx, downy, padx0,
  padx1, pady0, pady1, flip.
  """
  rng = np.random.RandomState(seed)
  cases = []
  for _ in range(num):
    upx, upy, downx, downy = (int(rng.choice([1, 2, 4])) for _ in range(4))
    fh, fw = int(rng.randint(1, 9)), int(rng.randint(1, 9))
    h, w = int(rng.randint(1, 14)), int(rng.randint(1, 14))
    px0, px1, py0, py1 = (int(rng.randint(-4, 7)) for _ in range(4))
    px1 = max(px1, fw - w * upx - px0)
    py1 = max(py1, fh - h * upy - py0)
    cases.append(dict(n=int(rng.choice([1, 2, 3])), in_h=h, in_w=w,
                      c=int(rng.choice([1, 3, 8, 33, 64, 130])), fh=fh, fw=fw, upx=upx, upy=upy,
                      downx=downx, downy=downy, padx0=px0, padx1=px1, pady0=py0, pady1=py1,
                      flip=int(rng.randint(2))))
  for (up, down, p0, p1) in ((2, 1, 2, 1), (1, 2, 1, 1), (1, 1, 2, 1)):
    cases.append(dict(n=2, in_h=16, in_w=16, c=64, fh=4, fw=4, upx=up, upy=up, downx=down,
                      downy=down, padx0=p0, padx1=p1, pady0=p0, pady1=p1, flip=0))
  return cases
