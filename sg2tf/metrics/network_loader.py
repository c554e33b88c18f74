"""Loads the generator to evaluate, and the generator protocol the metrics rely on.

The metrics need only this of a generator `G` (sg2tf's networks provide it; tests use small
stand-ins):

    G.z_dim                                             # int
    G.mapping(z, truncation_psi=1.0)                    # [N, z_dim] -> w [N, num_ws, w_dim]
    G.synthesis(w, noise_mode='const'|'random')         # -> images [N, H, W, C] in ~[-1, 1]
    G(z, truncation_psi=1.0, noise_mode='random')       # mapping + synthesis
    G.c_dim (optional)                                  # conditional networks: not supported

`load_generator(path)` is the one entry point eval_main uses to turn `--network` into such
a G; extend it when new kinds of network files appear.
"""

import os
from typing import Tuple


class NetworkLoadError(ValueError):
  """--network is unusable; the message says why and what to do."""


def network_kind(path: str) -> str:
  """'official_pkl', 'run_dir', 'saved_model', 'checkpoint' or 'unknown'."""
  path = os.fspath(path)
  if os.path.isdir(path):
    if os.path.isfile(os.path.join(path, 'saved_model.pb')):
      return 'saved_model'
    return 'run_dir'
  if path.endswith('.pkl'):
    return 'official_pkl'
  if path.endswith('.index') or '.ckpt' in os.path.basename(path) or os.path.isfile(
      path + '.index'):
    return 'checkpoint'
  return 'unknown'


def check_generator(G) -> None:
  """Raises NetworkLoadError if G lacks what the metrics use."""
  missing = [a for a in ('z_dim', 'mapping', 'synthesis') if not hasattr(G, a)]
  if missing or not callable(G):
    raise NetworkLoadError(f'the generator lacks {", ".join(missing) or "__call__"}; the metrics '
                           f'need z_dim, mapping, synthesis and __call__.')
  if int(getattr(G, 'c_dim', 0) or 0) > 0:
    raise NetworkLoadError(f'conditional generators (c_dim={G.c_dim}) are not supported by the '
                           f'metrics yet.')


def load_generator(path: str, impl: str = 'auto'):
  """The generator (EMA weights where there are two) behind `--network`.

  `impl` picks the op implementation ('auto', 'custom', 'ref') where the network has one.

  Raises:
    NetworkLoadError: missing path, unsupported kind (with what is supported).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise NetworkLoadError(f'--network={path}: no such file or directory.')
  kind = network_kind(path)
  if kind == 'official_pkl':
    try:
      from sg2tf import convert  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise NetworkLoadError(f'--network={path}: loading official .pkl files needs sg2tf.convert, '
                             f'which is not available in this installation ({e}).') from None
    _, _, g_ema = convert.load_official_pkl(path, impl=impl)
    check_generator(g_ema)
    return g_ema
  raise NetworkLoadError(
      f'--network={path}: {kind.replace("_", " ")} networks are not supported yet; pass an '
      f'official StyleGAN2 .pkl (training run directories, checkpoints and SavedModels come '
      f'with the training code).')


def output_dir_for(network: str) -> str:
  """Default folder for metrics.jsonl / TensorBoard: the run dir, or the file's folder."""
  network = os.path.abspath(os.fspath(network))
  return network if os.path.isdir(network) else os.path.dirname(network)


def describe(network: str) -> Tuple[str, str]:
  """(display name, kind) for logs and results."""
  return os.path.basename(os.path.normpath(network)), network_kind(network)
