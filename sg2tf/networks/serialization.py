"""Native save/load of sg2tf networks: a tf.train.Checkpoint plus a JSON of their configs.

Layout of a network directory (written by `save_networks` and `python -m sg2tf.convert`):
  networks.json      {"format": "sg2tf.networks", "version": 1, "G": {...}, "D": {...},
                      "G_class": "Generator", "D_class": "Discriminator", ...}
                     (G, D: the constructor kwargs of the classes G_class / D_class of
                     sg2tf.networks; files without them are Generator / Discriminator)
  checkpoint, ckpt-1.index, ckpt-1.data-*     tf.train.Checkpoint(G=G, D=D, G_ema=G_ema)

The checkpoint keys are `G`, `D` and `G_ema`, so a training checkpoint that uses the same
keys (plus optimizers etc.) can be initialised from it with
`tf.train.Checkpoint(G=G, D=D, G_ema=G_ema, ...).restore(path).expect_partial()`.
"""

import json
import os

import tensorflow as tf

from sg2tf.custom_ops import policy
from sg2tf.networks.discriminator import Discriminator
from sg2tf.networks.generator import Generator
from sg2tf.utils import files

FORMAT = 'sg2tf.networks'
VERSION = 1
CONFIG_FILE = 'networks.json'
CKPT_PREFIX = 'ckpt'

_KERAS_BASE_KEYS = ('name', 'trainable', 'dtype')
# Keys older sg2tf versions wrote that are no longer constructor arguments: 'impl' (the op
# implementation is an op-level policy now, sg2tf.custom_ops.policy; a saved network records
# nothing about the machine it was trained on).
_OBSOLETE_KEYS = ('impl',)


def network_kwargs(config):
  """A Keras get_config() dict (or a saved networks.json entry) minus the base-layer and
  obsolete keys: the constructor's own kwargs."""
  return {k: v for k, v in config.items() if k not in _KERAS_BASE_KEYS + _OBSOLETE_KEYS}


def copy_weights(src, dst, who: str) -> None:
  """Assigns every variable of network src to the same variable of network dst.

  Both must be built from the same config: variables are paired in creation order and
  checked by shape and by their path below the model name. Raises ValueError naming `who`.
  """
  sv, dv = src.variables, dst.variables
  if len(sv) != len(dv):
    raise ValueError(f'{who}: {len(sv)} variables in the source network but {len(dv)} in the '
                     'destination; the network configs differ.')
  for s, d in zip(sv, dv):
    if tuple(s.shape) != tuple(d.shape) or s.path.split('/', 1)[-1] != d.path.split('/', 1)[-1]:
      raise ValueError(f'{who}: variable {s.path} {tuple(s.shape)} does not match {d.path} '
                       f'{tuple(d.shape)}; the network configs differ.')
    d.assign(s.numpy())


def save_networks(out_dir, G, D, G_ema, metadata=None, overwrite=False, what='network directory'):
  """Writes G, D, G_ema to out_dir atomically (sg2tf.utils.files.AtomicDir: a hidden temporary
  directory, renamed when complete; modes follow the umask). Returns out_dir.

  Raises FileExistsError (out_dir not empty, without overwrite) and DiskWriteError (disk full
  or read-only; nothing is left behind and an older out_dir is intact)."""
  config = {'format': FORMAT, 'version': VERSION,
            'G': network_kwargs(G.get_config()), 'D': network_kwargs(D.get_config()),
            'G_class': type(G).__name__, 'D_class': type(D).__name__}
  config.update(metadata or {})
  with files.AtomicDir(out_dir, overwrite=overwrite, what=what) as d:
    with files.open_file(os.path.join(d.tmp, CONFIG_FILE), 'w') as f:
      f.write(json.dumps(config, indent=1))
    tf.train.Checkpoint(G=G, D=D, G_ema=G_ema).save(os.path.join(d.tmp, CKPT_PREFIX))
  return d.path


def load_network_config(path):
  cfg_path = os.path.join(path, CONFIG_FILE)
  if not files.isfile(cfg_path):
    raise FileNotFoundError(f'{cfg_path} not found: {path} is not an sg2tf network directory '
                            '(write one with `python -m sg2tf.convert --pkl X --out DIR`).')
  with files.open_file(cfg_path, 'rb') as f:
    try:
      config = json.loads(f.read().decode('utf-8'))
    except json.JSONDecodeError as e:
      raise ValueError(f'{cfg_path} is not valid JSON: {e}') from None
  if config.get('format') != FORMAT:
    raise ValueError(f'{cfg_path}: format is {config.get("format")!r}, expected {FORMAT!r}')
  if config.get('version') != VERSION:
    raise ValueError(f'{cfg_path}: version {config.get("version")!r} is not supported '
                     f'(this sg2tf reads version {VERSION})')
  return config


def network_class(config, who):
  """The class named by networks.json's G_class / D_class (default Generator / Discriminator)."""
  from sg2tf import networks  # pylint: disable=g-import-not-at-top
  default = 'Generator' if who == 'G' else 'Discriminator'
  name = config.get(f'{who}_class', default)
  allowed = ('Generator', 'GrowingGenerator', 'StyleGANGenerator') if who == 'G' else (
      'Discriminator', 'GrowingDiscriminator', 'StyleGANDiscriminator')
  if name not in allowed:
    raise ValueError(f'{CONFIG_FILE}: {who}_class {name!r} is not one of {allowed}')
  return getattr(networks, name)


def load_networks(path, impl=None):
  """(G, D, G_ema) from a directory written by save_networks.

  impl: accepted for compatibility and checked; the networks carry no implementation
  (choose it with `sg2tf.custom_ops.implementation(...)` where they are called). An `impl`
  key in an older networks.json is ignored.
  """
  if impl is not None:
    policy.check_impl(impl)
  config = load_network_config(path)
  g_kwargs, d_kwargs = network_kwargs(config['G']), network_kwargs(config['D'])
  g_cls, d_cls = network_class(config, 'G'), network_class(config, 'D')
  G, G_ema = g_cls(**g_kwargs), g_cls(**g_kwargs)
  D = d_cls(**d_kwargs)
  ckpt = tf.train.latest_checkpoint(path)
  if ckpt is None:
    raise FileNotFoundError(f'no checkpoint in {path} (expected {CKPT_PREFIX}-N.index and '
                            'a `checkpoint` file)')
  status = tf.train.Checkpoint(G=G, D=D, G_ema=G_ema).restore(ckpt)
  status.assert_existing_objects_matched().expect_partial()
  return G, D, G_ema
