"""sg2tf.utils.cpu: model and flags from a cpuinfo file (x86 and ARM layouts, missing file)."""

import os
import platform
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

from sg2tf.utils import cpu

_X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx2 avx512f avx512fp16 amx_bf16 amx_tile
processor\t: 1
model name\t: second
flags\t\t: fpu
"""
_ARM = """processor\t: 0
Features\t: fp asimd sve bf16
CPU implementer\t: 0x41
Model\t\t: Neoverse-V1
"""


class CpuTest(parameterized.TestCase):

  def _file(self, text):
    fd, path = tempfile.mkstemp()
    with os.fdopen(fd, 'w') as f:
      f.write(text)
    self.addCleanup(os.remove, path)
    return path

  @parameterized.named_parameters(
      ('x86', _X86, 'Intel(R) Xeon(R) Platinum 8488C', {'avx512fp16', 'amx_bf16', 'avx2'}),
      ('arm', _ARM, 'Neoverse-V1', {'sve', 'bf16', 'asimd'}))
  def test_first_cpu(self, text, model, some_flags):
    path = self._file(text)
    self.assertEqual(cpu.model(path), model)
    self.assertLessEqual(some_flags, cpu.flags(path))
    self.assertNotIn('second', cpu.model(path))
    self.assertTrue(cpu.flags_line(path).startswith(('flags', 'Features')))

  def test_no_cpuinfo(self):
    missing = os.path.join(tempfile.gettempdir(), 'no_such_cpuinfo_file')
    self.assertEqual(cpu.flags(missing), frozenset())
    self.assertEqual(cpu.flags_line(missing), platform.machine())
    self.assertEqual(cpu.model(missing), platform.processor() or platform.machine())


if __name__ == '__main__':
  absltest.main()
