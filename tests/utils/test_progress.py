"""sg2tf.utils.progress: the one time format and the one rate/ETA reporter."""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

from sg2tf.utils import progress


class ProgressTest(parameterized.TestCase):

  @parameterized.parameters((0, '0s'), (59, '59s'), (59.6, '1m 00s'), (125, '2m 05s'),
                            (3725, '1h 02m'), (90000, '1d 01h'), (-5, '0s'))
  def test_format_time(self, seconds, text):
    self.assertEqual(progress.format_time(seconds), text)

  def _logged(self, p, *updates):
    with mock.patch.object(progress.logging, 'info') as info:
      for u in updates:
        p.update(*u) if isinstance(u, tuple) else p.update(u)
    return [c[0][0] % c[0][1:] for c in info.call_args_list]

  def test_rate_eta_and_final_line(self):
    with mock.patch.object(progress.time, 'time', side_effect=[100.0, 110.0, 120.0, 121.0]):
      p = progress.Progress(4, 'thing', unit='img', every_s=5.0)
      lines = self._logged(p, 2, (4, 'extra'), 4)
    self.assertEqual(lines, ['thing: 2/4 img, 50%, 0.20 img/s, elapsed 10s, ETA 10s',
                             'thing: 4/4 img, 100%, 0.20 img/s, elapsed 20s, ETA 0s, extra'])

  def test_throttled_unless_forced_and_open_ended(self):
    with mock.patch.object(progress.time, 'time', side_effect=[0.0, 1.0, 2.0, 3.0]):
      p = progress.Progress(None, 'reals', unit='img', every_s=60.0)
      lines = self._logged(p, 5, 6, (8, '', True))
    self.assertEqual(lines, ['reals: 8 img, 2.67 img/s, elapsed 3s'])


if __name__ == '__main__':
  absltest.main()
