"""What the host CPU is: its model name and instruction-set flags, from /proc/cpuinfo (Linux;
'Features' on ARM). No TensorFlow. Used by the op build (the tuned variant's cache key), the
device names in logs, `sg2tf-doctor` and the benchmarks' metadata."""

import platform
from typing import FrozenSet, Optional, Sequence

CPUINFO = '/proc/cpuinfo'


def _first_line(prefixes: Sequence[str], path: str) -> Optional[str]:
  try:
    with open(path, encoding='utf-8') as f:
      for line in f:
        if line.startswith(tuple(prefixes)):
          return line
  except OSError:
    pass
  return None


def model(path: str = CPUINFO) -> str:
  """e.g. 'AMD EPYC 7B13'; the platform's processor/machine name where /proc is absent."""
  line = _first_line(('model name', 'Model', 'cpu model'), path)
  if line is not None:
    return line.split(':', 1)[1].strip()
  return platform.processor() or platform.machine()


def flags_line(path: str = CPUINFO) -> str:
  """The first CPU's flags line as the kernel prints it (a stable key for what this CPU can
  execute); the machine name where there is none."""
  return _first_line(('flags', 'Features'), path) or platform.machine()


def flags(path: str = CPUINFO) -> FrozenSet[str]:
  """The instruction-set flags ('avx2', 'avx512fp16', 'amx_bf16', ...); empty if unknown."""
  line = _first_line(('flags', 'Features'), path)
  return frozenset(line.split(':', 1)[1].split()) if line else frozenset()
