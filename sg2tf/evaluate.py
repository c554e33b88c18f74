r"""Evaluates a generator with the official StyleGAN2 metrics.

  sg2tf-eval --network=<official .pkl | network dir | run dir | checkpoint> \
      --data=datasets/ffhq --metrics=fid50k,pr50k3,ppl2_wend [--num_fakes=5000] \
      [--feature_dir=...] [--outdir=...]
  (in a checkout also: python eval_main.py ...)

Prints a results table; appends one JSON line per metric to <outdir>/metrics.jsonl (default:
the run directory, or the folder of the network file) and writes TensorBoard scalars there.
"""

import os
import sys
from typing import List, Optional, Sequence

from absl import flags

from sg2tf import cli
from sg2tf import flags as sg2tf_flags


def define_flags(flag_values=flags.FLAGS) -> None:
  sg2tf_flags.define_eval_flags(flag_values)


def config_from_flags(flag_values=flags.FLAGS,
                      argv: Sequence[str] = ('',)) -> sg2tf_flags.EvalConfig:
  """The checked EvalConfig (no TensorFlow); cli.UsageError names the flag."""
  from sg2tf import tool_util  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise cli.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    config = sg2tf_flags.eval_config_from_flags(flag_values)
    tool_util.check_network_path(config.network)
  except ValueError as e:
    raise cli.UsageError(str(e)) from None
  if not config.metrics:
    raise cli.UsageError('--metrics is empty; name at least one metric, e.g. --metrics=fid50k.')
  from sg2tf.metrics import registry  # pylint: disable=g-import-not-at-top
  try:
    metrics = registry.check_metric_names(config.metrics)
  except ValueError as e:
    raise cli.UsageError(str(e)) from None
  needs_data = [m for m in metrics if registry.needs_data(m)]
  if needs_data and not config.data:
    raise cli.UsageError(f'--data is required for {", ".join(needs_data)} (a TFRecord dataset '
                         'made by sg2tf-dataset).')
  if config.data is not None and not os.path.exists(config.data) and '://' not in config.data:
    raise cli.UsageError(f'--data={config.data}: no such directory (a TFRecord dataset made by '
                         'sg2tf-dataset).')
  return config


def make_strategy(name: str):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpus = tf.config.list_logical_devices('GPU')
  if name == 'mirrored' or (name == 'auto' and len(gpus) > 1):
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()


def run(config: sg2tf_flags.EvalConfig) -> int:
  """Runs the evaluation described by config; returns the process exit code."""
  from sg2tf.metrics import feature_files  # pylint: disable=g-import-not-at-top
  from sg2tf import loading as network_loader  # pylint: disable=g-import-not-at-top
  from sg2tf.metrics import real_data  # pylint: disable=g-import-not-at-top
  from sg2tf.metrics import runner  # pylint: disable=g-import-not-at-top
  from sg2tf import custom_ops  # pylint: disable=g-import-not-at-top
  from sg2tf import selfcheck  # pylint: disable=g-import-not-at-top
  from sg2tf.utils import files  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top

  expected = (ValueError, network_loader.NetworkLoadError, feature_files.FeatureFileMissingError,
              real_data.RealDataError, FileNotFoundError, custom_ops.CustomOpUnavailableError,
              files.DownloadError)
  try:
    # Custom / fused paths are trusted only after matching the reference here (cached).
    selfcheck.ensure_trusted('evaluation')
    metrics = runner.check_metric_names(config.metrics)
    needs_data = [m for m in metrics if runner.METRICS[m].num_reals != 0]
    if needs_data and not config.data:
      raise ValueError(f'--data is required for {", ".join(needs_data)}.')
    strategy = make_strategy(config.strategy)
    with strategy.scope():
      G = network_loader.load_generator(config.network)
    options = runner.Options(
        feature_dir=config.feature_dir, cache_dir=config.cache_dir,
        download=config.download_features, num_fakes=config.num_fakes,
        num_reals=config.num_reals, batch_per_replica=config.batch_per_replica,
        seed=config.seed, truncation_psi=config.truncation_psi)
    name, _ = network_loader.describe(config.network)
    out_dir = config.output_dir or network_loader.output_dir_for(config.network)
    results = runner.evaluate(G, metrics, config.data if needs_data else None, options,
                              strategy=strategy, network_name=name, output_dir=out_dir)
  except expected as e:
    logging.debug('evaluation failed', exc_info=True)  # the traceback with --verbosity=1
    print(f'error: {cli.one_line(e)}', file=sys.stderr)
    return 2
  print(runner.format_table(results))
  print(f'\nResults appended to {os.path.join(out_dir, "metrics.jsonl")}')
  return 0


def _main(argv: List[str]) -> int:
  return run(config_from_flags(flags.FLAGS, argv))


def main(argv: Optional[Sequence[str]] = None, doc: Optional[str] = None) -> None:
  """The `sg2tf-eval` command (and eval_main.py)."""
  define_flags()
  cli.run_tool(_main, argv, doc=doc or __doc__, topics=sg2tf_flags.EVAL_TOPICS)


if __name__ == '__main__':
  main()
