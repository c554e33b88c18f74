"""The published weight files of the metric feature networks: names, URLs, lookup, download.

| key | file to put in the feature dir | URL | used by |
|---|---|---|---|
| inception | `inception-2015-12-05.tgz` (or the `classify_image_graph_def.pb` inside it) | http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz | fid50k, fid50k_full, is50k |
| vgg16 | `vgg16-397923af.pth` (or `vgg16.pth`) | https://download.pytorch.org/models/vgg16-397923af.pth | pr50k3 (fc2 features), ppl_* (LPIPS backbone) |
| lpips_vgg | `lpips_vgg_v0.1.pth` (or `vgg.pth`) | https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth | ppl_*, ppl2_* |

sha256: none of these files could be downloaded on the machines this was written on, so no
full digest is pinned here. torchvision names its files after the first 8 hex digits of
their sha256, so `vgg16-397923af.pth` must hash to `397923af...` and the loader checks that.
The full digest of each file is logged when it is first used, so it can be pinned later.

Where files are looked for, in order: the `feature_dir` argument (`--feature_dir`), the
`SG2TF_FEATURE_DIR` environment variable, then the download cache
(`SG2TF_FEATURE_CACHE`, default `~/.cache/sg2tf/features`). A missing file is downloaded into
the cache when `download=True` and the URL is reachable (written to a temporary name, checked,
then renamed); otherwise `FeatureFileMissingError` says which file to fetch and where to put it.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Tuple
import urllib.request

from absl import logging

from sg2tf.tool_util import atomic_write
from sg2tf.tool_util import sha256_file

FEATURE_DIR_ENV = 'SG2TF_FEATURE_DIR'
FEATURE_CACHE_ENV = 'SG2TF_FEATURE_CACHE'
_DOWNLOAD_TIMEOUT_S = 30


@dataclasses.dataclass(frozen=True)
class FeatureFile:
  key: str
  filename: str
  url: str
  used_by: str
  description: str
  aliases: Tuple[str, ...] = ()
  sha256: Optional[str] = None  # full digest, when known
  sha256_prefix: Optional[str] = None  # torchvision-style prefix in the file name


FEATURE_FILES: Dict[str, FeatureFile] = {
    'inception': FeatureFile(
        key='inception', filename='inception-2015-12-05.tgz',
        url='http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz',
        used_by='fid50k, fid50k_full, is50k',
        description='Inception-v3 2015 TensorFlow graph (GraphDef classify_image_graph_def.pb), '
                    'pool_3 features and 1008-way logits',
        aliases=('classify_image_graph_def.pb',)),
    'vgg16': FeatureFile(
        key='vgg16', filename='vgg16-397923af.pth',
        url='https://download.pytorch.org/models/vgg16-397923af.pth',
        used_by='pr50k3, ppl_* (LPIPS backbone)',
        description='torchvision VGG16 ImageNet weights (PyTorch state dict)',
        aliases=('vgg16.pth',), sha256_prefix='397923af'),
    'lpips_vgg': FeatureFile(
        key='lpips_vgg', filename='lpips_vgg_v0.1.pth',
        url='https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/'
            'weights/v0.1/vgg.pth',
        used_by='ppl_zfull, ppl_wfull, ppl_zend, ppl_wend, ppl2_wend',
        description='LPIPS v0.1 linear calibration weights for VGG16 (PyTorch state dict)',
        aliases=('vgg.pth',)),
}


class FeatureFileMissingError(FileNotFoundError):
  """A feature network file is missing; the message says what to fetch and where to put it."""


def cache_dir() -> str:
  return os.environ.get(FEATURE_CACHE_ENV) or os.path.join(
      os.path.expanduser('~'), '.cache', 'sg2tf', 'features')


def search_dirs(feature_dir: Optional[str] = None) -> List[str]:
  dirs = [feature_dir, os.environ.get(FEATURE_DIR_ENV), cache_dir()]
  out = []
  for d in dirs:
    if d and os.path.abspath(d) not in out:
      out.append(os.path.abspath(d))
  return out


_verified: Dict[Tuple[str, int, int], str] = {}


def verify(spec: FeatureFile, path: str) -> str:
  """Checks the file against the known digest/prefix (once per file version); returns sha256."""
  st = os.stat(path)
  key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
  if key not in _verified:
    digest = sha256_file(path)
    if spec.sha256 and digest != spec.sha256:
      raise ValueError(f'{path}: sha256 {digest} differs from the published {spec.sha256}; the '
                       f'file is damaged or a different version. Fetch it again from {spec.url}.')
    if spec.sha256_prefix and os.path.basename(path) == spec.filename and not digest.startswith(
        spec.sha256_prefix):
      raise ValueError(f'{path}: sha256 {digest} does not start with {spec.sha256_prefix} as its '
                       f'name promises; the file is damaged. Fetch it again from {spec.url}.')
    logging.info('Feature network file %s: sha256 %s (%d bytes).', path, digest, st.st_size)
    _verified[key] = digest
  return _verified[key]


def _download(spec: FeatureFile, dest_dir: str) -> str:
  dest = os.path.join(dest_dir, spec.filename)
  logging.info('Downloading %s to %s ...', spec.url, dest)

  def fetch_and_verify(tmp):
    with open(tmp, 'wb') as out, urllib.request.urlopen(
        spec.url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
      for chunk in iter(lambda: resp.read(1 << 20), b''):
        out.write(chunk)
    os.chmod(tmp, 0o644)
    digest = sha256_file(tmp)
    if (spec.sha256 and digest != spec.sha256) or (
        spec.sha256_prefix and not digest.startswith(spec.sha256_prefix)):
      raise ValueError(f'downloaded {spec.url} but its sha256 {digest} is not the published '
                       f'one ({spec.sha256 or spec.sha256_prefix + "..."})')
  return atomic_write(dest, fetch_and_verify)


def missing_message(spec: FeatureFile, dirs: List[str], reason: str = '') -> str:
  target = dirs[0] if dirs else cache_dir()
  also = f' (or one named {", ".join(spec.aliases)})' if spec.aliases else ''
  return (f'The {spec.description} is needed for {spec.used_by} but {spec.filename}{also} was '
          f'not found in: {", ".join(dirs)}.{(" " + reason) if reason else ""}\n'
          f'Fetch {spec.url}\nand save it as {os.path.join(target, spec.filename)}; or put it in '
          f'any folder and pass --feature_dir=<folder> (or set {FEATURE_DIR_ENV}=<folder>).')


def locate(key: str, feature_dir: Optional[str] = None, download: bool = False) -> str:
  """Path of feature file `key` ('inception', 'vgg16', 'lpips_vgg'); may download it.

  Raises:
    FeatureFileMissingError: not found (and not downloadable); says what to fetch.
  """
  if key not in FEATURE_FILES:
    raise KeyError(f'unknown feature file {key!r}; known: {sorted(FEATURE_FILES)}')
  spec = FEATURE_FILES[key]
  dirs = search_dirs(feature_dir)
  if feature_dir and not os.path.isdir(feature_dir):
    raise FeatureFileMissingError(
        f'--feature_dir={feature_dir} is not a directory. ' + missing_message(spec, dirs))
  for d in dirs:
    for name in (spec.filename,) + spec.aliases:
      path = os.path.join(d, name)
      if os.path.isfile(path):
        verify(spec, path)
        return path
  reason = ''
  if download:
    try:
      path = _download(spec, cache_dir())
      verify(spec, path)
      return path
    except Exception as e:  # pylint: disable=broad-except
      reason = f'Downloading it failed ({type(e).__name__}: {e}).'
      logging.warning('Could not download %s: %s', spec.url, e)
  raise FeatureFileMissingError(missing_message(spec, dirs, reason))


def readme_table() -> str:
  """The Markdown table of feature files (for the README)."""
  rows = ['| file | URL | sha256 | used by |', '|---|---|---|---|']
  for spec in FEATURE_FILES.values():
    digest = spec.sha256 or (f'starts with `{spec.sha256_prefix}` (full digest not verified)'
                             if spec.sha256_prefix else 'not verified')
    names = ' or '.join(f'`{n}`' for n in (spec.filename,) + spec.aliases)
    rows.append(f'| {names} | {spec.url} | {digest} | {spec.used_by} |')
  return '\n'.join(rows)
