r"""Exports a generator as a portable TensorFlow SavedModel (and optionally a .keras file).

    sg2tf-export --network=<run dir | checkpoint | network dir | .pkl | URL> \
        --outdir=<model dir> [--version=N] [--noise_mode=const] [--truncation_cutoff=N] [--keras]
        [--overwrite]

Layout: TF Serving's `<model dir>/<version>/saved_model.pb`. `--version=N` picks the version
(a non-negative integer); the default `next` is one more than the highest version already in
`--outdir` (1 in an empty one), so exporting again adds a version that TF Serving picks up;
`--version=none` writes the SavedModel into `--outdir` itself (the layout before versions; what
`export_generator` does when called without `version`). Any path may be a TensorFlow
filesystem path (gs://..., see sg2tf.utils.files); the export records no absolute paths
(paths in the metadata are reduced to their last component).

The SavedModel holds G_ema traced with the pure-TensorFlow reference ops (impl='ref') and the
non-fused modulated convolution, so it contains only standard TF ops: it loads with
`tf.saved_model.load(dir)` in any TensorFlow 2 (TF Serving, a process without sg2tf, without
the custom-op library, on CPU or GPU). Signatures (batch dimension N dynamic, all float32
unless noted):

  serving_default, generate(z [N, z_dim], truncation_psi []) ->
      {'images': [N, R, R, C] as the Keras model returns them (unclipped, ~[-1, 1]),
       'images_uint8': uint8 [N, R, R, C] = clip(images * 127.5 + 128, 0, 255)}
  mapping(z [N, z_dim], truncation_psi []) -> {'w': [N, num_ws, w_dim]}
  synthesis(w [N, num_ws, w_dim]) -> {'images', 'images_uint8'}

Conditional networks (c_dim > 0) take one more input, `c` [N, c_dim] (one-hot class
labels, as in training), in `generate`, `serving_default` and `mapping`. Noise inputs are the
network's stored constant noise buffers by default (`--noise_mode=const`: the output is a
pure function of the inputs); `random` draws fresh noise on every call and `none` disables
it. truncation_psi = 1 means no truncation; `--truncation_cutoff=N` limits it to the first N
layers (fixed at export time).

`export_info.json` next to saved_model.pb records the network config, noise mode and the
signatures. With `--keras` the rebuilt generator is also saved as `generator.keras` (Keras 3
format); that file needs sg2tf to load (`import sg2tf` registers its classes with Keras, then
`keras.models.load_model(path)`; or `sg2tf.export.load_keras(path)`), the SavedModel does not. The output directory is written to a temporary folder and renamed.

Training calls `export_generator(G_ema, out_dir)` at the end of a run.
"""

import dataclasses
import json
import os
from typing import Optional

from absl import flags
from absl import logging

from sg2tf import cli
from sg2tf.conventions import NOISE_MODES
from sg2tf.utils import files
from sg2tf.utils import images as image_lib

FORMAT = 'sg2tf.saved_model'
NEXT_VERSION = 'next'
NO_VERSION = 'none'
VERSION = 1
INFO_FILE = 'export_info.json'
KERAS_FILE = 'generator.keras'


def rebuild_with_ref_ops(G):
  """A copy of generator G (plain variables, no distribution) for tracing with impl='ref'."""
  from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
  G_ref = type(G)(**serialization.network_kwargs(G.get_config()))
  serialization.copy_weights(G, G_ref, 'cannot rebuild the generator')
  return G_ref


def _module(G, noise_mode: str, truncation_cutoff: Optional[int]):
  """A tf.Module with the signature functions of G, traced with impl='ref'."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def mapping(z, psi, c=None):
    return G.mapping(z, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff, impl='ref')

  def synthesis(w):
    images = G.synthesis(w, noise_mode=noise_mode, fused_modconv=False, impl='ref')
    return {'images': images, 'images_uint8': image_lib.to_uint8_tf(images)}

  z_spec = tf.TensorSpec([None, G.z_dim], tf.float32, name='z')
  psi_spec = tf.TensorSpec([], tf.float32, name='truncation_psi')
  w_spec = tf.TensorSpec([None, G.num_ws, G.w_dim], tf.float32, name='w')
  module = tf.Module()
  module.G = G
  # Keras 3 variables wrap tf.Variables; list those explicitly so they are surely saved.
  module.weights = [getattr(v, 'value', v) for v in G.variables]
  if G.c_dim:
    c_spec = tf.TensorSpec([None, G.c_dim], tf.float32, name='c')
    module.generate = tf.function(
        lambda z, truncation_psi, c: synthesis(mapping(z, truncation_psi, c)),
        input_signature=[z_spec, psi_spec, c_spec])
    module.mapping = tf.function(
        lambda z, truncation_psi, c: {'w': mapping(z, truncation_psi, c)},
        input_signature=[z_spec, psi_spec, c_spec])
  else:
    module.generate = tf.function(
        lambda z, truncation_psi: synthesis(mapping(z, truncation_psi)),
        input_signature=[z_spec, psi_spec])
    module.mapping = tf.function(lambda z, truncation_psi: {'w': mapping(z, truncation_psi)},
                                 input_signature=[z_spec, psi_spec])
  module.synthesis = tf.function(synthesis, input_signature=[w_spec])
  return module


def portable_metadata(obj):
  """obj with every absolute path (local, ~, or a TensorFlow filesystem path) reduced to its
  last component, so an export does not record the machine it was made on."""
  if isinstance(obj, dict):
    return {k: portable_metadata(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [portable_metadata(v) for v in obj]
  if isinstance(obj, str) and not files.is_url(obj) and (
      os.path.isabs(obj) or obj.startswith('~') or files.is_remote(obj)):
    return os.path.basename(obj.rstrip('/')) or obj
  return obj


def versions(model_dir: str):
  """The integer version folders of a TF Serving model directory, ascending."""
  if not files.isdir(model_dir):
    return []
  return sorted(int(n) for n in files.listdir(model_dir) if n.isdigit())


def version_dir(model_dir: str, version) -> str:
  """Where `--version` puts the SavedModel: <model_dir>/<N>, or model_dir itself ('none')."""
  text = str(version).strip().lower()
  if text == NO_VERSION:
    return model_dir
  if text == NEXT_VERSION:
    if files.isfile(os.path.join(model_dir, 'saved_model.pb')):
      raise FileExistsError(f'--outdir={model_dir} holds a SavedModel itself (exported with '
                            '--version=none); choose another --outdir for versioned exports.')
    return os.path.join(model_dir, str((versions(model_dir) or [0])[-1] + 1))
  if not text.isdigit():
    raise ValueError(f'--version={version}: use a non-negative integer, next (one more than '
                     f'the highest in --outdir) or none (no version folder).')
  return os.path.join(model_dir, str(int(text)))


def export_generator(G, out_dir: str, noise_mode: str = 'const',
                     truncation_cutoff: Optional[int] = None, keras_file: bool = False,
                     overwrite: bool = False, metadata: Optional[dict] = None,
                     version=None) -> str:
  """Writes G (a sg2tf Generator, e.g. G_ema) as a portable SavedModel; returns the folder
  holding saved_model.pb: out_dir, or out_dir/<N> with `version` (N, 'next' or 'none').

  Call it outside any tf.distribute strategy scope. Raises FileExistsError if out_dir exists
  and is not empty (unless overwrite), ValueError for bad arguments; a failed export leaves
  no partial output behind.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import sg2tf  # pylint: disable=g-import-not-at-top
  from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
  if noise_mode not in NOISE_MODES:
    raise ValueError(f'--noise_mode={noise_mode!r}: use one of {", ".join(NOISE_MODES)}.')
  if truncation_cutoff is not None and not 0 <= int(truncation_cutoff) <= G.num_ws:
    raise ValueError(f'--truncation_cutoff={truncation_cutoff}: must be in 0..{G.num_ws} (the '
                     f'network has {G.num_ws} w layers).')
  out_dir = files.abspath(out_dir)
  if files.exists(out_dir) and not files.isdir(out_dir):
    raise FileExistsError(f'--outdir={out_dir} is a file; choose a directory.')
  if version is not None:
    out_dir = version_dir(out_dir, version)
  if files.isdir(out_dir) and files.listdir(out_dir) and not overwrite:
    raise FileExistsError(f'--outdir={out_dir} exists and is not empty; choose another directory '
                          f'{"or version " if version is not None else ""}or pass --overwrite.')
  G_ref = rebuild_with_ref_ops(G)
  module = _module(G_ref, noise_mode, truncation_cutoff)
  # Hidden temporary directory, renamed when complete; modes follow the umask.
  with files.AtomicDir(out_dir, overwrite=overwrite, what='SavedModel export') as d:
    signatures = {'serving_default': module.generate, 'generate': module.generate,
                  'mapping': module.mapping, 'synthesis': module.synthesis}
    tf.saved_model.save(module, d.tmp, signatures=signatures)
    inputs = 'z [N, z_dim], truncation_psi []' + (', c [N, c_dim]' if G.c_dim else '')
    info = {
        'format': FORMAT, 'version': VERSION, 'sg2tf_version': sg2tf.__version__,
        'generator': serialization.network_kwargs(G_ref.get_config()),
        'num_ws': G_ref.num_ws, 'noise_mode': noise_mode,
        'truncation_cutoff': truncation_cutoff,
        'signatures': {
            'serving_default': f'generate({inputs}) -> images, images_uint8',
            'generate': f'({inputs}) -> images [N, R, R, C] float32 unclipped, images_uint8',
            'mapping': f'({inputs}) -> w [N, num_ws, w_dim]',
            'synthesis': '(w [N, num_ws, w_dim]) -> images, images_uint8'},
        'keras_file': KERAS_FILE if keras_file else None}
    info.update(portable_metadata(metadata or {}))
    with files.open_file(os.path.join(d.tmp, INFO_FILE), 'w') as f:
      f.write(json.dumps(info, indent=1))
    if keras_file:
      save_keras(G_ref, os.path.join(d.tmp, KERAS_FILE))
  logging.info('Exported SavedModel %s (signatures serving_default, generate, mapping, '
               'synthesis; noise %s).', out_dir, noise_mode)
  return out_dir


def save_keras(G, path: str) -> None:
  """Writes generator G as the Keras 3 file of `--keras` (generator.keras): a plain copy of G
  (no distribution), which `keras.models.load_model(path)` rebuilds after `import sg2tf`."""
  # Keras writes a zip through Python's own files: local temporary, then copied.
  files.atomic_write(path, rebuild_with_ref_ops(G).save, what='Keras file')


def load_keras(path: str):
  """The Generator saved as `generator.keras` by `export_generator(..., keras_file=True)`:
  `keras.models.load_model` once sg2tf's classes are registered (see sg2tf/__init__.py)."""
  import keras  # pylint: disable=g-import-not-at-top
  from sg2tf import _keras_registration  # pylint: disable=g-import-not-at-top
  _keras_registration.register()
  return keras.models.load_model(path, compile=False)


def export_network(network: str, out_dir: str, **kwargs) -> str:
  """Loads `--network` (see sg2tf.loading) and exports its G_ema."""
  from sg2tf import selfcheck  # pylint: disable=g-import-not-at-top
  from sg2tf.custom_ops import policy  # pylint: disable=g-import-not-at-top
  from sg2tf import loading as network_loader  # pylint: disable=g-import-not-at-top
  with policy.implementation('ref'), policy.formulation('cpu'):
    # The export traces only the reference, non-fused path (a portable SavedModel), so the
    # start-up self-check finds nothing accelerated to verify; it runs for the same rule.
    selfcheck.ensure_trusted('export')
    G = network_loader.load_generator(network, impl='ref', allow_conditional=True)
  if not hasattr(G, 'get_config') or not hasattr(G, 'num_ws'):
    raise ValueError(f'--network={network}: not an sg2tf Generator; cannot export it.')
  metadata = {'source_network': network}
  return export_generator(G, out_dir, metadata=metadata, **kwargs)


# ------------------------------------------------------------------ command line

@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """What `sg2tf-export` does (built from its flags by config_from_flags)."""
  network: str
  outdir: str
  version: str = NEXT_VERSION
  noise_mode: str = 'const'
  truncation_cutoff: Optional[int] = None
  keras: bool = False
  overwrite: bool = False


TOPICS = cli.Topics()


def define_flags(fv=flags.FLAGS):
  """Only when run as a program: importing export_generator must not define flags."""
  if 'network' in fv:
    return
  c, kw = ExportConfig('', ''), dict(flag_values=fv)
  TOPICS.mark('Network and output', fv)
  flags.DEFINE_string('network', None, 'Network to export: a training run directory (latest '
                      'checkpoint), a checkpoint prefix, an sg2tf network directory or an '
                      'official StyleGAN2 .pkl.', **kw)
  flags.DEFINE_string('outdir', None, 'Model directory: the SavedModel goes to '
                      '<outdir>/<version>/ (TF Serving layout). Any TensorFlow filesystem '
                      'path.', **kw)
  flags.DEFINE_alias('out', 'outdir', flag_values=fv)
  flags.DEFINE_string('version', c.version, 'Version folder under --outdir: a non-negative '
                      'integer, next (one more than the highest there, 1 if none) or none (the '
                      'SavedModel directly in --outdir).', **kw)
  flags.DEFINE_bool('overwrite', c.overwrite, 'Replace a non-empty --outdir directory.', **kw)
  flags.DEFINE_bool('keras', c.keras, 'Also write generator.keras (needs sg2tf to load).', **kw)
  TOPICS.mark('The exported model', fv)
  flags.DEFINE_enum('noise_mode', c.noise_mode, list(NOISE_MODES),
                    'Noise inputs of the exported model: const (stored buffers, deterministic), '
                    'random (fresh each call) or none.', **kw)
  flags.DEFINE_integer('truncation_cutoff', c.truncation_cutoff,
                       'Apply truncation only to the first N w layers (default: all).', **kw)
  TOPICS.mark(None)


def config_from_flags(f) -> ExportConfig:
  """The checked ExportConfig; cli.UsageError names the flag. No TensorFlow."""
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  try:
    if not f.network or not f.outdir:
      raise tool_util.ToolError('both --network and --outdir are required (see --help).')
    tool_util.check_network_path(f.network)
    text = str(f.version).strip().lower()
    if text not in (NEXT_VERSION, NO_VERSION) and not text.isdigit():
      version_dir(f.outdir, text)  # raises the message naming --version
    if f.truncation_cutoff is not None and f.truncation_cutoff < 1:
      raise tool_util.ToolError(f'--truncation_cutoff={f.truncation_cutoff} must be >= 1.')
  except ValueError as e:
    raise cli.UsageError(str(e)) from None
  return ExportConfig(network=f.network, outdir=f.outdir, version=text,
                      noise_mode=f.noise_mode, truncation_cutoff=f.truncation_cutoff,
                      keras=f.keras, overwrite=f.overwrite)


def run(c: ExportConfig) -> str:
  """Exports as c says; returns the SavedModel directory."""
  return export_network(c.network, c.outdir, noise_mode=c.noise_mode,
                        truncation_cutoff=c.truncation_cutoff, keras_file=c.keras,
                        overwrite=c.overwrite, version=c.version)


def _main(argv):
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  return cli.run_config(argv, config_from_flags, run, expected=tool_util.expected_errors(),
                        report=lambda config, path: print(f'Exported {path}'))


def main(argv=None):
  """The `sg2tf-export` command (python -m sg2tf.export)."""
  define_flags()
  cli.run_tool(_main, argv, doc=__doc__, topics=TOPICS)


if __name__ == '__main__':
  main()
