"""On-disk cache of real-data statistics (FID mean/cov, P&R features).

An entry is keyed by everything that determines its content: the dataset identity
(`real_data.dataset_hash`), the protocol (statistic, number of reals, feature network weights,
code version). Entries are .npz files written to a temporary name and renamed, so an
interrupted run never leaves a half-written entry; a damaged entry is recomputed.

Location: `cache_dir` argument (`--cache_dir`), else `SG2TF_METRICS_CACHE`, else
`~/.cache/sg2tf/metrics`.
"""

import hashlib
import json
import os
from typing import Callable, Dict, Optional

from absl import logging
import numpy as np

from sg2tf.utils import files
from sg2tf.utils import safe_pickle

CACHE_ENV = 'SG2TF_METRICS_CACHE'
# Bump when the way statistics are computed changes, so old entries are not reused.
CACHE_VERSION = 1


def default_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'sg2tf',
                                                   'metrics')


def entry_path(cache_dir: Optional[str], key: Dict[str, object], label: str = 'stats') -> str:
  """The file for `key` (a JSON-able dict); `label` only makes the name readable."""
  blob = json.dumps(dict(key, cache_version=CACHE_VERSION), sort_keys=True)
  digest = hashlib.sha256(blob.encode()).hexdigest()[:24]
  safe = ''.join(c if c.isalnum() or c in '-_' else '_' for c in label)
  return os.path.join(cache_dir or default_dir(), f'{safe}-{digest}.npz')


def load(path: str) -> Optional[Dict[str, np.ndarray]]:
  if not files.isfile(path):
    return None
  try:
    return safe_pickle.load_npz(path, 'statistics cache entry')
  except (OSError, safe_pickle.NumpyFileError) as e:
    logging.warning('Ignoring damaged statistics cache %s (%s); recomputing.', path, e)
    return None


def save(path: str, arrays: Dict[str, np.ndarray], key: Dict[str, object]) -> None:
  """Atomically writes arrays (+ the key as JSON, for inspection) to path (mode by umask)."""
  files.write_npz(path, dict(arrays, _key=np.array(json.dumps(key, sort_keys=True))),
                  what='statistics cache entry')


def get_or_compute(cache_dir: Optional[str], key: Dict[str, object], label: str,
                   compute: Callable[[], Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
  """Cached arrays for `key`, computing and saving them on a miss.

  A cache that cannot be written (read-only disk) costs a warning, not the result.
  """
  path = entry_path(cache_dir, key, label)
  hit = load(path)
  if hit is not None:
    logging.info('Using cached real-data statistics %s', path)
    return {k: v for k, v in hit.items() if k != '_key'}
  arrays = compute()
  try:
    save(path, arrays, key)
    logging.info('Saved real-data statistics to %s', path)
  except OSError as e:
    logging.warning('Could not write the statistics cache %s (%s); continuing without it.',
                    path, e)
  return arrays
