"""Everything on a TensorFlow filesystem (TF's built-in ram://), end to end: create a dataset,
train one tick, resume, export for TF Serving, generate from the export and from the run."""

import io
import types

import numpy as np
import PIL.Image
import tensorflow as tf

from sg2tf import export
from sg2tf import generate
from sg2tf.training import loop
from sg2tf.utils import files
from tests.training import tiny

_ROOT = 'ram://sg2tf_e2e'


def _flags(**kw):
  base = dict(network=None, outdir=None, seeds='0-1', trunc=0.7, truncation_cutoff=None,
              noise_mode='const', class_idx=None, style_mixing_rows=None,
              style_mixing_cols=None, style_mixing_styles='0-6', truncation_sweep=None,
              interpolate=None, interpolation_frames=2, interpolation_space='w', gif=False,
              gif_ms=80, batch_size=8, impl='ref', projected_w=None)
  base.update(kw)
  return types.SimpleNamespace(**base)


def _png(path):
  return np.asarray(PIL.Image.open(io.BytesIO(files.read_bytes(path)))).astype(int)


class RamEndToEndTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    # Tracing dominates a one-step run; grappler's passes would double it.
    grappler = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
    self.addCleanup(tf.config.optimizer.set_experimental_options, grappler)

  def test_dataset_train_resume_export_generate(self):
    data, run = f'{_ROOT}/datasets/tiny', f'{_ROOT}/runs/r0'
    tiny.make_dataset(data, count=8, resolution=8)
    self.assertIn('manifest.json', files.listdir(data))
    # No regularisers: the cheapest phases to trace (the filesystem is what is tested).
    cfg = tiny.tiny_config(run, data, resolution=8, total_kimg=0.004, tick_kimg=0.004,
                           loss=dict(r1_gamma=0.0, pl_weight=0.0))
    loop.train(cfg)  # one tick (one minibatch of 4), then the trainer's own export
    names = files.listdir(run)
    for want in ('config.json', 'checkpoints', 'export', 'fakes_init.png', 'reals.png'):
      self.assertIn(want, names)
    self.assertTrue(any(n.startswith('events.out.tfevents') for n in names))
    self.assertEqual(sorted(files.listdir(f'{run}/checkpoints')),
                     ['checkpoint', 'ckpt-4.data-00000-of-00001', 'ckpt-4.index'])
    self.assertFalse([n for n in files.listdir(run) if n.startswith('.')])  # no temporaries

    trainer = loop.Trainer(cfg, tf.distribute.get_strategy())  # resume=latest
    try:
      self.assertEqual(int(trainer.nimg.numpy()), 4)
      self.assertEqual(trainer.checkpointer.latest, f'{run}/checkpoints/ckpt-4')
    finally:
      trainer.close()

    served = export.export_network(run, f'{_ROOT}/serving/tiny', version='next')
    self.assertEqual(served, f'{_ROOT}/serving/tiny/1')
    self.assertIn('saved_model.pb', files.listdir(served))
    info = files.read_text(f'{served}/{export.INFO_FILE}')
    self.assertNotIn('ram://', info)  # no machine paths in the export
    m = tf.saved_model.load(served)
    for n in (0, 1):
      out = m.signatures['generate'](z=tf.zeros([n, 16]), truncation_psi=tf.constant(0.5))
      self.assertEqual(out['images_uint8'].shape, (n, 8, 8, 3))

    from_export = generate.run(generate.config_from_flags(_flags(network=f'{_ROOT}/serving/tiny', outdir=f'{_ROOT}/o1')))
    from_run = generate.run(generate.config_from_flags(_flags(network=run, outdir=f'{_ROOT}/o2')))
    self.assertEqual([p.rsplit('/', 1)[1] for p in from_export], ['seed0000.png', 'seed0001.png'])
    for a, b in zip(from_export, from_run):
      self.assertAllClose(_png(a), _png(b), atol=1)


if __name__ == '__main__':
  tf.test.main()
