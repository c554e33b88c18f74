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
