"""Training options of issue 15 end to end: the flags (--aug, --augpipe, --p, --target,
--batch_gpu, --precision, --jit, --mixed_precision as an alias), training in bfloat16 and
float16 with augmentation, and 2 replicas (MirroredStrategy) with augmentation and gradient
accumulation giving the single-device result (its own test class, so that it runs beside the
plain mirrored check of tests/training/test_distributed.py on another test process)."""

import dataclasses
import json
import os
import shutil
import tempfile

from absl import flags
import numpy as np
import tensorflow as tf

from sg2tf import flags as sg2tf_flags
from sg2tf.training import config as config_lib
from sg2tf.training import distribute
from sg2tf.training import loop
from tests import testutil
from tests.training import tiny


def parse(argv):
  fv = flags.FlagValues()
  sg2tf_flags.define_train_flags(fv)
  fv(['train_main.py', '--data_dir=d', '--run_dir=r'] + list(argv))
  return sg2tf_flags.train_config_from_flags(fv)


class FlagsTest(tf.test.TestCase):

  def test_defaults_keep_the_paper_setup(self):
    cfg = parse([])
    self.assertEqual(cfg.augment.mode, 'noaug')
    self.assertEqual((cfg.precision, cfg.mixed_precision, cfg.batch_gpu, cfg.jit),
                     ('float32', False, None, False))

  def test_augment_flags(self):
    cfg = parse(['--aug=ada', '--augpipe=bgcfnc', '--target=0.5', '--ada_kimg=100'])
    self.assertEqual(cfg.augment, config_lib.AugmentConfig(mode='ada', pipe='bgcfnc',
                                                           target=0.5, kimg=100.0))
    self.assertEqual(parse(['--aug=fixed', '--p=0.3']).augment.p, 0.3)
    self.assertEqual(parse(['--aug=ada']).augment.target, 0.6)
    for argv, msg in ((['--aug=fixed'], 'needs --p'), (['--aug=ada', '--p=0.2'], '--p is for'),
                      (['--augpipe=bg'], 'no effect with --aug=noaug'),
                      (['--aug=fixed', '--p=0.1', '--target=0.5'], '--target is for')):
      with self.assertRaisesRegex(ValueError, msg):
        parse(argv)

  def test_precision_flags(self):
    self.assertEqual(parse(['--precision=bfloat16']).precision, 'bfloat16')
    alias = parse(['--mixed_precision'])
    self.assertEqual((alias.precision, alias.mixed_precision), ('float16', True))
    self.assertEqual(parse(['--mixed_precision', '--precision=float16']).precision, 'float16')
    with self.assertRaisesRegex(ValueError, 'contradicts'):
      parse(['--mixed_precision', '--precision=bfloat16'])
    self.assertEqual(parse(['--batch_gpu=4', '--jit']).batch_gpu, 4)

  def test_resolve_and_json_round_trip(self):
    root = tempfile.mkdtemp()
    try:
      data = tiny.make_dataset(os.path.join(root, 'data'), count=8, resolution=8)
      cfg = tiny.tiny_config(os.path.join(root, 'run'), data, resolution=8,
                             mixed_precision=True, batch_gpu=2,
                             augment=config_lib.AugmentConfig(mode='ada', pipe='bg'))
      self.assertEqual(cfg.precision, 'float16')  # mixed_precision alone means float16.
      self.assertEqual(cfg.net_kwargs()['fp16_dtype'], 'float16')
      back = config_lib.TrainConfig.from_dict(json.loads(cfg.to_json()))
      self.assertEqual(back, cfg)
      bf = tiny.tiny_config(os.path.join(root, 'run'), data, resolution=8,
                            precision='bfloat16')
      self.assertTrue(bf.mixed_precision)
      self.assertEqual(bf.net_kwargs()['fp16_dtype'], 'bfloat16')
      for kw, msg in ((dict(precision='float64'), '--precision'),
                      (dict(augment=config_lib.AugmentConfig(pipe='x')), '--augpipe'),
                      (dict(augment=config_lib.AugmentConfig(target=2.0)), '--target'),
                      (dict(batch_gpu=0), '--batch_gpu')):
        with self.assertRaisesRegex(config_lib.ConfigError, msg):
          tiny.tiny_config(os.path.join(root, 'run'), data, resolution=8, **kw)
    finally:
      shutil.rmtree(root, ignore_errors=True)


class LowPrecisionTrainingTest(tf.test.TestCase):

  def test_bfloat16_and_float16_train_with_augmentation(self):
    # float16 (what --mixed_precision means) also runs the loop for 3 minibatches: Greg on 0
    # and 2, Dreg on 0, with finite losses (the loop raises NonFiniteLossError otherwise),
    # weights and pl_mean, and the run's files written from float16 blocks.
    tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
    root = tempfile.mkdtemp()
    try:
      data = tiny.make_dataset(os.path.join(root, 'data'), count=8, resolution=8)
      for precision in ('bfloat16', 'float16'):
        cfg = tiny.tiny_config(os.path.join(root, precision), data, resolution=8,
                               total_kimg=0.012, precision=precision, num_fp16_res=1,
                               augment=config_lib.AugmentConfig(mode='fixed', pipe='bg',
                                                                p=0.5),
                               loss=dict(g_reg_interval=2, d_reg_interval=3))
        tr = loop.Trainer(cfg, distribute.make_strategy('default'))
        dtype = tf.as_dtype(precision)
        self.assertEqual((tr.G.synthesis.b8.compute_dtype_, tr.D.b8.compute_dtype_,
                          tr.G_ema.synthesis.b8.compute_dtype_), (dtype, dtype, dtype))
        self.assertFalse(tr.G.synthesis.b4.use_fp16)
        metrics = tr.train_step()  # All four phases.
        self.assertTrue(all(np.isfinite(v) for v in metrics.values()), metrics)
        self.assertGreater(metrics['Loss/pl_lengths'], 0)
        self.assertGreater(metrics['Loss/r1_penalty'], 0)
        self.assertEqual(tr.G.synthesis.b8.get_config()['fp16_dtype'], precision)
        if precision != 'float16':
          continue
        tr.run()
        self.assertEqual({k: v[1] for k, v in tr.phase_totals.items()},
                         {'Gmain': 3, 'Greg': 2, 'Dmain': 3, 'Dreg': 1})
        self.assertTrue(np.isfinite(tr.pl_mean.numpy()) and tr.pl_mean.numpy() > 0)
        metrics = tr.phases.d_reg(tr._next_batch(), None)  # pylint: disable=protected-access
        self.assertTrue(np.isfinite(metrics['Loss/r1_penalty'].numpy()))
        for v in tr.G.variables + tr.D.variables:
          self.assertEqual(v.dtype, tf.float32)
          self.assertTrue(np.all(np.isfinite(v.numpy())), v.path)
        self.assertTrue(config_lib.read_config(cfg.run_dir).mixed_precision)
        tr.close()
    finally:
      shutil.rmtree(root, ignore_errors=True)


class MirroredAugmentTest(tf.test.TestCase):

  def test_two_replicas_with_augmentation_and_chunks_match_one_device(self):
    # ADA (blit: the pipeline's cost is tracing; its transforms are test_augment's) on every D input and chunks of 2 on each of 2 replicas (float32: the same
    # numbers up to summation order).
    root = tempfile.mkdtemp()
    try:
      code = f'''
import json, dataclasses
import numpy as np
import tensorflow as tf
tf.config.optimizer.set_experimental_options({{'disable_meta_optimizer': True}})
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.training import tiny
from sg2tf.training import config as config_lib, distribute, loop
data = tiny.make_dataset({root!r} + '/data', count=16, resolution=8)
out = {{}}
for name, devices, batch_gpu in (('one', None, None), ('two', ['/cpu:0', '/cpu:1'], 2)):
  cfg = tiny.tiny_config({root!r} + '/run_' + name, data, resolution=8, total_kimg=1,
                         batch_size=8, batch_gpu=batch_gpu,
                         loss=dict(g_reg_interval=2, d_reg_interval=2),
                         augment=config_lib.AugmentConfig(mode='ada', pipe='blit', p=0.5,
                                                          interval=1, kimg=1.0))
  cfg = dataclasses.replace(cfg, D=dataclasses.replace(cfg.D, mbstd_group_size=1))
  strategy = (distribute.make_strategy('default') if devices is None else
              distribute.make_strategy('mirrored', devices))
  tr = loop.Trainer(cfg, strategy)
  metrics, p = [], []
  for _ in range(2):  # Minibatch 0 runs all four phases.
    metrics.append(tr.train_step())
    p.append(float(tr.augment_p.numpy()))
  out[name] = dict(metrics=metrics, p=p, replicas=tr.replicas,
                   weights=[v.numpy().tolist() for v in tr.G.variables + tr.D.variables])
print('RESULT ' + json.dumps(out))
'''
      text = testutil.run_python(code, timeout=900)
      out = json.loads(text.split('RESULT ', 1)[1])
      one, two = out['one'], out['two']
      self.assertEqual((one['replicas'], two['replicas']), (1, 2))
      self.assertAllClose(one['p'], two['p'])
      self.assertNotEqual(one['p'][0], 0.5)  # p moved (interval 1).
      for a, b in zip(one['metrics'], two['metrics']):
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
          self.assertAllClose(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
      for a, b in zip(one['weights'], two['weights']):
        self.assertAllClose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    finally:
      shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
  tf.test.main()
