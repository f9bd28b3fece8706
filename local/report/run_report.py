"""One self-contained HTML report per pipeline run: data, training, evaluation.

    python -m local.report                  # the newest run
    python -m local.report --run-id 2026-11-28T15:00:12.345678
    make report

Reads the run's ML Metadata store and artifacts under a local output folder
(default LOCAL_OUTPUT_DIR) and writes reports/<pipeline>/<run id>.html there:
the blessing decision, the pushed model and its serving signature, evaluation
metrics overall and per slice against the thresholds and the baseline model,
training curves from the Trainer's TensorBoard logs, per-feature statistics
with plots, the schema and the anomalies. The page needs no network, script
or plotting library: the plots are inline SVG. local_runner.py builds it at
the end of every run.
"""
import datetime
import math
import os
import sys
from typing import Callable, Dict, Iterable, List, Optional

from local import artifact_readers as readers
from pipeline import component_ids
from pipeline import configs
from pipeline import eval_config
from pipeline.components import quality_gates
from local.html import html_page
from local import output_layout
from local import run_artifacts
from local.html import svg_plots

# The metric shown in the per-slice charts: the run's gate metric when it has
# one; any other metric works (the first with a threshold, else the first
# stored).
PRIMARY_METRICS = eval_config.GATE_KEYS
# Metrics that count rather than measure: shown, but never charted.
COUNT_METRICS = (eval_config.EXAMPLE_COUNT.key, 'weighted_example_count')
# The distribution plots list at most this many string values.
TOP_VALUES_SHOWN = 10

SECTIONS = (
    ('outcome', 'Outcome'),
    ('evaluation', 'Evaluation'),
    ('training', 'Training curves'),
    ('statistics', 'Data statistics'),
    ('schema', 'Schema'),
    ('anomalies', 'Anomalies'),
    ('components', 'Components'),
)

# A section that could not be read shows this class (local/html/html_page.py).
UNAVAILABLE_CLASS = html_page.UNAVAILABLE_CLASS
_STYLE = html_page.STYLE
_e = html_page.escape
_table = html_page.table
_unavailable = html_page.unavailable


def _num(value: Optional[float]) -> str:
  """A metric value; empty when absent, n/a when undefined (e.g. the
  precision of a slice without positive predictions)."""
  if value is None:
    return ''
  return 'n/a' if math.isnan(value) else f'{value:.4g}'


# --- Sections -------------------------------------------------------------------


def _outcome(run: run_artifacts.RunArtifacts) -> str:
  summary = run.summary
  if summary.blessed:
    verdict = ('<p class="blessed">Blessed: the model passed every threshold'
               + (' and was pushed.' if summary.pushed_to else '.') + '</p>')
  elif summary.blessed is False:
    verdict = ('<p class="not-blessed">Not blessed, so not pushed: '
               + _e('; '.join(summary.blessing_failures) or
                    'see the Evaluator output') + '.</p>')
  else:
    verdict = ('<p class="not-blessed">No blessing decision: the Evaluator '
               'did not complete in this run.</p>')
  parts = [verdict]
  serving_dir = output_layout.serving_model_dir(run.output_dir,
                                                run.pipeline_name)
  if summary.pushed_to:
    parts.append(f'<p>Pushed model: <code>{_e(summary.pushed_to)}</code></p>')
    model_dir, label = summary.pushed_to, 'the pushed model'
  else:
    current = run_artifacts.newest_pushed_model(serving_dir)
    parts.append('<p>No model pushed by this run; the served model is '
                 + (f'still <code>{_e(current)}</code>' if current else
                    'unchanged (none has been pushed yet)') + '.</p>')
    trainer_model = run.output_uri(component_ids.TRAINER, 'model')
    model_dir = (os.path.join(trainer_model, 'Format-Serving')
                 if trainer_model else None)
    label = "this run's trained (unpushed) model"
  if model_dir and os.path.isfile(os.path.join(model_dir, 'saved_model.pb')):
    parts.append(f'<h3>Serving signature of {_e(label)}</h3>')
    for signature in readers.signatures(model_dir):
      parts.append(f'<p><code>{_e(signature.name)}</code></p>')
      rows = [(f'<code>{_e(t.name)}</code>', _e(direction), _e(t.dtype),
               _e(t.shape))
              for direction, tensors in (('input', signature.inputs),
                                         ('output', signature.outputs))
              for t in tensors]
      parts.append(_table(('tensor', 'direction', 'type', 'shape'), rows))
  return ''.join(parts)


def _primary_metric(names: Iterable[str],
                    thresholds: Dict[str, readers.Threshold]) -> Optional[str]:
  names = [n for n in names if n not in COUNT_METRICS]
  primary = [n for n in names if n in PRIMARY_METRICS]
  gated = [n for n in names if n in thresholds]
  return (primary or gated or names or [None])[0]


def _evaluation(run: run_artifacts.RunArtifacts) -> str:
  """The Evaluator's section: the overall metrics, then each slice column."""
  uri = run.evaluation
  if not uri:
    return _unavailable('The Evaluator did not complete in this run.')
  slices = readers.slice_metrics(uri)
  thresholds = readers.thresholds(uri)
  overall = next((s for s in slices if not s.column), None)
  if overall is None:
    return _unavailable(f'No overall metrics in {uri}.')
  parts = [_overall_metrics(overall, thresholds), _gates(uri)]
  primary = _primary_metric(overall.by_model.get('candidate', {}), thresholds)
  by_column: Dict[str, List[readers.SliceMetrics]] = {}
  for metrics in slices:
    if metrics.column:
      by_column.setdefault(metrics.column, []).append(metrics)
  configured = readers.slicing_columns(uri)
  if not configured:
    parts.append('<p>No slices configured (EVAL_SLICE_COLUMNS is empty).</p>')
  for column in configured:
    parts.append(_slice_column(column, by_column.get(column), primary,
                               thresholds.get(primary) if primary else None))
  return ''.join(parts)


def _overall_metrics(overall: readers.SliceMetrics,
                     thresholds: Dict[str, readers.Threshold]) -> str:
  """The whole eval split: each metric of both models, with its gate."""
  candidate = overall.by_model.get('candidate', {})
  baseline = overall.by_model.get('baseline', {})
  parts = ['<h3>Overall (whole eval split)</h3>']
  if not baseline:
    parts.append('<p>No baseline: no model had been blessed before this '
                 'run.</p>')
  rows = []
  for name in sorted(candidate, key=lambda n: (n not in thresholds, n)):
    threshold = thresholds.get(name)
    verdict = ''
    if threshold and (threshold.lower is not None or
                      threshold.upper is not None):
      ok = ((threshold.lower is None or candidate[name] >= threshold.lower) and
            (threshold.upper is None or candidate[name] <= threshold.upper))
      verdict = ('<span class="pass">pass</span>' if ok else
                 '<span class="fail">FAIL</span>')
    rows.append((_e(name), _num(candidate[name]), _num(baseline.get(name)),
                 _num(overall.diffs.get(name)),
                 _e(threshold.describe() if threshold else ''), verdict))
  parts.append(_table(('metric', 'candidate', 'baseline', 'change',
                       'threshold', 'value gate'), rows, numeric=(1, 2, 3)))
  return ''.join(parts)


def _gates(evaluation_uri: str) -> str:
  """Which gate applied, and the gate metric of the model, the trivial
  model and the last blessed model, overall and per slice
  (pipeline/components/quality_gates.py)."""
  gates = quality_gates.read(evaluation_uri)
  if not gates:
    return ''
  label, trivial = gates['label'], gates['trivial_model']
  relation = '&gt;=' if gates['higher_is_better'] else '&lt;='
  if gates['gate'] == 'trivial model':
    what = (f'beat the trivial model (always '
            f'<code>{_e(repr(trivial["prediction"]))}</code>, learnt from '
            f'{trivial["train_examples"]} train labels) by '
            f'{gates["trivial_margin"]:.0%} of its '
            + ('errors' if gates['higher_is_better'] else 'RMSE'))
  else:
    what = _e(gates['gate'])
  bound = ('' if gates['bound'] is None else
           f': {_e(label)} {relation} {_num(gates["bound"])}')
  parts = ['<h3>Gate: model, trivial model and last blessed model</h3>',
           f'<p>Gate: {what}{bound}.']
  if gates['held_slices']:
    parts.append(f' Held to the last blessed model (slices with at least '
                 f'{gates["slice_min_examples"]} eval examples, tolerance '
                 f'{gates["slice_tolerance"]:g}): '
                 f'{_e(", ".join(gates["held_slices"]))}.')
  parts.append('</p>')
  rows = [(_e(row['slice'] or 'whole eval split'), str(row['examples']),
           _num(row['model']), _num(row['trivial']), _num(row['baseline']))
          for row in gates['rows']]
  parts.append(_table(('slice', 'eval examples', f'{label}: model',
                       'trivial model', 'last blessed model'), rows,
                      numeric=(1, 2, 3, 4)))
  return ''.join(parts)


def _slice_column(column: str,
                  per_value: Optional[List[readers.SliceMetrics]],
                  primary: Optional[str],
                  threshold: Optional[readers.Threshold]) -> str:
  """One slice column: the primary metric per value as bars, then a table."""
  parts = [f'<h3>Per slice: {_e(column)}</h3>']
  if not per_value:
    return parts[0] + _unavailable(
        f'No slices for {column!r}: the eval data has no such column.')
  names = sorted({n for s in per_value
                  for n in s.by_model.get('candidate', {})},
                 key=lambda n: (n not in COUNT_METRICS, n))
  rows = [[_e(s.value)] + [_num(s.by_model.get('candidate', {}).get(n))
                           for n in names] for s in per_value]
  values = [(s.value, s.by_model.get('candidate', {}).get(primary))
            for s in per_value] if primary else []
  values = [(label, value) for label, value in values if value is not None]
  if values:
    parts.append('<div class="charts">' + svg_plots.horizontal_bars(
        [label for label, _ in values],
        [value for _, value in values],
        title=f'{primary} per {column} (candidate model)',
        threshold=threshold.lower if threshold else None,
        value_range=(0.0, 1.0) if all(0 <= v <= 1 for _, v in values)
        else None) + '</div>')
  parts.append(_table([column] + names, rows,
                      numeric=range(1, len(names) + 1)))
  return ''.join(parts)


def _training(run: run_artifacts.RunArtifacts) -> str:
  log_dir = run.model_run
  if not log_dir:
    return _unavailable('The Trainer did not complete in this run.')
  curves = readers.training_scalars(log_dir)
  if not curves:
    return _unavailable(f'No scalar summaries in {log_dir}.')
  charts = [svg_plots.line_chart(series, title=metric, x_label='step')
            for metric, series in sorted(
                curves.items(), key=lambda item: (item[0] != 'loss', item[0]))]
  return ('<p>From the TensorBoard logs in <code>' + _e(log_dir) +
          '</code> (open them with <code>.venv/bin/tensorboard --logdir ' +
          _e(log_dir) + '</code>).</p><div class="charts">' +
          ''.join(charts) + '</div>')


def _distribution(feature: readers.FeatureStats, split: str) -> str:
  if feature.histogram:
    edges = [feature.histogram[0][0]] + [high for _, high, _ in
                                         feature.histogram]
    return svg_plots.histogram(edges, [count for _, _, count in
                                       feature.histogram],
                               title=f'{feature.name} ({split}): histogram')
  if feature.top_values:
    shown = feature.top_values[:TOP_VALUES_SHOWN]
    return svg_plots.horizontal_bars(
        [label for label, _ in shown], [count for _, count in shown],
        title=f'{feature.name} ({split}): top values',
        width=360)
  return ''


def _summary_cell(feature: readers.FeatureStats) -> str:
  if feature.numbers:
    return '<br>'.join(f'{_e(k)} {_e(svg_plots.number(v))}'
                       for k, v in feature.numbers.items())
  if feature.unique is not None:
    return f'{feature.unique} distinct values'
  return ''


def _statistics(run: run_artifacts.RunArtifacts) -> str:
  splits = run.split_files(run.statistics, 'FeatureStats.pb')
  if not splits:
    return _unavailable('StatisticsGen did not complete in this run.')
  by_split = {split: {f.name: f for f in readers.feature_statistics(path)}
              for split, path in splits}
  names = list(dict.fromkeys(n for features in by_split.values()
                             for n in features))
  headers = ('feature', 'type', 'split', 'count', 'missing', 'summary',
             'distribution')
  parts = [f'<p>Splits: {_e(", ".join(by_split))}. Missing: the share of '
           'examples without a value.</p><table><tr>']
  parts += [f'<th>{_e(h)}</th>' for h in headers] + ['</tr>']
  for name in names:
    present = [(split, f[name]) for split, f in by_split.items() if name in f]
    for i, (split, feature) in enumerate(present):
      parts.append('<tr>')
      if i == 0:
        parts.append(f'<td rowspan="{len(present)}"><b>{_e(name)}</b></td>'
                     f'<td rowspan="{len(present)}">{_e(feature.kind)}</td>')
      parts.append(
          f'<td>{_e(split)}</td><td class="num">{feature.count}</td>'
          f'<td class="num">{feature.missing_share:.1%}</td>'
          f'<td>{_summary_cell(feature)}</td>'
          f'<td>{_distribution(feature, split)}</td></tr>')
  parts.append('</table>')
  return ''.join(parts)


def _schema(run: run_artifacts.RunArtifacts) -> str:
  path = run.schema_file
  if not path or not os.path.isfile(path):
    return _unavailable('SchemaGen did not complete in this run.')
  rows = [(f'<b>{_e(f.name)}</b>', _e(f.kind), _e(f.presence),
           _e(f.shape_or_valency), _e(f.domain))
          for f in readers.schema_features(readers.load_schema(path))]
  return (f'<p><code>{_e(path)}</code></p>' +
          _table(('feature', 'type', 'presence', 'shape', 'domain'), rows))


def _anomalies(run: run_artifacts.RunArtifacts) -> str:
  splits = run.split_files(run.anomalies, 'SchemaDiff.pb')
  if not splits:
    return _unavailable('ExampleValidator did not complete in this run.')
  parts = []
  for split, path in splits:
    found = readers.anomalies(path)
    if not found:
      parts.append(f'<p>{_e(split)}: no anomalies.</p>')
      continue
    parts.append(f'<h3>{_e(split)}: {len(found)} anomalies</h3>')
    parts.append(_table(
        ('feature', 'severity', 'anomaly', 'details'),
        [(_e(a.feature or '(data set)'), _e(a.severity), _e(a.short),
          _e(a.description)) for a in found]))
  return ''.join(parts)


def _components(run: run_artifacts.RunArtifacts) -> str:
  order = {cid: i for i, cid in enumerate(component_ids.of_pipeline(True))}
  rows = [(_e(c.component_id), _e(c.state),
           '' if c.seconds is None else f'{c.seconds:.1f}')
          for c in sorted(run.summary.components.values(),
                          key=lambda c: order.get(c.component_id, 99))]
  return _table(('component', 'state', 'seconds'), rows, numeric=(2,))


_BUILDERS: Dict[str, Callable[[run_artifacts.RunArtifacts], str]] = {
    'outcome': _outcome,
    'evaluation': _evaluation,
    'training': _training,
    'statistics': _statistics,
    'schema': _schema,
    'anomalies': _anomalies,
    'components': _components,
}


def render(run: run_artifacts.RunArtifacts) -> str:
  """The report of `run` as one HTML page.

  A section whose artifacts cannot be read says so (class "unavailable")
  instead of failing the whole report, so failed runs get a report too.
  """
  title = f'Run {run.run_id} of pipeline {run.pipeline_name}'
  generated = datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%d %H:%M UTC')
  parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           f'<title>{_e(title)}</title><style>{_STYLE}</style></head><body>',
           f'<h1>{_e(title)}</h1>',
           f'<p>Output folder <code>{_e(run.output_dir)}</code>; report '
           f'generated {_e(generated)}.</p><nav>']
  parts += [f'<a href="#{key}">{_e(name)}</a>' for key, name in SECTIONS]
  parts.append('</nav>')
  for key, name in SECTIONS:
    try:
      body = _BUILDERS[key](run)
    except Exception as error:  # pylint: disable=broad-except
      body = _unavailable(f'Could not read this section: '
                          f'{type(error).__name__}: {error}')
    parts.append(f'<section id="{key}"><h2>{_e(name)}</h2>{body}</section>')
  parts.append('</body></html>')
  return ''.join(parts)


def write_report(output_dir: str, pipeline_name: str,
                 run_id: Optional[str] = None,
                 path: Optional[str] = None) -> str:
  """Writes the report of run `run_id` (default: newest); returns its path."""
  run = run_artifacts.load_run(output_dir, pipeline_name, run_id)
  path = path or output_layout.report_path(output_dir, pipeline_name,
                                           run.run_id)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(render(run))
  return path


def main(argv: Optional[List[str]] = None) -> int:
  parser = run_artifacts.run_argument_parser(
      'python -m local.report',
      'Build the HTML report of one pipeline run.',
      configs.load_or_exit(os.environ))
  parser.add_argument('--run-id', help='default: the newest run')
  parser.add_argument('--output', help='the HTML file to write (default: '
                      '<output dir>/reports/<pipeline>/<run id>.html)')
  args = parser.parse_args(argv)
  try:
    path = write_report(args.output_dir, args.pipeline_name, args.run_id,
                        args.output)
  except (FileNotFoundError, ValueError, OSError) as error:
    print(f'run_report: {error}', file=sys.stderr)
    return 1
  print(path)
  return 0
