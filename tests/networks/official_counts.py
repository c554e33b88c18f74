"""The trainable variables (name, shape) of the official graphs, enumerated independently of
sg2tf's networks by reading the official build functions: NVlabs/stylegan2
training/networks_stylegan2.py (G_mapping, G_synthesis_stylegan_revised, D_stylegan) and
training/networks_stylegan.py (G_mapping, G_synthesis, D_basic, also in NVlabs/stylegan).

Each function lists, in the order the build function creates them, the variables it makes
with tf.get_variable that are trainable (not lod, dlatent_avg or the noise buffers), with the
official feature-map formula nf(stage). tests/networks/test_growing.py checks these lists
against the variable manifest of the official pickles in ../shared/fixtures/official_growing
(written by NVIDIA's code), then uses them at 1024x1024.
"""

import numpy as np


def nf_stylegan2(base, stage, fmap_max=512, fmap_min=1, decay=1.0):
  return int(np.clip(int(base / 2.0 ** (stage * decay)), fmap_min, fmap_max))


def nf_stylegan(base, stage, fmap_max=512, decay=1.0):
  return min(int(base / 2.0 ** (stage * decay)), fmap_max)


def mapping(z=512, w=512, fmaps=512, layers=8, c=0):
  """G_mapping (both repositories define the same variables)."""
  out = [('LabelConcat/weight', (c, z))] if c else []
  fin = 2 * z if c else z
  for i in range(layers):
    fo = w if i == layers - 1 else fmaps
    out += [(f'Dense{i}/weight', (fin, fo)), (f'Dense{i}/bias', (fo,))]
    fin = fo
  return out


def revised_synthesis(res=1024, w=512, base=8192, fmap_max=512, ch=3):
  """G_synthesis_stylegan_revised: modulated layers, a ToRGB_lod<k> per resolution."""
  log2 = int(np.log2(res))
  nf = lambda s: nf_stylegan2(base, s, fmap_max)

  def layer(scope, fin, fo):
    return [(f'{scope}/weight', (3, 3, fin, fo)), (f'{scope}/mod_weight', (w, fin)),
            (f'{scope}/mod_bias', (fin,)), (f'{scope}/noise_strength', ()), (f'{scope}/bias', (fo,))]

  def torgb(r, fin):
    s = f'ToRGB_lod{log2 - r}'
    return [(f'{s}/weight', (1, 1, fin, ch)), (f'{s}/mod_weight', (w, fin)),
            (f'{s}/mod_bias', (fin,)), (f'{s}/bias', (ch,))]

  out = [('4x4/Const/const', (1, nf(1), 4, 4))] + layer('4x4/Conv', nf(1), nf(1)) + torgb(2, nf(1))
  for r in range(3, log2 + 1):
    s = f'{2 ** r}x{2 ** r}'
    out += layer(f'{s}/Conv0_up', nf(r - 2), nf(r - 1)) + layer(f'{s}/Conv1', nf(r - 1), nf(r - 1))
    out += torgb(r, nf(r - 1))
  return out


def _d_body(res, nf, ch, out_name, c):
  log2 = int(np.log2(res))
  out = []
  for r in range(log2, 1, -1):
    s = f'FromRGB_lod{log2 - r}'
    out += [(f'{s}/weight', (1, 1, ch, nf(r - 1))), (f'{s}/bias', (nf(r - 1),))]
  for r in range(log2, 2, -1):
    s = f'{2 ** r}x{2 ** r}'
    out += [(f'{s}/Conv0/weight', (3, 3, nf(r - 1), nf(r - 1))), (f'{s}/Conv0/bias', (nf(r - 1),)),
            (f'{s}/Conv1_down/weight', (3, 3, nf(r - 1), nf(r - 2))),
            (f'{s}/Conv1_down/bias', (nf(r - 2),))]
  return out + [('4x4/Conv/weight', (3, 3, nf(1) + 1, nf(1))), ('4x4/Conv/bias', (nf(1),)),
                ('4x4/Dense0/weight', (nf(1) * 16, nf(0))), ('4x4/Dense0/bias', (nf(0),)),
                (f'{out_name}/weight', (nf(0), max(c, 1))), (f'{out_name}/bias', (max(c, 1),))]


def d_stylegan(res=1024, base=8192, fmap_max=512, ch=3, c=0):
  """D_stylegan: FromRGB_lod<k> per resolution, Conv0 / Conv1_down, mbstd epilogue, Output."""
  return _d_body(res, lambda s: nf_stylegan2(base, s, fmap_max), ch, 'Output', c)


def style_synthesis(res=1024, w=512, base=8192, fmap_max=512, ch=3):
  """StyleGAN's G_synthesis: per layer Noise/weight, bias, StyleMod; ToRGB_lod<k>."""
  log2 = int(np.log2(res))
  nf = lambda s: nf_stylegan(base, s, fmap_max)

  def epi(scope, c):
    return [(f'{scope}/Noise/weight', (c,)), (f'{scope}/bias', (c,)),
            (f'{scope}/StyleMod/weight', (w, 2 * c)), (f'{scope}/StyleMod/bias', (2 * c,))]

  def torgb(r, fin):
    s = f'ToRGB_lod{log2 - r}'
    return [(f'{s}/weight', (1, 1, fin, ch)), (f'{s}/bias', (ch,))]

  out = [('4x4/Const/const', (1, nf(1), 4, 4))] + epi('4x4/Const', nf(1))
  out += [('4x4/Conv/weight', (3, 3, nf(1), nf(1)))] + epi('4x4/Conv', nf(1)) + torgb(2, nf(1))
  for r in range(3, log2 + 1):
    s = f'{2 ** r}x{2 ** r}'
    out += [(f'{s}/Conv0_up/weight', (3, 3, nf(r - 2), nf(r - 1)))] + epi(f'{s}/Conv0_up', nf(r - 1))
    out += [(f'{s}/Conv1/weight', (3, 3, nf(r - 1), nf(r - 1)))] + epi(f'{s}/Conv1', nf(r - 1))
    out += torgb(r, nf(r - 1))
  return out


def d_basic(res=1024, base=8192, fmap_max=512, ch=3, c=0):
  """D_basic: as D_stylegan, but StyleGAN's nf() and the logits from 4x4/Dense1."""
  return _d_body(res, lambda s: nf_stylegan(base, s, fmap_max), ch, '4x4/Dense1', c)


def count(variables):
  return sum(int(np.prod(s)) for _, s in variables)
