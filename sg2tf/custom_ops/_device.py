"""The one device check of sg2tf: does TensorFlow see a GPU?

Everything that depends on the machine asks here (which op library to load, the default
formulation of the modulated convolution, how bias gradients are reduced), so that a
different answer is a policy choice in one place (sg2tf.custom_ops.policy) and never a
switch spread through the code.
"""

import functools
import platform

import tensorflow as tf

from sg2tf.utils import cpu


@functools.lru_cache(maxsize=None)
def gpus_visible() -> bool:
  # Physical devices only: listing logical ones would initialise the runtime and forbid a
  # later tf.config.set_logical_device_configuration.
  try:
    return bool(tf.config.list_physical_devices('GPU'))
  except Exception:  # pylint: disable=broad-except
    return False


def default_device() -> str:
  """The device the custom and fused paths run on by default: GPU:0 if any, else CPU:0."""
  return '/GPU:0' if gpus_visible() else '/CPU:0'


def cpu_model() -> str:
  return cpu.model()


def describe(device: str) -> str:
  """A stable one-line name of a device ('/CPU:0', '/GPU:1') for logs and cache keys."""
  kind, _, index = device.strip('/').partition(':')
  if kind.upper() == 'GPU':
    gpus = tf.config.list_physical_devices('GPU')
    i = int(index or 0)
    if i < len(gpus):
      details = tf.config.experimental.get_device_details(gpus[i])
      cc = details.get('compute_capability')
      cc = f' sm_{cc[0]}{cc[1]}' if cc else ''
      return f'GPU:{i} {details.get("device_name", "unknown")}{cc}'
    return f'GPU:{i} (not visible)'
  return f'CPU {platform.machine()} {cpu_model()}'


def _reset_for_tests():
  gpus_visible.cache_clear()
