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

# Heaviest first (longest-processing-time order): with --dist=loadscope a test class is sent
# to a worker whole, in collection order, so a long class collected last keeps one worker busy
# alone at the end while the others idle. The trainer tests and the XLA / compile-matrix
# checks are the long ones; the stable sort keeps the order within each group.
_HEAVY = ('tests/training/', 'tests/test_gpu_formulation.py', 'tests/test_selfcheck.py',
          'tests/custom_ops/test_compile_matrix.py', 'tests/test_disk_errors.py',
          'tests/test_ram_end_to_end.py', 'tests/test_saved_model_generator.py')


def pytest_collection_modifyitems(session, config, items):
  del session, config
  items.sort(key=lambda item: 0 if item.nodeid.startswith(_HEAVY) else 1)
