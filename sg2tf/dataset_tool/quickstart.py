"""Quickstart data: the 100 real LFW face crops that ship inside the scikit-image wheel.

    python -m sg2tf.dataset_tool.quickstart <out.npy>

writes them as a uint8 [100, 25, 25] array for `data/dataset_tool.py create_from_npy`
(the Makefile's `quickstart` target resizes them to 32x32 and trains on them). No network
access: the images come from the installed package (`pip install -e .[quickstart]`).
"""

import os
import sys

import numpy as np

from sg2tf.utils import files
from sg2tf.utils import safe_pickle

NUM_FACES = 100  # lfw_subset.npy: 100 faces, then 100 non-face background crops.


def lfw_faces() -> np.ndarray:
  """uint8 [100, 25, 25] grayscale faces from skimage/data/lfw_subset.npy."""
  try:
    import skimage  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise SystemExit('scikit-image is not installed; run `pip install -e ".[quickstart]"` '
                     '(or `make quickstart`, which does).') from None
  path = os.path.join(os.path.dirname(skimage.__file__), 'data', 'lfw_subset.npy')
  if not os.path.isfile(path):
    raise SystemExit(f'{path} is missing from the installed scikit-image; reinstall it.')
  faces = safe_pickle.load_npy(path, 'face array')[:NUM_FACES]  # float64 in [0, 1]
  return np.clip(np.rint(faces * 255.0), 0, 255).astype(np.uint8)


def main(argv):
  if len(argv) != 2:
    raise SystemExit('usage: python -m sg2tf.dataset_tool.quickstart <out.npy>')
  out = argv[1]
  faces = lfw_faces()
  try:
    files.write_npy(out, faces, what='face array')
  except files.DiskWriteError as e:
    raise SystemExit(f'error: {e}') from None
  print(f'{out}: {faces.shape[0]} LFW faces, {faces.shape[1]}x{faces.shape[2]} grayscale')


if __name__ == '__main__':
  main(sys.argv)
