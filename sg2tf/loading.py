"""Loads any `--network` (eval, export, generate, project), and the generator protocol the
metrics rely on.

The metrics need only this of a generator `G` (sg2tf's networks provide it; tests use small
stand-ins):

    G.z_dim                                             # int
    G.mapping(z, truncation_psi=1.0)                    # [N, z_dim] -> w [N, num_ws, w_dim]
    G.synthesis(w, noise_mode='const'|'random')         # -> images [N, H, W, C] in ~[-1, 1]
    G(z, truncation_psi=1.0, noise_mode='random')       # mapping + synthesis
    G.c_dim (optional)                                  # conditional networks: not supported

`load_generator(path)` is the one entry point eval_main uses to turn `--network` into such
a G; extend it when new kinds of network files appear. `--network` may be a TensorFlow
filesystem path (gs://..., ram://...) or an http(s) URL of an official .pkl (`URL#sha256=HEX`
checks its digest): URLs are downloaded once into the cache (sg2tf.utils.files.fetch_url).
An exported SavedModel (`python -m sg2tf.export`; a TF Serving model directory of numbered
versions picks the highest) loads as a `saved_model_generator.SavedModelGenerator` for the
tools whose work its signatures cover (generate); `load_generator` itself refuses it, since
the metrics and the projector need the network.
"""

import os
from typing import Optional, Tuple

from sg2tf.utils import files
from sg2tf.utils.errors import NetworkLoadError  # pylint: disable=unused-import


# File names of sg2tf.networks.serialization (network dirs) and sg2tf.training (run dirs),
# repeated here so that telling the kinds apart imports neither.
_NETWORKS_JSON = 'networks.json'
_RUN_CONFIG = 'config.json'
_RUN_CHECKPOINTS = 'checkpoints'
_SNAPSHOT_PREFIX = 'network-snapshot-'
_EXPORT_DIR = 'export'


def network_kind(path: str) -> str:
  """'official_pkl', 'network_dir', 'run_dir', 'saved_model', 'checkpoint' or 'unknown'."""
  path = os.fspath(path)
  if files.is_url(path):
    return 'official_pkl'
  if files.isdir(path):
    if saved_model_dir(path):
      return 'saved_model'
    if files.isfile(os.path.join(path, _NETWORKS_JSON)):
      return 'network_dir'
    return 'run_dir'
  if path.endswith('.pkl'):
    return 'official_pkl'
  if path.endswith('.index') or '.ckpt' in os.path.basename(path) or files.isfile(
      path + '.index'):
    return 'checkpoint'
  return 'unknown'


def saved_model_dir(path: str) -> Optional[str]:
  """The folder holding saved_model.pb: path itself, or (a TF Serving model directory) its
  highest numbered version; None if neither."""
  if files.isfile(os.path.join(path, 'saved_model.pb')):
    return path
  if not files.isdir(path):
    return None
  numbered = sorted((int(n) for n in files.listdir(path) if n.isdigit()), reverse=True)
  for n in numbered:
    if files.isfile(os.path.join(path, str(n), 'saved_model.pb')):
      return os.path.join(path, str(n))
  return None


def fetch(path: str) -> str:
  """The local file behind an http(s) `--network` (downloaded once; see the module
  docstring); other paths are returned as they are."""
  if not files.is_url(path):
    return path
  try:
    return files.fetch_url(path, what='network')
  except ValueError as e:  # a malformed #sha256= fragment
    raise NetworkLoadError(f'--network={path}: {e}') from None


def load_for_generate(path: str, impl: str = 'auto'):
  """load_generator, plus exported SavedModels (wrapped for generate.ImageGenerator)."""
  path = os.fspath(path)
  if not files.is_url(path) and network_kind(path) == 'saved_model':
    from sg2tf import saved_model_generator  # pylint: disable=g-import-not-at-top
    return saved_model_generator.SavedModelGenerator(saved_model_dir(path), flag='--network')
  return load_generator(path, impl=impl, allow_conditional=True)


def check_generator(G, allow_conditional: bool = False) -> None:
  """Raises NetworkLoadError if G lacks what the metrics use."""
  missing = [a for a in ('z_dim', 'mapping', 'synthesis') if not hasattr(G, a)]
  if missing or not callable(G):
    raise NetworkLoadError(f'the generator lacks {", ".join(missing) or "__call__"}; the metrics '
                           f'need z_dim, mapping, synthesis and __call__.')
  if not allow_conditional and int(getattr(G, 'c_dim', 0) or 0) > 0:
    raise NetworkLoadError(f'conditional generators (c_dim={G.c_dim}) are not supported by the '
                           f'metrics yet.')


def load_generator(path: str, impl: str = 'auto', allow_conditional: bool = False):
  """The generator (EMA weights where there are two) behind `--network`.

  path: an official StyleGAN2 .pkl; an sg2tf network directory (networks.json + ckpt-N,
  written by `python -m sg2tf.convert` and by training's network snapshots); a training run
  directory (its latest checkpoint, else its newest network snapshot or export); or a training
  checkpoint prefix (`<run_dir>/checkpoints/ckpt-N`, `.index` accepted) next to which the
  run's config.json tells the network's shape.
  `impl`: accepted for compatibility ('auto', 'custom', 'ref'); the networks carry no op
  implementation, the caller's policy scope (sg2tf.custom_ops.implementation) decides.
  `allow_conditional`: return conditional generators too (the metrics do not support them).

  Raises:
    NetworkLoadError: missing path, unsupported kind (with what is supported), unreadable or
      mismatching files (naming the file).
  """
  path = os.fspath(path)
  if not files.is_url(path) and not files.exists(path) and not files.isfile(
      _strip_index(path) + '.index'):
    raise NetworkLoadError(f'--network={path}: no such file or directory.')
  kind = network_kind(path)
  if kind == 'official_pkl':
    try:
      from sg2tf import convert  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise NetworkLoadError(f'--network={path}: loading official .pkl files needs sg2tf.convert, '
                             f'which is not available in this installation ({e}).') from None
    _, _, g_ema = convert.load_official_pkl(fetch(path), impl=impl)
  elif kind == 'network_dir':
    g_ema = _load_network_dir(path, impl)
  elif kind == 'run_dir':
    g_ema = _load_run_dir(path, impl)
  elif kind == 'checkpoint':
    g_ema = _load_checkpoint(_strip_index(path), impl)
  else:
    what = ('an exported SavedModel holds only its signatures (generate, mapping, synthesis: '
            'no noise inputs, no network to differentiate or evaluate layer by layer), which '
            'is not enough here (python -m sg2tf.generate accepts it)'
            if kind == 'saved_model' else 'this kind of file cannot be loaded as a network')
    raise NetworkLoadError(
        f'--network={path}: {what}; pass an '
        f'official StyleGAN2 .pkl, an sg2tf network directory (networks.json), a training run '
        f'directory or a training checkpoint (<run_dir>/checkpoints/ckpt-N).')
  check_generator(g_ema, allow_conditional=allow_conditional)
  return g_ema


def _strip_index(path: str) -> str:
  return path[:-len('.index')] if path.endswith('.index') else path


def _load_network_dir(path: str, impl: str):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
  try:
    return serialization.load_networks(path, impl=impl)[2]
  except (ValueError, AssertionError, FileNotFoundError, tf.errors.OpError) as e:
    raise NetworkLoadError(f'--network={path}: cannot load this network directory: '
                           f'{_first_line(e)}') from None


def _load_run_dir(path: str, impl: str):
  """Newest intact training checkpoint (found from the files, damaged ones skipped with a
  warning), else the newest network directory in the run."""
  from sg2tf.training import checkpointing  # pylint: disable=g-import-not-at-top
  ckpt = checkpointing.find_resume(path).latest
  if ckpt is not None and files.isfile(os.path.join(path, _RUN_CONFIG)):
    return _load_checkpoint(ckpt, impl)
  candidates = [os.path.join(path, n) for n in files.listdir(path)
                if n.startswith(_SNAPSHOT_PREFIX)]
  export_dir = os.path.join(path, _EXPORT_DIR)
  if files.isdir(export_dir):
    candidates += [os.path.join(export_dir, n) for n in files.listdir(export_dir)]
  candidates = [c for c in candidates if files.isfile(os.path.join(c, _NETWORKS_JSON))]
  if not candidates:
    raise NetworkLoadError(
        f'--network={path}: this directory holds no sg2tf networks: no {_RUN_CHECKPOINTS}/ '
        f'with a {_RUN_CONFIG} (training run), no {_SNAPSHOT_PREFIX}*/ or {_EXPORT_DIR}/*/ '
        f'network directories and no {_NETWORKS_JSON}. Pass a training run directory, a '
        f'network directory, a checkpoint or an official .pkl.')
  newest = max(candidates, key=lambda c: files.getmtime(os.path.join(c, _NETWORKS_JSON)))
  return _load_network_dir(newest, impl)


def _load_checkpoint(prefix: str, impl: str):
  """G_ema from a training checkpoint (or a network directory's ckpt-N)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  folder = os.path.dirname(files.abspath(prefix))
  if not files.isfile(prefix + '.index'):
    raise NetworkLoadError(f'--network={prefix}: no checkpoint {prefix}.index.')
  if files.isfile(os.path.join(folder, _NETWORKS_JSON)):
    from sg2tf.networks import serialization  # pylint: disable=g-import-not-at-top
    net_config = serialization.load_network_config(folder)
    g_kwargs = serialization.network_kwargs(net_config['G'])
    g_cls = serialization.network_class(net_config, 'G')
    build = lambda: g_cls(**g_kwargs)
  else:
    run_dir = folder if files.isfile(os.path.join(folder, _RUN_CONFIG)) else os.path.dirname(
        folder)
    config_path = os.path.join(run_dir, _RUN_CONFIG)
    if not files.isfile(config_path):
      raise NetworkLoadError(
          f'--network={prefix}: no {_RUN_CONFIG} found in {folder} or {run_dir}; a training '
          f'checkpoint is read with the config.json of its run (it says how to build G).')
    from sg2tf import paper_configs as configs  # pylint: disable=g-import-not-at-top
    from sg2tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
    try:
      g_cfg = config_lib.read_config(run_dir).G
    except (ValueError, KeyError, TypeError) as e:
      raise NetworkLoadError(f'--network={prefix}: cannot read {config_path}: '
                             f'{_first_line(e)}') from None
    build = lambda: configs.build_generator(g_cfg)
  del impl  # The op implementation is the caller's policy, not part of the network.
  G_ema = build()
  try:
    # expect_partial first: G, D and the optimizers in the file are meant to stay unread.
    status = tf.train.Checkpoint(G_ema=G_ema).restore(prefix).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise NetworkLoadError(f'--network={prefix}: the checkpoint does not hold a G_ema matching '
                           f'its config ({_first_line(e)}).') from None
  return G_ema


def _first_line(e: BaseException, limit: int = 300) -> str:
  line = (str(e).strip().splitlines() or [type(e).__name__])[0]
  return line if len(line) <= limit else line[:limit] + ' ...'


def output_dir_for(network: str) -> str:
  """Default folder for metrics.jsonl / TensorBoard: the run dir, or the file's folder (the
  current directory for a URL)."""
  if files.is_url(network):
    return os.getcwd()
  network = files.abspath(network)
  return network if files.isdir(network) else os.path.dirname(network)


def describe(network: str) -> Tuple[str, str]:
  """(display name, kind) for logs and results."""
  if files.is_url(network):
    return os.path.basename(files.split_url(network)[0]), network_kind(network)
  return os.path.basename(os.path.normpath(network)), network_kind(network)
