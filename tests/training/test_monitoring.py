"""Monitoring: image grids, atomic PNGs, tick statistics, TensorBoard events, time format."""

import glob
import os
import tempfile

from absl import logging as absl_logging
import numpy as np
import tensorflow as tf

from sg2tf.training import monitoring


class MonitoringTest(tf.test.TestCase):

  def test_config_as_text_and_hparams(self):
    cfg = {'G': {'z_dim': 16, 'arch': 'skip'}, 'grid': [2, 2], 'resume_pkl': None,
           'mirror': True, 'lr': 0.002}
    self.assertEqual(monitoring.flatten_config(cfg),
                     {'G.z_dim': 16, 'G.arch': 'skip', 'grid': '[2, 2]', 'resume_pkl': 'none',
                      'mirror': True, 'lr': 0.002})
    run = tempfile.mkdtemp()
    mon = monitoring.Monitor(run)
    mon.config(cfg, ['Loss/G/loss', 'Metrics/fid50k'])
    mon.close()
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    acc = event_accumulator.EventAccumulator(run, size_guidance={'tensors': 0})
    acc.Reload()
    self.assertIn('config', acc.Tags()['tensors'])
    text = tf.make_ndarray(acc.Tensors('config')[0].tensor_proto).item().decode()
    self.assertIn('"z_dim": 16', text)
    hparams = acc.PluginTagToContent('hparams')
    self.assertCountEqual(hparams, ['_hparams_/experiment', '_hparams_/session_start_info'])
    from tensorboard.plugins.hparams import plugin_data_pb2  # pylint: disable=g-import-not-at-top
    exp = plugin_data_pb2.HParamsPluginData.FromString(hparams['_hparams_/experiment'])
    self.assertEqual([m.name.tag for m in exp.experiment.metric_infos],
                     ['Loss/G/loss', 'Metrics/fid50k'])
    start = plugin_data_pb2.HParamsPluginData.FromString(
        hparams['_hparams_/session_start_info']).session_start_info
    self.assertEqual(start.hparams['G.z_dim'].number_value, 16)
    self.assertEqual(start.hparams['G.arch'].string_value, 'skip')
    self.assertTrue(start.hparams['mirror'].bool_value)

  def test_tick_stats(self):
    s = monitoring.TickStats()
    s.add({'a': 1.0, 'b': 2.0})
    s.add({'a': 3.0})
    s.add_phase('Gmain', 0.5)
    s.add_phase('Gmain', 1.5)
    self.assertEqual(s.means(), {'a': 2.0, 'b': 2.0})
    self.assertEqual((s.phase_sec['Gmain'], s.phase_calls['Gmain']), (2.0, 2))
    s.reset()
    self.assertEqual(s.means(), {})

  def test_monitor_writes_events_and_logs(self):
    run_dir = tempfile.mkdtemp()
    m = monitoring.Monitor(run_dir)
    m.scalars(1000, {'Loss/G/loss': 0.5})
    m.image(1000, 'fakes', np.zeros([8, 8, 3], np.uint8), 'fakes000001.png')
    # Other tests (e.g. absl app runs in-process) may have lowered absl's verbosity.
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
      with self.assertLogs('absl', level='INFO') as logs:
        m.progress(3, 12.0, 100.0, 90.0, 30.0, 4.0, {'host': 1.5})
    finally:
      absl_logging.set_verbosity(verbosity)
    self.assertIn('tick 3', logs.output[0])
    self.assertIn('sec/kimg 7.50', logs.output[0])
    self.assertIn('eta 11m 00s', logs.output[0])
    m.close()
    self.assertTrue(glob.glob(os.path.join(run_dir, 'events.out.tfevents.*')))
    self.assertTrue(os.path.isfile(os.path.join(run_dir, 'fakes000001.png')))
    # Workers other than the chief write nothing.
    other = tempfile.mkdtemp()
    monitoring.Monitor(other, chief=False).image(0, 'x', np.zeros([2, 2, 3], np.uint8), 'x.png')
    self.assertEqual(os.listdir(other), [])

  def test_memory(self):
    self.assertGreater(monitoring.peak_memory_gb()['host'], 0.01)


if __name__ == '__main__':
  tf.test.main()
