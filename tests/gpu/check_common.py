"""What the correctness checks share: tolerances, the comparison, and the result record.

Errors are measured as max |got - want| / max(1, max |want|) against a float64 NumPy
reference computed from the values the inputs hold once stored in the dtype (so input
rounding is not counted against the kernel). NaN must be NaN and an infinity the same
infinity; the rest of the arithmetic is the kernel's float32.
"""

import collections

import numpy as np

# Relative to the output's scale (see above). The kernels compute in float32 and round once
# on store: float32 leaves only float32 summation/libm error; float16 stores 11 significant
# bits (half an ulp is 2^-11 = 4.9e-4), bfloat16 8 bits (2^-9 = 2.0e-3).
TOLERANCES = {
    # upfirdn2d: a float32 sum of up to 64 taps, stored once.
    'upfirdn2d': {'float32': 1e-5, 'float16': 1e-3, 'bfloat16': 8e-3},
    # bias_act forward: one activation, stored once.
    'bias_act': {'float32': 1e-5, 'float16': 1e-3, 'bfloat16': 8e-3},
    # bias_act derivatives of 'y' activations are computed from the stored forward output
    # (a = yref / gain, as the TF gradient passes it), whose rounding the derivative
    # amplifies (tanh'' = -2a(1 - a^2) changes by up to 4x the error of a), and they multiply
    # two stored inputs (dy, and d_dx in the second derivative).
    'bias_act_grad': {'float32': 2e-5, 'float16': 4e-3, 'bfloat16': 3e-2},
}


def rel_error(got, want):
  """NaN-aware max |got - want| / max(1, max |want|); inf when NaN/inf positions differ."""
  got = np.asarray(got, np.float64)
  want = np.asarray(want, np.float64)
  if got.shape != want.shape:
    return float('inf')
  if got.size == 0:
    return 0.0
  wnan, gnan = np.isnan(want), np.isnan(got)
  if not np.array_equal(wnan, gnan):
    return float('inf')
  winf, ginf = np.isinf(want), np.isinf(got)
  if not np.array_equal(winf, ginf) or not np.array_equal(want[winf], got[winf]):
    return float('inf')
  fin = ~(wnan | winf)
  if not fin.any():
    return 0.0
  scale = max(1.0, float(np.max(np.abs(want[fin]))))
  return float(np.max(np.abs(got[fin] - want[fin]))) / scale


class Results:
  """Every check's outcome, grouped for the summary and the JSON file."""

  def __init__(self):
    self.cases = []
    self.skipped = collections.OrderedDict()  # group -> reason

  def add(self, group, name, dtype, passed, error=None, tol=None, detail=''):
    self.cases.append(dict(group=group, name=name, dtype=dtype, passed=bool(passed),
                           error=None if error is None else float(error),
                           tol=None if tol is None else float(tol), detail=str(detail)))
    return passed

  def check(self, group, name, dtype, got, want, tol, detail=''):
    err = rel_error(got, want)
    return self.add(group, name, dtype, err <= tol, err, tol, detail)

  def skip(self, group, reason):
    self.skipped[group] = reason

  @property
  def failures(self):
    return [c for c in self.cases if not c['passed']]

  @property
  def passed(self):
    return not self.failures

  def groups(self):
    """group -> {cases, failed, worst error / tolerance}."""
    out = collections.OrderedDict()
    for c in self.cases:
      g = out.setdefault(c['group'], dict(cases=0, failed=0, worst_error_over_tol=0.0))
      g['cases'] += 1
      g['failed'] += 0 if c['passed'] else 1
      if c['error'] is not None and c['tol']:
        g['worst_error_over_tol'] = max(g['worst_error_over_tol'], c['error'] / c['tol'])
    return out

  def to_json(self, max_failures=200):
    return dict(passed=self.passed, num_cases=len(self.cases), num_failed=len(self.failures),
                tolerances=TOLERANCES, groups=self.groups(), skipped=dict(self.skipped),
                failures=self.failures[:max_failures])
