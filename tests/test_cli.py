"""sg2tf/cli.py and the tools built on it: presets, --help by topic, checks before TensorFlow,
one-line errors, quiet TensorFlow."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized

from sg2tf import cli
from sg2tf import flags as sg2tf_flags

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_FILES = sorted(p.stem for p in (REPO / 'configs').glob('*.flags'))


def _train_flags():
  fv = flags.FlagValues()
  sg2tf_flags.define_train_flags(fv)
  cli.define_common_flags(fv)
  return fv


class PresetTest(parameterized.TestCase):

  def test_every_config_file_is_a_preset(self):
    self.assertEqual(CONFIG_FILES, cli.preset_names())

  @parameterized.parameters(*CONFIG_FILES)
  def test_config_file_resolves_to_its_preset(self, name):
    fv = _train_flags()
    from_file = cli.expand_presets([f'--flagfile={REPO / "configs" / (name + ".flags")}'], fv)
    from_preset = cli.expand_presets([f'--preset={name}'], fv)
    self.assertEqual(from_file, from_preset)
    self.assertIn('--cfg=config-', ' '.join(from_preset))  # real flags, not a pointer
    # And both parse to the same flag values.
    values = []
    for args in (from_file, from_preset):
      fv = _train_flags()
      fv(['train'] + args)
      values.append({n: fv[n].value for n in fv if fv[n].present})
    self.assertEqual(values[0], values[1])

  def test_order_kept_and_later_flags_win(self):
    fv = _train_flags()
    cli.parse(['train', '--preset', 'ffhq_f', '--gamma=3', '--data_dir=/d', '--run_dir=/r'], fv)
    self.assertEqual((fv.gamma, fv.cfg, fv.resolution), (3, 'config-f', 1024))
    fv = _train_flags()
    cli.parse(['train', '--gamma=3', '--preset=ffhq_f'], fv)
    self.assertEqual(fv.gamma, 10)

  def test_bad_preset_and_flagfile(self):
    with self.assertRaisesRegex(cli.UsageError, r'--preset=ffhq_g: no such preset; use one of '
                                r'car_f, .*quickstart'):
      cli.expand_presets(['--preset=ffhq_g'])
    with self.assertRaisesRegex(cli.UsageError, 'nope.flags'):
      cli.expand_presets(['--flagfile=/nonexistent/nope.flags'])
    with self.assertRaisesRegex(cli.UsageError, 'needs a name'):
      cli.expand_presets(['--preset'])


class HelpTest(absltest.TestCase):

  def test_train_help_lists_every_flag_once_by_topic(self):
    fv = _train_flags()
    text = cli.help_text('Trains.', sg2tf_flags.TRAIN_TOPICS, fv)
    titles = [t for t, _ in sg2tf_flags.TRAIN_TOPICS.groups]
    self.assertIn('Loss and regularisation', titles)
    self.assertIn('Discriminator augmentation (StyleGAN2-ADA)', titles)
    self.assertEqual(len(titles), len(set(titles)))
    for name in fv:
      if fv[name].name != name or name in ('flagfile', 'undefok'):
        continue
      spelled = [l for l in text.splitlines()
                 if l.startswith((f'  --{name}', f'  --[no]{name}')) and
                 l.split()[0].lstrip('-').replace('[no]', '') == name]
      if str(fv[name].help).startswith('Alias for --'):
        self.assertIn(f'--{name}', text)  # on its flag's line: "(also --name)"
        continue
      self.assertLen(spelled, 1, name)
    self.assertIn('  --run_dir (also --outdir)', text)
    self.assertIn('--verbosity', text)
    self.assertIn('(default: 32)', text)  # --batch_size, from TrainConfig


class FlagDefaultsTest(absltest.TestCase):

  def test_train_flag_defaults_are_the_config_defaults(self):
    from sg2tf.training import config as tc  # pylint: disable=g-import-not-at-top
    fv = _train_flags()
    fv(['train', '--data_dir=/d', '--run_dir=/r'])
    got = sg2tf_flags.train_config_from_flags(fv)
    want = tc.TrainConfig(run_dir='/r', data=tc.DataConfig(data_dir='/d'))
    for field in ('batch_size', 'total_kimg', 'ema_kimg', 'seed', 'strategy', 'impl',
                  'precision', 'num_fp16_res', 'conv_clamp', 'checkpoint_ticks',
                  'image_snapshot_ticks', 'network_snapshot_ticks', 'keep_checkpoints',
                  'export_ticks', 'resume', 'exact_data_resume', 'optimizer', 'augment',
                  'loss', 'data'):
      self.assertEqual(getattr(got, field), getattr(want, field), field)


# One subprocess without TensorFlow: every tool's config is built (or refused) and TensorFlow
# is still not imported.
_CHECKS = textwrap.dedent(r'''
    import json, sys
    from absl import flags
    from sg2tf import cli
    out = {}

    def attempt(name, define, build, argv):
      fv = flags.FlagValues()
      define(fv)
      try:
        cli.parse(['tool'] + argv, fv)
        build(fv)
        out[name] = 'ok'
      except ValueError as e:  # cli.UsageError, ToolError
        out[name] = str(e)

    from sg2tf import train, evaluate, generate, project, export, convert, doctor
    from sg2tf.dataset_tool import main as dataset_main
    ds, tmp = sys.argv[1], sys.argv[2]
    attempt('train7', train.define_flags, train.config_from_flags,
            [f'--data_dir={ds}', f'--run_dir={tmp}/run', '--batch_size=7'])
    attempt('train_ok', train.define_flags, train.config_from_flags,
            [f'--data_dir={ds}', f'--outdir={tmp}/run', '--batch_size=4'])
    attempt('eval_net', evaluate.define_flags, evaluate.config_from_flags,
            ['--network=/nonexistent.pkl'])
    attempt('eval_ok', evaluate.define_flags, evaluate.config_from_flags,
            [f'--network={ds}', f'--output_dir={tmp}/e', '--metrics=ppl2_wend'])
    attempt('eval_metric', evaluate.define_flags, evaluate.config_from_flags,
            [f'--network={ds}', '--metrics=fid51k'])
    attempt('eval_nodata', evaluate.define_flags, evaluate.config_from_flags,
            [f'--network={ds}', '--metrics=ppl2_wend,fid50k'])
    attempt('train_metric', train.define_flags, train.config_from_flags,
            [f'--data_dir={ds}', f'--run_dir={tmp}/run', '--metrics=fid51k'])
    attempt('generate', generate.define_flags, generate.config_from_flags,
            [f'--network={ds}', f'--out={tmp}/g', '--seeds=1-x'])
    attempt('project', project.define_flags, project.config_from_flags,
            [f'--network={ds}', f'--outdir={tmp}/p', f'--target={tmp}/missing.png'])
    attempt('export', export.define_flags, export.config_from_flags,
            [f'--network={ds}', f'--out={tmp}/x', '--version=v2'])
    attempt('convert', convert.define_flags, convert.config_from_flags,
            [f'--pkl={tmp}/missing.pkl', f'--outdir={tmp}/c'])
    attempt('doctor', doctor.define_flags, doctor.config_from_flags, ['--checks=ops,gpu'])
    try:
      dataset_main.check_command(['dataset', 'create_from_images', 'only_one'])
    except ValueError as e:
      out['dataset'] = str(e)
    out['tensorflow_imported'] = 'tensorflow' in sys.modules
    print(json.dumps(out))
''')


class BeforeTensorFlowTest(absltest.TestCase):

  def test_every_tool_checks_its_flags_before_tensorflow(self):
    from tests.training import tiny  # pylint: disable=g-import-not-at-top
    tmp = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    ds = tiny.make_dataset(os.path.join(tmp, 'ds'), count=8, resolution=8)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, '-c', _CHECKS, ds, tmp], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    self.assertFalse(got['tensorflow_imported'])
    self.assertEqual((got['train_ok'], got['eval_ok']), ('ok', 'ok'))
    self.assertIn('--batch_size=7', got['train7'])
    self.assertIn('--pl_batch_shrink=2', got['train7'])
    self.assertIn('--network=/nonexistent.pkl: no such file', got['eval_net'])
    self.assertIn("--metrics: unknown metric(s) ['fid51k']", got['eval_metric'])
    self.assertIn('--data is required for fid50k', got['eval_nodata'])
    self.assertIn("--metrics: unknown metric(s) ['fid51k']", got['train_metric'])
    self.assertIn("--seeds=1-x: '1-x' is not", got['generate'])
    self.assertIn('missing.png', got['project'])
    self.assertIn('--version=v2', got['export'])
    self.assertIn('missing.pkl: no such file', got['convert'])
    self.assertIn('--checks: unknown gpu', got['doctor'])
    self.assertIn('create_from_images takes 2 arguments, got 1', got['dataset'])
    self.assertFalse(os.path.exists(os.path.join(tmp, 'run')))  # nothing written


class CommandLineTest(absltest.TestCase):
  """The tools' own error and help paths (no TensorFlow in any of them: ~1 s each)."""

  def _run(self, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False, cwd=str(REPO))

  def test_errors_are_one_line_exit_2(self):
    for args, want in (
        (['eval_main.py', '--network=/nonexistent.pkl', '--metrics=is50k'],
         'error: --network=/nonexistent.pkl: no such file or directory.'),
        (['-m', 'sg2tf.convert', '--pkl=/nonexistent.pkl', '--out=/tmp/x'],
         'error: --pkl=/nonexistent.pkl: no such file (an official StyleGAN2 .pkl, or an http(s) '
         'URL).'),
        (['data/dataset_tool.py'], 'error: no command; use one of create_from_images,'),
        (['data/dataset_tool.py', 'frobnicate'], "error: unknown command 'frobnicate'"),
        (['train_main.py', '--preset=nope'], 'error: --preset=nope: no such preset')):
      proc = self._run(*args)
      self.assertEqual(proc.returncode, 2, (args, proc.stderr))
      self.assertEqual(proc.stdout, '', args)
      self.assertLen(proc.stderr.strip().splitlines(), 1, (args, proc.stderr))
      self.assertTrue(proc.stderr.startswith(want), (args, proc.stderr))

  def test_help(self):
    proc = self._run('train_main.py', '--help')
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('Loss and regularisation:\n  --gamma', proc.stdout)
    self.assertIn('--preset', proc.stdout)
    proc = self._run('data/dataset_tool.py', 'extract', '--help')
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('extract <tfrecord_dir> <out_dir>', proc.stdout)
    self.assertIn('--max_images', proc.stdout)
    self.assertNotIn('--center_crop', proc.stdout)  # not an extract flag
    self.assertNotIn('create_from_npy', proc.stdout)


class RunConfigTest(absltest.TestCase):
  """cli.run_config: the body every tool's main shares."""

  def test_usage_errors_expected_errors_and_report(self):
    import contextlib  # pylint: disable=g-import-not-at-top
    import io  # pylint: disable=g-import-not-at-top
    reported = []

    def config_ok(fv):
      del fv
      return 'cfg'

    def config_bad(fv):
      raise ValueError('--x=3: must be even')

    def run_disk_full(config):
      raise OSError(f'{config}: disk\n  full')

    run = lambda **kw: cli.run_config(expected=(OSError,), flag_values=None, **kw)  # pylint: disable=unnecessary-lambda-assignment
    with self.assertRaisesRegex(cli.UsageError, 'unexpected arguments: extra'):
      run(argv=['tool', 'extra'], config_from_flags=config_ok, run=len)
    with self.assertRaisesRegex(cli.UsageError, r'^--x=3: must be even$'):
      run(argv=['tool'], config_from_flags=config_bad, run=len)
    err = io.StringIO()
    with self.assertRaises(SystemExit) as cm, contextlib.redirect_stderr(err):
      run(argv=['tool'], config_from_flags=config_ok, run=run_disk_full)
    self.assertEqual((cm.exception.code, err.getvalue()), (1, 'error: cfg: disk full\n'))
    self.assertEqual(run(argv=['tool'], config_from_flags=config_ok, run=len,
                         report=lambda c, r: reported.append((c, r))), 0)
    self.assertEqual(reported, [('cfg', 3)])
    with self.assertRaises(KeyError):  # a bug is not an expected error: its traceback shows
      run(argv=['tool'], config_from_flags=config_ok, run=lambda c: {}[c])


class QuietTest(absltest.TestCase):

  def test_library_lines_filtered_by_the_file_that_logged(self):
    import importlib.util  # pylint: disable=g-import-not-at-top
    import logging  # pylint: disable=g-import-not-at-top
    f = cli._HideLibraryLines()  # pylint: disable=protected-access
    tf_dir = importlib.util.find_spec('tensorflow').submodule_search_locations[0]

    def record(path, level=logging.INFO):
      return logging.LogRecord('absl', level, path, 1, 'msg', (), None)
    saver = os.path.join(tf_dir, 'python', 'checkpoint', 'functional_saver.py')
    self.assertFalse(f.filter(record(saver)))  # "Sharding callback duration"
    self.assertFalse(f.filter(record(saver, logging.WARNING)))
    self.assertTrue(f.filter(record(saver, logging.ERROR)))
    self.assertTrue(f.filter(record(str(REPO / 'sg2tf' / 'training' / 'monitoring.py'))))

  def test_quiet_tensorflow(self):
    import logging  # pylint: disable=g-import-not-at-top
    logger = logging.getLogger('tensorflow')
    level, env = logger.level, os.environ.get('TF_CPP_MIN_LOG_LEVEL')
    try:
      os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None)
      cli.quiet_tensorflow(0)
      self.assertEqual((os.environ['TF_CPP_MIN_LOG_LEVEL'], logger.level), ('2', logging.ERROR))
      os.environ['TF_CPP_MIN_LOG_LEVEL'] = '1'  # the user's own choice stays
      cli.quiet_tensorflow(0)
      self.assertEqual(os.environ['TF_CPP_MIN_LOG_LEVEL'], '1')
      cli.quiet_tensorflow(1)
      self.assertEqual((os.environ['TF_CPP_MIN_LOG_LEVEL'], logger.level), ('0', logging.DEBUG))
    finally:
      logger.setLevel(level)
      if env is None:
        os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None)
      else:
        os.environ['TF_CPP_MIN_LOG_LEVEL'] = env


if __name__ == '__main__':
  absltest.main()
