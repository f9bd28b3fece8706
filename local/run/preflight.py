"""Cheap checks of the CSV input before any Beam job starts.

local_runner.py calls `check_csv_folder` first: it reads the header and the
first `sample_rows` rows of every data file under the data folder (`*.csv`,
or compressed: `*.csv.gz`, `*.csv.bz2`, `*.csv.xz`), so a broken file costs
milliseconds instead of a failure deep inside Beam. Each problem is a
`DataError` whose message is one line naming the file (and the line, for a
bad row). Rows with an empty label are counted: ExampleGen leaves them out,
and a sample with more of them than MAX_MISSING_LABEL_FRACTION allows is
refused here.

What the sample cannot see (bad values further down a big file, a shifted
distribution) is caught later by ExampleValidator against the reviewed schema
and the anomaly gate (pipeline/components/anomaly_gate.py), which read all rows.

The files are read as ExampleGen reads them (pipeline/data_files/csv_format.py):
CSV_DELIMITER, CSV_DECIMAL and CSV_ENCODING, a byte order mark, CRLF line
ends, quoted fields spanning lines; whole numbers written as floats (`123.0`)
pass in an integer column. A header that splits on another delimiter, text
that is not CSV_ENCODING text, pandas' unnamed index column and two columns that TensorFlow would
name alike ('Vekt (kg)' and 'Vekt _kg_', models/features.py input_name) are
refused with the fix.

Cloud paths (gs://) are not read here: the pipeline's own gate checks them.
"""
import csv
import dataclasses
import os
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import schema_pb2

from models import features
from pipeline.data_files import csv_format
from pipeline.data_files import schema_file
from pipeline.errors import DataError


@dataclasses.dataclass
class CheckReport:
  """What the checks looked at."""
  files: List[str]
  rows_checked: int
  skipped: Optional[str] = None  # why nothing was checked, if so
  missing_labels: int = 0  # sampled rows whose label cell is empty

  def missing_label_note(self) -> str:
    """', N without a label (P %: left out of training and evaluation)',
    or '' when every sampled row has one."""
    if not self.missing_labels:
      return ''
    return (f', {self.missing_labels} without a label '
            f'({self.missing_labels / self.rows_checked:.1%}: left out of '
            'training and evaluation)')


@dataclasses.dataclass
class _FileSample:
  path: str
  header: List[str]
  rows: List[List[str]]  # data rows, as parsed
  lines: List[int]  # the line number each row starts on


def _names(columns: Sequence[str]) -> str:
  return ', '.join(sorted(columns))


def _text_lines(path: str, raw_lines: Iterable[bytes],
                fmt: csv_format.CsvFormat) -> Iterator[str]:
  """The file's lines as text in CSV_ENCODING; a line that is not is a
  DataError naming it and the fix (Excel's plain "CSV" is Windows-1252
  text)."""
  for number, raw in enumerate(raw_lines, start=1):
    try:
      text = raw.decode(fmt.encoding)
    except UnicodeDecodeError as error:
      raise DataError(fmt.decode_error(path, number, raw, error)) from None
    yield text.lstrip(csv_format.BYTE_ORDER_MARK) if number == 1 else text


def _records(path: str, lines: Iterator[str],
             fmt: csv_format.CsvFormat) -> Iterator[Tuple[int, List[str]]]:
  """(first line, fields) of each record, blank lines skipped. A quoted
  field may span lines, as ExampleGen's reader allows."""
  reader = fmt.reader(lines)
  first = 1
  while True:
    try:
      fields = next(reader)
    except StopIteration:
      return
    except csv.Error as error:
      if 'end of data' in str(error) or 'field larger' in str(error):
        raise DataError(f'{path}:{first}: malformed row: unbalanced quote (a '
                        'quoted field opened here is not closed): close or '
                        'remove the quote') from None
      raise DataError(f'{path}:{first}: malformed row: {error}') from None
    if fields:  # not a blank line
      yield first, fields
    first = reader.line_num + 1


def _field_count_advice(too_many: bool, fmt: csv_format.CsvFormat) -> str:
  delimiter = csv_format.delimiter_name(fmt.delimiter)
  if too_many:
    return (f'quote a field that holds {delimiter!r} ("a{delimiter} b"), or '
            'check CSV_DELIMITER')
  return f'an empty field still needs its {delimiter!r}'


def _check_header(path: str, header: List[str],
                  fmt: csv_format.CsvFormat) -> List[str]:
  """The column names, or a DataError for a header that cannot be one."""
  advice = csv_format.delimiter_advice(path, fmt.delimiter.join(header), fmt)
  if advice:
    raise DataError(advice)
  header = [name.strip() for name in header]
  if header[0] == '' and len(header) > 1:
    raise DataError(f'{path}:1: the first column has no name: pandas writes '
                    'its row index so; write the file with '
                    '`to_csv(..., index=False)`, or name the column')
  if any(not name for name in header):
    raise DataError(f'{path}:1: the header has an empty column name: name '
                    'every column')
  duplicates = {n for n in header if header.count(n) > 1}
  if duplicates:
    raise DataError(f'{path}:1: the header repeats column(s) '
                    f'{_names(duplicates)}: give each column its own name')
  try:
    features.input_names(header)
  except ValueError as error:
    raise DataError(f'{path}:1: {error}') from None
  return header


def _read_sample(path: str, sample_rows: int,
                 fmt: csv_format.CsvFormat) -> _FileSample:
  """Header and the first `sample_rows` data rows of one CSV file."""
  header, rows, lines = None, [], []
  try:
    with csv_format.open_bytes(path) as f:
      for number, fields in _records(path, _text_lines(path, f, fmt), fmt):
        if header is None:
          header = _check_header(path, fields, fmt)
          continue
        if len(fields) != len(header):
          raise DataError(
              f'{path}:{number}: malformed row: {len(fields)} fields where '
              f'the header has {len(header)}: '
              + _field_count_advice(len(fields) > len(header), fmt))
        rows.append(fields)
        lines.append(number)
        if len(rows) >= sample_rows:
          break
  except csv_format.DECOMPRESSION_ERRORS as error:
    raise DataError(f'{path} cannot be decompressed ({error}): compress it '
                    'again, or store it as plain CSV') from None
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


def _parses(value: str, kind: int, fmt: csv_format.CsvFormat) -> bool:
  if kind == schema_pb2.INT:
    return fmt.whole_number(value) is not None
  return fmt.is_number(value)


def _cell_advice(value: str, kind: int, fmt: csv_format.CsvFormat) -> str:
  """What to do about a cell that is not its column's type."""
  if (fmt.decimal == '.' and ',' in value and
      csv_format.CsvFormat(';', ',').is_number(value)):
    return ": it reads as a number with decimal comma, CSV_DECIMAL=','"
  if kind == schema_pb2.INT and fmt.is_number(value):
    return (': correct the cell, or approve a schema that types the column as '
            'FLOAT (docs/data_quality.md)')
  return ''


@dataclasses.dataclass(frozen=True)
class ReviewedSchema:
  """The reviewed schema the data must match, and whose it is."""
  schema: schema_pb2.Schema
  path: str
  pipeline_name: str = ''

  def mismatch_advice(self) -> str:
    """How to move on when the data's columns no longer fit the schema."""
    owner = (f" of pipeline '{self.pipeline_name}'"
             if self.pipeline_name else '')
    return (f' (fix the data; if it is another data set, give it its own '
            f'PIPELINE_NAME; if the data{owner} changed on purpose, review '
            'and approve a new schema: `SCHEMA_PATH= make run`, then '
            '`make schema`; see docs/data_quality.md)')


def _check_against_schema(sample: _FileSample, reviewed: ReviewedSchema,
                          fmt: csv_format.CsvFormat) -> None:
  schema, schema_path = reviewed.schema, reviewed.path
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
        + '; '.join(details) + reviewed.mismatch_advice())
  index = {name: i for i, name in enumerate(sample.header)}
  for feature in schema.feature:
    if feature.type not in _NUMERIC:
      continue
    column = index[feature.name]
    for row, line in zip(sample.rows, sample.lines):
      value = row[column].strip()
      if value and not _parses(value, feature.type, fmt):
        raise DataError(
            f'{sample.path}:{line}: column {feature.name} holds {value!r}, '
            f'not {_NUMERIC[feature.type]} as the reviewed schema '
            f'{schema_path} requires' + _cell_advice(value, feature.type, fmt))


def _missing_labels(samples: List[_FileSample], label_key: str
                    ) -> List[Tuple[str, int]]:
  """(file, line) of each sampled row whose label cell is empty."""
  found = []
  for sample in samples:
    if label_key not in sample.header:
      continue  # the problem's checks name a label that is not a column
    column = sample.header.index(label_key)
    found.extend((sample.path, line)
                 for row, line in zip(sample.rows, sample.lines)
                 if not row[column].strip())
  return found


def _check_missing_labels(missing: List[Tuple[str, int]], rows: int,
                          label_key: str, max_fraction: float) -> None:
  """Refuses a sample with more empty labels than MAX_MISSING_LABEL_FRACTION
  allows, naming the first such row."""
  if not missing or len(missing) <= max_fraction * rows:
    return
  path, line = missing[0]
  raise DataError(
      f'{path}:{line}: the label {label_key!r} is empty in {len(missing)} of '
      f'{rows} sampled rows ({len(missing) / rows:.1%}), above '
      f'MAX_MISSING_LABEL_FRACTION={max_fraction:g}: fill in the labels or '
      'remove those rows (rows without a label are left out of training and '
      'evaluation), or raise MAX_MISSING_LABEL_FRACTION')


def _check_label(label_key: str, reviewed: ReviewedSchema) -> None:
  """LABEL_KEY must be the label the reviewed schema was approved for."""
  labels = schema_file.approved_labels(reviewed.schema)
  if label_key and labels and label_key not in labels:
    raise DataError(
        f'LABEL_KEY={label_key!r}, but the reviewed schema {reviewed.path} '
        f'was approved for the label {", ".join(map(repr, labels))}: the '
        'schema no longer fits' + reviewed.mismatch_advice())


def check_csv_folder(data_path: str,
                     schema: Optional[schema_pb2.Schema] = None,
                     schema_path: str = '',
                     sample_rows: int = 1000,
                     fmt: csv_format.CsvFormat = csv_format.CsvFormat(),
                     pipeline_name: str = '',
                     label_key: str = '',
                     max_missing_label_fraction: float = 1.0) -> CheckReport:
  """Checks the data files under `data_path` before the pipeline reads them.

  Args:
    data_path: the pipeline's data folder (local; gs:// is skipped).
    schema: the reviewed schema the data must match, if there is one.
    schema_path: where `schema` came from, for messages.
    sample_rows: how many data rows of each file to check.
    fmt: CSV_DELIMITER, CSV_DECIMAL and CSV_ENCODING.
    pipeline_name: the pipeline the schema belongs to, for messages.
    label_key: LABEL_KEY, which must be the label the schema was approved
      for, if it names one; its empty cells are counted.
    max_missing_label_fraction: MAX_MISSING_LABEL_FRACTION: the largest
      share of sampled rows with an empty label that passes.

  Returns:
    What was checked.

  Raises:
    DataError: the first problem found, in one line.
  """
  if data_path.startswith('gs://'):
    return CheckReport([], 0, skipped=f'{data_path} is in Cloud Storage')
  if not os.path.isdir(data_path):
    raise DataError(f'the data folder {data_path} does not exist')
  paths = csv_format.csv_files(data_path)
  if not paths:
    raise DataError(f'no CSV files ({", ".join(csv_format.CSV_FILE_SUFFIXES)})'
                    f' in the data folder {data_path}')
  _check_one_copy_each(paths)
  for path in paths:
    if os.path.getsize(path) == 0:
      raise DataError(f'{path} is empty: expected a header row and data rows')
  samples = [_read_sample(path, sample_rows, fmt) for path in paths]
  _check_same_header(samples)
  reviewed = (None if schema is None else
              ReviewedSchema(schema, schema_path, pipeline_name))
  if reviewed is not None:
    _check_label(label_key, reviewed)
    for sample in samples:
      _check_against_schema(sample, reviewed, fmt)
  rows = sum(len(s.rows) for s in samples)
  missing = _missing_labels(samples, label_key) if label_key else []
  _check_missing_labels(missing, rows, label_key, max_missing_label_fraction)
  return CheckReport(paths, rows, missing_labels=len(missing))


def _check_one_copy_each(paths: List[str]) -> None:
  """Refuses a file next to its compressed copy (`data.csv` and
  `data.csv.gz`): every row would be read twice."""
  seen = {}
  for path in paths:
    plain = csv_format.uncompressed_name(path)
    if plain in seen:
      raise DataError(
          f'{seen[plain]} and {path} hold the same file, compressed and not: '
          'every row would be read twice; keep one of them')
    seen[plain] = path
