"""Set-up shared by every test module (pytest loads it before them)."""

import os

# Under pytest-xdist every worker is a process with TensorFlow's own thread pools. Left alone,
# each sizes them to all the cores and the workers oversubscribe the machine (measured on 2
# cores: tests up to 4x slower than alone). Each worker gets its share of the cores instead
# (the variables are read when TensorFlow starts; subprocesses of tests inherit them), unless
# they are set already.
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1') or 1)
if _WORKERS > 1:
  _SHARE = str(max(1, (os.cpu_count() or 1) // _WORKERS))
  for _var in ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS', 'OMP_NUM_THREADS'):
    os.environ.setdefault(_var, _SHARE)


# Grappler (TensorFlow's graph optimiser) off for the tests run in this process: on the tiny
# networks of the suite it costs more than the steps it optimises (measured alone: a training
# step under XLA 53 s -> 37 s, the self-check fallback step 35 s -> 27 s). The optimiser does
# not change what is computed, and the tools' own processes (the CLI, wheel and export tests
# run them as subprocesses) keep it on, as users have it. SG2TF_TEST_GRAPPLER=1 keeps it on
# here too.
_GRAPPLER_OFF = os.environ.get('SG2TF_TEST_GRAPPLER', '') not in ('1', 'true', 'yes')
_grappler_set = False


def pytest_runtest_setup(item):
  """Switches grappler off once TensorFlow is imported (not before: TF-free tests stay so)."""
  del item
  global _grappler_set
  import sys  # pylint: disable=g-import-not-at-top
  if _GRAPPLER_OFF and not _grappler_set and 'tensorflow' in sys.modules:
    sys.modules['tensorflow'].config.optimizer.set_experimental_options(
        {'disable_meta_optimizer': True})
    _grappler_set = True
