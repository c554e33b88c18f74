"""The dataset tool (installed: `sg2tf-dataset`); its implementation is sg2tf/dataset_tool/.

  python data/dataset_tool.py <command> <args> [flags]
  python data/dataset_tool.py --help            (commands and flags)
  python data/dataset_tool.py <command> --help  (one command)
"""

import os
import sys

if __package__ in (None, ''):
  # Run as a script from a checkout: make the repository root importable instead of data/.
  _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path[:] = [_root] + [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(
      os.path.abspath(__file__))]

from sg2tf.dataset_tool import main as _main  # pylint: disable=g-import-not-at-top

if __name__ == '__main__':
  _main.main()
