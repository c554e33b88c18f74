"""Import of the official progressive-growing network pickles (paper configs a-d).

Used by sg2tf.convert.load_official_pkl, which reads the pickle with its allow-list unpickler
and dispatches here by build function:
  - G_main with synthesis_func='G_synthesis_stylegan_revised' -> networks.GrowingGenerator
  - D_stylegan -> networks.GrowingDiscriminator                       (configs b-d)
  - G_style (StyleGAN's G_mapping + G_synthesis) -> networks.StyleGANGenerator
  - D_basic -> networks.StyleGANDiscriminator       (config a, StyleGAN's karras2019 pickles)
The stored `lod` is honoured: G's own lod (which the official G assigns to its synthesis
network before running) drives the imported G, D's own lod drives D. Names and layouts:
../shared/fixtures/official_growing/README.md and ../shared/fixtures/official_pkl/README.md.
"""

from absl import logging
import numpy as np

# Static kwargs of the official build functions. A G network's kwargs go to its mapping and
# synthesis functions too (which ignore what they do not know); graph-building-only kwargs
# are accepted and ignored.
_MAPPING = dict(latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
                mapping_nonlinearity='lrelu', normalize_latents=True, dtype='float32')
_REVISED = dict(dlatent_size=512, num_channels=3, resolution=1024, fmap_base=16 << 10,
                fmap_decay=1.0, fmap_min=1, fmap_max=512, randomize_noise=True,
                nonlinearity='lrelu', dtype='float32', resample_kernel=[1, 3, 3, 1],
                fused_modconv=True, structure='auto', is_template_graph=False,
                force_clean_graph=False)
_G_MAIN = dict(truncation_psi=0.5, truncation_cutoff=None, truncation_psi_val=None,
               truncation_cutoff_val=None, dlatent_avg_beta=0.995, style_mixing_prob=0.9,
               is_training=False, is_validation=False, return_dlatents=False,
               is_template_graph=False, components=None, mapping_func='G_mapping',
               synthesis_func='G_synthesis_stylegan2')
_D_STYLEGAN = dict(num_channels=3, resolution=1024, label_size=0, fmap_base=16 << 10,
                   fmap_decay=1.0, fmap_min=1, fmap_max=512, nonlinearity='lrelu',
                   mbstd_group_size=4, mbstd_num_features=1, dtype='float32',
                   resample_kernel=[1, 3, 3, 1], structure='auto', is_template_graph=False)
_SG1_MAPPING = dict(_MAPPING, use_wscale=True)
_SG1_SYNTHESIS = dict(dlatent_size=512, num_channels=3, resolution=1024, fmap_base=8192,
                      fmap_decay=1.0, fmap_max=512, use_styles=True, const_input_layer=True,
                      use_noise=True, randomize_noise=True, nonlinearity='lrelu',
                      use_wscale=True, use_pixel_norm=False, use_instance_norm=True,
                      dtype='float32', fused_scale='auto', blur_filter=[1, 2, 1],
                      structure='auto', is_template_graph=False, force_clean_graph=False)
_G_STYLE = dict(truncation_psi=0.7, truncation_cutoff=8, truncation_psi_val=None,
                truncation_cutoff_val=None, dlatent_avg_beta=0.995, style_mixing_prob=0.9,
                is_training=False, is_validation=False, is_template_graph=False,
                components=None)
_D_BASIC = dict(num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0,
                fmap_max=512, nonlinearity='lrelu', use_wscale=True, mbstd_group_size=4,
                mbstd_num_features=1, dtype='float32', fused_scale='auto',
                blur_filter=[1, 2, 1], structure='auto', is_template_graph=False)
# Variants of the StyleGAN networks sg2tf does not build (the official defaults are required).
_SG1_FIXED = dict(use_styles=True, const_input_layer=True, use_noise=True, use_wscale=True,
                  use_pixel_norm=False, use_instance_norm=True)
_STRUCTURES = ('auto', 'recursive', 'linear')  # 'fixed' ignores lod: not a growing network.


def _merged(fail, who, kwargs, *tables):
  known = set().union(*tables)
  unknown = sorted(set(kwargs) - known)
  if unknown:
    fail(f'{who}: unknown static kwargs {unknown}; sg2tf knows {sorted(known)}. The pickle was '
         'written by a different network definition.')
  out = {}
  for t in tables:
    out.update(t)
  out.update(kwargs)
  return out


def _check_consistent(fail, g_stub):
  for comp, sub in g_stub.components.items():
    for key in sorted(set(g_stub.static_kwargs) & set(sub.static_kwargs)):
      if g_stub.static_kwargs[key] != sub.static_kwargs[key]:
        fail(f'G and its {comp} component disagree on {key!r}: {g_stub.static_kwargs[key]!r} vs '
             f'{sub.static_kwargs[key]!r}')


def _common_checks(fail, who, k, activations):
  if k['nonlinearity'] not in activations:
    fail(f'{who}: nonlinearity {k["nonlinearity"]!r} is not supported ({sorted(activations)})')
  if k.get('structure', 'auto') not in _STRUCTURES:
    fail(f'{who}: structure={k["structure"]!r} is not a progressive-growing graph; sg2tf imports '
         f'structure in {_STRUCTURES}.')
  if k['dtype'] != 'float32':
    logging.warning('%s: network dtype %s; sg2tf computes in float32.', who, k['dtype'])


def _filter(fail, who, kernel):
  if kernel is None:
    return None
  k = np.asarray(kernel, dtype=np.float64)
  if k.ndim != 1 or k.size == 0:
    fail(f'{who}: the filter must be a 1-D list, got {kernel!r}')
  return [float(v) for v in k]


def _mapping_kwargs(mk):
  return dict(z_dim=int(mk['latent_size']), c_dim=int(mk['label_size']),
              w_dim=int(mk['dlatent_size']), mapping_layers=int(mk['mapping_layers']),
              mapping_dim=int(mk['mapping_fmaps']), mapping_lr_multiplier=float(mk['mapping_lrmul']),
              mapping_activation=mk['mapping_nonlinearity'],
              normalize_z=bool(mk['normalize_latents']))


def revised_generator_kwargs(fail, g_stub, activations):
  """GrowingGenerator kwargs from G_main(synthesis_func='G_synthesis_stylegan_revised')."""
  comps = g_stub.components
  gk = _merged(fail, f'{g_stub.name} (G_main)', g_stub.static_kwargs, _MAPPING, _REVISED, _G_MAIN)
  mk = _merged(fail, 'G_mapping', comps['mapping'].static_kwargs, _MAPPING, _REVISED, _G_MAIN)
  sk = _merged(fail, 'G_synthesis', comps['synthesis'].static_kwargs, _MAPPING, _REVISED, _G_MAIN)
  _check_consistent(fail, g_stub)
  if gk['mapping_func'] != 'G_mapping' or gk['synthesis_func'] != 'G_synthesis_stylegan_revised':
    fail(f'unsupported mapping_func/synthesis_func {gk["mapping_func"]!r}/'
         f'{gk["synthesis_func"]!r} (its synthesis component was built by '
         'G_synthesis_stylegan_revised)')
  if mk['dlatent_size'] != sk['dlatent_size']:
    fail(f'mapping dlatent_size {mk["dlatent_size"]} != synthesis {sk["dlatent_size"]}')
  _common_checks(fail, 'G_synthesis', sk, activations)
  if mk['mapping_nonlinearity'] not in activations:
    fail(f'G_mapping: nonlinearity {mk["mapping_nonlinearity"]!r} is not supported')
  kwargs = dict(_mapping_kwargs(mk), img_resolution=int(sk['resolution']),
                img_channels=int(sk['num_channels']), w_avg_beta=float(gk['dlatent_avg_beta']),
                fmap_base=int(sk['fmap_base']), fmap_decay=float(sk['fmap_decay']),
                fmap_min=int(sk['fmap_min']), fmap_max=int(sk['fmap_max']),
                activation=sk['nonlinearity'],
                resample_filter=_filter(fail, 'G_synthesis', sk['resample_kernel']) or [1.0, 1.0],
                truncation_psi=gk['truncation_psi'], truncation_cutoff=gk['truncation_cutoff'])
  return kwargs, mk['dlatent_broadcast']


def growing_discriminator_kwargs(fail, d_stub, activations):
  """GrowingDiscriminator kwargs from D_stylegan."""
  dk = _merged(fail, f'{d_stub.name} (D_stylegan)', d_stub.static_kwargs, _D_STYLEGAN)
  _common_checks(fail, 'D_stylegan', dk, activations)
  return dict(c_dim=int(dk['label_size']), img_resolution=int(dk['resolution']),
              img_channels=int(dk['num_channels']), fmap_base=int(dk['fmap_base']),
              fmap_decay=float(dk['fmap_decay']), fmap_min=int(dk['fmap_min']),
              fmap_max=int(dk['fmap_max']), activation=dk['nonlinearity'],
              mbstd_group_size=int(dk['mbstd_group_size']),
              mbstd_num_features=int(dk['mbstd_num_features']),
              resample_filter=_filter(fail, 'D_stylegan', dk['resample_kernel']) or [1.0, 1.0])


def _sg1_checks(fail, who, k):
  for key, want in _SG1_FIXED.items():
    if key in k and bool(k[key]) != want:
      fail(f'{who}: {key}={k[key]!r}; sg2tf builds the StyleGAN networks with the official '
           f'default {key}={want} only.')
  if k['fused_scale'] not in ('auto', True, False):
    fail(f'{who}: fused_scale={k["fused_scale"]!r} (expected auto, True or False)')


def style_generator_kwargs(fail, g_stub):
  """StyleGANGenerator kwargs from G_style."""
  comps = g_stub.components
  tables = (_SG1_MAPPING, _SG1_SYNTHESIS, _G_STYLE)
  gk = _merged(fail, f'{g_stub.name} (G_style)', g_stub.static_kwargs, *tables)
  mk = _merged(fail, 'G_mapping', comps['mapping'].static_kwargs, *tables)
  sk = _merged(fail, 'G_synthesis', comps['synthesis'].static_kwargs, *tables)
  _check_consistent(fail, g_stub)
  if mk['dlatent_size'] != sk['dlatent_size']:
    fail(f'mapping dlatent_size {mk["dlatent_size"]} != synthesis {sk["dlatent_size"]}')
  _common_checks(fail, 'G_synthesis', sk, ('lrelu', 'relu'))
  if mk['mapping_nonlinearity'] not in ('lrelu', 'relu'):
    fail(f'G_mapping: nonlinearity {mk["mapping_nonlinearity"]!r} is not supported')
  _sg1_checks(fail, 'G_mapping', mk)
  _sg1_checks(fail, 'G_synthesis', sk)
  cutoff = gk['truncation_cutoff']
  psi = gk['truncation_psi']
  if cutoff is None or psi is None or (cutoff is not None and cutoff <= 0):
    psi, cutoff = None, None  # Official G_style: either unset disables truncation.
  kwargs = dict(_mapping_kwargs(mk), img_resolution=int(sk['resolution']),
                img_channels=int(sk['num_channels']), w_avg_beta=float(gk['dlatent_avg_beta']),
                fmap_base=int(sk['fmap_base']), fmap_decay=float(sk['fmap_decay']),
                fmap_max=int(sk['fmap_max']), activation=sk['nonlinearity'],
                blur_filter=_filter(fail, 'G_synthesis', sk['blur_filter']),
                fused_scale=sk['fused_scale'], truncation_psi=psi, truncation_cutoff=cutoff)
  return kwargs, mk['dlatent_broadcast']


def basic_discriminator_kwargs(fail, d_stub):
  """StyleGANDiscriminator kwargs from D_basic."""
  dk = _merged(fail, f'{d_stub.name} (D_basic)', d_stub.static_kwargs, _D_BASIC)
  _common_checks(fail, 'D_basic', dk, ('lrelu', 'relu'))
  _sg1_checks(fail, 'D_basic', dk)
  return dict(c_dim=int(dk['label_size']), img_resolution=int(dk['resolution']),
              img_channels=int(dk['num_channels']), fmap_base=int(dk['fmap_base']),
              fmap_decay=float(dk['fmap_decay']), fmap_max=int(dk['fmap_max']),
              activation=dk['nonlinearity'], mbstd_group_size=int(dk['mbstd_group_size']),
              mbstd_num_features=int(dk['mbstd_num_features']),
              blur_filter=_filter(fail, 'D_basic', dk['blur_filter']),
              fused_scale=dk['fused_scale'])


# ------------------------------------------------------------------ variable maps

def _nchw_to_nhwc(v):
  return np.transpose(v, [0, 2, 3, 1])


def _mapping_vars(G):
  out = {'dlatent_avg': (G.mapping.w_avg, None)}
  for i, fc in enumerate(G.mapping.fcs):
    out[f'mapping/Dense{i}/weight'] = (fc.weight, None)
    out[f'mapping/Dense{i}/bias'] = (fc.bias, None)
  if G.mapping.c_dim:
    out['mapping/LabelConcat/weight'] = (G.mapping.embed, None)
  return out


def weight_and_bias(name, lyr):
  """{official name: (variable, None)} of a layer with `weight` and an optional `bias` (the
  discriminators' convolutions and dense layers: their shapes match after the NHWC kernel
  layout that the importer's general transform handles)."""
  out = {f'{name}/weight': (lyr.weight, None)}
  if lyr.bias is not None:
    out[f'{name}/bias'] = (lyr.bias, None)
  return out


def _mapping_and_noise_vars(G):
  out = _mapping_vars(G)
  for i, lyr in enumerate(G.synthesis.synthesis_layers):
    out[f'synthesis/noise{i}'] = (lyr.noise_const, _nchw_to_nhwc)
  return out


def _lod_name(net, res):
  return int(np.log2(net.img_resolution)) - int(np.log2(res))


def revised_generator_variable_map(G):
  """{official flattened name: (variable, transform)} for a GrowingGenerator (without lod)."""
  out = _mapping_and_noise_vars(G)
  syn = G.synthesis
  for blk in syn.blocks:
    r = blk.resolution
    scope = f'synthesis/{r}x{r}'
    if blk.is_first:
      out[f'{scope}/Const/const'] = (blk.const.const, _nchw_to_nhwc)
      convs = [('Conv', blk.conv1)]
    else:
      convs = [('Conv0_up', blk.conv0), ('Conv1', blk.conv1)]
    for name, lyr in convs:
      for v in ('weight', 'mod_weight', 'mod_bias'):
        out[f'{scope}/{name}/{v}'] = (getattr(lyr.conv, v), None)
      out[f'{scope}/{name}/noise_strength'] = (lyr.noise_strength, None)
      out[f'{scope}/{name}/bias'] = (lyr.bias, None)
    torgb = f'synthesis/ToRGB_lod{_lod_name(syn, r)}'
    for v in ('weight', 'mod_weight', 'mod_bias'):
      out[f'{torgb}/{v}'] = (getattr(blk.torgb.conv, v), None)
    out[f'{torgb}/bias'] = (blk.torgb.bias, None)
  return out


def growing_discriminator_variable_map(D):
  out = {}

  def conv(name, lyr):
    out.update(weight_and_bias(name, lyr))

  for blk in D.blocks:
    r = blk.resolution
    conv(f'FromRGB_lod{_lod_name(D, r)}', blk.fromrgb)
    conv(f'{r}x{r}/Conv0', blk.conv0)
    conv(f'{r}x{r}/Conv1_down', blk.conv1)
  conv(f'FromRGB_lod{_lod_name(D, 4)}', D.fromrgb4)
  ep = D.epilogue
  conv('4x4/Conv', ep.conv)
  conv('4x4/Dense0', ep.fc)  # NCHW flatten happens in the network: rows as stored.
  conv('Output', ep.out)
  return out


def style_generator_variable_map(G):
  out = _mapping_and_noise_vars(G)
  syn = G.synthesis
  for blk in syn.blocks:
    r = blk.resolution
    scope = f'synthesis/{r}x{r}'
    names = ('Const', 'Conv') if r == 4 else ('Conv0_up', 'Conv1')
    for name, lyr in zip(names, (blk.conv0, blk.conv1)):
      if lyr.kind == 'const':
        out[f'{scope}/{name}/const'] = (lyr.const, _nchw_to_nhwc)
      else:
        out[f'{scope}/{name}/weight'] = (lyr.conv.weight, None)
      out[f'{scope}/{name}/Noise/weight'] = (lyr.noise_weight, None)
      out[f'{scope}/{name}/bias'] = (lyr.bias, None)
      out[f'{scope}/{name}/StyleMod/weight'] = (lyr.style.weight, None)
      out[f'{scope}/{name}/StyleMod/bias'] = (lyr.style.bias, None)
    torgb = f'synthesis/ToRGB_lod{_lod_name(syn, r)}'
    out[f'{torgb}/weight'] = (blk.torgb.weight, None)
    out[f'{torgb}/bias'] = (blk.torgb_bias, None)
  return out


def basic_discriminator_variable_map(D):
  out = {}
  for r in D.resolutions:
    lyr = getattr(D, f'fromrgb{r}')
    out[f'FromRGB_lod{_lod_name(D, r)}/weight'] = (lyr.conv.weight, None)
    out[f'FromRGB_lod{_lod_name(D, r)}/bias'] = (lyr.bias, None)
    if r > 4:
      for name, attr in (('Conv0', 'conv0'), ('Conv1_down', 'conv1')):
        lyr = getattr(D, f'b{r}_{attr}')
        out[f'{r}x{r}/{name}/weight'] = (lyr.conv.weight, None)
        out[f'{r}x{r}/{name}/bias'] = (lyr.bias, None)
  out['4x4/Conv/weight'] = (D.conv4.conv.weight, None)
  out['4x4/Conv/bias'] = (D.conv4.bias, None)
  for name, lyr in (('Dense0', D.dense0), ('Dense1', D.dense1)):
    out[f'4x4/{name}/weight'] = (lyr.weight, None)
    out[f'4x4/{name}/bias'] = (lyr.bias, None)
  return out
