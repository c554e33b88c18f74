"""Damaged checkpoints never restart a run or delete its history.

One small real training (P: 5 minibatches, checkpoints ckpt-4, ckpt-12, ckpt-20) is copied
for every damage case: deleted .index, text / empty / binary state file, truncated .data,
flipped bytes, truncated .index. Each copy is resumed: from the newest intact checkpoint, with
a warning naming the damaged file, the damaged files moved to checkpoints/damaged/, the older
checkpoints kept, and the state equal to an intact restore of that checkpoint (resuming from
an intact checkpoint is exact: test_loop). The truncated-data case trains on to the end after
its fallback and must equal an uninterrupted run (A). With no intact checkpoint the trainer
stops and changes nothing, unless --resume=none. Leftovers of interrupted writes are removed.
"""

import dataclasses
import os
import shutil

import tensorflow as tf

from sg2tf.training import checkpointing
from sg2tf.training import config as config_lib
from sg2tf.training import distribute
from sg2tf.training import loop
from tests.training import tiny
from tests.training.test_loop import _state  # pylint: disable=g-bad-import-order

_LOSS = dict(g_reg_interval=2, d_reg_interval=3)


_snapshot = tiny.file_digests


def _data_file(ckpt_dir, n):
  return os.path.join(ckpt_dir, f'ckpt-{n}.data-00000-of-00001')


def _truncate(path, keep=0.5):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:int(len(data) * keep)])


def _flip(path):
  with open(path, 'rb') as f:
    data = bytearray(f.read())
  for pos in range(len(data) // 7, len(data), len(data) // 5):
    data[pos] ^= 0xFF
  with open(path, 'wb') as f:
    f.write(bytes(data))


def _write(path, data):
  with open(path, 'wb') as f:
    f.write(data)


# name -> (damage(ckpt_dir), checkpoint to resume from, what the warning names)
DAMAGE = {
    'deleted_index': (lambda d: os.remove(os.path.join(d, 'ckpt-20.index')), 12,
                      r'ckpt-20.index is missing'),
    'text_state_file': (lambda d: _write(os.path.join(d, 'checkpoint'), b'hello world\n'), 20,
                        r'state file .*checkpoint is damaged \(it is not a checkpoint state'),
    'empty_state_file': (lambda d: _write(os.path.join(d, 'checkpoint'), b''), 20,
                         r'state file .*checkpoint is damaged \(it is empty'),
    'binary_state_file': (lambda d: _write(os.path.join(d, 'checkpoint'), b'\x00\xff\xfe\x80'),
                          20, r'state file .*checkpoint is damaged \(it is binary data'),
    'truncated_data': (lambda d: _truncate(_data_file(d, 20)), 12,
                       r'ckpt-20.data-00000-of-00001 is damaged or truncated'),
    'flipped_bytes': (lambda d: _flip(_data_file(d, 20)), 12,
                      r'ckpt-20.data-00000-of-00001 is damaged or truncated'),
    'truncated_index': (lambda d: _truncate(os.path.join(d, 'ckpt-20.index')), 12,
                        r'ckpt-20.index is damaged'),
}


class CheckpointDamageTest(tiny.TrainerTestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.strategy = distribute.make_strategy('default')
    # A: uninterrupted, 6 minibatches. P: the same run stopped after 5 (ckpt-4, -12, -20).
    a = loop.train(cls.config('A', 0.024), cls.strategy)
    cls.state_a = _state(a)
    cls.checkpoints_a = sorted(os.listdir(checkpointing.checkpoint_dir(a.cfg.run_dir)))
    cls.partial = loop.train(cls.config('P', 0.020), cls.strategy).cfg.run_dir
    cls.ref = {n: _state(cls.resumed_copy(f'ref{n}', lambda d: None, resume=f'ckpt-{n}'))
               for n in (12, 20)}

  @classmethod
  def config(cls, name, kimg, **kw):
    cfg = tiny.tiny_config(os.path.join(cls.root, name), cls.data, resolution=8,
                           total_kimg=kimg, loss=dict(_LOSS), checkpoint_ticks=1, **kw)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, mirror=True))

  @classmethod
  def damaged_copy(cls, name, damage):
    run = os.path.join(cls.root, name)
    shutil.copytree(cls.partial, run)
    damage(checkpointing.checkpoint_dir(run))
    return run

  @classmethod
  def resumed_copy(cls, name, damage, resume='latest'):
    run = cls.damaged_copy(name, damage)
    if resume != 'latest':
      resume = os.path.join(checkpointing.checkpoint_dir(run), resume)
    return loop.Trainer(dataclasses.replace(cls.config(name, 0.024), run_dir=run, resume=resume),
                        cls.strategy)

  def _resume(self, case):
    damage, number, warning = DAMAGE[case]
    with self.assertLogs('absl', 'WARNING') as logs:
      tr = self.resumed_copy(case, damage)
    self.assertRegex('\n'.join(logs.output), warning)
    ckpt_dir = checkpointing.checkpoint_dir(tr.cfg.run_dir)
    self.assertEqual(int(tr.nimg.numpy()), number)
    for a, b in zip(self.ref[number], _state(tr)):
      self.assertAllEqual(a, b)
    # Nothing older than the resumed checkpoint was deleted; the damaged one was moved aside.
    names = os.listdir(ckpt_dir)
    for n in (4, 12, number):
      self.assertIn(f'ckpt-{n}.index', names)
    if number == 12:
      self.assertNotIn('ckpt-20.index', names)
      self.assertTrue(any(n.startswith('ckpt-20.') for n in os.listdir(
          os.path.join(ckpt_dir, checkpointing.DAMAGED_DIR))))
    self.assertIsNone(checkpointing.state_file_problem(ckpt_dir))
    self.assertEqual(tf.train.latest_checkpoint(ckpt_dir),
                     os.path.join(ckpt_dir, f'ckpt-{number}'))
    return tr

  def test_deleted_index(self):
    self._resume('deleted_index')

  def test_text_state_file(self):
    self._resume('text_state_file')

  def test_empty_state_file(self):
    self._resume('empty_state_file')

  def test_truncated_index(self):
    self._resume('truncated_index')

  def test_flipped_bytes(self):
    self._resume('flipped_bytes')

  def test_truncated_data_resumes_equivalently(self):
    tr = self._resume('truncated_data')
    tr.run()
    tr.close()
    for a, b in zip(self.state_a, _state(tr)):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)
    # Rotation after the fallback leaves what the uninterrupted run has (plus damaged/).
    names = os.listdir(checkpointing.checkpoint_dir(tr.cfg.run_dir))
    self.assertEqual(sorted(set(names) - {checkpointing.DAMAGED_DIR}), self.checkpoints_a)

  def test_binary_state_file(self):
    self._resume('binary_state_file')

  def test_explicitly_named_damaged_checkpoint_is_an_error(self):
    run = self.damaged_copy('explicit', DAMAGE['truncated_data'][0])
    cfg = dataclasses.replace(self.config('explicit', 0.024), run_dir=run,
                              resume=os.path.join(run, 'checkpoints', 'ckpt-20'))
    with self.assertRaisesRegex(config_lib.ConfigError, r'ckpt-20: the checkpoint is damaged: '
                                r'ckpt-20.data-00000-of-00001 is damaged or truncated'):
      loop.Trainer(cfg, self.strategy)

  def test_no_intact_checkpoint_changes_nothing_unless_resume_none(self):
    def damage_all(d):
      for n in (4, 12, 20):
        _truncate(_data_file(d, n), 0.3)
    run = self.damaged_copy('none_intact', damage_all)
    self.assertFalse(os.path.exists(os.path.join(run, '.sg2tf.lock')))  # P released it
    before = _snapshot(run)
    cfg = dataclasses.replace(self.config('none_intact', 0.024), run_dir=run)
    with self.assertRaisesRegex(checkpointing.CheckpointDamagedError,
                                r'holds 3 checkpoint\(s\) but none is intact .*ckpt-20.data.*'
                                r'Nothing was changed.*--resume=none'):
      loop.Trainer(cfg, self.strategy)
    self.assertEqual(_snapshot(run), before)
    # --resume=none: a new training; the damaged checkpoints are moved aside, not deleted.
    tr = loop.Trainer(dataclasses.replace(cfg, resume='none'), self.strategy)
    self.assertEqual(int(tr.nimg.numpy()), 0)
    ckpt_dir = checkpointing.checkpoint_dir(run)
    moved = os.listdir(os.path.join(ckpt_dir, checkpointing.DAMAGED_DIR))
    for n in (4, 12, 20):
      self.assertIn(f'ckpt-{n}.index', moved)
    self.assertEqual(checkpointing.scan(ckpt_dir), [])
    tr.close()

  def test_leftovers_of_interrupted_writes_are_removed(self):
    def leftovers(d):
      os.makedirs(os.path.join(d, 'ckpt-28_temp'))
      _write(os.path.join(d, 'ckpt-28_temp', 'part-00000-of-00001.data-00000-of-00001'), b'x')
      _write(os.path.join(d, 'checkpoint.tmp0123456789abcdef'), b'x')
    run = self.damaged_copy('leftovers', leftovers)
    made = [os.path.join(run, 'export', '.saved_model.tmp-ab_c1234'),  # older mkdtemp names
            os.path.join(run, 'export', '.saved_model.tmp-0123456789ab'),
            os.path.join(run, 'network-snapshot-000020.tmp-x1y2z3w4'),
            os.path.join(run, '.fakes000020.tmp-0123456789ab.png')]
    for path in made:
      if path.endswith('.png'):
        _write(path, b'x')
      else:
        os.makedirs(path)
    keep = _snapshot(os.path.join(run, 'export', 'saved_model'))
    tr = loop.Trainer(dataclasses.replace(self.config('leftovers', 0.024), run_dir=run),
                      self.strategy)
    for path in made + [os.path.join(run, 'checkpoints', 'ckpt-28_temp'),
                        os.path.join(run, 'checkpoints', 'checkpoint.tmp0123456789abcdef')]:
      self.assertFalse(os.path.exists(path), path)
    self.assertEqual(_snapshot(os.path.join(run, 'export', 'saved_model')), keep)
    self.assertEqual(int(tr.nimg.numpy()), 20)
    tr.close()


if __name__ == '__main__':
  tf.test.main()
