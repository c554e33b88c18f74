"""The published weight files of the metric feature networks: names, URLs, lookup, download.

| key | file to put in the feature dir | URL | used by |
|---|---|---|---|
| inception | `inception-2015-12-05.tgz` (or the `classify_image_graph_def.pb` inside it) | http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz | fid50k, fid50k_full, is50k |
| vgg16 | `vgg16-397923af.pth` (or `vgg16.pth`) | https://download.pytorch.org/models/vgg16-397923af.pth | pr50k3 (fc2 features), ppl_* (LPIPS backbone) |
| lpips_vgg | `lpips_vgg_v0.1.pth` (or `vgg.pth`) | https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth | ppl_*, ppl2_* |

Checks: a file whose sha256 is the published one is used as it is. A file of the published
size (under any of its names, aliases included) must also have the published sha256 where it
is known (vgg16, lpips_vgg; for Inception only the sizes are known), and torchvision's name
`vgg16-397923af.pth` promises the sha256 prefix 397923af. Any other file is an unknown file:
it is used (read, like every file, only through the allow-list readers, which never run code
from it) with a warning giving its size and sha256, since metric values computed with it are
not comparable with published ones. Every file's sha256 is logged when it is first used.

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

from sg2tf.utils.files import atomic_write
from sg2tf.utils.files import sha256_file

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
  sha256: Optional[str] = None  # full digest of the published file, when known
  sha256_prefix: Optional[str] = None  # torchvision-style prefix in the file name
  size: Optional[int] = None  # bytes of the published file
  other_forms: Tuple[Tuple[str, int], ...] = ()  # (name, bytes) of other published forms

  def published(self) -> List[Tuple[int, Optional[str]]]:
    """(bytes, sha256 or None) of every published form of this file."""
    out = [(self.size, self.sha256)] if self.size is not None else []
    return out + [(size, None) for _, size in self.other_forms]


FEATURE_FILES: Dict[str, FeatureFile] = {
    'inception': FeatureFile(
        key='inception', filename='inception-2015-12-05.tgz',
        url='http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz',
        used_by='fid50k, fid50k_full, is50k',
        description='Inception-v3 2015 TensorFlow graph (GraphDef classify_image_graph_def.pb), '
                    'pool_3 features and 1008-way logits',
        aliases=('classify_image_graph_def.pb',), size=88931400,
        other_forms=(('classify_image_graph_def.pb', 95673916),)),
    'vgg16': FeatureFile(
        key='vgg16', filename='vgg16-397923af.pth',
        url='https://download.pytorch.org/models/vgg16-397923af.pth',
        used_by='pr50k3, ppl_* (LPIPS backbone)',
        description='torchvision VGG16 ImageNet weights (PyTorch state dict)',
        aliases=('vgg16.pth',), sha256_prefix='397923af', size=553433881,
        sha256='397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0'),
    'lpips_vgg': FeatureFile(
        key='lpips_vgg', filename='lpips_vgg_v0.1.pth',
        url='https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/'
            'weights/v0.1/vgg.pth',
        used_by='ppl_zfull, ppl_wfull, ppl_zend, ppl_wend, ppl2_wend',
        description='LPIPS v0.1 linear calibration weights for VGG16 (PyTorch state dict)',
        aliases=('vgg.pth',), size=7289,
        sha256='a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868'),
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
  """Checks the file against the published size / digest / name prefix (once per file
  version, see the module docstring); returns its sha256. ValueError for a damaged file."""
  st = os.stat(path)
  key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
  if key in _verified:
    return _verified[key]
  digest = sha256_file(path)
  fetch = f'Fetch it again from {spec.url}.'
  if spec.sha256 and digest == spec.sha256:
    logging.info('Feature network file %s: the published file (sha256 %s, %d bytes).', path,
                 digest, st.st_size)
  elif spec.sha256_prefix and os.path.basename(path) == spec.filename and not digest.startswith(
      spec.sha256_prefix):
    raise ValueError(f'{path}: sha256 {digest} does not start with {spec.sha256_prefix} as its '
                     f'name promises; the file is damaged. {fetch}')
  elif any(size == st.st_size for size, _ in spec.published()):
    pinned = next(d for size, d in spec.published() if size == st.st_size)
    if pinned and digest != pinned:
      raise ValueError(f'{path}: {st.st_size} bytes like the published {spec.filename}, but its '
                       f'sha256 {digest} is not the published {pinned}; the file is damaged '
                       f'or altered. {fetch}')
    logging.info('Feature network file %s: %d bytes, the size of the published file; sha256 %s '
                 '(no published digest to compare with).', path, st.st_size, digest)
  else:
    sizes = ' or '.join(f'{size} bytes' for size, _ in spec.published()) or 'unknown'
    logging.warning('Feature network file %s is not a published %s (it has %d bytes, the '
                    'published file %s); using it as an unknown file, read only through the '
                    'allow-list reader. sha256 %s. Metric values computed with it are not '
                    'comparable with published ones.', path, spec.filename, st.st_size, sizes,
                    digest)
  _verified[key] = digest
  return digest


def _download(spec: FeatureFile, dest_dir: str) -> str:
  dest = os.path.join(dest_dir, spec.filename)
  logging.info('Downloading %s to %s ...', spec.url, dest)

  def fetch_and_verify(tmp):
    with open(tmp, 'wb') as out, urllib.request.urlopen(
        spec.url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
      for chunk in iter(lambda: resp.read(1 << 20), b''):
        out.write(chunk)
    digest = sha256_file(tmp)
    size = os.path.getsize(tmp)
    if (spec.sha256 and digest != spec.sha256) or (
        spec.sha256_prefix and not digest.startswith(spec.sha256_prefix)):
      raise ValueError(f'downloaded {spec.url} but its sha256 {digest} is not the published '
                       f'one ({spec.sha256 or spec.sha256_prefix + "..."})')
    if not spec.sha256 and spec.size is not None and size != spec.size:
      raise ValueError(f'downloaded {spec.url} but it has {size} bytes, not the published '
                       f'{spec.size} (an interrupted download?)')
  return atomic_write(dest, fetch_and_verify, what='feature network file')


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
  rows = ['| file | URL | bytes, sha256 | used by |', '|---|---|---|---|']
  for spec in FEATURE_FILES.values():
    sizes = ', '.join([f'{spec.size:,}'] + [f'{size:,} (`{n}`)' for n, size in spec.other_forms])
    digest = f'`{spec.sha256}`' if spec.sha256 else 'sha256 not published (size checked)'
    names = ' or '.join(f'`{n}`' for n in (spec.filename,) + spec.aliases)
    rows.append(f'| {names} | {spec.url} | {sizes}; {digest} | {spec.used_by} |')
  return '\n'.join(rows)
