"""--resume_pkl: fine-tuning starts from the official pickle's weights (the shared fixture)."""

import pathlib
import tempfile

import numpy as np
import tensorflow as tf

from sg2tf import paper_configs as net_configs
from sg2tf.training import distribute, loop
from tests.training import tiny

_FIXTURE = (pathlib.Path(__file__).resolve().parents[2] / '..' / 'shared' / 'fixtures' /
            'official_pkl')


class ResumePklTest(tf.test.TestCase):

  def test_fine_tuning_starts_from_official_weights(self):
    if not (_FIXTURE / 'stylegan2_random_64.pkl').exists():
      self.skipTest('official pickle fixture not present')
    tmp = tempfile.mkdtemp()
    data = tiny.make_dataset(f'{tmp}/data', count=8, resolution=64)
    # The fixture's static kwargs: latent 32, mapping 8 x 32, fmap_base 320, fmap_max 96.
    g = net_configs.GeneratorConfig(z_dim=32, w_dim=32, mapping_layers=8, mapping_dim=32,
                                    fmap_base=320, fmap_max=96)
    d = net_configs.DiscriminatorConfig(fmap_base=320, fmap_max=96, mbstd_group_size=4)
    # No regularisers: the step that shows it trains then traces only the two main phases
    # at 64x64 (the penalties' double backward passes are test_loop's).
    cfg = tiny.tiny_config(f'{tmp}/run', data, resolution=64, G=g, D=d,
                           resume_pkl=str(_FIXTURE / 'stylegan2_random_64.pkl'),
                           loss=dict(pl_weight=0.0, r1_gamma=0.0))
    trainer = loop.Trainer(cfg, distribute.make_strategy('default'))
    ref = np.load(_FIXTURE / 'reference.npz')
    img = trainer.G_ema(ref['z'], truncation_psi=1.0, noise_mode='const', fused_modconv=False)
    self.assertAllClose(img, ref['img_psi1'].transpose(0, 2, 3, 1), atol=1e-4, rtol=0)
    img_g = trainer.G(ref['z'], truncation_psi=1.0, noise_mode='const', fused_modconv=False)
    self.assertAllClose(img_g, ref['img_G_psi1'].transpose(0, 2, 3, 1), atol=1e-4, rtol=0)
    self.assertAllClose(trainer.D(ref['d_in'].transpose(0, 2, 3, 1)), ref['d_out'], atol=1e-4,
                        rtol=0)
    before = [v.numpy() for v in trainer.G.trainable_variables]
    metrics = trainer.train_step()  # And it trains from there.
    self.assertTrue(all(np.isfinite(float(v)) for v in metrics.values()))
    self.assertTrue(any(not np.array_equal(a, v.numpy())
                        for a, v in zip(before, trainer.G.trainable_variables)))


if __name__ == '__main__':
  tf.test.main()
