"""Progress of long loops: one reporter (done/total, rate, elapsed, ETA) and one time format.
Logs through absl; no TensorFlow."""

import time
from typing import Optional

from absl import logging


def format_time(seconds: float) -> str:
  """59 -> '59s', 125 -> '2m 05s', 3725 -> '1h 02m', 90000 -> '1d 01h'."""
  s = int(round(max(float(seconds), 0)))
  if s < 60:
    return f'{s}s'
  if s < 3600:
    return f'{s // 60}m {s % 60:02d}s'
  if s < 86400:
    return f'{s // 3600}h {(s // 60) % 60:02d}m'
  return f'{s // 86400}d {(s // 3600) % 24:02d}h'


class Progress:
  """Logs `what: done/total unit, pct%, rate unit/s, elapsed T, ETA T[, extra]` at most every
  `every_s` seconds, and always when done reaches total (or with force). total None: an
  open-ended loop, logged without percentage and ETA. The same `done` is never logged twice.
  """

  def __init__(self, total: Optional[int], what: str, unit: str = 'it', every_s: float = 10.0):
    self.total = None if total is None else int(total)
    self.what, self.unit, self.every_s = what, unit, float(every_s)
    self.start = self.last = time.time()
    self._logged = None

  def update(self, done: int, extra: str = '', force: bool = False) -> None:
    now = time.time()
    finished = self.total is not None and done >= self.total
    if (not (force or finished) and now - self.last < self.every_s) or done == self._logged:
      return
    self.last, self._logged = now, done
    elapsed = max(now - self.start, 1e-9)
    rate = done / elapsed
    tail = f', {extra}' if extra else ''
    if self.total:
      eta = format_time((self.total - done) / rate) if rate > 0 else '?'
      logging.info('%s: %d/%d %s, %.0f%%, %.2f %s/s, elapsed %s, ETA %s%s', self.what, done,
                   self.total, self.unit, 100.0 * done / self.total, rate, self.unit,
                   format_time(elapsed), eta, tail)
    else:
      logging.info('%s: %d %s, %.2f %s/s, elapsed %s%s', self.what, done, self.unit, rate,
                   self.unit, format_time(elapsed), tail)
