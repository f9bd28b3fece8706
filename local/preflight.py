"""Cheap checks of the CSV input before any Beam job starts.

local_runner.py calls `check_csv_folder` first: it reads the header and the
first `sample_rows` rows of every *.csv file under the data folder, so a
broken file costs milliseconds instead of a failure deep inside Beam. Each
problem is a `DataError` whose message is one line naming the file (and the
line, for a bad row).

What the sample cannot see (bad values further down a big file, a shifted
distribution) is caught later by ExampleValidator against the reviewed schema
and the anomaly gate (pipeline/components/anomaly_gate.py), which read all rows.

Cloud paths (gs://) are not read here: the pipeline's own gate checks them.
"""
import csv
import dataclasses
import glob
import os
from typing import List, Optional, Sequence

from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.errors import DataError


@dataclasses.dataclass
class CheckReport:
  """What the checks looked at."""
  files: List[str]
  rows_checked: int
  skipped: Optional[str] = None  # why nothing was checked, if so


@dataclasses.dataclass
class _FileSample:
  path: str
  header: List[str]
  rows: List[List[str]]  # data rows, as parsed
  lines: List[int]  # the line number each row starts on


def _names(columns: Sequence[str]) -> str:
  return ', '.join(sorted(columns))


def _parse_line(path: str, number: int, line: str) -> List[str]:
  """One CSV line as fields. The pipeline's CSV reader splits the file into
  lines first, so a quoted field may not span lines."""
  try:
    return next(csv.reader([line.rstrip('\r\n')], strict=True))
  except csv.Error as error:
    if line.count('"') % 2:
      raise DataError(f'{path}:{number}: malformed row: unbalanced quote (a '
                      'quoted field is not closed on its line)') from None
    raise DataError(f'{path}:{number}: malformed row: {error}') from None


def _read_sample(path: str, sample_rows: int) -> _FileSample:
  """Header and the first `sample_rows` data rows of one CSV file."""
  header, rows, lines = None, [], []
  with open(path, encoding='utf-8', errors='replace') as f:
    for number, line in enumerate(f, start=1):
      if not line.strip():
        continue  # blank line
      fields = _parse_line(path, number, line)
      if header is None:
        header = [name.strip() for name in fields]
        if any(not name for name in header):
          raise DataError(f'{path}:{number}: the header has an empty column '
                          'name')
        duplicates = {n for n in header if header.count(n) > 1}
        if duplicates:
          raise DataError(f'{path}:{number}: the header repeats column(s) '
                          f'{_names(duplicates)}')
        continue
      if len(fields) != len(header):
        raise DataError(
            f'{path}:{number}: malformed row: {len(fields)} fields where the '
            f'header has {len(header)}')
      rows.append(fields)
      lines.append(number)
      if len(rows) >= sample_rows:
        break
  if header is None:
    raise DataError(f'{path} is empty: expected a header row and data rows')
  if not rows:
    raise DataError(f'{path} has a header but no data rows')
  return _FileSample(path, header, rows, lines)


def _check_same_header(samples: List[_FileSample]) -> None:
  first = samples[0]
  for other in samples[1:]:
    if other.header == first.header:
      continue
    missing = set(first.header) - set(other.header)
    extra = set(other.header) - set(first.header)
    details = []
    if missing:
      details.append(f'lacks {_names(missing)}')
    if extra:
      details.append(f'has extra {_names(extra)}')
    if not details:
      details.append('has the same columns in another order')
    raise DataError(f'{other.path} and {first.path} have different headers: '
                    f'{other.path} ' + ' and '.join(details))


_NUMERIC = {schema_pb2.INT: 'an integer', schema_pb2.FLOAT: 'a number'}


def _parses(value: str, kind: int) -> bool:
  try:
    if kind == schema_pb2.INT:
      int(value)
    else:
      float(value)
    return True
  except ValueError:
    return False


def _check_against_schema(sample: _FileSample, schema: schema_pb2.Schema,
                          schema_path: str) -> None:
  expected = [f.name for f in schema.feature]
  missing = set(expected) - set(sample.header)
  extra = set(sample.header) - set(expected)
  if missing or extra:
    details = []
    if missing:
      details.append(f'missing column(s) {_names(missing)}')
    if extra:
      details.append(f'extra column(s) {_names(extra)}')
    raise DataError(
        f'{sample.path} does not match the reviewed schema {schema_path}: '
        + '; '.join(details) + ' (fix the data, or review and approve a new '
        'schema: see docs/data_quality.md)')
  index = {name: i for i, name in enumerate(sample.header)}
  for feature in schema.feature:
    if feature.type not in _NUMERIC:
      continue
    column = index[feature.name]
    for row, line in zip(sample.rows, sample.lines):
      value = row[column].strip()
      if value and not _parses(value, feature.type):
        raise DataError(
            f'{sample.path}:{line}: column {feature.name} holds {value!r}, '
            f'not {_NUMERIC[feature.type]} as the reviewed schema '
            f'{schema_path} requires')


def check_csv_folder(data_path: str,
                     schema: Optional[schema_pb2.Schema] = None,
                     schema_path: str = '',
                     sample_rows: int = 1000) -> CheckReport:
  """Checks the *.csv files under `data_path` before the pipeline reads them.

  Args:
    data_path: the pipeline's data folder (local; gs:// is skipped).
    schema: the reviewed schema the data must match, if there is one.
    schema_path: where `schema` came from, for messages.
    sample_rows: how many data rows of each file to check.

  Returns:
    What was checked.

  Raises:
    DataError: the first problem found, in one line.
  """
  if data_path.startswith('gs://'):
    return CheckReport([], 0, skipped=f'{data_path} is in Cloud Storage')
  if not os.path.isdir(data_path):
    raise DataError(f'the data folder {data_path} does not exist')
  paths = sorted(glob.glob(os.path.join(data_path, '*.csv')))
  if not paths:
    raise DataError(f'no *.csv files in the data folder {data_path}')
  for path in paths:
    if os.path.getsize(path) == 0:
      raise DataError(f'{path} is empty: expected a header row and data rows')
  samples = [_read_sample(path, sample_rows) for path in paths]
  _check_same_header(samples)
  if schema is not None:
    for sample in samples:
      _check_against_schema(sample, schema, schema_path)
  return CheckReport(paths, sum(len(s.rows) for s in samples))
