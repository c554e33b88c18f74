r"""Trains StyleGAN2.

  sg2tf-train --preset=ffhq_f --data_dir=datasets/ffhq --run_dir=runs/ffhq-f \
      [--batch_size=32 --gamma=10 ...]
  (in a checkout also: python train_main.py --flagfile=configs/ffhq_f.flags ...)

Flags given after --preset / --flagfile override the file's values. The resolved config goes
to <run_dir>/config.json; rerunning the same command resumes from the newest checkpoint there.
Every flag is checked (against the dataset's headers too) before TensorFlow starts.
"""

import sys
from typing import List, Optional, Sequence

from absl import flags

from sg2tf import cli
from sg2tf import flags as sg2tf_flags


def define_flags(flag_values=flags.FLAGS) -> None:
  sg2tf_flags.define_train_flags(flag_values)
  cli.define_common_flags(flag_values)


def config_from_flags(flag_values=flags.FLAGS, argv: Sequence[str] = ('',)):
  """The resolved, fully checked TrainConfig; cli.UsageError names the flag. No TensorFlow:
  the dataset is read only for its headers, and the minibatch is checked against one replica
  here (against the real replica count again once the strategy exists)."""
  from sg2tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise cli.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    cfg = config_lib.resolve_config(sg2tf_flags.train_config_from_flags(flag_values))
    config_lib.check_replicas(cfg, 1)
  except ValueError as e:
    raise cli.UsageError(str(e)) from None
  return cfg


def run(cfg) -> int:
  """Trains as cfg says; returns the exit status (errors: one line on stderr)."""
  from sg2tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
  # Before TensorFlow starts: the run directory must be writable, and no other training may
  # be using it (the lock is held until this process ends, however it ends).
  from sg2tf.utils import files  # pylint: disable=g-import-not-at-top
  try:
    if config_lib.is_chief_process(cfg.strategy):
      files.check_writable(cfg.run_dir, 'the run directory (--run_dir)')
      files.lock_dir(cfg.run_dir, 'run directory')
  except (files.DiskWriteError, files.DirectoryLockedError) as e:
    return _fail(e, 1)

  # TensorFlow starts only now, after every flag has been checked.
  from sg2tf import dataset_info  # pylint: disable=g-import-not-at-top
  from sg2tf.training import checkpointing  # pylint: disable=g-import-not-at-top
  from sg2tf.training import distribute  # pylint: disable=g-import-not-at-top
  from sg2tf.training import loop  # pylint: disable=g-import-not-at-top
  try:
    strategy = distribute.make_strategy(cfg.strategy)
    config_lib.check_replicas(cfg, strategy.num_replicas_in_sync)
  except ValueError as e:
    return _fail(e, 2)
  from sg2tf import custom_ops  # pylint: disable=g-import-not-at-top
  try:
    loop.train(cfg, strategy)
  except (loop.ConfigError, dataset_info.DatasetError, loop.NonFiniteLossError,
          checkpointing.CheckpointDamagedError, custom_ops.CustomOpUnavailableError,
          files.DownloadError) as e:
    return _fail(e, 2)
  except (files.DiskWriteError, files.DirectoryLockedError) as e:
    return _fail(e, 1)
  except Exception as e:  # pylint: disable=broad-except
    if not files.is_write_error(e):
      raise
    return _fail(files.write_error('to the run directory', cfg.run_dir, e), 1)
  return 0


def _fail(e: BaseException, code: int) -> int:
  print(f'error: {cli.one_line(e)}', file=sys.stderr)
  return code


def _main(argv: List[str]) -> int:
  return run(config_from_flags(flags.FLAGS, argv))


def main(argv: Optional[Sequence[str]] = None, doc: Optional[str] = None) -> None:
  """The `sg2tf-train` command (and train_main.py)."""
  define_flags()
  cli.run_tool(_main, argv, doc=doc or __doc__, topics=sg2tf_flags.TRAIN_TOPICS)


if __name__ == '__main__':
  main()
