"""`compute-sanitizer --tool memcheck` over a reduced correctness sweep.

The driver reruns itself as a child (`--sanitizer-child`) under the tool, with CuPy's memory
pool off so that every array is its own allocation (out-of-bounds accesses inside a pooled
block would go unseen). Outcome: 'passed' (no memcheck error and the child's checks passed),
'failed' (memcheck reported errors, or a value differed under it), or 'skipped' with the
reason (no tool; the tool refuses the device, as on gVisor machines; the child could not
launch under it; or it timed out).
"""

import json
import os
import re
import subprocess
import sys
import tempfile

from tests.gpu import build_libs

_SUMMARY = re.compile(r'ERROR SUMMARY:\s*(\d+)\s+error')
_ERROR_LINE = re.compile(r'^=+\s+(Invalid|Out-of-range|Misaligned|Program hit|Address)',
                         re.MULTILINE)


def classify(returncode, output, child_report):
  """(status, reason, memcheck error count) from the tool's exit code and output and the
  child's correctness report (None when it wrote none)."""
  m = _SUMMARY.findall(output)
  errors = int(m[-1]) if m else None
  if errors:
    return 'failed', f'memcheck reported {errors} error(s)', errors
  if _ERROR_LINE.search(output):
    return 'failed', 'memcheck reported errors', errors
  tail = ' | '.join(l.strip() for l in output.strip().splitlines()[-6:])
  if 'device not supported' in output.lower():
    return 'skipped', f'compute-sanitizer does not support this device: {tail}', errors
  if errors == 0 and child_report is not None:
    if child_report.get('passed'):
      return 'passed', '', 0
    failures = child_report.get('failures') or []
    if any(f.get('error') is not None for f in failures):  # a value differed
      return 'failed', (f"{child_report.get('num_failed')} check(s) failed under the "
                        'sanitizer'), 0
    first = failures[0].get('detail', '')[:300] if failures else ''
    return 'skipped', f'the sweep could not run under compute-sanitizer: {first}', 0
  return 'skipped', f'compute-sanitizer could not run here (exit {returncode}): {tail}', errors


def run_memcheck(driver, arch, timeout_s, log=print):
  tool = build_libs.sanitizer_path()
  if tool is None:
    return dict(status='skipped', reason='compute-sanitizer not found (PATH, $CUDA_HOME/bin, '
                '/usr/local/cuda/bin)')
  with tempfile.TemporaryDirectory(prefix='sg2tf_memcheck_') as tmp:
    child_json = os.path.join(tmp, 'child.json')
    # API errors are not memory errors (and CuPy may provoke benign ones): not reported.
    cmd = [tool, '--tool', 'memcheck', '--leak-check', 'no', '--report-api-errors', 'no',
           '--print-limit', '20',
           sys.executable, str(driver), '--sanitizer-child', '--arch', arch,
           '--json', child_json]
    log(f'memcheck: {" ".join(cmd)}')
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                            check=False, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    except subprocess.TimeoutExpired as e:
      out = (e.stdout or b'')
      out = out.decode(errors='replace') if isinstance(out, bytes) else out
      return dict(status='skipped', reason=f'timed out after {timeout_s} s',
                  output_tail=out[-2000:])
    output = proc.stdout + proc.stderr
    child = None
    if os.path.exists(child_json):
      with open(child_json) as f:
        child = json.load(f).get('correctness')
  status, reason, errors = classify(proc.returncode, output, child)
  return dict(status=status, reason=reason, memcheck_errors=errors, exit_code=proc.returncode,
              child_cases=None if child is None else child.get('num_cases'),
              command=' '.join(cmd),
              output_tail=output[-3000:])
