r"""Trains StyleGAN2 (the repository's entry point; installed: `sg2tf-train`).

  python train_main.py --flagfile=configs/ffhq_f.flags --data_dir=datasets/ffhq \
      --run_dir=runs/ffhq-f [--batch_size=32 --gamma=10 ...]
  python train_main.py --preset=ffhq_f ...           (the same flags, shipped in the package)

Flags given after --flagfile / --preset override the file's values. The resolved config goes
to <run_dir>/config.json; rerunning the same command resumes from the newest checkpoint there.
`--help` lists every training flag by topic (sg2tf/flags.py); the implementation is
sg2tf/train.py.
"""

from sg2tf import train

if __name__ == '__main__':
  train.main(doc=__doc__)
