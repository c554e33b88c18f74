r"""Creates, inspects and extracts multi-resolution TFRecord datasets (NVIDIA's layout).

Usage: sg2tf-dataset <command> <args> [flags]
       (in a checkout also: python data/dataset_tool.py ...; python -m sg2tf.dataset_tool)
       sg2tf-dataset <command> --help: that command's arguments and flags

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
  sg2tf-dataset create_from_images datasets/faces ~/att_faces --center-crop \
      --resolution=64 --channels=1
  sg2tf-dataset create_from_images datasets/emoji ~/emoji --background=black
  sg2tf-dataset info datasets/faces
  sg2tf-dataset extract datasets/faces /tmp/faces_png --resolution=32

Flags may be spelled with dashes or underscores (--center-crop, --center_crop, --no-shuffle).
"""

import sys
from typing import Dict, List, Optional, Sequence, Tuple

from absl import flags
from absl import logging

from sg2tf import cli

FLAGS = flags.FLAGS

# command -> (min args, max args, flags it reads)
_CREATE = ('resolution', 'resize', 'center_crop', 'channels', 'background', 'shuffle', 'seed',
           'max_images', 'labels', 'labels_from_subdirs', 'strict', 'workers', 'overwrite')
_COMMANDS: Dict[str, Tuple[int, int, Tuple[str, ...]]] = {
    'create_from_images': (2, 2, _CREATE),
    'create_from_npy': (2, 2, ('resolution', 'resize', 'center_crop', 'channels', 'shuffle',
                               'seed', 'max_images', 'labels', 'workers', 'overwrite')),
    'create_from_mnist_idx': (2, 3, ('resolution', 'resize', 'shuffle', 'seed', 'max_images',
                                     'workers', 'overwrite')),
    'info': (1, 1, ('verify',)),
    'extract': (2, 2, ('resolution', 'max_images', 'overwrite')),
}
TOPICS = cli.Topics()


def define_flags(fv=FLAGS):
  """Registers the tool's flags (only when it runs as a program, so imports stay harmless)."""
  if 'center_crop' in fv:
    return
  kw = dict(flag_values=fv)
  TOPICS.mark('Image size and colour (create_*)', fv)
  flags.DEFINE_integer('resolution', None, 'Output size in pixels, a power of two. Default: '
                       'the images\' own size; with --resize/--center-crop the largest power '
                       'of two within the smallest image side; 32 for MNIST. For extract: the '
                       'level to dump (default the highest).', **kw)
  flags.DEFINE_bool('resize', False, 'Resample every image to --resolution (Lanczos), '
                    'stretching non-square ones.', **kw)
  flags.DEFINE_bool('center_crop', False, 'Cut the central square of non-square images, then '
                    'resample to --resolution if needed (Lanczos).', **kw)
  flags.DEFINE_enum('channels', None, ['1', '3'], '1 = grayscale, 3 = RGB. Default: the '
                    'images\' own (mixed inputs need this flag). RGB->gray uses ITU-R 601-2 '
                    'luma.', **kw)
  flags.DEFINE_string('background', 'white', 'Colour that images with alpha (RGBA, LA, '
                      'transparent palette) are composited on: white, black, gray, #rrggbb or '
                      'R,G,B.', **kw)
  TOPICS.mark('Order and subset', fv)
  flags.DEFINE_bool('shuffle', True, 'Write the images in a random order (seeded by --seed; '
                    'the defaults give NVIDIA\'s order). --noshuffle keeps sorted path order.',
                    **kw)
  flags.DEFINE_integer('seed', 123, 'Seed of the record order.', **kw)
  flags.DEFINE_integer('max_images', None, 'Write only this many images (the first in record '
                       'order, so with --shuffle a random subset). More than the source holds '
                       'is an error.', **kw)
  TOPICS.mark('Labels', fv)
  flags.DEFINE_string('labels', None, 'Label file: JSON ({"path": label} or {"labels": [[path, '
                      'label], ...]}), CSV (path,label...) or, for create_from_npy, a .npy '
                      'array. Class labels become one-hot vectors.', **kw)
  flags.DEFINE_bool('labels_from_subdirs', False, 'Class label = the first subfolder of each '
                    'image (classes sorted by name; one-hot).', **kw)
  TOPICS.mark('Run', fv)
  flags.DEFINE_bool('strict', False, 'Fail on the first unreadable image instead of skipping '
                    'it with a warning.', **kw)
  flags.DEFINE_integer('workers', 0, 'Threads decoding and converting images (0 = one per CPU '
                       'core).', **kw)
  flags.DEFINE_bool('overwrite', False, 'Replace an existing non-empty output folder.', **kw)
  TOPICS.mark('info', fv)
  flags.DEFINE_enum('verify', 'quick', ['none', 'quick', 'full'], 'info: quick = record '
                    'counts and headers of every file; full = also checksums and every record.',
                    **kw)
  TOPICS.mark(None)


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


def _command_doc(cmd: str) -> str:
  """The lines of the module docstring about one command."""
  lines, keep = [], False
  for line in __doc__.splitlines():
    if line.startswith('  ') and not line.startswith('   '):
      keep = line.strip().startswith(cmd + ' ') or line.strip() == cmd
    elif not line.strip():
      keep = False
    if keep:
      lines.append(line)
  return '\n'.join(lines)


def command_help(args: Sequence[str]) -> Optional[str]:
  """`<command> --help`: that command's arguments and flags; None for the tool's own help."""
  cmd = next((a for a in args if not a.startswith('-')), None)
  if cmd not in _COMMANDS:
    return None
  topics = cli.Topics()
  topics.groups = [(f'{cmd} flags', list(_COMMANDS[cmd][2]))]
  return cli.help_text(f'Usage: sg2tf-dataset {cmd} <args> [flags]\n\n{_command_doc(cmd)}',
                       topics, FLAGS)


def _options():
  from sg2tf.dataset_tool.create import Options  # pylint: disable=g-import-not-at-top
  return Options(resolution=FLAGS.resolution, resize=FLAGS.resize,
                 center_crop=FLAGS.center_crop,
                 channels=int(FLAGS.channels) if FLAGS.channels else None,
                 shuffle=FLAGS.shuffle, seed=FLAGS.seed, max_images=FLAGS.max_images,
                 labels=FLAGS.labels, labels_from_subdirs=FLAGS.labels_from_subdirs,
                 strict=FLAGS.strict, background=FLAGS.background, workers=FLAGS.workers,
                 overwrite=FLAGS.overwrite)


def check_command(argv: Sequence[str]) -> Tuple[str, List[str]]:
  """(command, its arguments) of a parsed command line; cli.UsageError otherwise."""
  if len(argv) < 2 or argv[1] not in _COMMANDS:
    got = f'unknown command {argv[1]!r}' if len(argv) > 1 else 'no command'
    raise cli.UsageError(f'{got}; use one of {", ".join(_COMMANDS)} (sg2tf-dataset <command> '
                         '--help tells more).')
  cmd, args = argv[1], list(argv[2:])
  lo, hi, _ = _COMMANDS[cmd]
  if not lo <= len(args) <= hi:
    raise cli.UsageError(f'{cmd} takes {lo}{f"-{hi}" if hi > lo else ""} arguments, got '
                         f'{len(args)}: {" ".join(args)} (see {cmd} --help).')
  return cmd, args


def run(argv):
  """Dispatches a parsed command line; DatasetError becomes a one-line message, exit 1."""
  cmd, args = check_command(argv)
  from sg2tf.dataset_info import DatasetError  # pylint: disable=g-import-not-at-top
  try:
    if cmd == 'info':
      from sg2tf.dataset_tool import extract  # pylint: disable=g-import-not-at-top
      extract.info_command(args[0], FLAGS.verify)
    elif cmd == 'extract':
      from sg2tf.dataset_tool import extract  # pylint: disable=g-import-not-at-top
      n = extract.extract(args[0], args[1], FLAGS.resolution, FLAGS.max_images, FLAGS.overwrite)
      print(f'Extracted {n} images to {args[1]}.')
    else:
      from sg2tf.dataset_tool import create  # pylint: disable=g-import-not-at-top
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


def main(argv: Optional[Sequence[str]] = None, doc: Optional[str] = None) -> None:
  """The `sg2tf-dataset` command (and data/dataset_tool.py, python -m sg2tf.dataset_tool)."""
  define_flags()
  argv = list(sys.argv if argv is None else argv)
  argv = normalize_argv(argv, {name for name in FLAGS if FLAGS[name].boolean})
  logging.set_verbosity(logging.INFO)
  cli.run_tool(run, argv, doc=doc or __doc__, topics=TOPICS, help_fn=command_help)


if __name__ == '__main__':
  main()
