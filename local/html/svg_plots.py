"""Small inline SVG charts for the run report: no plotting library needed.

Each function returns one `<svg>` element as a string, ready to paste into an
HTML page; every label is HTML-escaped. The charts are deliberately plain:
vertical bars (histograms), horizontal bars (top values, per-slice metrics)
and lines (training curves).
"""
import html
import math
from typing import Dict, List, Optional, Sequence, Tuple

# Colours of successive series; the first is the main one.
PALETTE = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b')
_THRESHOLD_COLOUR = '#d62728'
_FONT = 'font-family="sans-serif" font-size="11"'


def _e(text) -> str:
  return html.escape(str(text), quote=True)


def number(value: float) -> str:
  """A compact label for `value`: 3 significant digits, k/M for large ones."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return 'n/a'
  magnitude = abs(value)
  if magnitude >= 1e6:
    return f'{value / 1e6:.3g}M'
  if magnitude >= 1e4:
    return f'{value / 1e3:.3g}k'
  return f'{value:.4g}'


def _range(values: Sequence[float]) -> Tuple[float, float]:
  low, high = min(values), max(values)
  if low == high:
    pad = abs(low) * 0.1 or 1.0
    return low - pad, high + pad
  return low, high


def histogram(edges: Sequence[float], counts: Sequence[float], title: str,
              width: int = 320, height: int = 150) -> str:
  """Vertical bars: counts[i] spans edges[i]..edges[i + 1]."""
  if not counts or len(edges) != len(counts) + 1:
    raise ValueError('a histogram needs len(edges) == len(counts) + 1 > 1')
  left, right, top, bottom = 40, 10, 18, 22
  plot_w, plot_h = width - left - right, height - top - bottom
  peak = max(counts) or 1.0
  bar_w = plot_w / len(counts)
  parts = [_open(width, height, title)]
  for i, count in enumerate(counts):
    bar_h = plot_h * count / peak
    parts.append(
        f'<rect class="bar" x="{left + i * bar_w:.1f}" '
        f'y="{top + plot_h - bar_h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
        f'height="{bar_h:.1f}" fill="{PALETTE[0]}">'
        f'<title>{_e(number(edges[i]))} to {_e(number(edges[i + 1]))}: '
        f'{_e(number(count))}</title></rect>')
  parts.append(_axes(left, top, plot_w, plot_h))
  parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" '
               f'{_FONT}>{_e(number(peak))}</text>')
  parts.append(f'<text x="{left}" y="{height - 6}" {_FONT}>'
               f'{_e(number(edges[0]))}</text>')
  parts.append(f'<text x="{left + plot_w}" y="{height - 6}" '
               f'text-anchor="end" {_FONT}>{_e(number(edges[-1]))}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def horizontal_bars(labels: Sequence[str], values: Sequence[float], title: str,
                    threshold: Optional[float] = None,
                    value_range: Optional[Tuple[float, float]] = None,
                    width: int = 420) -> str:
  """One horizontal bar per label, with an optional vertical threshold line."""
  if not labels or len(labels) != len(values):
    raise ValueError('horizontal_bars needs as many values as labels (> 0)')
  row, left, right = 16, 150, 60
  top = 20 if threshold is None else 32  # room for the threshold's label
  height = top + row * len(labels) + 8
  plot_w = width - left - right
  low, high = value_range or (min(0.0, min(values)), max(values) or 1.0)
  if threshold is not None:
    high = max(high, threshold)
  span = (high - low) or 1.0

  def x_of(value: float) -> float:
    return left + plot_w * (value - low) / span

  parts = [_open(width, height, title)]
  for i, (label, value) in enumerate(zip(labels, values)):
    y = top + i * row
    shown = label if len(label) <= 24 else label[:23] + '\u2026'
    parts.append(f'<text x="{left - 4}" y="{y + 11}" text-anchor="end" '
                 f'{_FONT}>{_e(shown)}<title>{_e(label)}</title></text>')
    parts.append(
        f'<rect class="bar" x="{x_of(low):.1f}" y="{y + 2}" '
        f'width="{max(x_of(value) - x_of(low), 0.5):.1f}" height="{row - 4}" '
        f'fill="{PALETTE[0]}"><title>{_e(label)}: {_e(number(value))}</title>'
        '</rect>')
    parts.append(f'<text x="{x_of(value) + 3:.1f}" y="{y + 11}" {_FONT}>'
                 f'{_e(number(value))}</text>')
  if threshold is not None:
    x = x_of(threshold)
    parts.append(f'<line class="threshold" x1="{x:.1f}" y1="{top - 4}" '
                 f'x2="{x:.1f}" y2="{height - 4}" stroke="{_THRESHOLD_COLOUR}" '
                 'stroke-dasharray="4 2"/>')
    parts.append(f'<text x="{x:.1f}" y="{top - 6}" text-anchor="middle" '
                 f'fill="{_THRESHOLD_COLOUR}" {_FONT}>threshold '
                 f'{_e(number(threshold))}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def line_chart(series: Dict[str, List[Tuple[float, float]]], title: str,
               x_label: str = 'step', width: int = 420,
               height: int = 200) -> str:
  """One line per series (name -> [(x, y), ...]); single points as dots."""
  points = [p for values in series.values() for p in values]
  if not points:
    raise ValueError('line_chart needs at least one point')
  left, right, top = 48, 10, 18
  plot_w, plot_h = width - left - right, height - top - 34
  height += 14 * len(series)
  x_low, x_high = _range([p[0] for p in points])
  y_low, y_high = _range([p[1] for p in points])

  def xy(point: Tuple[float, float]) -> str:
    x = left + plot_w * (point[0] - x_low) / (x_high - x_low)
    y = top + plot_h - plot_h * (point[1] - y_low) / (y_high - y_low)
    return f'{x:.1f},{y:.1f}'

  parts = [_open(width, height, title), _axes(left, top, plot_w, plot_h)]
  for i, (name, values) in enumerate(series.items()):
    colour = PALETTE[i % len(PALETTE)]
    ordered = sorted(values)
    if len(ordered) > 1:
      parts.append(f'<polyline class="series" fill="none" stroke="{colour}" '
                   f'stroke-width="1.5" points="{" ".join(map(xy, ordered))}">'
                   f'<title>{_e(name)}</title></polyline>')
    for point in ordered if len(ordered) <= 20 else ordered[-1:]:
      x, y = xy(point).split(',')
      parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}">'
                   f'<title>{_e(name)} at {_e(x_label)} {_e(number(point[0]))}'
                   f': {_e(number(point[1]))}</title></circle>')
    legend_y = top + plot_h + 30 + 14 * i
    parts.append(f'<rect x="{left}" y="{legend_y - 8}" width="10" height="3" '
                 f'fill="{colour}"/><text x="{left + 14}" y="{legend_y}" '
                 f'{_FONT}>{_e(name)} (last {_e(number(ordered[-1][1]))})'
                 '</text>')
  parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" '
               f'{_FONT}>{_e(number(y_high))}</text>')
  parts.append(f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" '
               f'{_FONT}>{_e(number(y_low))}</text>')
  parts.append(f'<text x="{left}" y="{top + plot_h + 14}" {_FONT}>'
               f'{_e(number(x_low))}</text>')
  parts.append(f'<text x="{left + plot_w}" y="{top + plot_h + 14}" '
               f'text-anchor="end" {_FONT}>{_e(x_label)} '
               f'{_e(number(x_high))}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def _open(width: int, height: int, title: str) -> str:
  return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" '
          f'width="{width}" height="{height}" '
          f'viewBox="0 0 {width} {height}" role="img" '
          f'aria-label="{_e(title)}"><title>{_e(title)}</title>'
          f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
          f'<text x="4" y="12" font-weight="bold" {_FONT}>{_e(title)}</text>')


def _axes(left: float, top: float, plot_w: float, plot_h: float) -> str:
  return (f'<path d="M{left},{top} V{top + plot_h} H{left + plot_w}" '
          'fill="none" stroke="#555555"/>')


def grouped_bars(labels: Sequence[str], series: Dict[str, Sequence[float]],
                 title: str, width: int = 420) -> str:
  """Horizontal bars, one group per label and one bar per series in it, with
  a legend (e.g. the share of each value in two sets of rows)."""
  if not labels or not series or any(
      len(values) != len(labels) for values in series.values()):
    raise ValueError('grouped_bars needs one value per label in each series')
  bar, gap, left, right, top = 7, 5, 150, 60, 20
  group = bar * len(series) + gap
  legend_top = top + group * len(labels) + 6
  height = legend_top + 14 * len(series)
  plot_w = width - left - right
  high = max(max(values) for values in series.values()) or 1.0
  parts = [_open(width, height, title)]
  for i, label in enumerate(labels):
    y = top + i * group
    shown = label if len(label) <= 24 else label[:23] + '\u2026'
    parts.append(f'<text x="{left - 4}" y="{y + group / 2 + 2:.1f}" '
                 f'text-anchor="end" {_FONT}>{_e(shown)}<title>{_e(label)}'
                 '</title></text>')
    for j, (name, values) in enumerate(series.items()):
      bar_w = max(plot_w * values[i] / high, 0.5)
      parts.append(
          f'<rect class="bar" x="{left}" y="{y + j * bar:.1f}" '
          f'width="{bar_w:.1f}" height="{bar - 1}" '
          f'fill="{PALETTE[j % len(PALETTE)]}"><title>{_e(name)}, '
          f'{_e(label)}: {_e(number(values[i]))}</title></rect>')
  for j, name in enumerate(series):
    y = legend_top + 14 * j
    parts.append(f'<rect x="{left}" y="{y}" width="10" height="8" '
                 f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{left + 14}" '
                 f'y="{y + 8}" {_FONT}>{_e(name)}</text>')
  parts.append('</svg>')
  return ''.join(parts)
