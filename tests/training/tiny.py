"""Tiny datasets and configs for the training tests (seconds per step on 2 CPU cores)."""

import dataclasses
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf import paper_configs as net_configs
from sg2tf.networks import Discriminator, Generator
from sg2tf.training import config as config_lib


def make_dataset(path, count=16, resolution=16, channels=3, label_dim=0, seed=0):
  """Writes `count` smooth random images (and one-hot labels) as a TFRecord dataset."""
  from sg2tf.dataset_tool.writer import DatasetWriter  # pylint: disable=g-import-not-at-top
  rnd = np.random.RandomState(seed)
  with DatasetWriter(path, resolution=resolution, channels=channels) as w:
    for _ in range(count):
      low = rnd.uniform(0, 255, size=[channels, 4, 4])
      img = np.kron(low, np.ones([1, resolution // 4, resolution // 4]))
      w.add_image(np.clip(img + rnd.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    labels = None
    if label_dim:
      labels = np.eye(label_dim, dtype=np.float32)[rnd.randint(0, label_dim, size=count)]
    w.commit(labels=labels)
  return path


def tiny_config(run_dir, data_dir, resolution=16, batch_size=4, **overrides):
  """A resolved TrainConfig for a ~10k-parameter StyleGAN2 (skip G, resnet D)."""
  g = net_configs.GeneratorConfig(z_dim=16, w_dim=16, mapping_layers=2, mapping_dim=16,
                                  fmap_base=64, fmap_max=16)
  d = net_configs.DiscriminatorConfig(fmap_base=64, fmap_max=16, mbstd_group_size=2)
  kwargs = dict(run_dir=run_dir, data=config_lib.DataConfig(data_dir=data_dir,
                                                            resolution=resolution),
                cfg_name='tiny', G=g, D=d, batch_size=batch_size, total_kimg=0.016,
                impl='ref', tick_kimg=0.008, grid=(2, 2), exact_data_resume=True)
  for key in ('loss', 'optimizer'):
    if key in overrides and isinstance(overrides[key], dict):
      base = config_lib.LossConfig() if key == 'loss' else config_lib.OptimizerConfig()
      overrides[key] = dataclasses.replace(base, **overrides[key])
  kwargs.update(overrides)
  return config_lib.resolve_config(config_lib.TrainConfig(**kwargs))


def tiny_d(mbstd=2):
  return Discriminator(img_resolution=8, img_channels=1, fmap_base=32, fmap_max=8,
                       mbstd_group_size=mbstd)


def tiny_g():
  return Generator(z_dim=8, w_dim=8, mapping_layers=2, mapping_dim=8, img_resolution=8,
                   img_channels=1, fmap_base=32, fmap_max=8)


def file_digests(folder):
  """{relative path: sha256} of every file below folder (to prove nothing changed)."""
  import hashlib  # pylint: disable=g-import-not-at-top
  out = {}
  for rel in list_files(folder):
    with open(os.path.join(folder, rel), 'rb') as f:
      out[rel] = hashlib.sha256(f.read()).hexdigest()
  return out


def list_files(folder):
  out = []
  for root, _, files in os.walk(folder):
    out += [os.path.relpath(os.path.join(root, f), folder) for f in files]
  return sorted(out)


class TrainerTestCase(tf.test.TestCase):
  """A temporary root with a tiny dataset (cls.root, cls.data: DATASET_COUNT images at 8x8)
  for trainer tests, and grappler off while the class runs (graph optimisation takes longer
  than these tiny steps run; restored afterwards)."""

  DATASET_COUNT = 12

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._grappler = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
    cls.root = tempfile.mkdtemp()
    cls.data = make_dataset(os.path.join(cls.root, 'data'), count=cls.DATASET_COUNT,
                            resolution=8)

  @classmethod
  def tearDownClass(cls):
    tf.config.optimizer.set_experimental_options(cls._grappler)
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()
