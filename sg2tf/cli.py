"""What every sg2tf command-line tool shares (no TensorFlow here: it runs before TF loads).

Each tool (train, eval, generate, project, export, convert, the dataset tool) is built the
same way: its flags are defined next to it (or in sg2tf/flags.py) under topics, ONE function
turns the parsed flags into a frozen config and checks it completely, and `run(config)` does
the work, importing TensorFlow only then. `run_tool` wraps absl's app.run with the shared
conventions:

- `--preset=NAME` names a flagfile shipped in sg2tf/presets/ (`--flagfile=PATH` works too);
- `--help` (`-h`) shows the tool's own flags grouped by topic, `--helpfull` every flag;
- a bad flag or argument is ONE line on stderr (`error: ...`), exit status 2;
- quiet by default: TensorFlow's C++ and Python INFO/WARNING lines are hidden, sg2tf's own
  progress lines stay; `--verbosity=1` (`-v 1`) shows TensorFlow's too. An explicit
  $TF_CPP_MIN_LOG_LEVEL is respected.
"""

import importlib.util
import logging as py_logging
import os
import sys
import textwrap
from typing import Callable, List, Optional, Sequence, Tuple

from absl import flags

PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'presets')
HELP_ARGS = ('-h', '--help', '-help', '-?', '--helpshort')
_WIDTH = 92


class UsageError(ValueError):
  """A bad flag or argument: the message names it and says what to do; exit status 2."""


# ------------------------------------------------------------------ presets

def preset_names() -> List[str]:
  return sorted(f[:-len('.flags')] for f in os.listdir(PRESET_DIR) if f.endswith('.flags'))


def preset_path(name: str) -> str:
  """The shipped flagfile of a preset; UsageError lists the presets for an unknown name."""
  if name not in preset_names():
    raise UsageError(f'--preset={name}: no such preset; use one of {", ".join(preset_names())} '
                     '(or --flagfile=PATH for a file of your own).')
  return os.path.join(PRESET_DIR, name + '.flags')


def expand_presets(args: Sequence[str], flag_values=flags.FLAGS) -> List[str]:
  """args (without the program name) with every --flagfile read in place and every
  --preset=NAME replaced by that preset's flags, also inside flagfiles (configs/NAME.flags is
  `--preset=NAME`). Order is kept, so flags given later still override."""
  args = list(args)
  for _ in range(16):
    try:
      args = flag_values.read_flags_from_files(args, force_gnu=True)
    except flags.Error as e:
      raise UsageError(str(e)) from None
    out, changed, i = [], False, 0
    while i < len(args):
      a = args[i]
      if a == '--':
        out.extend(args[i:])
        break
      name, eq, value = a.lstrip('-').partition('=')
      if a.startswith('-') and name == 'preset':
        if not eq:
          if i + 1 >= len(args):
            raise UsageError('--preset needs a name, e.g. --preset=ffhq_f.')
          i, value = i + 1, args[i + 1]
        out.append('--flagfile=' + preset_path(value))
        changed = True
      else:
        out.append(a)
      i += 1
    args = out
    if not changed:
      return args
  raise UsageError('--preset/--flagfile: the flagfiles include each other in a loop.')


def define_common_flags(flag_values=flags.FLAGS) -> None:
  """--preset (read before parsing; defined so that --help lists it)."""
  if 'preset' not in flag_values:
    flags.DEFINE_string('preset', None, 'A shipped flagfile by name (sg2tf/presets/NAME.flags): '
                        f'{", ".join(preset_names())}. Flags given after it override it.',
                        flag_values=flag_values)


# ------------------------------------------------------------------ --help by topic

class Topics:
  """Flag names by topic, in definition order, for a tool's --help."""

  def __init__(self):
    self.groups: List[Tuple[str, List[str]]] = []
    self._open = None

  def mark(self, title: Optional[str], flag_values=flags.FLAGS) -> None:
    """Flags defined from now on (until the next mark, or mark(None)) belong to title."""
    if self._open is not None:
      t, fv, before = self._open
      self._add(t, [n for n in fv if n not in before and fv[n].name == n])
    self._open = None if title is None else (title, flag_values, set(flag_values))

  def _add(self, title, names):
    for t, existing in self.groups:
      if t == title:
        existing.extend(n for n in names if n not in existing)
        return
    self.groups.append((title, list(names)))


def _flag_lines(flag_values, name: str, aliases: Sequence[str]) -> List[str]:
  f = flag_values[name]
  spell = f'--[no]{name}' if f.boolean else f'--{name}'
  if aliases:
    spell += ' (also ' + ', '.join(f'--{a}' for a in aliases) + ')'
  text = ' '.join(str(f.help or '').split())
  if f.default is not None and not f.boolean:
    text += f' (default: {f.default_as_str.strip(chr(39))})'
  elif f.boolean:
    text += f' (default: {"on" if f.default else "off"})'
  return ['  ' + spell] + textwrap.wrap(text, _WIDTH, initial_indent='      ',
                                       subsequent_indent='      ')


def help_text(doc: str, topics: Topics, flag_values=flags.FLAGS) -> str:
  """The tool's docstring, then its flags grouped by topic, then the shared ones."""
  aliases = {}
  for n in flag_values:
    f = flag_values[n]
    h = str(f.help or '')
    if f.name == n and h.startswith('Alias for --'):
      aliases.setdefault(h[len('Alias for --'):].rstrip('.'), []).append(n)
  shown = set()
  lines = [textwrap.dedent(doc or '').strip(), '']
  for title, names in topics.groups:
    names = [n for n in names if not str(flag_values[n].help or '').startswith('Alias for --')]
    if not names:
      continue
    lines.append(f'{title}:')
    for n in names:
      lines += _flag_lines(flag_values, n, aliases.get(n, ()))
      shown.add(n)
    lines.append('')
  lines.append('Common:')
  if 'preset' in flag_values and 'preset' not in shown:
    lines += _flag_lines(flag_values, 'preset', ())
  common = (('--flagfile=PATH', 'Read flags from a file, one per line (# comments); flags '
             'given after it override it.'),
            ('-v N, --verbosity=N', '0 (default): sg2tf\'s own progress lines; TensorFlow\'s '
             'INFO and WARNING lines hidden. 1: TensorFlow\'s too, and sg2tf\'s debug lines '
             '(tracebacks of errors). -1: warnings and errors only.'),
            ('--helpfull', 'Every flag, absl\'s too.'))
  for spell, text in common:
    lines += ['  ' + spell] + textwrap.wrap(text, _WIDTH, initial_indent='      ',
                                            subsequent_indent='      ')
  return '\n'.join(lines) + '\n'


def wants_help(args: Sequence[str], spellings: Sequence[str] = HELP_ARGS) -> bool:
  for a in args:
    if a == '--':
      return False
    if a in spellings:
      return True
  return False


# ------------------------------------------------------------------ quiet TensorFlow

def verbosity(flag_values=flags.FLAGS) -> int:
  """absl's --verbosity/-v when given, else 0."""
  if 'verbosity' in flag_values and flag_values['verbosity'].present:
    return int(flag_values.verbosity)
  return 0


# Packages whose Python log lines are TensorFlow's (found without importing them).
_LIBRARIES = ('tensorflow', 'keras', 'tf_keras', 'tensorboard', 'tensorflow_io')


class _HideLibraryLines(py_logging.Filter):
  """Drops INFO and WARNING records logged from inside TensorFlow / Keras. Many TF modules log
  through absl (functional_saver's "Sharding callback duration", signature_serialization,
  fingerprinting, ...), i.e. through the same logger as sg2tf, so the logger's name cannot
  tell them apart; the file that logged can."""

  def __init__(self):
    super().__init__()
    roots = []
    for name in _LIBRARIES:
      try:
        spec = importlib.util.find_spec(name)
      except (ImportError, ValueError):
        continue
      for path in (spec.submodule_search_locations or []) if spec else []:
        roots += [os.path.join(path, ''), os.path.join(os.path.realpath(path), '')]
    self.roots = tuple(dict.fromkeys(roots))

  def filter(self, record: py_logging.LogRecord) -> bool:
    return (record.levelno >= py_logging.ERROR or not self.roots or
            not str(record.pathname).startswith(self.roots))


_FILTER: Optional[_HideLibraryLines] = None


def quiet_tensorflow(level: int = 0) -> None:
  """Hides TensorFlow's C++ and Python INFO/WARNING lines unless level >= 1. Must run before
  TensorFlow is imported (the C++ level is read once, when its library loads)."""
  global _FILTER
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  handler = absl_logging.get_absl_handler()
  if level >= 1:
    os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'
    py_logging.getLogger('tensorflow').setLevel(py_logging.DEBUG)
    if _FILTER is not None:
      handler.removeFilter(_FILTER)
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  # TF's own Python logger hands its records to absl's handler; without a level of its own
  # it would show them at absl's (INFO, for sg2tf's progress lines).
  py_logging.getLogger('tensorflow').setLevel(py_logging.ERROR)
  if _FILTER is None:
    _FILTER = _HideLibraryLines()
  handler.addFilter(_FILTER)  # (once: logging keeps a filter only once)


# ------------------------------------------------------------------ running a tool

def one_line(e: BaseException) -> str:
  return ' '.join(str(e).split()) or type(e).__name__


def fail(e: BaseException, code: int = 2, prefix: str = 'error') -> None:
  """Ends the tool: ONE line on stderr, no traceback, the exit status."""
  print(f'{prefix}: {one_line(e)}', file=sys.stderr)
  sys.exit(code)


def parse(argv: Sequence[str], flag_values=flags.FLAGS) -> List[str]:
  """argv -> the non-flag arguments (argv[0] first); presets expanded; UsageError on a bad
  flag. For tests and tools that parse by themselves."""
  args = expand_presets(argv[1:], flag_values)
  try:
    return flag_values([argv[0]] + args)
  except flags.Error as e:
    raise UsageError(f'{one_line(e)} (see --help)') from None


def run_config(argv: Sequence[str], config_from_flags: Callable, run: Callable, *,
               expected: Tuple[type, ...], report: Optional[Callable] = None,
               flag_values=flags.FLAGS, run_error_code: int = 1) -> int:
  """What a tool's main does, once for every tool: no positional arguments; the frozen config
  from the flags (a ValueError there is a usage error: one line, exit 2); run(config), where
  an `expected` error (bad input found while running: a corrupt file, a full disk) ends the
  tool with one line and run_error_code; then report(config, result) prints the outcome."""
  if len(argv) > 1:
    raise UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    config = config_from_flags(flag_values)
  except UsageError:
    raise
  except ValueError as e:
    raise UsageError(str(e)) from None
  try:
    result = run(config)
  except expected as e:
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.debug('failed', exc_info=True)  # the traceback with --verbosity=1
    fail(e, run_error_code)
  if report is not None:
    report(config, result)
  return 0


def run_tool(main: Callable[[List[str]], Optional[int]], argv: Optional[Sequence[str]] = None,
             *, doc: str, topics: Topics, flag_values=flags.FLAGS,
             help_fn: Optional[Callable[[List[str]], Optional[str]]] = None) -> None:
  """absl's app.run with the conventions above. main(argv) returns the exit status; a
  UsageError from it is one line and exit status 2. help_fn(args) may return a help text of
  its own (the dataset tool's per-command help)."""
  from absl import app  # pylint: disable=g-import-not-at-top

  def parser(argv):
    try:
      args = expand_presets(argv[1:], flag_values)
    except UsageError as e:
      fail(e, 2)
    if wants_help(args, ('--helpfull',)):
      sys.stdout.write(help_text(doc, topics, flag_values) + '\nEvery flag, by module:\n' +
                       flag_values.get_help() + '\n')
      sys.exit(0)
    if wants_help(args):
      text = help_fn(args) if help_fn else None
      sys.stdout.write(text or help_text(doc, topics, flag_values))
      sys.exit(0)
    try:
      rest = flag_values([argv[0]] + args)
    except flags.Error as e:
      fail(UsageError(f'{one_line(e)} (see --help)'), 2)
    quiet_tensorflow(verbosity(flag_values))
    return rest

  def wrapped(argv):
    try:
      return main(argv)
    except UsageError as e:
      fail(e, 2)

  app.run(wrapped, argv=list(argv) if argv is not None else None, flags_parser=parser)
