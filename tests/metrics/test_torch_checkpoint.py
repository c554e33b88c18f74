"""torch_checkpoint: both torch.save formats, strides/offsets, refusal of foreign globals."""

import os
import pickle
import subprocess
import zipfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf.metrics import torch_checkpoint
from tests.metrics import standins


class _Evil:

  def __reduce__(self):
    return (subprocess.call, (['touch', '/tmp/should_never_exist'],))


class TorchCheckpointTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('zip', 'legacy')
  def test_roundtrip(self, fmt):
    rng = np.random.default_rng(0)
    state = {'a.weight': rng.standard_normal([3, 4, 2, 2]), 'a.bias': rng.standard_normal([3]),
             'fc.weight': rng.standard_normal([5, 7]), 'fc.bias': rng.standard_normal([5])}
    path = os.path.join(self.get_temp_dir(), f'sd_{fmt}.pth')
    standins.write_torch_state_dict(path, state, fmt)
    got = torch_checkpoint.load_state_dict(path)
    self.assertEqual(list(got), list(state))
    for k, v in state.items():
      self.assertEqual(got[k].dtype, np.float32)
      self.assertAllEqual(got[k], v.astype(np.float32))  # 2-D ones were strided views
      self.assertTrue(got[k].flags['C_CONTIGUOUS'])

  @parameterized.parameters('zip', 'legacy')
  def test_refuses_foreign_globals_without_running_them(self, fmt):
    marker = '/tmp/should_never_exist'
    if os.path.exists(marker):
      os.remove(marker)
    path = os.path.join(self.get_temp_dir(), f'evil_{fmt}.pth')
    standins.write_torch_state_dict(path, {'x': np.ones(2)}, fmt, extra_global=_Evil())
    with self.assertRaisesRegex(torch_checkpoint.TorchCheckpointError, r'\.call.*refusing'):
      torch_checkpoint.load_state_dict(path)
    self.assertFalse(os.path.exists(marker))

  def test_truncated_zip_storage(self):
    path = os.path.join(self.get_temp_dir(), 'trunc.pth')
    standins.write_torch_state_dict(path, {'x': np.ones([4, 4])}, 'zip')
    with zipfile.ZipFile(path) as zf:
      items = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(path, 'w') as zf:
      for n, data in items.items():
        zf.writestr(n, data[:10] if '/data/' in n else data)
    with self.assertRaisesRegex(torch_checkpoint.TorchCheckpointError, 'truncated'):
      torch_checkpoint.load_state_dict(path)

  def test_truncated_legacy(self):
    path = os.path.join(self.get_temp_dir(), 'trunc_legacy.pth')
    standins.write_torch_state_dict(path, {'x': np.ones([4, 4])}, 'legacy')
    with open(path, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:
      f.write(data[:-20])
    with self.assertRaisesRegex(torch_checkpoint.TorchCheckpointError, 'truncated'):
      torch_checkpoint.load_state_dict(path)

  def test_not_a_checkpoint(self):
    path = os.path.join(self.get_temp_dir(), 'junk.pth')
    with open(path, 'wb') as f:
      pickle.dump([1, 2, 3], f)
    with self.assertRaisesRegex(torch_checkpoint.TorchCheckpointError, 'not a PyTorch'):
      torch_checkpoint.load_state_dict(path)
    with self.assertRaisesRegex(FileNotFoundError, 'no such file'):
      torch_checkpoint.load_state_dict(path + '.missing')


if __name__ == '__main__':
  tf.test.main()
