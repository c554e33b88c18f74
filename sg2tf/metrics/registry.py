"""The official metrics by name: what each measures and what it needs. No TensorFlow.

    METRICS['fid50k'].kind        # 'fid' | 'is' | 'pr' | 'ppl'
    needs_data('fid50k')          # True: the metric compares with real images (--data)
    check_metric_names(['fid50k', 'pr50k3'])
    result_names('pr50k3')        # ['pr50k3_precision', 'pr50k3_recall']

Flag and config validation (sg2tf.training.config, eval_main) use this module, so a wrong
`--metrics` fails before TensorFlow starts; `sg2tf.metrics.runner` computes them.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence

PPL_EPSILON = 1e-4
KINDS = ('fid', 'is', 'pr', 'ppl')


@dataclasses.dataclass(frozen=True)
class PPLConfig:
  """One PPL protocol: space 'z' or 'w', sampling 'full' or 'end', face crop or not."""
  space: str
  sampling: str
  crop: bool
  epsilon: float = PPL_EPSILON

  def __post_init__(self):
    if self.space not in ('z', 'w') or self.sampling not in ('full', 'end'):
      raise ValueError(f'PPLConfig: space must be z|w and sampling full|end, got '
                       f'{self.space!r}, {self.sampling!r}')


@dataclasses.dataclass(frozen=True)
class MetricSpec:
  """An official metric. num_reals None = the whole dataset, 0 = no reals."""
  name: str
  kind: str  # one of KINDS
  num_fakes: int
  num_reals: Optional[int] = 0
  ppl: Optional[PPLConfig] = None
  k: int = 3
  num_splits: int = 10

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'MetricSpec {self.name}: kind {self.kind!r} is not one of {KINDS}')


METRICS: Dict[str, MetricSpec] = {m.name: m for m in [
    MetricSpec('fid50k', 'fid', 50000, 50000),
    MetricSpec('fid50k_full', 'fid', 50000, None),
    MetricSpec('is50k', 'is', 50000),
    MetricSpec('pr50k3', 'pr', 50000, 50000, k=3),
    MetricSpec('ppl_zfull', 'ppl', 50000, ppl=PPLConfig('z', 'full', crop=True)),
    MetricSpec('ppl_wfull', 'ppl', 50000, ppl=PPLConfig('w', 'full', crop=True)),
    MetricSpec('ppl_zend', 'ppl', 50000, ppl=PPLConfig('z', 'end', crop=True)),
    MetricSpec('ppl_wend', 'ppl', 50000, ppl=PPLConfig('w', 'end', crop=True)),
    MetricSpec('ppl2_wend', 'ppl', 50000, ppl=PPLConfig('w', 'end', crop=False)),
]}


def check_metric_names(names: Sequence[str]) -> List[str]:
  """The stripped names; ValueError naming --metrics for unknown ones or none at all."""
  names = [n.strip() for n in names if n.strip()]
  unknown = [n for n in names if n not in METRICS]
  if unknown or not names:
    raise ValueError(f'--metrics: unknown metric(s) {unknown or "(none given)"}; choose from '
                     f'{", ".join(METRICS)}.')
  return names


def needs_data(metric: str) -> bool:
  """Whether the metric compares with real images (so needs --data)."""
  return METRICS[metric].num_reals != 0


def result_names(metric: str) -> List[str]:
  """The result names a metric reports (its TensorBoard tags are Metrics/<name>)."""
  kind = METRICS[metric].kind
  suffixes = {'is': ('_mean', '_std'), 'pr': ('_precision', '_recall')}.get(kind, ('',))
  return [metric + s for s in suffixes]
