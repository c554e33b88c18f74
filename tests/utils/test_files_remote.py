"""sg2tf.utils.files on TensorFlow filesystems (ram://) and for http(s) URLs (a local server)."""

import hashlib
import http.server
import os
import shutil
import tempfile
import threading
from unittest import mock

import tensorflow as tf

from sg2tf import loading
from sg2tf.utils import files

_PKL = '/work/shared/fixtures/official_pkl/stylegan2_random_64.pkl'
_PAYLOAD = bytes(range(256)) * 64  # 16 KiB


class _Handler(http.server.BaseHTTPRequestHandler):
  requests = []

  def do_GET(self):  # pylint: disable=invalid-name
    _Handler.requests.append(self.path)
    if self.path.startswith('/missing'):
      self.send_error(404, 'Not Found')
      return
    if self.path.startswith('/net.pkl'):
      with open(_PKL, 'rb') as f:
        body = f.read()
    else:
      body = _PAYLOAD
    announced = len(body)
    if self.path.startswith('/truncated'):
      body = body[:len(body) // 2]  # announces the whole length, sends half, closes
    self.send_response(200)
    self.send_header('Content-Length', str(announced))
    self.end_headers()
    self.wfile.write(body)
    self.wfile.flush()
    self.close_connection = True

  def log_message(self, *args):  # quiet
    pass


class RamFilesystemTest(tf.test.TestCase):

  def test_files_and_directories(self):
    root = 'ram://files_test/a'
    files.write_text(f'{root}/x.txt', 'one')
    files.write_text(f'{root}/x.txt', 'two')  # replaced
    self.assertEqual(files.read_text(f'{root}/x.txt'), 'two')
    self.assertTrue(files.isfile(f'{root}/x.txt'))
    self.assertEqual(files.listdir(root), ['x.txt'])  # no temporaries left
    # ram:// calls every name prefix of a file a directory; the helpers do not.
    self.assertFalse(files.exists(f'{root}/x'))
    self.assertFalse(files.isdir(f'{root}/x.t'))
    files.append_text(f'{root}/log.jsonl', 'a\n')
    files.append_text(f'{root}/log.jsonl', 'b\n')
    self.assertEqual(files.read_text(f'{root}/log.jsonl'), 'a\nb\n')
    self.assertEqual(files.getsize(f'{root}/log.jsonl'), 4)
    # Directories: committed whole (files below included), replaced only when asked.
    for name in ('v1', 'v2'):
      with files.AtomicDir(f'{root}/net', overwrite=True) as d:
        files.write_text(f'{d.tmp}/sub/{name}.txt', name)
    self.assertEqual(files.listdir(f'{root}/net/sub'), ['v2.txt'])
    self.assertEqual(sorted(files.listdir(root)), ['log.jsonl', 'net', 'x.txt'])
    with self.assertRaises(FileExistsError):
      files.AtomicDir(f'{root}/net')
    with self.assertRaises(RuntimeError):
      with files.AtomicDir(f'{root}/failed') as d:
        files.write_text(f'{d.tmp}/part.txt', 'half')
        raise RuntimeError('boom')
    self.assertFalse(files.exists(f'{root}/failed'))
    self.assertEqual(files.remove_leftovers(root), [])
    files.check_writable(f'{root}/run')
    self.assertIsNone(files.free_space(root))
    self.assertEqual(files.abspath(root), root)


class FetchUrlTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    threading.Thread(target=cls.server.serve_forever, daemon=True).start()
    cls.base = f'http://127.0.0.1:{cls.server.server_address[1]}'

  @classmethod
  def tearDownClass(cls):
    cls.server.shutdown()
    cls.server.server_close()
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.cache = tempfile.mkdtemp(prefix='test_fetch_')
    self.addCleanup(shutil.rmtree, self.cache, True)
    patcher = mock.patch.dict(os.environ, {files.CACHE_ENV: self.cache})
    patcher.start()
    self.addCleanup(patcher.stop)
    _Handler.requests.clear()

  def _cache_entries(self):
    folder = os.path.join(self.cache, files.DOWNLOAD_DIR)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []

  def test_download_once_verified(self):
    digest = hashlib.sha256(_PAYLOAD).hexdigest()
    url = f'{self.base}/data/file.bin#sha256={digest}'
    path = files.fetch_url(url)
    self.assertTrue(path.startswith(os.path.join(self.cache, files.DOWNLOAD_DIR)))
    self.assertTrue(path.endswith('-file.bin'))
    with open(path, 'rb') as f:
      self.assertEqual(f.read(), _PAYLOAD)
    self.assertEqual(files.fetch_url(url), path)  # from the cache, checked again
    self.assertEqual(_Handler.requests, ['/data/file.bin'])
    self.assertEqual(self._cache_entries(), [os.path.basename(path)])

  def test_wrong_hash_keeps_nothing(self):
    url = f'{self.base}/data/other.bin#sha256={"0" * 64}'
    with self.assertRaisesRegex(files.DownloadError, r'sha256 mismatch.*other\.bin|other\.bin.*'
                                r'sha256 mismatch'):
      files.fetch_url(url)
    self.assertEqual(self._cache_entries(), [])

  def test_truncated_download(self):
    with self.assertRaisesRegex(files.DownloadError, r'truncated\.bin.*cut short \(8192 of '
                                r'16384 bytes\)'):
      files.fetch_url(f'{self.base}/truncated.bin')
    self.assertEqual(self._cache_entries(), [])

  def test_http_error_and_bad_fragment(self):
    with self.assertRaisesRegex(files.DownloadError, r'missing\.pkl: HTTP 404'):
      files.fetch_url(f'{self.base}/missing.pkl')
    with self.assertRaisesRegex(ValueError, r'#sha256=<64 hex digits>'):
      files.fetch_url(f'{self.base}/x.pkl#md5=00')
    self.assertEqual(self._cache_entries(), [])

  def test_network_url_loads_through_the_safe_loader(self):
    if not os.path.isfile(_PKL):
      self.skipTest(f'{_PKL} is not available')
    with open(_PKL, 'rb') as f:
      digest = hashlib.sha256(f.read()).hexdigest()
    url = f'{self.base}/net.pkl#sha256={digest}'
    G = loading.load_generator(url)
    self.assertEqual(int(G.synthesis.img_resolution), 64)
    self.assertEqual(loading.describe(url), ('net.pkl', 'official_pkl'))
    with self.assertRaisesRegex(loading.NetworkLoadError, r'--network=.*#sha256=<64'):
      loading.load_generator(f'{self.base}/net.pkl#sha256=xyz')
    self.assertEqual(_Handler.requests, ['/net.pkl'])


if __name__ == '__main__':
  tf.test.main()
