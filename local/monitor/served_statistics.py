"""TFDV statistics of served rows, and the monitoring windows that keep them.

The rows become tf.Examples typed by the schema, exactly as the pipeline's
ExampleGen types the CSV columns (local/csv_examples.py), and TFDV computes
their statistics in memory, with the same generators StatisticsGen runs, so
the two compare like for like.

Each monitoring run is a window: a folder
`<output dir>/monitoring/<pipeline>/<window id>/` (local/output_layout.py)
with the rows' FeatureStats.pb and the report. The window ids are UTC times,
so the newest earlier folder is the previous window the next run compares
with.
"""
import datetime
import os
from typing import Dict, List, Optional, Sequence

import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.coders import example_coder

from local import csv_examples
from local.monitor.served_rows import Row
from local.monitor.training_statistics import STATISTICS_FILE
from models import features
from pipeline.data_files import csv_format

REPORT_FILE = 'report.html'


class ServedStatisticsError(ValueError):
  """A row does not fit the schema: the message names the row and column."""


def _schema_cells(row: Row, schema: schema_pb2.Schema) -> Dict[str, str]:
  """A row's cells keyed by the schema's column names: a Vertex AI caller
  sends a column by its input name ('Vekt__kg_' for 'Vekt (kg)',
  models/features.py input_name)."""
  column_of = {features.input_name(f.name): f.name for f in schema.feature}
  return {column_of.get(features.input_name(name), name): text
          for name, text in row.cells.items()}


def check_columns(rows: Sequence[Row], schema: schema_pb2.Schema,
                  source: str, unused: Sequence[str] = ()) -> None:
  """The rows must carry every column the model reads (all the schema's
  columns but `unused`: the label, dropped columns)."""
  present = set()
  for row in rows:
    present.update(name for name, text in _schema_cells(row, schema).items()
                   if text != '')
  missing = [f.name for f in schema.feature
             if f.name not in set(unused) and f.name not in present]
  if missing:
    raise ServedStatisticsError(
        f'{source} lacks the column(s) the model reads: {", ".join(missing)}'
        ' (send every input column the schema lists)')


def statistics(rows: Sequence[Row], schema: schema_pb2.Schema,
               fmt: csv_format.CsvFormat = csv_format.CsvFormat()
              ) -> statistics_pb2.DatasetFeatureStatisticsList:
  """TFDV statistics of `rows`, each column typed as the schema says and
  numbers read as ExampleGen reads them (`fmt`: CSV_DECIMAL)."""
  examples = []
  for row in rows:
    try:
      examples.append(csv_examples.row_to_example(
          _schema_cells(row, schema), schema, fmt).SerializeToString())
    except ValueError as error:
      raise ServedStatisticsError(
          f'{row.where}: {error}; fix the value or the reviewed schema'
      ) from None
  batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(examples)
  return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())


def new_window_id(now: Optional[datetime.datetime] = None) -> str:
  """A window id that sorts by time: '20261201T114500.123456Z'."""
  now = now or datetime.datetime.now(datetime.timezone.utc)
  return now.strftime('%Y%m%dT%H%M%S.%fZ')


def window_dirs(monitoring_dir: str) -> List[str]:
  """The windows with statistics under `monitoring_dir`, oldest first."""
  if not os.path.isdir(monitoring_dir):
    return []
  return [os.path.join(monitoring_dir, name)
          for name in sorted(os.listdir(monitoring_dir))
          if os.path.isfile(os.path.join(monitoring_dir, name,
                                         STATISTICS_FILE))]


def previous_window(monitoring_dir: str, window_id: str) -> Optional[str]:
  """The newest window before `window_id`, or None for the first one."""
  earlier = [d for d in window_dirs(monitoring_dir)
             if os.path.basename(d) < window_id]
  return earlier[-1] if earlier else None


def save_window(window_dir: str,
                stats: statistics_pb2.DatasetFeatureStatisticsList) -> str:
  """Writes the window's statistics; returns the file's path."""
  os.makedirs(window_dir, exist_ok=True)
  path = os.path.join(window_dir, STATISTICS_FILE)
  with open(path + '.tmp', 'wb') as f:
    f.write(stats.SerializeToString())
  os.replace(path + '.tmp', path)  # a window has statistics whole or not
  return path


def load(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
  """A FeatureStats.pb (local or gs://), as StatisticsGen writes them."""
  return tfdv.load_stats_binary(path)
