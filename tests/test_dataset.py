"""Tests for sg2tf/dataset.py (the tf.data input pipeline)."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sg2tf import dataset
from sg2tf.dataset_info import DatasetError
from sg2tf.dataset_info import DatasetInfo

REPO = pathlib.Path(__file__).resolve().parents[1]


def write_official(folder, images, labels=None, name=None):
  """Writes images uint8 [N, C, R, R] the way NVIDIA's dataset_tool.py lays them out."""
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True)
  name = name or folder.name
  log2 = int(np.log2(images.shape[-1]))
  levels = [images]
  x = images.astype(np.float32)
  for _ in range(log2 - 2):
    x = (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) * 0.25
    levels.append(np.rint(x).clip(0, 255).astype(np.uint8))
  for k, level in enumerate(levels):
    with tf.io.TFRecordWriter(str(folder / f'{name}-r{log2 - k:02d}.tfrecords')) as w:
      for img in level:
        w.write(tf.train.Example(features=tf.train.Features(feature={
            'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=img.shape)),
            'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[img.tobytes()]))
        })).SerializeToString())
  if labels is not None:
    with open(folder / f'{name}-rxx.labels', 'wb') as f:
      np.save(f, labels.astype(np.float32))
  return levels


class DatasetTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = pathlib.Path(tempfile.mkdtemp(prefix='dataset_test_'))
    self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
    rng = np.random.default_rng(1)
    self.n = 24
    self.images = rng.integers(0, 256, (self.n, 3, 16, 16), dtype=np.uint8)
    # Label i encodes image i, so pairing survives shuffling: labels = one-hot of i % 6 + id.
    self.labels = np.concatenate([np.eye(6)[np.arange(self.n) % 6],
                                  np.arange(self.n)[:, None]], axis=1).astype(np.float32)
    self.levels = write_official(self.tmp / 'ds', self.images, self.labels)
    self.ds_dir = self.tmp / 'ds'

  def batches(self, ds, k):
    return [tuple(t.numpy() for t in b) if isinstance(b, tuple) else b.numpy()
            for b in ds.take(k)]

  @parameterized.parameters(4, 8, 16)
  def test_values_and_layout(self, res):
    ds = dataset.make_dataset(self.ds_dir, 8, res, shuffle_buffer=0, repeat=False)
    got = np.concatenate(self.batches(ds, 3))
    self.assertEqual(got.dtype, np.float32)
    self.assertEqual(got.shape, (24, res, res, 3))
    want = self.levels[{16: 0, 8: 1, 4: 2}[res]].transpose(0, 2, 3, 1).astype(np.float32)
    self.assertAllClose(got, want * np.float32(2 / 255) - 1, atol=1e-6)
    self.assertAllEqual(dataset.to_uint8(got).numpy(), want.astype(np.uint8))
    self.assertBetween(got.min(), -1.0, 1.0)

  def test_plain_tf_path_matches_xla(self):
    kw = dict(shuffle_buffer=0, repeat=False, mirror_augment=True, seed=3)
    a = self.batches(dataset.make_dataset(self.ds_dir, 8, **kw), 3)
    b = self.batches(dataset.make_dataset(self.ds_dir, 8, jit_compile=False, **kw), 3)
    self.assertAllClose(np.concatenate(a), np.concatenate(b), atol=1e-6)  # XLA may use FMA.

  def test_labels_stay_paired_and_shuffle_is_seeded(self):
    def run(seed):
      ds = dataset.make_dataset(self.ds_dir, 6, shuffle_buffer=24, seed=seed, with_labels=True)
      return self.batches(ds, 8)

    a, b, c = run(5), run(5), run(6)
    for (xa, la), (xb, lb) in zip(a, b):
      self.assertAllEqual(xa, xb)
      self.assertAllEqual(la, lb)
    self.assertNotAllEqual(np.concatenate([x for x, _ in a]), np.concatenate([x for x, _ in c]))
    ids = np.concatenate([l[:, -1] for _, l in a]).astype(int)
    self.assertNotAllEqual(ids[:24], np.arange(24))  # Shuffled...
    for x, l in a:  # ...but every image still carries its own label.
      want = self.images[l[:, -1].astype(int)].transpose(0, 2, 3, 1)
      self.assertAllClose(x, want.astype(np.float32) * (2 / 255) - 1, atol=1e-6)
      self.assertAllEqual(l[:, :6], np.eye(6)[l[:, -1].astype(int) % 6])

  def test_no_labels_gives_zero_width(self):
    write_official(self.tmp / 'nolab', self.images[:8])
    x, l = next(iter(dataset.make_dataset(self.tmp / 'nolab', 4, with_labels=True)))
    self.assertEqual(x.shape, (4, 16, 16, 3))
    self.assertEqual(l.shape, (4, 0))

  def test_mirror_augment(self):
    ds = dataset.make_dataset(self.ds_dir, 24, shuffle_buffer=0, mirror_augment=True, seed=7)
    batches = [dataset.to_uint8(b).numpy() for b in self.batches(ds, 10)]
    orig = self.images.transpose(0, 2, 3, 1)
    flips = []
    for b in batches:
      flipped = np.all(b == orig[:, :, ::-1], axis=(1, 2, 3))
      self.assertAllEqual(flipped | np.all(b == orig, axis=(1, 2, 3)), np.ones(24, bool))
      flips.append(flipped)
    frac = np.mean(flips)
    self.assertBetween(frac, 0.35, 0.65)  # 240 fair coins.
    again = [dataset.to_uint8(b).numpy() for b in self.batches(dataset.make_dataset(
        self.ds_dir, 24, shuffle_buffer=0, mirror_augment=True, seed=7), 10)]
    self.assertAllEqual(np.stack(batches), np.stack(again))

  def test_sharding_by_input_context(self):
    seen = []
    for pipe in range(2):
      ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipe,
                                       num_replicas_in_sync=2)
      ds = dataset.make_dataset(self.ds_dir, 4, input_context=ctx, repeat=False,
                                with_labels=True, seed=pipe)
      ids = np.concatenate([l[:, -1] for _, l in self.batches(ds, 10)]).astype(int)
      self.assertLen(ids, 12)
      seen.append(set(ids))
    self.assertEmpty(seen[0] & seen[1])
    self.assertEqual(seen[0] | seen[1], set(range(24)))

  def test_repeat_and_remainder(self):
    ds = dataset.make_dataset(self.ds_dir, 5, repeat=False)
    self.assertLen(self.batches(ds, 100), 4)  # 24 // 5, partial batch dropped.
    ds = dataset.make_dataset(self.ds_dir, 5, repeat=False, drop_remainder=False)
    self.assertEqual([len(b) for b in self.batches(ds, 100)], [5, 5, 5, 5, 4])
    self.assertLen(self.batches(dataset.make_dataset(self.ds_dir, 5), 30), 30)
    with self.assertRaisesRegex(DatasetError, 'too few'):
      dataset.make_dataset(self.ds_dir, 32)

  def test_truncated_file_names_it(self):
    path = self.ds_dir / 'ds-r04.tfrecords'
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with self.assertRaisesRegex(DatasetError, r'ds-r04.tfrecords: record 23 .* truncated or '
                                'corrupt'):
      dataset.make_dataset(self.ds_dir, 4)
    with self.assertRaisesRegex(DatasetError, 'ds-r04.tfrecords: .*truncated or corrupt'):
      DatasetInfo.from_dir(self.ds_dir).verify()
    # Without the up-front check, the error surfaces while reading.
    ds = dataset.make_dataset(self.ds_dir, 4, verify=False, repeat=False)
    with self.assertRaisesRegex(DatasetError, 'ds-r04.tfrecords: .*truncated'):
      with dataset.translate_errors(self.ds_dir):
        for _ in ds:
          pass

  def test_corrupt_data_names_the_file(self):
    path = self.ds_dir / 'ds-r03.tfrecords'
    data = bytearray(path.read_bytes())
    data[12 + 100] ^= 0xFF  # Inside record 0's data, past its header: only its CRC can tell.
    path.write_bytes(bytes(data))
    ds = dataset.make_dataset(self.ds_dir, 4, 8, repeat=False)  # Headers are fine.
    # The detail is cut out of TF's DataLossError text ('{{...}} corrupted record at N
    # [Op:...]'): exactly the sentence, nothing of the wrapping, or TF's format changed.
    with self.assertRaisesRegex(DatasetError, r'ds-r03.tfrecords: corrupted record at \d+; the '
                                'file is truncated or corrupt'):
      with dataset.translate_errors(self.ds_dir, 8):
        for _ in ds:
          pass

  @parameterized.named_parameters(
      # A wrong-sized record among right-sized ones: DecodeRaw refuses the batch.
      ('decode_raw', {2: (3, 8, 8)}, 'DecodeRaw'),
      # A whole batch of wrong-sized records: decoded, then the reshape to [B, C, H, W] fails.
      ('reshape', {k: (3, 8, 9) for k in range(4, 8)}, 'eshape'))
  def test_wrong_record_size_names_the_file(self, wrong, tf_says):
    # translate_errors recognises these by TensorFlow's message text: this fails when TF
    # words them differently (then the InvalidArgumentError would escape untranslated).
    rng = np.random.default_rng(2)
    with tf.io.TFRecordWriter(str(self.ds_dir / 'ds-r04.tfrecords')) as w:
      for k in range(8):
        data = rng.integers(0, 256, wrong.get(k, (3, 16, 16)), dtype=np.uint8).tobytes()
        w.write(tf.train.Example(features=tf.train.Features(feature={  # declares 16x16
            'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=[3, 16, 16])),
            'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
        })).SerializeToString())
    info = DatasetInfo.from_dir(self.ds_dir)
    ds = dataset.make_dataset(info, 4, verify=False, repeat=False, shuffle_buffer=0)
    with self.assertRaises(tf.errors.InvalidArgumentError) as raw:
      for _ in ds:
        pass
    self.assertIn(tf_says, raw.exception.message)
    with self.assertRaisesRegex(DatasetError, r'ds-r04.tfrecords: a record does not hold the '
                                'image shape the dataset declares'):
      with dataset.translate_errors(info):
        for _ in ds:
          pass

  def test_strategy_private_attribute_exists(self):
    # distribute() saves and restores MirroredStrategy.extended._input_workers_devices (a
    # private TF attribute; see there). If TF renames it, getattr finds nothing and the
    # restoring silently stops: fail here instead.
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
    self.assertTrue(hasattr(strategy.extended, '_input_workers_devices'))
    self.assertIsNotNone(strategy.extended._input_workers_devices)  # pylint: disable=protected-access

  def test_missing_resolution_lists_available(self):
    info = DatasetInfo.from_dir(self.ds_dir)
    with self.assertRaisesRegex(DatasetError, 'no 32x32 images; this dataset has resolutions '
                                '4, 8, 16'):
      dataset.make_dataset(info, 4, resolution=32)
    with self.assertRaisesRegex(DatasetError, 'no 32x32 images'):
      dataset.distribute(tf.distribute.get_strategy(), info, 4, resolution=32)
    with self.assertRaisesRegex(DatasetError, 'nowhere does not exist'):
      dataset.make_dataset(self.tmp / 'nowhere', 4)

  def test_distribute_one_replica(self):
    strategy = tf.distribute.get_strategy()
    dist = dataset.distribute(strategy, self.ds_dir, 8)
    self.assertEqual(next(iter(dist)).shape, (8, 16, 16, 3))

  def test_mirrored_strategy_two_replicas(self):
    # Logical devices must be set before TensorFlow starts, hence a fresh process.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        import tensorflow as tf
        cpu = tf.config.list_physical_devices('CPU')[0]
        two = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, two)
        from sg2tf import dataset
        strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
        try:
          dataset.distribute(strategy, {str(self.ds_dir)!r}, 7)
        except dataset.DatasetError as e:
          print('ERR', e)
        dist = dataset.distribute(strategy, {str(self.ds_dir)!r}, 8, with_labels=True,
                                  shuffle_buffer=0, repeat=False)
        ids = []
        for x, l in dist:
          xs = strategy.experimental_local_results(x)
          ls = strategy.experimental_local_results(l)
          print('SHAPES', [tuple(t.shape) for t in xs], [tuple(t.shape) for t in ls])
          ids += [int(v) for t in ls for v in t.numpy()[:, -1]]
        print('IDS', sorted(ids))
        # The per-replica pipelines used on CPU devices must not change how this strategy
        # distributes other datasets (TF records them on the strategy; distribute() undoes it).
        seen = []
        def fn(ctx):
          seen.append((ctx.num_input_pipelines, ctx.input_pipeline_id))
          return tf.data.Dataset.range(8).batch(2)
        strategy.distribute_datasets_from_function(fn)
        print('LATER', seen)
        """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, env=env,
                       timeout=240, check=False)
    self.assertEqual(r.returncode, 0, r.stderr[-3000:])
    self.assertIn('ERR global batch size 7 is not divisible by the 2 replicas', r.stdout)
    self.assertIn('SHAPES [(4, 16, 16, 3), (4, 16, 16, 3)] [(4, 7), (4, 7)]', r.stdout)
    self.assertIn(f'IDS {list(range(24))}', r.stdout)
    self.assertIn('LATER [(1, 0)]', r.stdout)


if __name__ == '__main__':
  tf.test.main()
