"""The GPU check's stdout tables and its JSON file.

The JSON file is strict JSON (inf/NaN written as strings), written to a temporary name in the
destination folder and renamed into place with the user's umask, so a run that is killed
never leaves a half-written file. (sg2tf's own file helpers are not used: importing sg2tf
imports TensorFlow, which the GPU machines lack.)
"""

import json
import math
import os
import pathlib
import tempfile

SCHEMA = 'sg2tf-gpu-check/1'


def _clean(v):
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)
  if isinstance(v, dict):
    return {str(k): _clean(x) for k, x in v.items()}
  if isinstance(v, (list, tuple)):
    return [_clean(x) for x in v]
  return v


def write_json(path, report):
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  text = json.dumps(_clean(dict(report, schema=SCHEMA)), indent=1, allow_nan=False)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text + '\n')
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def _table(header, rows):
  widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
            for i, h in enumerate(header)]
  line = lambda cells: '  '.join(str(c).rjust(w) if i else str(c).ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths)))
  return '\n'.join([line(header), line(['-' * w for w in widths])] + [line(r) for r in rows])


def correctness_table(res):
  rows = []
  for group, g in res.groups().items():
    rows.append([group, g['cases'], g['failed'], f"{g['worst_error_over_tol']:.2f}"])
  for group in res.skipped:
    rows.append([group, 0, '-', 'skipped'])
  text = _table(['group', 'cases', 'failed', 'worst err/tol'], rows)
  for group, reason in res.skipped.items():
    text += f'\n  {group} skipped: {reason}'
  return text


def failures_text(res, limit=25):
  lines = []
  for c in res.failures[:limit]:
    err = '' if c['error'] is None else f" err={c['error']:.3g} tol={c['tol']:.3g}"
    lines.append(f"  FAIL {c['group']} {c['name']} [{c['dtype']}]{err} {c['detail']}".rstrip())
  if len(res.failures) > limit:
    lines.append(f'  ... {len(res.failures) - limit} more in the JSON file')
  return '\n'.join(lines)


def _us(s):
  return '-' if s is None else f'{s * 1e6:.1f}'


def _x(a, b):
  return '-' if a is None or b is None else f'{a / b:.2f}'


def speed_table(speed):
  rows = []
  for r in speed['rows']:
    rows.append([r['op'], r['dtype'], r['shape'], f"{r['tensor_bytes'] / 2**20:.1f}",
                 _us(r['ours_s']), '-' if r['gbps'] is None else f"{r['gbps']:.0f}",
                 '-' if r['frac_of_copy'] is None else f"{r['frac_of_copy']:.0%}",
                 _us(r['eager_s']), _x(r['eager_s'], r['ours_s']),
                 _us(r['compile_s']), _x(r['compile_s'], r['ours_s'])])
  head = ['op', 'dtype', 'N x R x R x C', 'MiB', 'ours us', 'GB/s', 'of copy', 'eager us',
          'eager/ours', 'compile us', 'compile/ours']
  return _table(head, rows)


def targets_text(speed):
  lines = [f"  timing: {speed['timing']}"] if speed.get('timing') else []
  for t in speed['targets']:
    lines.append(f"  {'met    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['case']} "
                 f"({t['value']:.2f} vs {t['threshold']:.2f})")
  met = sum(t['met'] for t in speed['targets'])
  lines.append(f'  {met} of {len(speed["targets"])} targets met')
  torch = speed.get('torch') or {}
  if torch.get('reason'):
    lines.append(f"  PyTorch comparison not run: {torch['reason']}")
  elif torch.get('compile_reason'):
    lines.append(f"  torch.compile not measured: {torch['compile_reason']}")
  return '\n'.join(lines)
