"""tf.distribute: 2 replicas give the single-device losses; two local workers agree.

Each case runs in fresh interpreters: logical devices and TF_CONFIG must be set before
TensorFlow initialises.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tests import testutil

_PRELUDE = '''
import json, sys
import numpy as np
import tensorflow as tf
tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
from tests.training import tiny
from sg2tf.training import distribute, loop

def run(cfg, strategy, steps):
  tr = loop.Trainer(cfg, strategy)
  metrics = [tr.train_step() for _ in range(steps)]
  weights = [v.numpy().tolist() for v in tr.G.variables + tr.D.variables + tr.G_ema.variables]
  return {'metrics': metrics, 'weights': weights, 'pl_mean': float(tr.pl_mean.numpy()),
          'replicas': tr.replicas, 'chief': tr.chief}
'''


def _flat(weights):
  return np.concatenate([np.ravel(np.asarray(w, np.float64)) for w in weights])


class StrategyTest(tf.test.TestCase):

  def test_make_strategy(self):
    from sg2tf.training import distribute  # pylint: disable=g-import-not-at-top
    default = distribute.make_strategy('default')
    self.assertEqual(default.num_replicas_in_sync, 1)
    self.assertTrue(distribute.is_chief(default))
    self.assertFalse(distribute.is_multi_worker(default))
    self.assertEqual(distribute.replica_slice(), (0, 1))
    with self.assertRaisesRegex(ValueError, 'TF_CONFIG'):
      old = os.environ.pop('TF_CONFIG', None)
      try:
        distribute.make_strategy('multi_worker')
      finally:
        if old is not None:
          os.environ['TF_CONFIG'] = old
    with self.assertRaisesRegex(ValueError, 'unknown strategy'):
      distribute.make_strategy('tpu')


class MirroredTest(tf.test.TestCase):

  def test_two_replicas_match_one_device(self):
    root = tempfile.mkdtemp()
    code = _PRELUDE + f'''
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import dataclasses
data = tiny.make_dataset({root!r} + '/data', count=16, resolution=8)
out = {{}}
for name, devices in (('one', None), ('two', ['/cpu:0', '/cpu:1'])):
  cfg = tiny.tiny_config({root!r} + '/run_' + name, data, resolution=8, total_kimg=1,
                         loss=dict(g_reg_interval=2, d_reg_interval=2))
  # Minibatch-stddev groups are formed per replica (as per GPU in the official code); without
  # it the two splits compute exactly the same function.
  cfg = dataclasses.replace(cfg, D=dataclasses.replace(cfg.D, mbstd_group_size=1))
  strategy = (distribute.make_strategy('default') if devices is None else
              distribute.make_strategy('mirrored', devices))
  out[name] = run(cfg, strategy, 3)
# Without exact data resume each replica reads through tf.distribute (on CPU devices: one host
# pipeline per replica); other batches, so only check that it trains.
cfg = dataclasses.replace(cfg, run_dir={root!r} + '/run_stream', exact_data_resume=False)
out['stream'] = run(cfg, distribute.make_strategy('mirrored', ['/cpu:0', '/cpu:1']), 2)
print('RESULT ' + json.dumps(out))
'''
    result = json.loads(testutil.run_python(code).split('RESULT ', 1)[1])
    one, two = result['one'], result['two']
    self.assertEqual((one['replicas'], two['replicas']), (1, 2))
    self.assertLen(one['metrics'], 3)
    self.assertIn('Loss/pl_penalty', one['metrics'][0])  # steps 0 and 2 regularise
    self.assertIn('Loss/r1_penalty', one['metrics'][2])
    for m1, m2 in zip(one['metrics'], two['metrics']):
      self.assertEqual(sorted(m1), sorted(m2))
      for k in m1:
        self.assertAllClose(m1[k], m2[k], rtol=1e-5, atol=1e-6, msg=k)
    self.assertAllClose(one['pl_mean'], two['pl_mean'], rtol=1e-5)
    self.assertAllClose(_flat(one['weights']), _flat(two['weights']), rtol=1e-4, atol=1e-5)
    stream = result['stream']
    self.assertEqual(stream['replicas'], 2)
    self.assertLen(stream['metrics'], 2)
    self.assertTrue(all(np.isfinite(v) for m in stream['metrics'] for v in m.values()))


class MultiWorkerTest(tf.test.TestCase):

  def test_two_local_workers_agree(self):
    root = tempfile.mkdtemp()
    ports = []
    socks = []
    for _ in range(2):
      s = socket.socket()
      s.bind(('127.0.0.1', 0))
      socks.append(s)
      ports.append(s.getsockname()[1])
    for s in socks:
      s.close()
    testutil.run_python(f'''
from tests.training import tiny
tiny.make_dataset({root!r} + '/data', count=16, resolution=8)
''')
    code = _PRELUDE + f'''
cfg = tiny.tiny_config({root!r} + '/run', {root!r} + '/data', resolution=8, total_kimg=1,
                       strategy='multi_worker', loss=dict(g_reg_interval=2, d_reg_interval=2))
out = run(cfg, distribute.make_strategy('multi_worker'), 2)
print('RESULT ' + json.dumps(out))
'''
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    env['PYTHONPATH'] = str(testutil.REPO) + os.pathsep + env.get('PYTHONPATH', '')
    procs = []
    for i in range(2):
      env['TF_CONFIG'] = json.dumps({
          'cluster': {'worker': [f'127.0.0.1:{p}' for p in ports]},
          'task': {'type': 'worker', 'index': i}})
      procs.append(subprocess.Popen([sys.executable, '-c', code], env=dict(env),
                                    cwd=str(testutil.REPO), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
      try:
        out, err = p.communicate(timeout=600)
      except subprocess.TimeoutExpired:
        for q in procs:
          q.kill()
        raise
      self.assertEqual(p.returncode, 0, err[-5000:])
      results.append(json.loads(out.split('RESULT ', 1)[1]))
    w0, w1 = results
    self.assertEqual((w0['replicas'], w1['replicas']), (2, 2))
    self.assertEqual((w0['chief'], w1['chief']), (True, False))
    for m0, m1 in zip(w0['metrics'], w1['metrics']):
      for k in m0:
        self.assertAllClose(m0[k], m1[k], rtol=1e-6, msg=k)
    self.assertAllClose(_flat(w0['weights']), _flat(w1['weights']), rtol=1e-6, atol=1e-7)
    self.assertAllClose(w0['pl_mean'], w1['pl_mean'])


if __name__ == '__main__':
  tf.test.main()
