"""Trains StyleGAN2.

  python train_main.py --flagfile=configs/ffhq_f.flags --data_dir=datasets/ffhq \
      --run_dir=runs/ffhq-f [--batch_size=32 --gamma=10 ...]

Flags given after --flagfile override the file's values. The resolved config goes to
<run_dir>/config.json; rerunning the same command resumes from the newest checkpoint there.
See sg2tf/flags.py (define_train_flags) for every flag and configs/*.flags for the paper's
settings.
"""

import sys

from absl import app

from sg2tf import flags as sg2tf_flags

sg2tf_flags.define_train_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  from sg2tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
  try:
    cfg = config_lib.resolve_config(sg2tf_flags.train_config_from_flags())
  except ValueError as e:
    raise app.UsageError(str(e)) from None

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
    raise app.UsageError(str(e)) from None
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
  """One line on stderr, no traceback; the exit status."""
  print(f'error: {" ".join(str(e).split())}', file=sys.stderr)
  return code


if __name__ == '__main__':
  app.run(main)
