"""Named network configurations of the StyleGAN2 paper (Table 1: config-a .. config-f;
Table 2: the 3x3 grid of G/D architectures, `config-e-G<arch>-D<arch>`).

Settings follow the official run_training.py: configs a-e use fmap_base 8192 (f: 16384);
config e (and its Table 2 variants) uses R1 gamma 100; c adds lazy regularization and d
path-length regularization; e switches to the skip G / resnet D without progressive
growing. Configs a-d train WITH progressive growing (`growing`: the schedule of
sg2tf/training/schedule.py, PAPER_GROWING) on the networks that support it: b-d
G_synthesis_stylegan_revised + D_stylegan, a the StyleGAN baseline G_style + D_basic.
`config-b-nogrow` .. `config-d-nogrow` are b-d without growing: the 'orig' StyleGAN2
networks trained at full resolution from the start (what b-d were here before growing).

`network` names the official build function a config's G / D is (see build_generator).

    cfg = get_config('config-f', resolution=256)
    G, D = build_networks(cfg)
"""

import dataclasses
from typing import Optional, Tuple

from sg2tf.conventions import ARCHITECTURES

# Official build function -> sg2tf class (sg2tf.networks).
G_NETWORKS = {'G_synthesis_stylegan2': 'Generator',
              'G_synthesis_stylegan_revised': 'GrowingGenerator', 'G_style': 'StyleGANGenerator'}
D_NETWORKS = {'D_stylegan2': 'Discriminator', 'D_stylegan': 'GrowingDiscriminator',
              'D_basic': 'StyleGANDiscriminator'}
GROWING_NETWORKS = ('G_synthesis_stylegan_revised', 'G_style', 'D_stylegan', 'D_basic')


def _class_kwargs(fields, network, stylegan2):
  """Constructor kwargs of a network class from its config's fields."""
  fields.pop('network')
  if network == stylegan2:
    return fields
  del fields['architecture']  # The growing networks have the one ('orig'-like) structure.
  if network in ('G_style', 'D_basic'):
    del fields['fmap_min']  # StyleGAN's nf() has no minimum.
    fields['blur_filter'] = fields.pop('resample_filter')
  return fields


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
  """Keyword arguments of sg2tf.networks.Generator (official G_main / G_mapping /
  G_synthesis_stylegan2 defaults)."""
  z_dim: int = 512
  c_dim: int = 0
  w_dim: int = 512
  img_resolution: int = 1024
  img_channels: int = 3
  mapping_layers: int = 8
  mapping_dim: int = 512
  mapping_lr_multiplier: float = 0.01
  mapping_activation: str = 'lrelu'
  normalize_z: bool = True
  w_avg_beta: float = 0.995
  architecture: str = 'skip'
  fmap_base: int = 16384
  fmap_decay: float = 1.0
  fmap_min: int = 1
  fmap_max: int = 512
  activation: str = 'lrelu'
  resample_filter: Optional[Tuple[float, ...]] = (1, 3, 3, 1)  # G_style: its blur filter
  network: str = 'G_synthesis_stylegan2'  # or G_synthesis_stylegan_revised, G_style

  def kwargs(self):
    """Constructor kwargs of the network's class (G_NETWORKS[network])."""
    return _class_kwargs(dataclasses.asdict(self), self.network, 'G_synthesis_stylegan2')


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
  """Keyword arguments of sg2tf.networks.Discriminator (official D_stylegan2 defaults)."""
  c_dim: int = 0
  img_resolution: int = 1024
  img_channels: int = 3
  architecture: str = 'resnet'
  fmap_base: int = 16384
  fmap_decay: float = 1.0
  fmap_min: int = 1
  fmap_max: int = 512
  activation: str = 'lrelu'
  mbstd_group_size: int = 4
  mbstd_num_features: int = 1
  resample_filter: Optional[Tuple[float, ...]] = (1, 3, 3, 1)  # D_basic: its blur filter
  network: str = 'D_stylegan2'  # or D_stylegan, D_basic

  def kwargs(self):
    """Constructor kwargs of the network's class (D_NETWORKS[network])."""
    return _class_kwargs(dataclasses.asdict(self), self.network, 'D_stylegan2')


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
  """A paper configuration: the two networks plus the loss settings that define it."""
  name: str
  G: GeneratorConfig
  D: DiscriminatorConfig
  r1_gamma: float = 10.0
  lazy_regularization: bool = True
  pl_weight: float = 2.0          # Path-length regularization weight (0 = off).
  style_mixing_prob: float = 0.9
  description: str = ''
  growing: bool = False           # Trained with progressive growing (the paper's schedule).
  learning_rate: float = 0.002    # Adam lr (with growing: the base at resolutions < 128).


def _make(name, fmap_base, g_arch, d_arch, description, r1_gamma=10.0, lazy=True, pl=2.0,
          g_net='G_synthesis_stylegan2', d_net='D_stylegan2', growing=False, filt=(1, 3, 3, 1)):
  return NetworkConfig(
      name=name,
      G=GeneratorConfig(fmap_base=fmap_base, architecture=g_arch, network=g_net,
                        resample_filter=filt),
      D=DiscriminatorConfig(fmap_base=fmap_base, architecture=d_arch, network=d_net,
                            resample_filter=filt),
      r1_gamma=r1_gamma, lazy_regularization=lazy, pl_weight=pl, description=description,
      growing=growing, learning_rate=0.001 if growing else 0.002)


def _all_configs():
  small = 8 << 10
  grow = dict(g_net='G_synthesis_stylegan_revised', d_net='D_stylegan', growing=True)
  out = {
      'config-a': _make('config-a', small, 'orig', 'orig', 'baseline StyleGAN (growing)',
                        lazy=False, pl=0.0, g_net='G_style', d_net='D_basic', growing=True,
                        filt=(1, 2, 1)),
      'config-b': _make('config-b', small, 'orig', 'orig', '+ weight demodulation (growing)',
                        lazy=False, pl=0.0, **grow),
      'config-c': _make('config-c', small, 'orig', 'orig', '+ lazy regularization (growing)',
                        pl=0.0, **grow),
      'config-d': _make('config-d', small, 'orig', 'orig', '+ path length regularization '
                        '(growing)', **grow),
      'config-b-nogrow': _make('config-b-nogrow', small, 'orig', 'orig',
                               'config b without growing', lazy=False, pl=0.0),
      'config-c-nogrow': _make('config-c-nogrow', small, 'orig', 'orig',
                               'config c without growing', pl=0.0),
      'config-d-nogrow': _make('config-d-nogrow', small, 'orig', 'orig',
                               'config d without growing'),
      'config-e': _make('config-e', small, 'skip', 'resnet',
                        '+ no growing, new G (skip) and D (resnet)', r1_gamma=100.0),
      'config-f': _make('config-f', 16 << 10, 'skip', 'resnet', '+ large networks'),
  }
  for g in ARCHITECTURES:
    for d in ARCHITECTURES:
      name = f'config-e-G{g}-D{d}'
      out[name] = _make(name, small, g, d, f'Table 2: G {g}, D {d}', r1_gamma=100.0)
  return out


CONFIGS = _all_configs()


def get_config(name, resolution=None, img_channels=None, c_dim=None, **g_and_d_overrides):
  """A named config, optionally at another resolution / channels / label count.

  Extra keyword arguments override fields present in BOTH GeneratorConfig and
  DiscriminatorConfig (e.g. fmap_base, fmap_max); use dataclasses.replace for one side only.
  """
  if name not in CONFIGS:
    raise ValueError(f'unknown network config {name!r}; choose one of {sorted(CONFIGS)}')
  cfg = CONFIGS[name]
  common = {}
  if resolution is not None:
    common['img_resolution'] = int(resolution)
  if img_channels is not None:
    common['img_channels'] = int(img_channels)
  if c_dim is not None:
    common['c_dim'] = int(c_dim)
  g_fields = {f.name for f in dataclasses.fields(GeneratorConfig)}
  d_fields = {f.name for f in dataclasses.fields(DiscriminatorConfig)}
  bad = sorted(k for k in g_and_d_overrides if k not in g_fields or k not in d_fields)
  if bad:
    raise ValueError(f'get_config({name!r}): {bad} are not fields of both GeneratorConfig and '
                     'DiscriminatorConfig; use dataclasses.replace(cfg.G, ...) instead.')
  common.update(g_and_d_overrides)
  return dataclasses.replace(cfg, G=dataclasses.replace(cfg.G, **common),
                             D=dataclasses.replace(cfg.D, **common))


def _build(table, stylegan2, network, kwargs, extra, who):
  from sg2tf import networks  # pylint: disable=g-import-not-at-top
  if network not in table:
    raise ValueError(f'{who}: unknown network {network!r}; choose one of {sorted(table)}')
  if network in ('G_style', 'D_basic'):
    if int(extra.get('num_fp16_res', 0) or 0) > 0:
      raise ValueError(f'{who}: mixed precision is not supported by the StyleGAN networks of '
                       f'config-a ({network}); train config-a in float32.')
    extra = {}
  if network != stylegan2:  # The growing networks compute their low-precision blocks in float16.
    extra = dict(extra)
    if extra.pop('fp16_dtype', 'float16') != 'float16':
      raise ValueError(f'{who}: {network} has a float16 path only (no bfloat16).')
  return getattr(networks, table[network])(**kwargs, **extra)


# The networks carry no op implementation: call them under
# `sg2tf.custom_ops.implementation(...)` (or pass impl= per call) to choose one.
def build_generator(g: GeneratorConfig, **extra):
  """The generator a GeneratorConfig describes (class by g.network); extra: mixed precision."""
  return _build(G_NETWORKS, 'G_synthesis_stylegan2', g.network, g.kwargs(), extra, 'G')


def build_discriminator(d: DiscriminatorConfig, **extra):
  """The discriminator a DiscriminatorConfig describes (class by d.network)."""
  return _build(D_NETWORKS, 'D_stylegan2', d.network, d.kwargs(), extra, 'D')


def build_networks(cfg: NetworkConfig):
  """(G, D) for a NetworkConfig. G_ema is a second generator with G's config and weights."""
  return build_generator(cfg.G), build_discriminator(cfg.D)


def class_name_of(network: str) -> str:
  """The sg2tf class of an official build-function name (G_NETWORKS / D_NETWORKS)."""
  return {**G_NETWORKS, **D_NETWORKS}[network]
