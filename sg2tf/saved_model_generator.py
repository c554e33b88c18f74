"""An exported SavedModel (sg2tf.export) seen through the generator protocol `generate` uses.

    G = SavedModelGenerator('exports/ffhq/3')      # the folder holding saved_model.pb
    w = G.mapping(z, c)                             # [N, num_ws, w_dim], untruncated
    w = G.mapping.truncate(w, psi)                  # the export's truncation (its cutoff)
    x = G.synthesis(w, noise_mode='const')          # [N, R, R, C] as the network returns it

Only the signatures are used (`mapping`, `synthesis`), so the SavedModel needs neither sg2tf's
networks nor the custom ops, and gives the images the network gives. What the signatures fix
at export time is checked against what is asked: the noise mode (`--noise_mode` must be the
exported one; `random` is refused, since generate draws random noise from the seed and the
signatures take no noise input) and the truncation cutoff. Truncation itself is exact for
any psi: w_avg is read back as mapping(z, truncation_psi=0) on the truncated layers.
"""

import json
import os
from typing import Optional

from sg2tf.utils import files
from sg2tf.utils.errors import NetworkLoadError

INFO_FILE = 'export_info.json'  # = sg2tf.export.INFO_FILE (not imported: it defines flags)


def _first_line(e: BaseException) -> str:
  return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


class _Mapping:

  def __init__(self, owner):
    self._g = owner

  def __call__(self, z, c=None, impl=None, truncation_psi=1.0):
    del impl  # a SavedModel holds one (reference) implementation
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    g = self._g
    kwargs = dict(z=tf.convert_to_tensor(z, tf.float32),
                  truncation_psi=tf.constant(float(truncation_psi), tf.float32))
    if g.c_dim:
      if c is None:
        raise ValueError(f'{g.path}: the SavedModel is conditional (c_dim={g.c_dim}); pass '
                         f'--class_idx.')
      kwargs['c'] = tf.convert_to_tensor(c, tf.float32)
    return g.signatures['mapping'](**kwargs)['w']

  def truncate(self, ws, truncation_psi=1.0, truncation_cutoff=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    g = self._g
    g.check_cutoff(truncation_cutoff)
    if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
      return ws
    ws = tf.convert_to_tensor(ws, tf.float32)
    w_avg = g.w_avg()  # [1, num_ws, w_dim]; equal to ws's layers past the cutoff: untouched
    psi = tf.cast(truncation_psi, tf.float32)
    cutoff = g.truncation_cutoff
    if cutoff is not None:
      layer = tf.range(g.num_ws)[tf.newaxis, :, tf.newaxis]
      psi = tf.where(layer < cutoff, psi, tf.ones([], tf.float32))
    return w_avg + psi * (ws - w_avg)


class _Synthesis:

  def __init__(self, owner):
    self._g = owner
    self.noise_shapes = []  # no noise inputs: noise_mode=random is refused
    self.img_resolution = owner.resolution
    self.img_channels = owner.channels

  def __call__(self, ws, noise_mode=None, noise=None, impl=None, **unused):
    del impl, unused
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    g = self._g
    if noise is not None:
      raise ValueError(f'{g.path}: the SavedModel takes no noise inputs.')
    g.check_noise_mode(noise_mode or g.noise_mode)
    return g.signatures['synthesis'](w=tf.convert_to_tensor(ws, tf.float32))['images']


class SavedModelGenerator:
  """A SavedModel written by sg2tf.export, with G's attributes and call protocol."""

  is_saved_model = True

  def __init__(self, path: str, flag: str = '--network'):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.path = path
    try:
      self.model = tf.saved_model.load(path)
    except Exception as e:  # pylint: disable=broad-except
      raise NetworkLoadError(f'{flag}={path}: cannot load this SavedModel: '
                             f'{_first_line(e)}') from None
    self.signatures = self.model.signatures
    missing = [s for s in ('mapping', 'synthesis') if s not in self.signatures]
    if missing:
      raise NetworkLoadError(f'{flag}={path}: the SavedModel lacks the signature(s) '
                             f'{", ".join(missing)}; export it with python -m sg2tf.export.')
    info = {}
    info_path = os.path.join(path, INFO_FILE)
    if files.isfile(info_path):
      try:
        info = json.loads(files.read_text(info_path))
      except ValueError as e:
        raise NetworkLoadError(f'{flag}={info_path}: not valid JSON ({e}).') from None
    self.noise_mode = info.get('noise_mode', 'const')
    self.truncation_cutoff: Optional[int] = info.get('truncation_cutoff')
    _, map_inputs = self.signatures['mapping'].structured_input_signature
    _, syn_inputs = self.signatures['synthesis'].structured_input_signature
    self.z_dim = int(map_inputs['z'].shape[-1])
    self.c_dim = int(map_inputs['c'].shape[-1]) if 'c' in map_inputs else 0
    self.num_ws, self.w_dim = (int(d) for d in syn_inputs['w'].shape[1:])
    out = self.signatures['synthesis'].structured_outputs['images']
    self.resolution, self.channels = int(out.shape[1] or 0), int(out.shape[3] or 0)
    self.mapping = _Mapping(self)
    self.synthesis = _Synthesis(self)
    self._w_avg = None

  def w_avg(self):
    """[1, num_ws, w_dim]: w_avg on the truncated layers (mapping at truncation_psi=0)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if self._w_avg is None:
      z = tf.zeros([1, self.z_dim], tf.float32)
      c = tf.one_hot([0], self.c_dim) if self.c_dim else None
      self._w_avg = self.mapping(z, c, truncation_psi=0.0)
    return self._w_avg

  def check_noise_mode(self, noise_mode: str) -> None:
    if noise_mode == 'random':
      raise ValueError(f'--noise_mode=random: the SavedModel {self.path} takes no noise inputs '
                       f'(generate draws random noise from the seed); use --noise_mode='
                       f'{self.noise_mode}, its exported noise mode, or a network file.')
    if noise_mode != self.noise_mode:
      raise ValueError(f'--noise_mode={noise_mode}: the SavedModel {self.path} was exported '
                       f'with noise_mode={self.noise_mode}; pass --noise_mode={self.noise_mode} '
                       f'or export it again with --noise_mode={noise_mode}.')

  def check_cutoff(self, truncation_cutoff: Optional[int]) -> None:
    if truncation_cutoff is not None and truncation_cutoff != self.truncation_cutoff:
      raise ValueError(f'--truncation_cutoff={truncation_cutoff}: the SavedModel {self.path} '
                       f'was exported with truncation_cutoff={self.truncation_cutoff}; export '
                       f'it again with --truncation_cutoff={truncation_cutoff}.')

  def check_generate_options(self, noise_mode: str, truncation_cutoff: Optional[int]) -> None:
    """Fails early on what the exported signatures cannot do."""
    self.check_noise_mode(noise_mode)
    self.check_cutoff(truncation_cutoff)

  def __call__(self, z, c=None, truncation_psi=1.0, noise_mode=None, **unused):
    ws = self.mapping.truncate(self.mapping(z, c), truncation_psi)
    return self.synthesis(ws, noise_mode=noise_mode)
