r"""Creates, inspects and extracts multi-resolution TFRecord datasets (NVIDIA's layout).

Usage: python data/dataset_tool.py <command> <args> [flags]   (or python -m data.dataset_tool)

  create_from_images <tfrecord_dir> <image_dir_or_zip>
      PNG/JPEG/WebP/BMP/PGM/PPM/TIFF images, found recursively (other files are ignored).
  create_from_npy <tfrecord_dir> <array.npy>
      A uint8 array [N, H, W] or [N, H, W, C]; --labels may name a .npy of labels.
  create_from_mnist_idx <tfrecord_dir> <images_idx_or_folder> [<labels_idx>]
      MNIST / Fashion-MNIST IDX files (.gz or not); 28x28 images are zero-padded to 32x32
      (--resolution sets the padded size; --resize resamples instead); one-hot labels.
  info <tfrecord_dir>
      What the dataset holds; checks it (--verify=quick|full|none). Exit status 1 if broken.
  extract <tfrecord_dir> <out_dir>
      Writes img00000000.png ... in record order (--resolution picks the level; default the
      highest) and, with labels, dataset.json that --labels reads back.

Output: <tfrecord_dir>/<name>-rNN.tfrecords for every resolution from the top down to 4x4
(name = the folder's name), <name>-rxx.labels when there are labels, and manifest.json.
Nothing appears until the dataset is complete.

Examples:
  python data/dataset_tool.py create_from_images datasets/faces ~/att_faces --center-crop \
      --resolution=64 --channels=1
  python data/dataset_tool.py create_from_images datasets/emoji ~/emoji --background=black
  python data/dataset_tool.py info datasets/faces
  python data/dataset_tool.py extract datasets/faces /tmp/faces_png --resolution=32

Flags may be spelled with dashes or underscores (--center-crop, --center_crop, --no-shuffle).
"""

import os
import sys

if __package__ in (None, ''):
  # Run as a script: make the repository root importable instead of data/ itself.
  _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path[:] = [_root] + [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(
      os.path.abspath(__file__))]

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

FLAGS = flags.FLAGS

_COMMANDS = {
    'create_from_images': (2, 2),
    'create_from_npy': (2, 2),
    'create_from_mnist_idx': (2, 3),
    'info': (1, 1),
    'extract': (2, 2),
}


def define_flags():
  """Registers the tool's flags (only when it runs as a program, so imports stay harmless)."""
  flags.DEFINE_integer('resolution', None, 'Output size in pixels, a power of two. Default: '
                       'the images\' own size; with --resize/--center-crop the largest power '
                       'of two within the smallest image side; 32 for MNIST. For extract: the '
                       'level to dump (default the highest).')
  flags.DEFINE_bool('resize', False, 'Resample every image to --resolution (Lanczos), '
                    'stretching non-square ones.')
  flags.DEFINE_bool('center_crop', False, 'Cut the central square of non-square images, then '
                    'resample to --resolution if needed (Lanczos).')
  flags.DEFINE_enum('channels', None, ['1', '3'], '1 = grayscale, 3 = RGB. Default: the '
                    'images\' own (mixed inputs need this flag). RGB->gray uses ITU-R 601-2 luma.')
  flags.DEFINE_string('background', 'white', 'Colour that images with alpha (RGBA, LA, '
                      'transparent palette) are composited on: white, black, gray, #rrggbb or '
                      'R,G,B.')
  flags.DEFINE_bool('shuffle', True, 'Write the images in a random order (seeded by --seed; '
                    'the defaults give NVIDIA\'s order). --noshuffle keeps sorted path order.')
  flags.DEFINE_integer('seed', 123, 'Seed of the record order.')
  flags.DEFINE_integer('max_images', None, 'Write only this many images (the first in record '
                       'order, so with --shuffle a random subset). More than the source holds '
                       'is an error.')
  flags.DEFINE_string('labels', None, 'Label file: JSON ({"path": label} or {"labels": [[path, '
                      'label], ...]}), CSV (path,label...) or, for create_from_npy, a .npy '
                      'array. Class labels become one-hot vectors.')
  flags.DEFINE_bool('labels_from_subdirs', False, 'Class label = the first subfolder of each '
                    'image (classes sorted by name; one-hot).')
  flags.DEFINE_bool('strict', False, 'Fail on the first unreadable image instead of skipping '
                    'it with a warning.')
  flags.DEFINE_integer('workers', 0, 'Threads decoding and converting images (0 = one per CPU '
                       'core).')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing non-empty output folder.')
  flags.DEFINE_enum('verify', 'quick', ['none', 'quick', 'full'], 'info: quick = record '
                    'counts and headers of every file; full = also checksums and every record.')


def normalize_argv(argv, bool_flags):
  """--center-crop -> --center_crop, --no-shuffle / --no_shuffle -> --noshuffle."""
  out, rest = list(argv[:1]), False
  for a in argv[1:]:
    if rest or not a.startswith('--') or a == '--':
      rest = rest or a == '--'
      out.append(a)
      continue
    name, eq, value = a[2:].partition('=')
    name = name.replace('-', '_')
    if name.startswith('no_') and name[3:] in bool_flags:
      name = 'no' + name[3:]
    out.append(f'--{name}{eq}{value}')
  return out


def _parse_flags(argv):
  bools = {name for name in FLAGS if FLAGS[name].boolean}
  return app.parse_flags_with_usage(normalize_argv(argv, bools))


def _options():
  from data.create import Options  # pylint: disable=g-import-not-at-top
  return Options(resolution=FLAGS.resolution, resize=FLAGS.resize,
                 center_crop=FLAGS.center_crop,
                 channels=int(FLAGS.channels) if FLAGS.channels else None,
                 shuffle=FLAGS.shuffle, seed=FLAGS.seed, max_images=FLAGS.max_images,
                 labels=FLAGS.labels, labels_from_subdirs=FLAGS.labels_from_subdirs,
                 strict=FLAGS.strict, background=FLAGS.background, workers=FLAGS.workers,
                 overwrite=FLAGS.overwrite)


def run(argv):
  """Dispatches a parsed command line; DatasetError becomes a one-line message, exit 1."""
  if len(argv) < 2 or argv[1] not in _COMMANDS:
    got = f'unknown command {argv[1]!r}' if len(argv) > 1 else 'no command'
    raise app.UsageError(f'{got}; use one of {", ".join(_COMMANDS)}.', exitcode=2)
  cmd, args = argv[1], argv[2:]
  lo, hi = _COMMANDS[cmd]
  if not lo <= len(args) <= hi:
    raise app.UsageError(f'{cmd} takes {lo}{f"-{hi}" if hi > lo else ""} arguments, got '
                         f'{len(args)}: {" ".join(args)}', exitcode=2)
  from sg2tf.dataset_info import DatasetError  # pylint: disable=g-import-not-at-top
  try:
    if cmd == 'info':
      from data import export  # pylint: disable=g-import-not-at-top
      export.info_command(args[0], FLAGS.verify)
    elif cmd == 'extract':
      from data import export  # pylint: disable=g-import-not-at-top
      n = export.extract(args[0], args[1], FLAGS.resolution, FLAGS.max_images, FLAGS.overwrite)
      print(f'Extracted {n} images to {args[1]}.')
    else:
      from data import create  # pylint: disable=g-import-not-at-top
      if cmd == 'create_from_images':
        path = create.create_from_images(args[0], args[1], _options())
      elif cmd == 'create_from_npy':
        path = create.create_from_npy(args[0], args[1], _options())
      else:
        path = create.create_from_mnist_idx(args[0], args[1], args[2] if len(args) > 2 else None,
                                            _options())
      print(f'Created {path}.')
  except DatasetError as e:
    print(f'dataset_tool {cmd}: error: {e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(f'dataset_tool {cmd}: interrupted; no output was left behind.', file=sys.stderr)
    return 130
  except OSError as e:  # Disk full, permissions: name the file, skip the traceback.
    print(f'dataset_tool {cmd}: error: {e}', file=sys.stderr)
    return 1
  return 0


def main():
  define_flags()
  logging.set_verbosity(logging.INFO)
  app.run(run, flags_parser=_parse_flags)


if __name__ == '__main__':
  main()
