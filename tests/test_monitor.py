"""`make monitor` (local/monitor/monitor.py): skew and drift of served rows.

The served model is the suite's small end-to-end run's (`local_runs`); the
rows are bundled-data rows the run never saw (like the training data), and
the same rows with every fare three times higher and without the label
(drifted). The windows go to a temporary folder, so each test starts with no
previous window. The schema is the reviewed one without comparators, so
these tests check the defaults of local/monitor/drift_comparison.py; the schema's
own comparators are checked on their own below.
"""
import datetime
import gzip
import json
import random
import re

from google.api_core import client_options
from google.auth import credentials as auth_credentials
from google.cloud import bigquery
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from local.monitor import drift_comparison
from local.monitor import monitor
from local.monitor import served_rows
from local.monitor import served_statistics
from pipeline.data_files import csv_format
from pipeline.data_files import schema_file
from tests import bigquery_standin
from tests import helpers
from tests import loopback

ROWS = 500
DRIFTED = 'fare'


def _rows(label: bool, fare_factor: float = 1.0):
  """ROWS random bundled-data rows past the slice the model trained on."""
  header, rows = helpers.read_csv(helpers.BUNDLED_CSV)
  unseen = random.Random(3).sample(rows[helpers.SLICE_ROWS:], ROWS)
  fare = header.index(DRIFTED)
  for row in unseen:
    row[fare] = f'{float(row[fare] or 0) * fare_factor:.2f}'
  if not label:
    header, unseen = helpers.drop_columns(header, unseen, ['big_tipper',
                                                           'tips'])
  return header, unseen


@pytest.fixture(scope='module')
def plain_schema(tmp_path_factory) -> str:
  """The reviewed schema without drift or skew comparators."""
  schema = schema_file.load(helpers.REVIEWED_SCHEMA)
  for feature in schema.feature:
    feature.ClearField('drift_comparator')
    feature.ClearField('skew_comparator')
  path = tmp_path_factory.mktemp('schema') / 'schema.pbtxt'
  path.write_text(str(schema))
  return str(path)


def _monitor(run, schema, windows, rows_csv, *extra):
  return monitor.main(['--input', str(rows_csv), '--output-dir',
                       run.output_dir, '--pipeline-name', run.pipeline_name,
                       '--schema', schema, '--windows-dir', str(windows),
                       *extra])


@pytest.mark.slow
def test_rows_like_the_training_data_pass_then_drifted_rows_fail(
    local_runs, plain_schema, tmp_path, capsys):
  _, run = local_runs
  windows = tmp_path / 'windows'
  like = helpers.write_csv(tmp_path / 'like', *_rows(label=True))
  drifted = helpers.write_csv(tmp_path / 'drifted',
                              *_rows(label=False, fare_factor=3.0))

  assert _monitor(run, plain_schema, windows, like) == monitor.OK
  out = capsys.readouterr().out
  assert 'No feature over its threshold' in out, out
  first_report = re.search(r'^Report: (.+)$', out, re.MULTILINE).group(1)
  first = open(first_report, encoding='utf-8').read()
  assert 'no previous window' in first
  assert 'OVER' not in first and first.count('<svg') >= 15

  assert _monitor(run, plain_schema, windows, drifted) == (
      monitor.OVER_THRESHOLD)
  out = capsys.readouterr().out
  over = [line for line in out.splitlines() if 'above the threshold' in line]
  assert len(over) == 1, out  # one line per feature
  assert re.fullmatch(
      rf'{DRIFTED}: skew Jensen-Shannon divergence 0\.\d+ against the '
      r'training data is above the threshold 0\.3; drift Jensen-Shannon '
      r'divergence 0\.\d+ against the previous window is above the '
      r'threshold 0\.3', over[0]), out
  report = open(re.search(r'^Report: (.+)$', out, re.MULTILINE).group(1),
                encoding='utf-8').read()
  fare_row = report[report.index(f'<b>{DRIFTED}</b>'):]
  fare_row = fare_row[:fare_row.index('</tr>')]
  assert fare_row.count('OVER') == 2
  assert 'training' in fare_row and 'previous window' in fare_row
  assert '<b>big_tipper</b>' not in report  # absent from the served rows
  assert len(served_statistics.window_dirs(str(windows))) == 2


@pytest.mark.slow
def test_the_training_statistics_come_from_the_served_models_lineage(
    local_runs):
  from local import run_artifacts  # pylint: disable=g-import-not-at-top
  from local.monitor import training_statistics  # pylint: disable=g-import-not-at-top
  first, second = local_runs
  served = run_artifacts.newest_pushed_model(second.serving_model_dir)
  found = training_statistics.statistics_uri(
      run_artifacts.connection_config(second.output_dir,
                                      second.pipeline_name), served)
  statistics_gen = first.summary().components['StatisticsGen']
  assert found == statistics_gen.outputs['statistics'][0]
  with pytest.raises(training_statistics.LineageError,
                     match='records no push to /no/such/model'):
    training_statistics.statistics_uri(
        run_artifacts.connection_config(second.output_dir,
                                        second.pipeline_name),
        '/no/such/model')


@pytest.mark.slow
def test_a_bad_cell_or_a_missing_column_is_one_line(local_runs, plain_schema,
                                                    tmp_path, capsys):
  _, run = local_runs
  header, rows = _rows(label=False)
  rows[4][header.index('trip_start_hour')] = 'noon'
  bad = helpers.write_csv(tmp_path / 'bad', header, rows)
  assert _monitor(run, plain_schema, tmp_path, bad) == monitor.CANNOT_MONITOR
  err = capsys.readouterr().err.strip()
  assert err == (f"monitor: {bad} line 6: column 'trip_start_hour': 'noon' "
                 'is not INT; fix the value or the reviewed schema')

  lacking = helpers.write_csv(tmp_path / 'lacking',
                              *helpers.drop_columns(header, rows, ['fare']))
  assert _monitor(run, plain_schema, tmp_path, lacking) == (
      monitor.CANNOT_MONITOR)
  assert 'lacks the column(s) the model reads: fare' in (
      capsys.readouterr().err)
  assert not served_statistics.window_dirs(str(tmp_path))


def _feature(schema, name):
  return next(f for f in schema.feature if f.name == name)


def test_the_schemas_comparators_set_the_thresholds():
  schema = schema_file.load(helpers.REVIEWED_SCHEMA)
  fare, company = _feature(schema, 'fare'), _feature(schema, 'company')
  fare.drift_comparator.jensen_shannon_divergence.threshold = 0.05
  company.skew_comparator.infinity_norm.threshold = 0.2
  company.drift_comparator.infinity_norm.threshold = 0.4

  skew = drift_comparison.comparison_schema(schema, drift_comparison.SKEW,
                                            ['fare', 'company', 'tips'])
  # Skew falls back on the reviewed drift threshold, then on the defaults.
  assert (_feature(skew, 'fare').skew_comparator
          .jensen_shannon_divergence.threshold) == 0.05
  assert _feature(skew, 'company').skew_comparator.infinity_norm.threshold == (
      0.2)
  tips = _feature(skew, 'tips').skew_comparator.jensen_shannon_divergence
  assert tips.threshold == drift_comparison.DEFAULT_JS_DIVERGENCE
  assert tips.source.type == schema_pb2.HistogramSelection.QUANTILES
  # Only the features compared carry a comparator, and only of that kind.
  assert not _feature(skew, 'big_tipper').HasField('skew_comparator')
  assert not any(f.HasField('drift_comparator') for f in skew.feature)
  _feature(schema, 'payment_type').ClearField('drift_comparator')
  drift = drift_comparison.comparison_schema(schema, drift_comparison.DRIFT,
                                             ['company', 'payment_type'])
  company = _feature(drift, 'company')
  assert company.drift_comparator.infinity_norm.threshold == 0.4
  assert (_feature(drift, 'payment_type').drift_comparator.infinity_norm
          .threshold) == drift_comparison.DEFAULT_L_INFINITY


# --- The BigQuery request-response log ---------------------------------------


def _bigquery_client(url: str) -> bigquery.Client:
  return bigquery.Client(
      project='road-admin-1',
      credentials=auth_credentials.AnonymousCredentials(),
      client_options=client_options.ClientOptions(api_endpoint=url))


def test_bigquery_log_rows_are_read_as_instances():
  header, rows = _rows(label=False)
  instances = [json.dumps({k: v or None for k, v in zip(header, row)})
               for row in rows[:4]]
  instances.append(json.dumps({'fare': 12.5, 'trip_start_hour': 7,
                               'company': None, 'flag': True}))
  standin = bigquery_standin.BigQueryStandin(
      [instances[:2], instances[2:3], instances[3:]])
  since = datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc)
  with loopback.serve(standin) as url:
    found = served_rows.read_bigquery(
        'bq://road-admin-1.serving_logs.request_response_logging', since,
        limit=1000, client=_bigquery_client(url))

  assert [r.cells for r in found[:4]] == [dict(zip(header, row))
                                         for row in rows[:4]]
  assert found[4].cells == {'fare': '12.5', 'trip_start_hour': '7',
                            'company': '', 'flag': '1'}
  assert found[2].where == ('bq://road-admin-1.serving_logs.'
                            'request_response_logging: request 2, instance 1')
  (query,) = standin.queries
  assert query['query'] == (
      'SELECT request_payload FROM `road-admin-1.serving_logs.'
      'request_response_logging` WHERE logging_time >= @since '
      'ORDER BY logging_time DESC LIMIT @limit')
  parameters = {p['name']: p['parameterValue']['value']
                for p in query['queryParameters']}
  assert parameters['limit'] == '1000'
  assert parameters['since'].startswith('2026-11-30')


def test_bigquery_errors_are_one_line():
  with pytest.raises(served_rows.ServedRowsError,
                     match=r"'bq://just-a-table' is not a BigQuery table"):
    served_rows.read_bigquery('bq://just-a-table')
  standin = bigquery_standin.BigQueryStandin([])
  with loopback.serve(standin) as url:
    with pytest.raises(served_rows.ServedRowsError,
                       match='bq://road-admin-1.logs.t has no logged requests'):
      served_rows.read_bigquery('bq://road-admin-1.logs.t',
                                client=_bigquery_client(url))
  with pytest.raises(served_rows.ServedRowsError, match='is not JSON'):
    list(served_rows._instances(  # pylint: disable=protected-access
        'bq://p', [['{not json']]))


def _decimal_comma(cell: str) -> str:
  """A number as a Norwegian spreadsheet writes it; text unchanged."""
  return cell.replace('.', ',') if re.fullmatch(r'-?\d+\.\d+', cell) else cell


def test_a_spreadsheet_export_gives_the_same_statistics(tmp_path):
  """Rows written with ';' and decimal commas (CSV_DELIMITER=';',
  CSV_DECIMAL=',') measure as the same rows written with ',' and '.'; read
  with the default format, the export is refused naming ';'."""
  header, rows = _rows(label=False)
  rows = rows[:50]
  plain = helpers.write_csv(tmp_path / 'plain', header, rows)
  export = tmp_path / 'export.csv'
  with open(export, 'w', encoding='utf-8') as f:
    for line in [header] + rows:
      f.write(';'.join(_decimal_comma(cell) for cell in line) + '\n')
  schema = schema_file.load(helpers.REVIEWED_SCHEMA)
  spreadsheet = csv_format.CsvFormat(';', ',')

  expected = served_statistics.statistics(served_rows.read_csv(plain), schema)
  measured = served_statistics.statistics(
      served_rows.read_csv(str(export), spreadsheet), schema, spreadsheet)
  assert measured == expected
  assert any(f.HasField('num_stats') and f.num_stats.mean > 0
             for f in measured.datasets[0].features)

  with pytest.raises(served_rows.ServedRowsError, match="';'"):
    served_rows.read_csv(str(export))


def test_a_compressed_windows_1252_file_gives_the_same_statistics(tmp_path):
  header, rows = _rows(label=False)
  rows = [[cell.replace('a', 'å') for cell in row] for row in rows[:50]]
  plain = helpers.write_csv(tmp_path / 'plain', header, rows)
  with open(plain, encoding='utf-8') as f:
    text = f.read()
  export = str(tmp_path / 'rows.csv.gz')
  with gzip.open(export, 'wb') as f:
    f.write(text.encode('cp1252'))
  schema = schema_file.load(helpers.REVIEWED_SCHEMA)
  windows = csv_format.CsvFormat(encoding='cp1252')
  expected = served_statistics.statistics(served_rows.read_csv(plain), schema)
  measured = served_statistics.statistics(
      served_rows.read_csv(export, windows), schema, windows)
  assert measured == expected
  with pytest.raises(served_rows.ServedRowsError,
                     match=r"rows\.csv\.gz: not UTF-8 text \(byte 0xe5\).*"
                     "Set CSV_ENCODING='cp1252'"):
    served_rows.read_csv(export)


def test_rows_logged_with_input_names_measure_as_the_csvs_columns():
  """A Vertex AI caller sends 'Vekt__kg_' for the column 'Vekt (kg)'
  (models/features.py input_name); the log's rows count as that column."""
  schema = schema_pb2.Schema()
  schema.feature.add(name='Vekt (kg)', type=schema_pb2.FLOAT)
  schema.feature.add(name='Antall km', type=schema_pb2.BYTES)
  csv_rows = [served_rows.Row({'Vekt (kg)': '2.5', 'Antall km': 'nord'}, 'a'),
              served_rows.Row({'Vekt (kg)': '', 'Antall km': 'sør'}, 'b')]
  logged = [served_rows.Row({'Vekt__kg_': '2.5', 'Antall_km': 'nord'}, 'a'),
            served_rows.Row({'Vekt__kg_': '', 'Antall_km': 'sør'}, 'b')]
  served_statistics.check_columns(logged, schema, 'bq://p.d.t')
  assert (served_statistics.statistics(logged, schema) ==
          served_statistics.statistics(csv_rows, schema))
