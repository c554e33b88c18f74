r"""Evaluates a generator with the official StyleGAN2 metrics (the repository's entry point;
installed: `sg2tf-eval`).

  python eval_main.py --network=<official .pkl | network dir | run dir | checkpoint> \
      --data=datasets/ffhq --metrics=fid50k,pr50k3,ppl2_wend [--num_fakes=5000] \
      [--feature_dir=...] [--outdir=...]

Prints a results table; appends one JSON line per metric to <outdir>/metrics.jsonl and writes
TensorBoard scalars there. `--help` lists the flags by topic; the implementation is
sg2tf/evaluate.py.
"""

from sg2tf import evaluate
from sg2tf.evaluate import make_strategy, run  # pylint: disable=unused-import

evaluate.define_flags()

if __name__ == '__main__':
  evaluate.main(doc=__doc__)
