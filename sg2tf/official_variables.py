"""The trainable variables (name, shape) of the official progressive-growing graphs, enumerated
from the official build functions independently of sg2tf's networks: NVlabs/stylegan2
training/networks_stylegan2.py (G_mapping, G_synthesis_stylegan_revised, D_stylegan) and
training/networks_stylegan.py (G_mapping, G_synthesis, D_basic, also in NVlabs/stylegan).

Each function lists, in the order the build function creates them, the variables it makes
with tf.get_variable that are trainable (not lod, dlatent_avg or the noise buffers), with the
official feature-map formula nf(stage). Two users: the pickle importer checks a pickle's arrays
against what its static kwargs imply BEFORE building any network (`expected_shapes`), and the
tests count parameters at 1024x1024 with them (tests/networks/test_growing.py first checks the
lists against the variable manifest NVIDIA's code wrote for the official_growing fixtures).
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


def revised_synthesis(res=1024, w=512, base=8192, fmap_max=512, ch=3, fmap_min=1, decay=1.0):
  """G_synthesis_stylegan_revised: modulated layers, a ToRGB_lod<k> per resolution."""
  log2 = int(np.log2(res))
  nf = lambda s: nf_stylegan2(base, s, fmap_max, fmap_min, decay)

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


def _d_body(res, nf, ch, out_name, c, mbstd=1):
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
  return out + [('4x4/Conv/weight', (3, 3, nf(1) + mbstd, nf(1))), ('4x4/Conv/bias', (nf(1),)),
                ('4x4/Dense0/weight', (nf(1) * 16, nf(0))), ('4x4/Dense0/bias', (nf(0),)),
                (f'{out_name}/weight', (nf(0), max(c, 1))), (f'{out_name}/bias', (max(c, 1),))]


def d_stylegan(res=1024, base=8192, fmap_max=512, ch=3, c=0, fmap_min=1, decay=1.0, mbstd=1):
  """D_stylegan: FromRGB_lod<k> per resolution, Conv0 / Conv1_down, mbstd epilogue, Output."""
  return _d_body(res, lambda s: nf_stylegan2(base, s, fmap_max, fmap_min, decay), ch, 'Output',
                 c, mbstd)


def style_synthesis(res=1024, w=512, base=8192, fmap_max=512, ch=3, decay=1.0):
  """StyleGAN's G_synthesis: per layer Noise/weight, bias, StyleMod; ToRGB_lod<k>."""
  log2 = int(np.log2(res))
  nf = lambda s: nf_stylegan(base, s, fmap_max, decay)

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


def d_basic(res=1024, base=8192, fmap_max=512, ch=3, c=0, decay=1.0, mbstd=1):
  """D_basic: as D_stylegan, but StyleGAN's nf() and the logits from 4x4/Dense1."""
  return _d_body(res, lambda s: nf_stylegan(base, s, fmap_max, decay), ch, '4x4/Dense1', c,
                 mbstd)


def count(variables):
  return sum(int(np.prod(s)) for _, s in variables)


def expected_shapes(network_class: str, kw: dict) -> dict:
  """{official flattened name: shape} for the network a pickle's static kwargs describe.

  network_class: the sg2tf class the importer builds (GrowingGenerator, StyleGANGenerator,
  GrowingDiscriminator, StyleGANDiscriminator); kw: its constructor kwargs. Only shapes and
  names are computed (no arrays), so absurd kwargs (resolution 32768, 1e9 latents) cost nothing.
  """
  res, ch, base, fmax = kw['img_resolution'], kw['img_channels'], kw['fmap_base'], kw['fmap_max']
  decay = kw.get('fmap_decay', 1.0)
  if network_class in ('GrowingGenerator', 'StyleGANGenerator'):
    out = [('mapping/' + n, s) for n, s in mapping(kw['z_dim'], kw['w_dim'], kw['mapping_dim'],
                                                    kw['mapping_layers'], kw['c_dim'])]
    if network_class == 'GrowingGenerator':
      syn = revised_synthesis(res, kw['w_dim'], base, fmax, ch, kw.get('fmap_min', 1), decay)
    else:
      syn = style_synthesis(res, kw['w_dim'], base, fmax, ch, decay)
    return dict(out + [('synthesis/' + n, s) for n, s in syn])
  mbstd = kw['mbstd_num_features'] if kw.get('mbstd_group_size', 4) > 1 else 0
  if network_class == 'GrowingDiscriminator':
    return dict(d_stylegan(res, base, fmax, ch, kw['c_dim'], kw.get('fmap_min', 1), decay, mbstd))
  if network_class == 'StyleGANDiscriminator':
    return dict(d_basic(res, base, fmax, ch, kw['c_dim'], decay, mbstd))
  raise ValueError(f'expected_shapes: unknown network class {network_class!r}')
