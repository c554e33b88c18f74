"""Named network configurations of the StyleGAN2 paper (Table 1: config-b .. config-f;
Table 2: the 3x3 grid of G/D architectures, `config-e-G<arch>-D<arch>`).

Settings follow the official run_training.py: configs a-e use fmap_base 8192 (f: 16384);
config e (and its Table 2 variants) uses R1 gamma 100; c adds lazy regularization and d
path-length regularization; e switches to the skip G / resnet D without progressive
growing. Configs b-d trained with progressive growing in the paper (with
G_synthesis_stylegan_revised / D_stylegan); here they are the 'orig' architectures without
growing, which is what those networks are once fully grown.

    cfg = get_config('config-f', resolution=256)
    G, D = build_networks(cfg)
"""

import dataclasses
from typing import Optional, Tuple

_ARCHS = ('orig', 'skip', 'resnet')


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
  resample_filter: Optional[Tuple[float, ...]] = (1, 3, 3, 1)

  def kwargs(self):
    return dataclasses.asdict(self)


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
  resample_filter: Optional[Tuple[float, ...]] = (1, 3, 3, 1)

  def kwargs(self):
    return dataclasses.asdict(self)


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


def _make(name, fmap_base, g_arch, d_arch, description, r1_gamma=10.0, lazy=True, pl=2.0):
  return NetworkConfig(
      name=name,
      G=GeneratorConfig(fmap_base=fmap_base, architecture=g_arch),
      D=DiscriminatorConfig(fmap_base=fmap_base, architecture=d_arch),
      r1_gamma=r1_gamma, lazy_regularization=lazy, pl_weight=pl, description=description)


def _all_configs():
  small = 8 << 10
  out = {
      'config-b': _make('config-b', small, 'orig', 'orig', 'weight demodulation',
                        lazy=False, pl=0.0),
      'config-c': _make('config-c', small, 'orig', 'orig', '+ lazy regularization', pl=0.0),
      'config-d': _make('config-d', small, 'orig', 'orig', '+ path length regularization'),
      'config-e': _make('config-e', small, 'skip', 'resnet',
                        '+ no growing, new G (skip) and D (resnet)', r1_gamma=100.0),
      'config-f': _make('config-f', 16 << 10, 'skip', 'resnet', '+ large networks'),
  }
  for g in _ARCHS:
    for d in _ARCHS:
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


def build_networks(cfg: NetworkConfig):
  """(G, D) for a NetworkConfig. G_ema is a second Generator with G's config and weights.

  The networks carry no op implementation: call them under
  `sg2tf.custom_ops.implementation(...)` to choose one.
  """
  from sg2tf.networks import Discriminator, Generator  # pylint: disable=g-import-not-at-top
  return Generator(**cfg.G.kwargs()), Discriminator(**cfg.D.kwargs())
