"""Checks the rows a served model receives for skew and drift.

    python -m local.monitor --input rows.csv
    python -m local.monitor --input bq://project.dataset.table [--since TIME]
    make monitor INPUT=rows.csv

Computes TFDV statistics of the rows (a CSV file, compressed or not, or a
Vertex AI endpoint's request-response log table in BigQuery; the label may
be absent) and
compares them with the served model's training statistics (skew) and with
the previous monitoring window's rows (drift), feature by feature, with the
thresholds of the reviewed schema's comparators (local/monitor/drift_comparison.py).
Prints one line per feature over its threshold and the path of an HTML
report, and keeps the window's statistics for the next run.

The served model is the newest under <output dir>/serving_model/<pipeline>/
(or --model-dir); its training statistics are found through the local
metadata store (or --training-stats, e.g. a StatisticsGen output on gs://).
The window's statistics and report go to
<output dir>/monitoring/<pipeline>/<window id>/.

Exit status: 0 when every feature is within its thresholds, 1 when any is
over (so a scheduler can alert on it), 2 when the rows could not be checked
(a bad setting, bad input, no served model): one line says why.
"""
import argparse
import datetime
import os
import sys
from typing import List, Optional

from local.monitor import drift_comparison
from local.monitor import monitor_report
from local import output_layout
from local import run_artifacts
from local.monitor import served_rows
from local.monitor import served_statistics
from local.monitor import training_statistics
from pipeline import configs
from pipeline.data_files import csv_format
from pipeline import problem_spec
from pipeline.data_files import schema_file
from pipeline.errors import ConfigError

OK, OVER_THRESHOLD, CANNOT_MONITOR = 0, 1, 2


class MonitorError(Exception):
  """The rows cannot be checked: the message is the whole story."""


_ERRORS = (MonitorError, served_rows.ServedRowsError,
           served_statistics.ServedStatisticsError, schema_file.SchemaFileError,
           training_statistics.LineageError)


def _schema(path: Optional[str], output_dir: str, pipeline_name: str):
  """The reviewed schema, else the newest run's inferred one."""
  if path and os.path.isfile(path):
    return schema_file.load(path)
  try:
    inferred = run_artifacts.load_run(output_dir, pipeline_name).schema_file
  except (FileNotFoundError, ValueError) as error:
    raise MonitorError(f'no schema: {error}') from None
  if not inferred or not os.path.isfile(inferred):
    raise MonitorError(f'no reviewed schema at {path} and no inferred one in '
                       f'the newest run of {pipeline_name!r}: run make schema')
  return schema_file.load(inferred)


def _served_model(args) -> str:
  if args.model_dir:
    return args.model_dir
  serving = output_layout.serving_model_dir(args.output_dir,
                                            args.pipeline_name)
  model_dir = run_artifacts.newest_pushed_model(serving)
  if model_dir is None:
    raise MonitorError(f'no served model under {serving}: run the pipeline '
                       'until a model is pushed (make run), or pass '
                       '--model-dir and --training-stats')
  return model_dir


def _training_statistics(args, model_dir: str) -> str:
  if args.training_stats:
    return args.training_stats
  try:
    connection = run_artifacts.connection_config(args.output_dir,
                                                 args.pipeline_name)
  except FileNotFoundError as error:
    raise MonitorError(f'{error}, or pass --training-stats') from None
  folder = training_statistics.statistics_uri(connection, model_dir)
  return training_statistics.train_split_file(folder)


def _load(path: str, what: str):
  try:
    return served_statistics.load(path)
  except Exception as error:  # pylint: disable=broad-except
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    raise MonitorError(f'cannot read the {what} {path}: {first_line}'
                      ) from None


def monitor(args, unused_columns: List[str],
            fmt: csv_format.CsvFormat = csv_format.CsvFormat()
           ) -> monitor_report.MonitoredWindow:
  """Reads, measures and keeps one window; returns what it found. A CSV
  input is read in `fmt` (CSV_DELIMITER, CSV_DECIMAL, CSV_ENCODING)."""
  rows = served_rows.read(args.input, args.since, args.limit, fmt)
  schema = _schema(args.schema, args.output_dir, args.pipeline_name)
  served_statistics.check_columns(rows, schema, args.input, unused_columns)
  served = served_statistics.statistics(rows, schema, fmt)
  model_dir = _served_model(args)
  training_path = _training_statistics(args, model_dir)
  stats = {monitor_report.TRAINING: _load(training_path,
                                          'training statistics'),
           monitor_report.SERVED: served}
  comparisons = drift_comparison.compare(
      served, stats[monitor_report.TRAINING], schema, drift_comparison.SKEW)
  folder = _windows_dir(args)
  window_id = served_statistics.new_window_id()
  previous = served_statistics.previous_window(folder, window_id)
  if previous:
    stats[monitor_report.PREVIOUS] = _load(
        os.path.join(previous, training_statistics.STATISTICS_FILE),
        'previous window')
    comparisons += drift_comparison.compare(
        served, stats[monitor_report.PREVIOUS], schema, drift_comparison.DRIFT)
  served_statistics.save_window(os.path.join(folder, window_id), served)
  return monitor_report.MonitoredWindow(
      args.pipeline_name, window_id, args.input, len(rows), model_dir,
      training_path, previous,
      sorted(comparisons, key=lambda c: (not c.over, c.feature, c.kind)),
      stats)


def _windows_dir(args) -> str:
  return args.windows_dir or output_layout.monitoring_dir(
      args.output_dir, args.pipeline_name)


def _write_report(window: monitor_report.MonitoredWindow, path: str) -> None:
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
      f.write(monitor_report.render(window))
  except OSError as error:
    raise MonitorError(f'cannot write the report {path}: {error}') from None


def _time(text: str) -> datetime.datetime:
  try:
    moment = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
  except ValueError:
    raise argparse.ArgumentTypeError(
        f'{text!r} is not a time: write e.g. 2026-12-01T00:00:00Z') from None
  return moment if moment.tzinfo else moment.replace(
      tzinfo=datetime.timezone.utc)


def parser(settings: configs.Settings) -> argparse.ArgumentParser:
  found = run_artifacts.run_argument_parser(
      'python -m local.monitor',
      'Check the rows a served model receives for skew and drift.', settings)
  found.add_argument('--input', required=True, help='a CSV file with a header '
                     'row, or bq://PROJECT.DATASET.TABLE (a request-response '
                     'log)')
  found.add_argument('--since', type=_time, help='bq:// only: the requests '
                     'logged at or after this time (ISO 8601)')
  found.add_argument('--limit', type=int,
                     default=served_rows.DEFAULT_BIGQUERY_LIMIT,
                     help='bq:// only: at most this many requests, newest '
                     'first (default %(default)s)')
  found.add_argument('--schema', default=settings.SCHEMA_PATH,
                     help='the schema typing the columns and holding the '
                     'comparators (default: SCHEMA_PATH, %(default)s)')
  found.add_argument('--model-dir', help='the served model (default: the '
                     'newest pushed one)')
  found.add_argument('--training-stats', help="the model's training "
                     'FeatureStats.pb (default: found in the metadata store)')
  found.add_argument('--windows-dir', help='where each window keeps its '
                     'statistics and report, and where the previous one is '
                     'found (default: <output dir>/monitoring/<pipeline>/)')
  found.add_argument('--report', help='the HTML file to write (default: '
                     '<window folder>/report.html)')
  return found


def main(argv: Optional[List[str]] = None) -> int:
  settings = configs.load_or_exit(os.environ)
  args = parser(settings).parse_args(argv)
  try:
    unused = problem_spec.unread_columns(settings)
  except ConfigError as error:
    return configs.config_error_status(error)
  try:
    window = monitor(args, unused,
                     csv_format.CsvFormat.from_settings(settings))
    report = args.report or os.path.join(
        _windows_dir(args), window.window_id, served_statistics.REPORT_FILE)
    _write_report(window, report)
  except _ERRORS as error:
    print(f'monitor: {error}', file=sys.stderr)
    return CANNOT_MONITOR
  for line in window.over:
    print(line)
  if not window.over:
    print(f'No feature over its threshold: {window.rows} rows, '
          f'{len(drift_comparison.by_feature(window.comparisons))} features.')
  print(f'Report: {report}')
  return OVER_THRESHOLD if window.over else OK
