"""Line charts drawn with Pillow (matplotlib is not a dependency of sg2tf).

    panel = Panel('title', 'kimg', 'value', series=[Series('noaug', xs, ys, (200, 0, 0))])
    save_panels('out.png', [panel, ...], columns=2)
"""

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = Tuple[int, int, int]
COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
          (23, 190, 207)]


@dataclasses.dataclass
class Series:
  label: str
  x: Sequence[float]
  y: Sequence[float]
  color: Color = COLORS[0]
  dashed: bool = False


@dataclasses.dataclass
class Panel:
  title: str
  xlabel: str
  ylabel: str
  series: List[Series]
  ylim: Optional[Tuple[float, float]] = None
  hlines: Sequence[float] = ()


def _ticks(lo, hi, n=5):
  if hi <= lo:
    hi = lo + 1
  raw = (hi - lo) / n
  mag = 10 ** math.floor(math.log10(raw))
  step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
  start = math.ceil(lo / step) * step
  return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v):
  return f'{v:.3g}' if abs(v) < 1000 else f'{v:.0f}'


def draw_panel(panel: Panel, size=(560, 360)) -> Image.Image:
  w, h = size
  img = Image.new('RGB', size, (255, 255, 255))
  d = ImageDraw.Draw(img)
  font = ImageFont.load_default()
  left, right, top, bottom = 62, 14, 28, 46
  xs = np.concatenate([np.asarray(s.x, float) for s in panel.series if len(s.x)])
  ys = np.concatenate([np.asarray(s.y, float) for s in panel.series if len(s.y)])
  ys = ys[np.isfinite(ys)]
  x0, x1 = float(xs.min()), float(xs.max())
  y0, y1 = panel.ylim or (float(ys.min()), float(ys.max()))
  for v in panel.hlines:
    y0, y1 = min(y0, v), max(y1, v)
  pad = 0.05 * (y1 - y0 or 1)
  if panel.ylim is None:
    y0, y1 = y0 - pad, y1 + pad
  px = lambda v: left + (v - x0) / ((x1 - x0) or 1) * (w - left - right)  # pylint: disable=unnecessary-lambda-assignment
  py = lambda v: h - bottom - (v - y0) / ((y1 - y0) or 1) * (h - top - bottom)  # pylint: disable=unnecessary-lambda-assignment
  d.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
  for t in _ticks(x0, x1):
    d.line([px(t), h - bottom, px(t), h - bottom + 4], fill=(0, 0, 0))
    d.line([px(t), top, px(t), h - bottom], fill=(230, 230, 230))
    d.text((px(t) - 10, h - bottom + 6), _fmt(t), fill=(0, 0, 0), font=font)
  for t in _ticks(y0, y1):
    d.line([left - 4, py(t), left, py(t)], fill=(0, 0, 0))
    d.line([left, py(t), w - right, py(t)], fill=(230, 230, 230))
    d.text((4, py(t) - 6), _fmt(t), fill=(0, 0, 0), font=font)
  for v in panel.hlines:
    d.line([left, py(v), w - right, py(v)], fill=(120, 120, 120))
  for s in panel.series:
    pts = [(px(a), py(b)) for a, b in zip(s.x, s.y) if np.isfinite(b)]
    if len(pts) < 2:
      continue
    if s.dashed:
      for i in range(0, len(pts) - 1, 2):
        d.line(pts[i:i + 2], fill=s.color, width=2)
    else:
      d.line(pts, fill=s.color, width=2)
  d.text((left, 8), panel.title, fill=(0, 0, 0), font=font)
  d.text(((w - left) // 2 + left - 15, h - 18), panel.xlabel, fill=(0, 0, 0), font=font)
  ly = top + 6
  for s in panel.series:
    d.line([w - right - 150, ly + 5, w - right - 130, ly + 5], fill=s.color, width=2)
    d.text((w - right - 125, ly), s.label, fill=(0, 0, 0), font=font)
    ly += 14
  d.text((left + 4, h - bottom - 14), panel.ylabel, fill=(90, 90, 90), font=font)
  return img


def save_panels(path: str, panels: Sequence[Panel], columns: int = 2,
                size=(560, 360), extra: Sequence[Image.Image] = ()) -> str:
  """Panels on a grid, then optional extra images (e.g. sample grids) below, as one PNG."""
  tiles = [draw_panel(p, size) for p in panels] + list(extra)
  rows = []
  for i in range(0, len(tiles), columns):
    row = tiles[i:i + columns]
    canvas = Image.new('RGB', (sum(t.width for t in row), max(t.height for t in row)),
                       (255, 255, 255))
    x = 0
    for t in row:
      canvas.paste(t, (x, 0))
      x += t.width
    rows.append(canvas)
  out = Image.new('RGB', (max(r.width for r in rows), sum(r.height for r in rows)),
                  (255, 255, 255))
  y = 0
  for r in rows:
    out.paste(r, (0, y))
    y += r.height
  out.save(path, optimize=True)
  return path
