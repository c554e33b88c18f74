"""Import NVIDIA's official StyleGAN2 (TF1) network pickles without TF1 and without dnnlib.

    G, D, G_ema = sg2tf.convert.load_official_pkl('stylegan2-ffhq-config-f.pkl')
    sg2tf-convert --pkl stylegan2-ffhq-config-f.pkl --outdir networks/ffhq-f
    (or python -m sg2tf.convert ...; --out is the old name of --outdir)

The pickle is the tuple (G, D, Gs) of `dnnlib.tflib.network.Network`; format and
conventions: ../shared/fixtures/official_pkl/README.md. It is read with an allow-list
unpickler: any global outside that list (os.system, builtins.eval, ...) stops loading
before anything is called. `build_module_src` (code in the pickle) is never executed: the
networks are rebuilt from `build_func_name`, `static_kwargs` and the variables alone.
"""

import dataclasses
import math
import os
import re

from absl import logging
import numpy as np

from sg2tf import cli
from sg2tf import official_variables
from sg2tf.conventions import ARCHITECTURES
from sg2tf.utils import files
from sg2tf.utils import safe_pickle


# The networks (and so TensorFlow) are imported by the functions that build them, so that the
# command line is checked, and TensorFlow quietened, before TensorFlow loads.
TOPICS = cli.Topics()


class OfficialPickleError(ValueError):
  """The file is not an official StyleGAN2 network pickle that sg2tf can import safely."""


class _TFNetworkStub:
  """Passive stand-in for dnnlib.tflib.network.Network: only receives its state dict."""

  def __setstate__(self, state):
    if not isinstance(state, dict):
      raise safe_pickle.UnsafePickleError('Network state is not a dict')
    self.__dict__.update(safe_pickle.plain_arrays(state))


# Numeric numpy arrays (sg2tf.utils.safe_pickle) and the passive Network stub, nothing else.
_ALLOWED_GLOBALS = {('dnnlib.tflib.network', 'Network'): _TFNetworkStub,
                    **safe_pickle.NUMPY_ARRAYS}


# Static kwargs the official build functions accept, with their defaults where they shape
# the network. Kwargs that only affect TF1 graph building are accepted and ignored.
_MAPPING_DEFAULTS = dict(latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                         mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
                         mapping_nonlinearity='lrelu', normalize_latents=True, dtype='float32')
_SYNTHESIS_DEFAULTS = dict(dlatent_size=512, num_channels=3, resolution=1024, fmap_base=16 << 10,
                           fmap_decay=1.0, fmap_min=1, fmap_max=512, randomize_noise=True,
                           architecture='skip', nonlinearity='lrelu', dtype='float32',
                           resample_kernel=[1, 3, 3, 1], fused_modconv=True)
_G_MAIN_DEFAULTS = dict(truncation_psi=0.5, truncation_cutoff=None, truncation_psi_val=None,
                        truncation_cutoff_val=None, dlatent_avg_beta=0.995, style_mixing_prob=0.9,
                        is_training=False, is_validation=False, return_dlatents=False,
                        is_template_graph=False, components=None, mapping_func='G_mapping',
                        synthesis_func='G_synthesis_stylegan2')
_D_DEFAULTS = dict(num_channels=3, resolution=1024, label_size=0, fmap_base=16 << 10,
                   fmap_decay=1.0, fmap_min=1, fmap_max=512, architecture='resnet',
                   nonlinearity='lrelu', mbstd_group_size=4, mbstd_num_features=1, dtype='float32',
                   resample_kernel=[1, 3, 3, 1], is_template_graph=False)
_G_KNOWN = set(_MAPPING_DEFAULTS) | set(_SYNTHESIS_DEFAULTS) | set(_G_MAIN_DEFAULTS)

# G build function -> the synthesis build functions it may hold; the D build functions.
_G_SYNTHESIS = {'G_main': ('G_synthesis_stylegan2', 'G_synthesis_stylegan_revised'),
                'G_style': ('G_synthesis',)}
_D_FUNCS = ('D_stylegan2', 'D_stylegan', 'D_basic')


def _fail(path, msg):
  raise OfficialPickleError(f'{path}: {msg}')


def read_pickle(path):
  """(G, D, Gs) as passive stubs (attributes: name, static_kwargs, components, variables...)."""
  path = os.fspath(path)
  if not files.isfile(path):
    raise FileNotFoundError(f'{path}: no such file (expected an official StyleGAN2 .pkl)')
  head = safe_pickle.read_head(path)
  if not safe_pickle.is_pickle(head):
    _fail(path, f'not a network pickle: it is {safe_pickle.describe_content(head)}. Official '
                'StyleGAN2 networks are pickles such as stylegan2-ffhq-config-f.pkl.')
  try:
    with files.open_file(path, 'rb') as f:
      obj = safe_pickle.load(f, _ALLOWED_GLOBALS, what=path)
  except safe_pickle.UnsafePickleError as e:
    _fail(path, f'refused to load: {e}. Only official StyleGAN2 network pickles (numpy arrays '
                'and dnnlib.tflib.network.Network objects) can be imported; nothing was executed.')
  except (EOFError, AttributeError, TypeError, ValueError, IndexError, KeyError, MemoryError,
          safe_pickle.UnpicklingError) as e:
    _fail(path, f'not a readable network pickle ({type(e).__name__}: {e}); the file is '
                'truncated or damaged')
  if not (isinstance(obj, tuple) and len(obj) == 3
          and all(isinstance(n, _TFNetworkStub) for n in obj)):
    _fail(path, 'expected the tuple (G, D, Gs) of dnnlib.tflib.network.Network, got '
                f'{type(obj).__name__}')
  for net, want in zip(obj, (tuple(_G_SYNTHESIS), _D_FUNCS, tuple(_G_SYNTHESIS))):
    _check_stub(path, net, want)
  for net in (obj[0], obj[2]):
    comps = net.components
    if set(comps) != {'mapping', 'synthesis'}:
      _fail(path, f'network {net.name!r} must have components mapping and synthesis, got '
                  f'{sorted(comps)}')
    _check_stub(path, comps['mapping'], ('G_mapping',))
    _check_stub(path, comps['synthesis'], _G_SYNTHESIS[net.build_func_name])
  if obj[0].build_func_name != obj[2].build_func_name:
    _fail(path, f'G was built by {obj[0].build_func_name!r} but Gs by {obj[2].build_func_name!r}')
  return obj


def _check_stub(path, net, build_func_names):
  for attr, typ in (('name', str), ('static_kwargs', dict), ('components', dict),
                    ('build_func_name', str), ('variables', list)):
    if not isinstance(getattr(net, attr, None), typ):
      _fail(path, f'a Network has no valid {attr!r} ({typ.__name__})')
  if net.build_func_name not in build_func_names:
    _fail(path, f'network {net.name!r} was built by {net.build_func_name!r}; sg2tf imports '
                f'{" or ".join(repr(n) for n in build_func_names)} here (every configuration of '
                'the StyleGAN2 paper, and StyleGAN\'s G_style / D_basic).')
  for item in net.variables:
    if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
      _fail(path, f'network {net.name!r}: variables must be (name, array) pairs')
    value = item[1]
    if not isinstance(value, (np.ndarray, np.generic)) or value.dtype.kind != 'f':
      _fail(path, f'network {net.name!r}: variable {item[0]!r} is not a float array')
    if not np.all(np.isfinite(value)):
      _fail(path, f'network {net.name!r}: variable {item[0]!r} holds NaN or Inf values; the '
                  'network is damaged (a diverged training?) and would only make blank images.')


def flat_vars(net, prefix=''):
  """{name: float32 array}; sub-network variables prefixed with their component key."""
  out = {prefix + name: np.asarray(value, dtype=np.float32) for name, value in net.variables}
  for key, sub in net.components.items():
    out.update(flat_vars(sub, prefix + key + '/'))
  return out


def _with_defaults(path, who, kwargs, known, defaults):
  unknown = sorted(set(kwargs) - set(known))
  if unknown:
    _fail(path, f'{who}: unknown static kwargs {unknown}; sg2tf knows {sorted(known)}. '
                'The pickle was written by a different network definition.')
  out = dict(defaults)
  out.update(kwargs)
  return out


def _filter(path, who, kernel):
  if kernel is None:
    return [1.0, 1.0]  # Official upfirdn helpers: k=None means a box filter of the factor 2.
  k = np.asarray(kernel, dtype=np.float64)
  if k.ndim != 1 or k.size == 0:
    _fail(path, f'{who}: resample_kernel must be a 1-D list, got {kernel!r}')
  return [float(v) for v in k]


_MAX_RESOLUTION = 1 << 16


def _int_kwarg(path, who, key, value, lo=1, hi=1 << 20):
  """A static kwarg that must be an integer in [lo, hi] (1e9 latents and the like are refused
  here, long before anything is allocated)."""
  ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  if ok and not (math.isfinite(value) and float(value).is_integer() and lo <= value <= hi):
    ok = False
  if not ok:
    _fail(path, f'{who}: static kwarg {key}={value!r} is not an integer in [{lo}, {hi}]; the '
                'pickle is damaged or not a StyleGAN2 network.')
  return int(value)


def _resolution(path, who, value):
  res = _int_kwarg(path, who, 'resolution', value, 4, _MAX_RESOLUTION)
  if res & (res - 1):
    _fail(path, f'{who}: static kwarg resolution={res} is not a power of two (4, 8, ..., 1024); '
                'the pickle is damaged or not a StyleGAN2 network.')
  return res


def _activation(path, who, name):
  from sg2tf.custom_ops import activation_funcs  # pylint: disable=g-import-not-at-top
  if name not in activation_funcs:
    _fail(path, f'{who}: nonlinearity {name!r} is not supported ({sorted(activation_funcs)})')
  return name


def generator_kwargs(path, g_stub):
  """sg2tf Generator kwargs from G_main + its components' static kwargs."""
  gk = _with_defaults(path, f'{g_stub.name} (G_main)', g_stub.static_kwargs, _G_KNOWN,
                      {**_MAPPING_DEFAULTS, **_SYNTHESIS_DEFAULTS, **_G_MAIN_DEFAULTS})
  comps = g_stub.components
  if gk['mapping_func'] != 'G_mapping' or gk['synthesis_func'] != (
      comps['synthesis'].build_func_name):
    _fail(path, f'unsupported mapping_func/synthesis_func {gk["mapping_func"]!r}/'
                f'{gk["synthesis_func"]!r} (its synthesis component was built by '
                f'{comps["synthesis"].build_func_name!r})')
  mk = _with_defaults(path, 'G_mapping', comps['mapping'].static_kwargs, _G_KNOWN, gk)
  sk = _with_defaults(path, 'G_synthesis', comps['synthesis'].static_kwargs, _G_KNOWN, gk)
  for comp in ('mapping', 'synthesis'):
    sub = comps[comp].static_kwargs
    for key in sorted(set(g_stub.static_kwargs) & set(sub)):
      if g_stub.static_kwargs[key] != sub[key]:
        _fail(path, f'G and its {comp} component disagree on {key!r}: '
                    f'{g_stub.static_kwargs[key]!r} vs {sub[key]!r}')
  if sk['architecture'] not in ARCHITECTURES:
    _fail(path, f'G_synthesis: unknown architecture {sk["architecture"]!r}')
  if mk['dlatent_size'] != sk['dlatent_size']:
    _fail(path, f'mapping dlatent_size {mk["dlatent_size"]} != synthesis {sk["dlatent_size"]}')
  if mk['dtype'] != 'float32' or sk['dtype'] != 'float32':
    logging.warning('%s: network dtype %s; sg2tf computes in float32.', path, sk['dtype'])
  for key in ('latent_size', 'dlatent_size', 'mapping_fmaps', 'mapping_layers'):
    _int_kwarg(path, 'G_mapping', key, mk[key])
  _int_kwarg(path, 'G_mapping', 'label_size', mk['label_size'], 0)
  _resolution(path, 'G_synthesis', sk['resolution'])
  _int_kwarg(path, 'G_synthesis', 'num_channels', sk['num_channels'], 1, 4)
  for key in ('fmap_base', 'fmap_max'):
    _int_kwarg(path, 'G_synthesis', key, sk[key])
  _int_kwarg(path, 'G_synthesis', 'fmap_min', sk['fmap_min'], 0)
  return dict(
      z_dim=int(mk['latent_size']), c_dim=int(mk['label_size']), w_dim=int(mk['dlatent_size']),
      img_resolution=int(sk['resolution']), img_channels=int(sk['num_channels']),
      mapping_layers=int(mk['mapping_layers']), mapping_dim=int(mk['mapping_fmaps']),
      mapping_lr_multiplier=float(mk['mapping_lrmul']),
      mapping_activation=_activation(path, 'G_mapping', mk['mapping_nonlinearity']),
      normalize_z=bool(mk['normalize_latents']), w_avg_beta=float(gk['dlatent_avg_beta']),
      architecture=sk['architecture'], fmap_base=int(sk['fmap_base']),
      fmap_decay=float(sk['fmap_decay']), fmap_min=int(sk['fmap_min']),
      fmap_max=int(sk['fmap_max']),
      activation=_activation(path, 'G_synthesis', sk['nonlinearity']),
      resample_filter=_filter(path, 'G_synthesis', sk['resample_kernel'])), mk['dlatent_broadcast']


def discriminator_kwargs(path, d_stub):
  dk = _with_defaults(path, f'{d_stub.name} (D_stylegan2)', d_stub.static_kwargs, _D_DEFAULTS,
                      _D_DEFAULTS)
  if dk['architecture'] not in ARCHITECTURES:
    _fail(path, f'D: unknown architecture {dk["architecture"]!r}')
  _resolution(path, 'D', dk['resolution'])
  _int_kwarg(path, 'D', 'num_channels', dk['num_channels'], 1, 4)
  _int_kwarg(path, 'D', 'label_size', dk['label_size'], 0)
  for key in ('fmap_base', 'fmap_max'):
    _int_kwarg(path, 'D', key, dk[key])
  _int_kwarg(path, 'D', 'fmap_min', dk['fmap_min'], 0)
  _int_kwarg(path, 'D', 'mbstd_group_size', dk['mbstd_group_size'], 0)
  _int_kwarg(path, 'D', 'mbstd_num_features', dk['mbstd_num_features'], 0)
  return dict(
      c_dim=int(dk['label_size']), img_resolution=int(dk['resolution']),
      img_channels=int(dk['num_channels']), architecture=dk['architecture'],
      fmap_base=int(dk['fmap_base']), fmap_decay=float(dk['fmap_decay']),
      fmap_min=int(dk['fmap_min']), fmap_max=int(dk['fmap_max']),
      activation=_activation(path, 'D', dk['nonlinearity']),
      mbstd_group_size=int(dk['mbstd_group_size']),
      mbstd_num_features=int(dk['mbstd_num_features']),
      resample_filter=_filter(path, 'D', dk['resample_kernel']))


def _expected_generator_shapes(gk):
  """{official flattened name: shape} of the variables whose shapes follow from each static
  kwarg (mapping sizes, resolution, channels, fmaps), from the official architecture."""
  from sg2tf.layers import nf_fn  # pylint: disable=g-import-not-at-top
  nf = nf_fn(gk['fmap_base'], gk['fmap_decay'], gk['fmap_min'], gk['fmap_max'])
  z, c, w = gk['z_dim'], gk['c_dim'], gk['w_dim']
  out = {'dlatent_avg': [w]}
  if c:
    out['mapping/LabelConcat/weight'] = [c, z]
  fan_in = 2 * z if c else z
  for i in range(gk['mapping_layers']):
    fmaps = w if i == gk['mapping_layers'] - 1 else gk['mapping_dim']
    out[f'mapping/Dense{i}/weight'] = [fan_in, fmaps]
    fan_in = fmaps
  log2 = int(np.log2(gk['img_resolution']))
  for i in range(2 * log2 - 3):
    r = 2 ** ((i + 5) // 2)
    out[f'synthesis/noise{i}'] = [1, 1, r, r]
  out['synthesis/4x4/Const/const'] = [1, nf(1), 4, 4]
  out['synthesis/4x4/Conv/weight'] = [3, 3, nf(1), nf(1)]
  for k in range(3, log2 + 1):
    scope = f'synthesis/{2 ** k}x{2 ** k}'
    out[f'{scope}/Conv0_up/weight'] = [3, 3, nf(k - 2), nf(k - 1)]
    out[f'{scope}/Conv0_up/mod_weight'] = [w, nf(k - 2)]
    out[f'{scope}/Conv1/weight'] = [3, 3, nf(k - 1), nf(k - 1)]
  top = f'synthesis/{2 ** log2}x{2 ** log2}/ToRGB'
  out[f'{top}/weight'] = [1, 1, nf(log2 - 1), gk['img_channels']]
  out[f'{top}/mod_weight'] = [w, nf(log2 - 1)]
  return out


def _expected_discriminator_shapes(dk):
  from sg2tf.layers import nf_fn  # pylint: disable=g-import-not-at-top
  nf = nf_fn(dk['fmap_base'], dk['fmap_decay'], dk['fmap_min'], dk['fmap_max'])
  log2 = int(np.log2(dk['img_resolution']))
  out = {f'{2 ** log2}x{2 ** log2}/FromRGB/weight': [1, 1, dk['img_channels'], nf(log2 - 1)]}
  for k in range(log2, 2, -1):
    scope = f'{2 ** k}x{2 ** k}'
    out[f'{scope}/Conv0/weight'] = [3, 3, nf(k - 1), nf(k - 1)]
    out[f'{scope}/Conv1_down/weight'] = [3, 3, nf(k - 1), nf(k - 2)]
  mbstd = dk['mbstd_num_features'] if dk['mbstd_group_size'] > 1 else 0
  out['4x4/Conv/weight'] = [3, 3, nf(1) + mbstd, nf(1)]
  out['4x4/Dense0/weight'] = [nf(1) * 16, nf(0)]
  out['Output/weight'] = [nf(0), max(dk['c_dim'], 1)]
  return out


_SCOPE_RE = re.compile(r'(?:^|/)(\d+)x\1/')


def check_variable_shapes(path, who, expected, values):
  """Compares what the static kwargs imply with the pickle's arrays BEFORE any network is
  built, so a pickle declaring e.g. resolution 32768 or 1e9 latents is refused at once
  instead of allocating until memory runs out."""
  scopes = {int(m.group(1)) for n in values for m in [_SCOPE_RE.search(n)] if m}
  want = {int(m.group(1)) for n in expected for m in [_SCOPE_RE.search(n)] if m}
  if scopes != want:
    _fail(path, f'{who}: the static kwargs describe resolutions {sorted(want)} but the '
                f'variables are for {sorted(scopes)}; the pickle is inconsistent or damaged.')
  for name, shape in expected.items():
    if name not in values:
      _fail(path, f'{who}: variable {name!r} is missing although the static kwargs need it.')
    got = list(np.shape(values[name]))
    if got != list(shape):
      _fail(path, f'{who}: variable {name!r} has shape {got} but the static kwargs imply '
                  f'{list(shape)}; the pickle is inconsistent or damaged.')


def _nchw_to_nhwc(v):
  return np.transpose(v, [0, 2, 3, 1])


def _modconv_vars(prefix, lyr):
  return {f'{prefix}/weight': (lyr.weight, None), f'{prefix}/mod_weight': (lyr.mod_weight, None),
          f'{prefix}/mod_bias': (lyr.mod_bias, None)}  # mod_bias as stored: +1 at run time.


def generator_variable_map(G):
  """{official flattened name: (sg2tf variable, transform of the official value)}."""
  ident = None
  out = {'dlatent_avg': (G.mapping.w_avg, ident)}
  for i, fc in enumerate(G.mapping.fcs):
    out[f'mapping/Dense{i}/weight'] = (fc.weight, ident)
    out[f'mapping/Dense{i}/bias'] = (fc.bias, ident)
  if G.mapping.c_dim:
    out['mapping/LabelConcat/weight'] = (G.mapping.embed, ident)
  for i, lyr in enumerate(G.synthesis.synthesis_layers):
    out[f'synthesis/noise{i}'] = (lyr.noise_const, _nchw_to_nhwc)
  for blk in G.synthesis.blocks:
    scope = f'synthesis/{blk.resolution}x{blk.resolution}'
    if blk.is_first:
      out[f'{scope}/Const/const'] = (blk.const.const, _nchw_to_nhwc)
      convs = [('Conv', blk.conv1)]
    else:
      convs = [('Conv0_up', blk.conv0), ('Conv1', blk.conv1)]
    for name, lyr in convs:
      out.update(_modconv_vars(f'{scope}/{name}', lyr.conv))
      out[f'{scope}/{name}/noise_strength'] = (lyr.noise_strength, ident)
      out[f'{scope}/{name}/bias'] = (lyr.bias, ident)
    if blk.has_torgb:
      out.update(_modconv_vars(f'{scope}/ToRGB', blk.torgb.conv))
      out[f'{scope}/ToRGB/bias'] = (blk.torgb.bias, ident)
    if blk.architecture == 'resnet' and not blk.is_first:
      out[f'{scope}/Skip/weight'] = (blk.skip.weight, ident)
  return out


def discriminator_variable_map(D):
  out = {}

  def conv(name, lyr):
    from sg2tf.convert_growing import weight_and_bias  # pylint: disable=g-import-not-at-top
    out.update(weight_and_bias(name, lyr))

  for blk in D.blocks:
    scope = f'{blk.resolution}x{blk.resolution}'
    if blk.has_fromrgb:
      conv(f'{scope}/FromRGB', blk.fromrgb)
    conv(f'{scope}/Conv0', blk.conv0)
    conv(f'{scope}/Conv1_down', blk.conv1)
    if blk.architecture == 'resnet':
      conv(f'{scope}/Skip', blk.skip)
  ep = D.epilogue
  if ep.architecture == 'skip':
    conv('4x4/FromRGB', ep.fromrgb)
  conv('4x4/Conv', ep.conv)
  conv('4x4/Dense0', ep.fc)  # The NCHW flatten happens in the network: rows as stored.
  conv('Output', ep.out)
  return out


def _assign(path, who, var_map, values, ignore=()):
  values = {k: v for k, v in values.items() if k not in ignore}
  missing = sorted(set(var_map) - set(values))
  extra = sorted(set(values) - set(var_map))
  if missing or extra:
    _fail(path, f'{who}: the variables do not match the network its static kwargs describe; '
                f'missing {missing[:10]}{"..." if len(missing) > 10 else ""}, '
                f'unexpected {extra[:10]}{"..." if len(extra) > 10 else ""}')
  for name, (var, transform) in var_map.items():
    value = values[name] if transform is None else transform(values[name])
    if tuple(value.shape) != tuple(var.shape):
      _fail(path, f'{who}: variable {name!r} has shape {list(values[name].shape)}, expected '
                  f'{list(var.shape)} (after layout conversion)')
    var.assign(value)


def load_official_pkl(path, impl='auto'):
  """Reads an official StyleGAN2 pickle. Returns sg2tf (G, D, G_ema); G_ema is the pickle's Gs.

  impl: accepted for compatibility and checked ('auto', 'custom', 'ref'); the networks carry
  no op implementation (call them under `sg2tf.custom_ops.implementation(impl)`).

  Raises OfficialPickleError (a ValueError) for a pickle that is unsafe, malformed or of an
  unsupported network, and FileNotFoundError when path does not exist.
  """
  from sg2tf.custom_ops import policy  # pylint: disable=g-import-not-at-top
  from sg2tf.networks.generator import Generator  # pylint: disable=g-import-not-at-top
  from sg2tf.networks.discriminator import Discriminator  # pylint: disable=g-import-not-at-top
  policy.check_impl(impl)
  path = os.fspath(path)
  if files.is_url(path):  # downloaded once, verified, then read like any local pickle
    path = files.fetch_url(path, what='network pickle')
  g_stub, d_stub, gs_stub = read_pickle(path)
  g_cls, g_map, kwargs_fn = _generator_importer(path, g_stub)
  g_kwargs, broadcast = kwargs_fn(g_stub)
  gs_kwargs, _ = kwargs_fn(gs_stub)
  if gs_kwargs != g_kwargs:
    _fail(path, 'G and Gs have different static kwargs')
  d_cls, d_map, d_kwargs = _discriminator_importer(path, d_stub)
  # Shapes first, networks after: absurd static kwargs must not allocate anything.
  g_expected = (_expected_generator_shapes(g_kwargs) if g_cls is Generator
                else official_variables.expected_shapes(g_cls.__name__, g_kwargs))
  d_expected = (_expected_discriminator_shapes(d_kwargs) if d_cls is Discriminator
                else official_variables.expected_shapes(d_cls.__name__, d_kwargs))
  for who, stub in (('G', g_stub), ('Gs', gs_stub)):
    check_variable_shapes(path, who, g_expected, flat_vars(stub))
  check_variable_shapes(path, 'D', d_expected, flat_vars(d_stub))
  G, G_ema = g_cls(**g_kwargs), g_cls(**g_kwargs)
  D = d_cls(**d_kwargs)
  if broadcast is not None and int(broadcast) != G.num_ws:
    _fail(path, f'dlatent_broadcast={broadcast} but the synthesis network has {G.num_ws} layers')
  growing = g_cls is not Generator
  for net, stub, who in ((G, g_stub, 'G'), (G_ema, gs_stub, 'Gs')):
    values = flat_vars(stub)
    _assign(path, who, g_map(net), values, ignore=('lod', 'synthesis/lod'))
    if growing:  # G's own lod drives its synthesis network (official G_main / G_style).
      net.set_lod(_lod_value(path, who, values, 'lod'))
  values = flat_vars(d_stub)
  _assign(path, 'D', d_map(D), values, ignore=('lod',) if d_cls is not Discriminator else ())
  if d_cls is not Discriminator:
    D.set_lod(_lod_value(path, 'D', values, 'lod'))
  logging.info('Imported %s: G %s %s, D %s %s.', path, g_cls.__name__, g_kwargs,
               d_cls.__name__, d_kwargs)
  return G, D, G_ema


def _lod_value(path, who, values, name):
  if name not in values or values[name].shape != ():
    _fail(path, f'{who}: a progressive-growing network needs a scalar {name!r} variable')
  return float(values[name])


def _generator_importer(path, g_stub):
  """(class, variable-map function, kwargs function) for the pickle's generator."""
  from sg2tf.networks.generator import Generator  # pylint: disable=g-import-not-at-top
  from sg2tf.custom_ops import activation_funcs  # pylint: disable=g-import-not-at-top
  from sg2tf import convert_growing as cg  # pylint: disable=g-import-not-at-top
  from sg2tf import networks  # pylint: disable=g-import-not-at-top
  fail = lambda msg: _fail(path, msg)
  if g_stub.build_func_name == 'G_style':
    return (networks.StyleGANGenerator, cg.style_generator_variable_map,
            lambda stub: cg.style_generator_kwargs(fail, stub))
  if g_stub.components['synthesis'].build_func_name == 'G_synthesis_stylegan_revised':
    acts = tuple(activation_funcs)
    return (networks.GrowingGenerator, cg.revised_generator_variable_map,
            lambda stub: cg.revised_generator_kwargs(fail, stub, acts))
  return Generator, generator_variable_map, lambda stub: generator_kwargs(path, stub)


def _discriminator_importer(path, d_stub):
  """(class, variable-map function, kwargs) for the pickle's discriminator."""
  from sg2tf.networks.discriminator import Discriminator  # pylint: disable=g-import-not-at-top
  from sg2tf.custom_ops import activation_funcs  # pylint: disable=g-import-not-at-top
  from sg2tf import convert_growing as cg  # pylint: disable=g-import-not-at-top
  from sg2tf import networks  # pylint: disable=g-import-not-at-top
  fail = lambda msg: _fail(path, msg)
  if d_stub.build_func_name == 'D_basic':
    return (networks.StyleGANDiscriminator, cg.basic_discriminator_variable_map,
            cg.basic_discriminator_kwargs(fail, d_stub))
  if d_stub.build_func_name == 'D_stylegan':
    return (networks.GrowingDiscriminator, cg.growing_discriminator_variable_map,
            cg.growing_discriminator_kwargs(fail, d_stub, tuple(activation_funcs)))
  return Discriminator, discriminator_variable_map, discriminator_kwargs(path, d_stub)


def convert(pkl, out, impl='auto', overwrite=False):
  """Writes a native network directory (see sg2tf.networks.serialization) from a pickle."""
  from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
  source = pkl if files.is_url(pkl) else os.path.abspath(pkl)
  if files.is_url(pkl):
    pkl = files.fetch_url(pkl, what='network pickle')
  G, D, G_ema = load_official_pkl(pkl, impl=impl)
  meta = {'source': {'official_pkl': source, 'sha256': files.sha256_file(pkl)}}
  return serialization.save_networks(out, G, D, G_ema, metadata=meta, overwrite=overwrite)


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
  """What `sg2tf-convert` does (built from its flags by config_from_flags)."""
  pkl: str
  outdir: str
  impl: str = 'auto'
  overwrite: bool = False


def define_flags(fv=None):
  """Only when run as a program: importing this module defines no flags."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FLAGS if fv is None else fv
  if 'pkl' in fv:
    return
  c, kw = ConvertConfig('', ''), dict(flag_values=fv)
  TOPICS.mark('Input and output', fv)
  flags.DEFINE_string('pkl', None, 'Official StyleGAN2 network pickle (G, D, Gs): a path or '
                      'an http(s) URL[#sha256=HEX], downloaded once into the cache.', **kw)
  flags.DEFINE_string('outdir', None, 'Output directory for the native checkpoint + '
                      'networks.json.', **kw)
  flags.DEFINE_alias('out', 'outdir', flag_values=fv)
  flags.DEFINE_bool('overwrite', c.overwrite, 'Replace --outdir if it exists.', **kw)
  TOPICS.mark('Run', fv)
  flags.DEFINE_enum('impl', c.impl, ['auto', 'custom', 'ref'],
                    'Op implementation while converting (sg2tf.custom_ops.implementation); '
                    'nothing about it is stored in the output.', **kw)
  TOPICS.mark(None)


def config_from_flags(f) -> ConvertConfig:
  """The checked ConvertConfig; cli.UsageError names the flag."""
  if not f.pkl or not f.outdir:
    raise cli.UsageError('both --pkl (an official StyleGAN2 .pkl) and --outdir (a directory) '
                         'are required (see --help).')
  if files.is_url(f.pkl):
    try:
      files.split_url(f.pkl)
    except ValueError as e:
      raise cli.UsageError(f'--pkl={f.pkl}: {e}') from None
  elif not files.isfile(f.pkl):
    raise cli.UsageError(f'--pkl={f.pkl}: no such file (an official StyleGAN2 .pkl, or an '
                         'http(s) URL).')
  if files.exists(f.outdir) and not f.overwrite:
    if not files.isdir(f.outdir) or files.listdir(f.outdir):
      raise cli.UsageError(f'--outdir={f.outdir} exists; choose another directory or pass '
                           '--overwrite.')
  return ConvertConfig(pkl=f.pkl, outdir=f.outdir, impl=f.impl, overwrite=f.overwrite)


def run(c: ConvertConfig) -> str:
  """Converts as c says; returns the output directory."""
  from sg2tf.custom_ops import policy  # pylint: disable=g-import-not-at-top
  with policy.implementation(c.impl):
    return convert(c.pkl, c.outdir, impl=c.impl, overwrite=c.overwrite)


def _run_or_usage_error(config: ConvertConfig) -> str:
  try:
    return run(config)
  except (OfficialPickleError, FileNotFoundError, FileExistsError) as e:
    raise cli.UsageError(cli.one_line(e)) from None  # the input is the problem: exit status 2


def _report(config: ConvertConfig, out: str) -> None:
  del config
  logging.info('Wrote %s', out)
  print(out)


def _main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  # A disk that refused the output or a failed download: one line, exit status 1.
  return cli.run_config(argv, config_from_flags, _run_or_usage_error, report=_report,
                        expected=(files.DiskWriteError, files.DownloadError),
                        flag_values=flags.FLAGS)


def main(argv=None):
  """The `sg2tf-convert` command (python -m sg2tf.convert)."""
  define_flags()
  cli.run_tool(_main, argv, doc=__doc__, topics=TOPICS)


if __name__ == '__main__':
  main()
