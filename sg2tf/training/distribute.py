"""tf.distribute strategies for training and the cross-replica helpers the loop needs.

`mirrored` (default): MirroredStrategy over every visible GPU, or the CPU when there is none.
`multi_worker`: MultiWorkerMirroredStrategy configured by the TF_CONFIG environment variable
(one process per machine, each with its GPUs), so a run outgrows one machine with
tf.distribute itself. `default`: TensorFlow's default (no-op) strategy, one device.
"""

import json
import os

from absl import logging
import keras
import tensorflow as tf


def make_strategy(name: str = 'mirrored', devices=None) -> tf.distribute.Strategy:
  """The strategy called `name`; `devices` overrides MirroredStrategy's device list."""
  if name == 'mirrored':
    if devices is None:
      gpus = tf.config.list_logical_devices('GPU')
      devices = [d.name for d in gpus] or ['/cpu:0']
    strategy = tf.distribute.MirroredStrategy(devices=list(devices))
  elif name == 'multi_worker':
    if not os.environ.get('TF_CONFIG'):
      raise ValueError('--strategy=multi_worker needs the TF_CONFIG environment variable '
                       '(cluster spec and this task), see '
                       'https://www.tensorflow.org/guide/distributed_training.')
    try:
      json.loads(os.environ['TF_CONFIG'])
    except ValueError as e:
      raise ValueError(f'TF_CONFIG is not valid JSON: {e}') from None
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  elif name == 'default':
    strategy = tf.distribute.get_strategy()
  else:
    raise ValueError(f'unknown strategy {name!r}; use mirrored, multi_worker or default.')
  logging.info('Strategy %s: %d replica(s) in sync.', type(strategy).__name__,
               strategy.num_replicas_in_sync)
  return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes checkpoints, logs and images (worker 0, or the only one)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
  if not spec:
    return True
  if 'chief' in spec:
    return resolver.task_type == 'chief'
  return resolver.task_type == 'worker' and resolver.task_id == 0


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def replica_slice():
  """(replica index, replica count) inside strategy.run (0, 1 outside any strategy)."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None:
    return 0, 1
  return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def all_reduce_mean(x):
  """Mean over replicas, differentiable; identity with one replica or outside strategy.run."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return x
  return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, x)


def update_mirrored(strategy, var, fn, *args):
  """var.assign(fn(var, *args)) on every replica's copy, from cross-replica context.

  Runs per device with the local copies (no gather to one device), so variables that are
  equal on every replica stay equal.
  """
  def update(v, *a):
    return v.assign(fn(v, *a))
  return strategy.extended.update(_tf_var(var), update, args=tuple(_tf_var(a) for a in args),
                                  group=False)


def _tf_var(v):
  """The tf.Variable behind a Keras 3 variable (which tf.distribute APIs need)."""
  return v.value if isinstance(v, keras.Variable) else v
