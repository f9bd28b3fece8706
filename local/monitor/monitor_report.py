"""The monitoring report: one HTML page per monitoring window.

Like the run report (local/report/run_report.py), self-contained, plots as inline
SVG. The outcome first (which features are over their thresholds), then one
row per feature: the skew against the served model's training data and the
drift against the previous window (distance, threshold, verdict), and the
distributions plotted together: for a numeric feature the share of rows at
or below each value (from TFDV's quantiles, up to the 90th percentile, so a
far outlier does not flatten the curves), for a categorical one the share of
its most frequent values.
"""
import dataclasses
import datetime
from typing import Dict, List, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import statistics_pb2

from local.monitor import drift_comparison
from local.html import html_page
from local.html import svg_plots

_e = html_page.escape
# A categorical feature's plot shows at most this many values.
TOP_VALUES_SHOWN = 10
CHART_WIDTH = 340  # pixels: the table stays within the page
TRAINING, SERVED, PREVIOUS = 'training', 'served', 'previous window'


@dataclasses.dataclass
class MonitoredWindow:
  """What one monitoring run read and found."""
  pipeline_name: str
  window_id: str
  source: str  # the CSV file or bq:// table
  rows: int
  served_model: str
  training_statistics: str  # the FeatureStats.pb path
  previous_window: Optional[str]  # its folder, None for the first window
  comparisons: List[drift_comparison.Comparison]
  statistics: Dict[str, statistics_pb2.DatasetFeatureStatisticsList]  # by
  # TRAINING, SERVED and (when there is one) PREVIOUS

  @property
  def over(self) -> List[str]:
    """One line per feature over a threshold."""
    return drift_comparison.over_threshold(self.comparisons)


def _features(stats: statistics_pb2.DatasetFeatureStatisticsList
             ) -> Dict[str, statistics_pb2.FeatureNameStatistics]:
  return {'.'.join(f.path.step) or f.name: f
          for f in stats.datasets[0].features}


def _common(feature: statistics_pb2.FeatureNameStatistics):
  field = feature.WhichOneof('stats')
  return getattr(feature, field).common_stats if field else None


def cumulative_shares(feature: statistics_pb2.FeatureNameStatistics
                     ) -> List[Tuple[float, float]]:
  """[(value, share of rows at or below it)] from the quantiles histogram,
  without its top bucket (the largest values)."""
  for histogram in feature.num_stats.histograms:
    if histogram.type == statistics_pb2.Histogram.QUANTILES:
      buckets = list(histogram.buckets)
      total = sum(b.sample_count for b in buckets)
      if not total:
        return []
      points, seen = [(buckets[0].low_value, 0.0)], 0.0
      for bucket in buckets[:-1]:
        seen += bucket.sample_count
        points.append((bucket.high_value, seen / total))
      return points
  return []


def value_shares(feature: statistics_pb2.FeatureNameStatistics
                ) -> Dict[str, float]:
  """value -> its share of the rows with a value (most frequent values)."""
  strings = feature.string_stats
  common = strings.common_stats.num_non_missing or 1
  pairs = ([(v.value, v.frequency) for v in strings.top_values] or
           [(b.label, b.sample_count) for b in strings.rank_histogram.buckets])
  return {value: count / common for value, count in pairs}


def distribution_chart(name: str, by_series: Dict[
    str, statistics_pb2.FeatureNameStatistics]) -> str:
  """The feature's distributions in every series, in one chart."""
  if any(f.HasField('num_stats') for f in by_series.values()):
    series = {label: cumulative_shares(f) for label, f in by_series.items()}
    series = {label: points for label, points in series.items() if points}
    if not series:
      return ''
    return svg_plots.line_chart(
        series, title=f'{name}: share of rows at or below', x_label=name,
        width=CHART_WIDTH)
  shares = {label: value_shares(f) for label, f in by_series.items()}
  top = sorted({v for s in shares.values() for v in s},
               key=lambda v: -max(s.get(v, 0.0) for s in shares.values()))
  top = top[:TOP_VALUES_SHOWN]
  if not top:
    return ''
  return svg_plots.grouped_bars(
      top, {label: [s.get(v, 0.0) for v in top] for label, s in shares.items()},
      title=f'{name}: share of the most frequent values', width=CHART_WIDTH)


def _verdict(item: Optional[drift_comparison.Comparison]) -> Sequence[str]:
  """The distance with its verdict, and the threshold, as two cells."""
  if item is None:
    return ('', '')
  verdict = ('<span class="fail">OVER</span>' if item.over else
             '<span class="pass">ok</span>')
  return (f'{item.distance:.4f} {verdict}', f'{item.threshold:g}')


def _outcome(window: MonitoredWindow) -> str:
  parts = [f'<p>{window.rows} rows from <code>{_e(window.source)}</code>, '
           f'served by <code>{_e(window.served_model)}</code>; training '
           f'statistics <code>{_e(window.training_statistics)}</code>; '
           + (f'previous window <code>{_e(window.previous_window)}</code>.'
              if window.previous_window else
              'no previous window, so no drift measured (this is the first).')
           + '</p>']
  if window.over:
    parts.append(f'<p class="fail">{len(window.over)} feature(s) over a '
                 'threshold:</p><ul>' + ''.join(f'<li>{_e(line)}</li>'
                                                for line in window.over)
                 + '</ul>')
  else:
    parts.append('<p class="pass">Every feature is within its skew and drift '
                 'thresholds.</p>')
  return ''.join(parts)


def _feature_rows(window: MonitoredWindow) -> str:
  by_kind = drift_comparison.by_feature(window.comparisons)
  features = {label: _features(stats)
              for label, stats in window.statistics.items()}
  rows = []
  for name in sorted(by_kind, key=lambda n: (
      not any(c.over for c in by_kind[n].values()), n)):
    common = _common(features[SERVED][name])
    missing = (common.num_missing / max(common.num_missing +
                                        common.num_non_missing, 1)
               if common else 0.0)
    kinds = by_kind[name]
    measure = next(iter(kinds.values())).measure
    chart = distribution_chart(name, {label: found[name] for label, found in
                                      features.items() if name in found})
    rows.append([f'<b>{_e(name)}</b>', _e(measure), f'{missing:.1%}',
                 *_verdict(kinds.get(drift_comparison.SKEW)),
                 *_verdict(kinds.get(drift_comparison.DRIFT)), chart])
  return html_page.table(
      ('feature', 'measure', 'missing (served)', 'skew', 'threshold',
       'drift', 'threshold', 'distributions'), rows,
      numeric=(2, 3, 4, 5, 6))


def render(window: MonitoredWindow) -> str:
  """The window's report as one HTML page."""
  title = (f'Monitoring window {window.window_id} of pipeline '
           f'{window.pipeline_name}')
  generated = datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%d %H:%M UTC')
  parts = [html_page.head(title), f'<p>Report generated {_e(generated)}.</p>']
  for key, name, builder in (('outcome', 'Outcome', _outcome),
                             ('features', 'Per feature', _feature_rows)):
    try:
      body = builder(window)
    except Exception as error:  # pylint: disable=broad-except
      body = html_page.unavailable(f'Could not build this section: '
                                   f'{type(error).__name__}: {error}')
    parts.append(f'<section id="{key}"><h2>{_e(name)}</h2>{body}</section>')
  parts.append('</body></html>')
  return ''.join(parts)
