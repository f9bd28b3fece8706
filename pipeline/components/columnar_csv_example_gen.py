"""CsvExampleGen with a columnar CSV reader: the same examples, many times faster.

TFX's CsvExampleGen parses every CSV line in Python and builds each
tf.train.Example field by field (about 2,300 rows a second on a 2-core
machine); it also keeps every parsed line in memory while a side pass infers
the column types. This executor reads the files in blocks with Apache Arrow's
CSV reader and encodes whole blocks to serialized tf.Examples in C++
(tfx_bsl's RecordBatchToExamplesEncoder), streaming: memory does not grow
with the data.

The contract is CsvExampleGen's: the same column types (INT if every cell
parses as an int64, else FLOAT if every cell parses as a float, else STRING;
inferred over all files of a split), an empty list of the column's type for
an empty cell, an untyped feature for a column that is empty in every row, the
same examples, the same output splits with the same hash-bucket ratios, and
the same artifacts and properties (the base executor writes them). One
difference: rows are assigned to splits by a hash of the row's values (pandas'
row hash) instead of a hash of the serialized example, whose feature order the
C++ encoder does not keep stable; so the split is as stable from run to run
as CsvExampleGen's, but not row-for-row the same as CsvExampleGen's.

Beyond CsvExampleGen, the component's custom_config (`custom_config()`) says
how the files are written (pipeline/data_files/csv_format.py: CSV_DELIMITER;
CSV_DECIMAL, so `12,5` reads as the number 12.5; CSV_ENCODING, so a
Windows-1252 export gives the examples of its UTF-8 original) and which
columns the reviewed schema types as integers: in those, whole numbers
written as floats (`17031832200.0`, as pandas writes an integer column with
empty cells) are read as the integers they are, so such a file gives the same
examples as the original, and a number with a fraction (`123.5`) stops the
run with a DataError naming the file, the line and the column. A byte order
mark before the header is ignored. Compressed files (`data.csv.gz`,
`.csv.bz2`, `.csv.xz`) are read as Beam reads them, by their name's ending;
other names the input pattern matches (`data.csv.bak`) are left out.

It also names the label (LABEL_KEY): rows whose label cell is empty are left
out of the examples, so of training and evaluation. The pass that infers the
column types counts them; above MAX_MISSING_LABEL_FRACTION of all rows the
run stops with a DataError naming the first such row and the setting, before
any example is written. The output artifact records the counts (custom
properties `csv_rows` and `csv_rows_without_label`) for the run's summary.

Runs wherever the stock executor runs (DirectRunner or Dataflow): files are
read with Beam's filesystems, one file per worker, as TFX does. Where Beam
would run in this process (the local runner, or a container's DirectRunner),
the executor writes the same split files itself, without Beam and without
TFX's Reshuffle before the write: that shuffle spreads the writing over
workers on Dataflow, but the local runner implements it by holding every
example in memory (3 GiB for a million taxi rows), and Beam's per-element
machinery costs more than reading and encoding the rows. Rows are shuffled
within each block instead (seeded), and the Trainer shuffles its input as
always.

With span folders the examples record the span they hold (ExampleGen's
`span` custom property) on every runtime: where no driver resolved the
input pattern's `{SPAN}` (Kubeflow Pipelines runs no preCacheCheck), the
executor resolves it to the newest span itself (`with_resolved_span`).
"""
import bisect
import contextlib
import dataclasses
import io
import os
from typing import (Any, Dict, FrozenSet, Iterable, Iterator,
                    List, NamedTuple, Optional, Sequence, Tuple)

import apache_beam as beam
from google.protobuf import json_format
from google.protobuf import struct_pb2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv
import tensorflow as tf
from tfx.components.example_gen import component
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.csv_example_gen import component as csv_component
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder

from models import features
from pipeline.data_files import csv_format
from pipeline.errors import DataError
from pipeline.kfp_runtime import in_process_runner

# Inferred column kinds, from narrowest to widest; a column takes the widest
# kind any of its cells needs. EMPTY: no cell has a value (yet). WHOLE: in a
# column the reviewed schema types as integer, whole numbers some of which
# are written as floats (`123.0`, as pandas writes integer columns with
# empty cells); they are read as the integers they are.
EMPTY, INT, WHOLE, FLOAT, STRING = 0, 1, 2, 3, 4
_ARROW_TYPES = {INT: pa.int64(), FLOAT: pa.float32(), STRING: pa.binary()}

# About 1 MiB of CSV text per block: large enough that per-block overhead
# vanishes, small enough that memory stays flat. Much of that overhead is per
# column (Arrow's conversion of each column, the survey's checks, the hash
# and list conversion of each column): a table of more than
# _COLUMNS_PER_BLOCK columns gets blocks that many times larger, so that each
# column's part of a block holds as many cells as in a narrower table's, up
# to MAX_BLOCK_BYTES (1,000 columns x 1,500 rows, 11 MB: 11 blocks of 1 MiB,
# 1.15 s of ExampleGen; two of 8 MiB, 0.8 s). Arrow reads blocks ahead, so the cap
# bounds memory: on 115 MB of 1,000 columns, peaks of 0.82 GB with 1 MiB
# blocks, 1.02 GB with 8 MiB, 1.31 GB with 31 MiB (survey and encoding, 10.0,
# 6.9 and 6.6 s). The rows' hashes, which split them, are computed per
# block (an integer column with an empty cell in a block hashes as floats),
# so a table wider than 32 columns may split otherwise than with 1 MiB
# blocks; the same from run to run.
BLOCK_BYTES = 1 << 20
_COLUMNS_PER_BLOCK = 32
MAX_BLOCK_BYTES = 8 << 20

# The custom_config keys (an example_gen_pb2.CustomConfig holding a Struct):
# the CSV format (pipeline/data_files/csv_format.py), the columns the reviewed
# schema types as integers, the label and the largest share of rows without
# one that a run accepts.
CSV_FORMAT_KEY = 'csv_format'
INTEGER_COLUMNS_KEY = 'integer_columns'
LABEL_KEY_KEY = 'label_key'
MAX_MISSING_LABEL_FRACTION_KEY = 'max_missing_label_fraction'

# The output artifact's custom properties: the data rows read, and those left
# out for an empty label; and the Beam counters they are read from.
ROWS_PROPERTY = 'csv_rows'
ROWS_WITHOUT_LABEL_PROPERTY = 'csv_rows_without_label'
_COUNTERS = 'ColumnarCsvExampleGen'

# zlib's fastest level for the examples written in process: 3 to 5 times
# less CPU than the default level (6) for 10 to 30 % more bytes; reading them
# costs the same.
_GZIP_LEVEL = 1


class CsvHeaderError(DataError):
  """The CSV files of one split do not share a header."""


@dataclasses.dataclass(frozen=True)
class Reading:
  """How to read the files: the custom_config (see `custom_config()`)."""
  fmt: csv_format.CsvFormat = csv_format.CsvFormat()
  integer_columns: FrozenSet[str] = frozenset()
  label_key: str = ''
  max_missing_label_fraction: float = 1.0

  @classmethod
  def from_exec_properties(cls, exec_properties: Dict[str, Any]
                           ) -> 'Reading':
    """How the component's custom_config says to read the files (the
    defaults without one)."""
    text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not text:
      return cls()
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(text, config)
    values = struct_pb2.Struct()
    if not config.custom_config.Unpack(values):
      return cls()
    values = json_format.MessageToDict(values)
    return cls(
        csv_format.CsvFormat.from_config(values.get(CSV_FORMAT_KEY)),
        frozenset(values.get(INTEGER_COLUMNS_KEY, ())),
        values.get(LABEL_KEY_KEY, ''),
        float(values.get(MAX_MISSING_LABEL_FRACTION_KEY, 1.0)))


class _Decompressed(io.RawIOBase):
  """Beam's decompressing file as a standard stream: Beam's CompressedFile
  has `closed` as a method, which Arrow and io.TextIOWrapper read as an
  attribute (and so as closed)."""

  def __init__(self, compressed):
    super().__init__()
    self._compressed = compressed

  def readable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    data = self._compressed.read(len(buffer))
    buffer[:len(data)] = data
    return len(data)

  def close(self) -> None:
    if not self.closed:
      self._compressed.close()
    super().close()


def _open(path: str):
  """The file's bytes, decompressed by its name's ending (`.gz`, ...)."""
  compression = beam.io.filesystems.CompressionTypes.detect_compression_type(
      path)
  f = beam.io.filesystems.FileSystems.open(path, compression_type=compression)
  if compression == beam.io.filesystems.CompressionTypes.UNCOMPRESSED:
    return f
  return io.BufferedReader(_Decompressed(f), buffer_size=BLOCK_BYTES)


def _header(path: str,
            fmt: csv_format.CsvFormat = csv_format.CsvFormat()) -> List[str]:
  """The column names in the first line of the CSV file at `path`."""
  with _open(path) as f:
    raw = f.readline()
  try:
    line = raw.decode(fmt.text_encoding)
  except UnicodeDecodeError as error:
    raise DataError(fmt.decode_error(path, 1, raw, error)) from None
  return csv_format.header_fields(line, fmt) if line.strip() else []


def block_bytes(num_columns: int) -> int:
  """The bytes of CSV text per block for a table of `num_columns` columns:
  BLOCK_BYTES, times num_columns / _COLUMNS_PER_BLOCK for a wider table, at
  most MAX_BLOCK_BYTES."""
  wider = max(1.0, num_columns / _COLUMNS_PER_BLOCK)
  return int(min(MAX_BLOCK_BYTES, BLOCK_BYTES * wider))


def _blocks(path: str, column_names: List[str],
            column_types: Dict[str, pa.DataType],
            fmt: csv_format.CsvFormat = csv_format.CsvFormat()
            ) -> Iterator[pa.RecordBatch]:
  """Record batches of the file's rows (header skipped), read as given."""
  with _open(path) as f:
    reader = pa_csv.open_csv(
        f,
        read_options=pa_csv.ReadOptions(
            column_names=column_names, skip_rows=1,
            block_size=block_bytes(len(column_names)),
            encoding=('utf8' if csv_format.is_utf8(fmt.encoding) else
                      fmt.encoding)),
        parse_options=pa_csv.ParseOptions(delimiter=fmt.delimiter,
                                          newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=column_types,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[''],
            check_utf8=False))
    for batch in reader:
      yield batch


def _number_text(column: pa.Array, fmt: csv_format.CsvFormat) -> pa.Array:
  """Text cells as numbers are written with a decimal point (`12,5` ->
  `12.5` with a decimal comma), by csv_format's rule."""
  if fmt.decimal == '.':
    return column
  return pc.replace_substring_regex(
      column, pattern=csv_format.DECIMAL_COMMA_PATTERN,
      replacement=csv_format.DECIMAL_COMMA_REPLACEMENT)


def _whole(values: pa.Array) -> Optional[pa.Array]:
  """Number text as int64 when every value is a whole number (`3`, `3.0`),
  else None."""
  try:
    return values.cast(pa.float64()).cast(pa.int64())  # safe: no truncation
  except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
    return None


def _cell_kind(column: pa.Array, integer: bool = False,
               fmt: csv_format.CsvFormat = csv_format.CsvFormat(),
               least: int = EMPTY) -> int:
  """The narrowest kind that holds every non-empty cell of a string column
  (WHOLE only for a column the reviewed schema types as `integer`); kinds
  narrower than `least` (what earlier rows needed) are not tried."""
  values = _number_text(column.drop_null(), fmt)
  if not len(values):  # pylint: disable=g-explicit-length-test
    return EMPTY
  # Text with a point is never an integer; a failed cast costs about a
  # millisecond per block and column, more than the rest of the survey.
  if least <= INT and not pc.any(pc.match_substring(values, '.')).as_py():
    try:
      values.cast(pa.int64())
      return INT
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
      pass
  if integer and least <= WHOLE and _whole(values) is not None:
    return WHOLE
  try:
    values.cast(pa.float64())
  except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
    return STRING
  return FLOAT


def _line_of_row(path: str, row: int, fmt: csv_format.CsvFormat) -> int:
  """The line the file's `row`-th data row (from 0) starts on."""
  with _open(path) as f:
    # Only lines are counted here: undecodable bytes may stay so.
    reader = fmt.reader(io.TextIOWrapper(f, encoding=fmt.text_encoding,
                                         errors='replace', newline=''))
    start, seen = 1, -2  # the header is row -1
    for fields in reader:
      if fields:
        seen += 1
        if seen == row:
          return start
      start = reader.line_num + 1
  return start


def _refuse_fraction(path: str, name: str, column: pa.Array, first_row: int,
                     fmt: csv_format.CsvFormat) -> None:
  """Raises DataError naming the first cell of an integer column that holds
  a number with a fraction, and its line."""
  for index, cell in enumerate(column.to_pylist()):
    if cell is not None and fmt.whole_number(cell) is None:
      line = _line_of_row(path, first_row + index, fmt)
      raise DataError(
          f'{path}:{line}: column {name} holds {cell!r}, not an integer as '
          'the reviewed schema requires: correct the cell, or approve a '
          'schema that types the column as FLOAT (docs/data_quality.md)')


@dataclasses.dataclass(frozen=True)
class Survey:
  """What the pass before encoding found in one file, or (merged) in all.

  Attributes:
    kinds: each column's kind.
    rows: the data rows.
    unlabelled: the rows whose label cell is empty.
    first_unlabelled: (file, data row from 0) of the first such row.
  """
  kinds: Tuple[int, ...] = ()
  rows: int = 0
  unlabelled: int = 0
  first_unlabelled: Optional[Tuple[str, int]] = None

  def merge(self, other: 'Survey') -> 'Survey':
    if not self.kinds:
      return other
    if not other.kinds:
      return self
    firsts = [f for f in (self.first_unlabelled, other.first_unlabelled) if f]
    return Survey(_widest([self.kinds, other.kinds]), self.rows + other.rows,
                  self.unlabelled + other.unlabelled,
                  min(firsts) if firsts else None)

  def check_labels(self, reading: Reading) -> None:
    """Raises DataError when more rows lack a label than the setting
    allows, naming the first such row and MAX_MISSING_LABEL_FRACTION."""
    if (not self.unlabelled or
        self.unlabelled <= reading.max_missing_label_fraction * self.rows):
      return
    path, row = self.first_unlabelled
    line = _line_of_row(path, row, reading.fmt)
    raise DataError(
        f'{path}:{line}: the label {reading.label_key!r} is empty in '
        f'{self.unlabelled} of {self.rows} rows '
        f'({self.unlabelled / self.rows:.1%}), above '
        f'MAX_MISSING_LABEL_FRACTION={reading.max_missing_label_fraction:g}:'
        ' fill in the labels or remove those rows (rows without a label are '
        'left out of training and evaluation), or raise '
        'MAX_MISSING_LABEL_FRACTION')


def _check_utf8(path: str, name: str, column: pa.Array, first_row: int,
                fmt: csv_format.CsvFormat) -> None:
  """Raises DataError naming the first cell that is not UTF-8 text (the
  reader does not check it) and its line, and CSV_ENCODING."""
  try:
    column.validate(full=True)
    return
  except pa.ArrowInvalid:
    pass
  for index, cell in enumerate(column.cast(pa.binary()).to_pylist()):
    try:
      (cell or b'').decode('utf-8')
    except UnicodeDecodeError as error:
      line = _line_of_row(path, first_row + index, fmt)
      raise DataError(fmt.decode_error(path, line, cell, error,
                                       column=name)) from None


def survey_file(path: str, column_names: List[str],
                reading: Reading = Reading()) -> Survey:
  """Each column's kind over every row of the file at `path`, and its rows
  with and without a label.

  Raises:
    DataError: a column of `reading.integer_columns` holds a number with a
      fraction.
  """
  fmt = reading.fmt
  as_text = {name: pa.string() for name in column_names}
  kinds = [EMPTY] * len(column_names)
  label = (column_names.index(reading.label_key)
           if reading.label_key in column_names else None)
  first_row, unlabelled, first_unlabelled = 0, 0, None
  utf8 = csv_format.is_utf8(fmt.encoding)  # other encodings are transcoded
  for batch in _blocks(path, column_names, as_text, fmt):
    for i, column in enumerate(batch.columns):
      if kinds[i] != STRING:
        integer = column_names[i] in reading.integer_columns
        kind = _cell_kind(column, integer, fmt, kinds[i])
        if integer and kind == FLOAT:
          _refuse_fraction(path, column_names[i], column, first_row, fmt)
        kinds[i] = max(kinds[i], kind)
      if utf8 and kinds[i] == STRING:  # number columns are ASCII
        _check_utf8(path, column_names[i], column, first_row, fmt)
    if label is not None:
      empty = batch.column(label).null_count
      if empty and first_unlabelled is None:
        nulls = batch.column(label).is_null().to_numpy(zero_copy_only=False)
        first_unlabelled = (path, first_row + int(np.argmax(nulls)))
      unlabelled += empty
    first_row += batch.num_rows
  return Survey(tuple(kinds), first_row, unlabelled, first_unlabelled)


def _typed(column: pa.Array, kind: int,
           fmt: csv_format.CsvFormat) -> pa.Array:
  """A column read as text, as its kind's Arrow type."""
  values = _number_text(column, fmt)
  if kind == WHOLE:
    return values.cast(pa.float64()).cast(pa.int64())
  return values.cast(_ARROW_TYPES[kind])


def _as_lists(column: pa.Array, dense_offsets: pa.Array) -> pa.Array:
  """A column as one-value lists, with an empty list for an empty cell;
  `dense_offsets` (0, 1, ... rows) are the offsets of a column without
  one."""
  if not column.null_count:
    return pa.ListArray.from_arrays(dense_offsets, column)
  present = column.is_valid().to_numpy(zero_copy_only=False)
  offsets = np.zeros(len(column) + 1, dtype=np.int32)
  np.cumsum(present, out=offsets[1:])
  return pa.ListArray.from_arrays(pa.array(offsets), column.drop_null())


class RowCounts:
  """The rows read and those left out for an empty label, where no Beam
  counters count them (the in-process path)."""

  def __init__(self):
    self.values = {ROWS_PROPERTY: 0, ROWS_WITHOUT_LABEL_PROPERTY: 0}

  def counter(self, name: str) -> '_Count':
    return _Count(self.values, name)


class _Count(NamedTuple):
  values: Dict[str, int]
  name: str

  def inc(self, n: int) -> None:
    self.values[self.name] += n


def encode_file(path: str, column_names: List[str], kinds: Tuple[int, ...],
                fmt: csv_format.CsvFormat = csv_format.CsvFormat(),
                label_key: str = '',
                counts: Optional[RowCounts] = None
                ) -> Iterator[Tuple[int, bytes]]:
  """(row hash, serialized tf.Example) for each row of the file at `path`
  whose `label_key` cell (if given) is not empty; the rows are counted in
  `counts`, or else in Beam counters."""
  label = column_names.index(label_key) if label_key in column_names else None
  counter = (counts.counter if counts is not None else
             lambda name: beam.metrics.Metrics.counter(_COUNTERS, name))
  rows_read = counter(ROWS_PROPERTY)
  rows_dropped = counter(ROWS_WITHOUT_LABEL_PROPERTY)
  typed = [i for i, kind in enumerate(kinds) if kind != EMPTY]
  untyped = [column_names[i] for i, kind in enumerate(kinds) if kind == EMPTY]
  # Read as text and converted here: whole numbers written as floats, and
  # numbers with a decimal comma. The rest Arrow types as it reads.
  converted = {i for i in typed if kinds[i] == WHOLE or
               (kinds[i] == FLOAT and fmt.decimal != '.')}
  read_as = {column_names[i]: (pa.string() if i in converted else
                               _ARROW_TYPES[kinds[i]]) for i in typed}
  read_as.update({name: pa.string() for name in untyped})
  names = [column_names[i] for i in typed]
  encoder = example_coder.RecordBatchToExamplesEncoder()
  for block, batch in enumerate(_blocks(path, column_names, read_as, fmt)):
    rows_read.inc(batch.num_rows)
    if label is not None and batch.column(label).null_count:
      rows_dropped.inc(batch.column(label).null_count)
      batch = batch.filter(batch.column(label).is_valid())
    if converted:
      batch = pa.RecordBatch.from_arrays(
          [_typed(column, kinds[i], fmt) if i in converted else column
           for i, column in enumerate(batch.columns)], column_names)
    # Rows in a random (seeded) order within the block: the local runner
    # writes them without a global shuffle (see the module docstring).
    batch = batch.take(pa.array(
        np.random.default_rng(block).permutation(batch.num_rows)))
    # 63 bits, so Beam's integer coder takes them.
    hashes = (row_hashes(batch) >> np.uint64(1)).astype(np.int64).tolist()
    dense_offsets = pa.array(np.arange(batch.num_rows + 1, dtype=np.int32))
    lists = pa.RecordBatch.from_arrays(
        [_as_lists(batch.column(i), dense_offsets) for i in typed], names)
    records = encoder.encode(lists) if names else [b''] * batch.num_rows
    if untyped:
      records = [_with_untyped(record, untyped) for record in records]
    yield from zip(hashes, records)


def row_hashes(batch: pa.RecordBatch) -> np.ndarray:
  """pandas' row hash of the batch, `hash_pandas_object(batch.to_pandas(),
  index=False)`: each column's `hash_array`, combined as pandas combines
  them (CPython's tuple hash), without a pandas Series per column, which
  costs more than the hashing in a table of hundreds of columns."""
  mult = np.uint64(1000003)
  hashes = np.full(batch.num_rows, 0x345678, dtype=np.uint64)
  for i, column in enumerate(batch.columns):
    hashes ^= pd.util.hash_array(column.to_numpy(zero_copy_only=False))
    hashes *= mult
    mult += np.uint64(82520 + 2 * (batch.num_columns - i))
  return hashes + np.uint64(97531)


def _with_untyped(record: bytes, names: List[str]) -> bytes:
  """Adds an empty, untyped feature per name (rare: the slow path)."""
  example = tf.train.Example.FromString(record)
  for name in names:
    example.features.feature[name].SetInParent()
  return example.SerializeToString(deterministic=True)


def _widest(kinds: Iterable[Tuple[int, ...]]) -> Tuple[int, ...]:
  kinds = list(kinds)
  return tuple(max(column) for column in zip(*kinds)) if kinds else ()


class _MergeSurveys(beam.CombineFn):
  """Merges per-file surveys: the widest kind per column, the row counts
  summed."""

  def create_accumulator(self):
    return Survey()

  def add_input(self, accumulator, survey):
    return accumulator.merge(survey)

  def merge_accumulators(self, accumulators):
    merged = Survey()
    for accumulator in accumulators:
      merged = merged.merge(accumulator)
    return merged

  def extract_output(self, accumulator):
    return accumulator


def _encode_checked(path: str, column_names: List[str], survey: Survey,
                    reading: Reading) -> Iterator[Tuple[int, bytes]]:
  """encode_file, once the survey of all files passed the label check."""
  survey.check_labels(reading)
  return encode_file(path, column_names, survey.kinds, reading.fmt,
                     reading.label_key)


def _matching_files(input_base: str, split_pattern: str) -> List[str]:
  """The data files the pattern matches (csv_format.is_csv_file)."""
  pattern = os.path.join(input_base, split_pattern)
  files = sorted(path for path in fileio.glob(pattern)
                 if csv_format.is_csv_file(os.path.basename(path)))
  if not files:
    raise RuntimeError(f'Split pattern {pattern} does not match any CSV '
                       f'files ({", ".join(csv_format.CSV_FILE_SUFFIXES)}).')
  return files


def _check_headers(files: List[str],
                   fmt: csv_format.CsvFormat = csv_format.CsvFormat()
                   ) -> List[str]:
  names = _header(files[0], fmt)
  if not names:
    raise CsvHeaderError(f'{files[0]}:1: no header row: the first line must '
                         'name the columns')
  try:
    features.input_names(names)
  except ValueError as error:
    raise CsvHeaderError(f'{files[0]}:1: {error}') from None
  for path in files[1:]:
    other = _header(path, fmt)
    if other != names:
      raise CsvHeaderError(
          f'{path}:1: the header {other} differs from {files[0]}\'s '
          f'{names}: the CSV files read together must have the same columns '
          'in the same order')
  return names


class LabelRows(NamedTuple):
  """The label (LABEL_KEY): rows with an empty one are left out, up to a
  share of all rows (MAX_MISSING_LABEL_FRACTION)."""
  label_key: str = ''
  max_missing_fraction: float = 1.0


def custom_config(fmt: csv_format.CsvFormat,
                  integer_columns: Sequence[str],
                  labels: LabelRows = LabelRows()
                  ) -> example_gen_pb2.CustomConfig:
  """ExampleGen's custom_config: how to read the CSV files, and the label
  whose empty cells leave a row out."""
  values = {CSV_FORMAT_KEY: fmt.to_config(),
            INTEGER_COLUMNS_KEY: sorted(integer_columns)}
  if labels.label_key:
    values[LABEL_KEY_KEY] = labels.label_key
    values[MAX_MISSING_LABEL_FRACTION_KEY] = labels.max_missing_fraction
  config = example_gen_pb2.CustomConfig()
  config.custom_config.Pack(json_format.ParseDict(values, struct_pb2.Struct()))
  return config


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(Tuple[int, bytes])
def _CsvToHashedExamples(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, input_base: str, split_pattern: str,
    exec_properties: Dict[str, Any]) -> beam.pvalue.PCollection:
  """(row hash, serialized tf.Example) for the rows of the split's files."""
  reading = Reading.from_exec_properties(exec_properties)
  files = _matching_files(input_base, split_pattern)
  names = _check_headers(files, reading.fmt)
  paths = pipeline | 'Files' >> beam.Create(files)
  survey = beam.pvalue.AsSingleton(
      paths
      | 'InferKinds' >> beam.Map(survey_file, names, reading)
      | 'WidestKinds' >> beam.CombineGlobally(_MergeSurveys()))
  return paths | 'Encode' >> beam.FlatMap(_encode_checked, names, survey,
                                          reading)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _CsvToSerializedExamples(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
    split_pattern: str) -> beam.pvalue.PCollection:
  """Serialized tf.Examples for the rows of the split's files."""
  return (pipeline
          | 'Read' >> _CsvToHashedExamples(  # pylint: disable=no-value-for-parameter
              exec_properties[standard_component_specs.INPUT_BASE_KEY],
              split_pattern, exec_properties)
          | 'DropHashes' >> beam.Values())


def _bucket_split(hashed: Tuple[int, bytes], num_partitions: int,
                  bounds: List[int]) -> int:
  """The output split of a row: its hash bucket, as CsvExampleGen assigns."""
  del num_partitions  # len(bounds)
  return bisect.bisect(bounds, hashed[0] % bounds[-1])


def with_resolved_span(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
  """`exec_properties` with the input pattern's `{SPAN}` resolved to the
  newest span under the input base, where no driver resolved it.

  ExampleGen's driver resolves the span before the executor starts: in the
  local runner, and on Vertex AI as the container's preCacheCheck. Kubeflow
  Pipelines runs no preCacheCheck, so there the executor finds the newest
  span itself, the same way (TFX's example_gen utils).
  """
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
  if not any('{SPAN}' in split.pattern for split in input_config.splits):
    return exec_properties
  fingerprint, span, _ = (
      example_gen_utils.calculate_splits_fingerprint_span_and_version(
          exec_properties[standard_component_specs.INPUT_BASE_KEY],
          input_config.splits))
  return {**exec_properties,
          standard_component_specs.INPUT_CONFIG_KEY:
              proto_utils.proto_to_json(input_config),
          example_gen_utils.SPAN_PROPERTY_NAME: span,
          example_gen_utils.FINGERPRINT_PROPERTY_NAME: fingerprint}


class Executor(BaseExampleGenExecutor):
  """CsvExampleGen's executor, on a columnar reader (see module docstring)."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return _CsvToSerializedExamples

  def Do(self, input_dict: Dict[str, List[Any]],
         output_dict: Dict[str, List[Any]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes the examples of the span ExampleGen's driver chose (or, where
    no driver ran, of the newest span): in this process where Beam would run
    here, else with the base executor's Do; then records the span and the
    row counts on them."""
    exec_properties = with_resolved_span(exec_properties)
    file_format = exec_properties.get(
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY,
        example_gen_pb2.FILE_FORMAT_UNSPECIFIED)
    # Only gzipped TFRecords (the default) are written here.
    if (in_process_runner.runs_in_process(self._beam_pipeline_args) and
        file_format in (example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
                        example_gen_pb2.FORMAT_TFRECORDS_GZIP)):
      counts = self._write_in_process(input_dict, output_dict,
                                      exec_properties)
    else:
      super().Do(input_dict, output_dict, exec_properties)
      counts = _counted_by_beam(self._pipeline.result)
    examples = output_dict[standard_component_specs.EXAMPLES_KEY]
    for artifact in examples:
      for name, value in counts.items():
        artifact.set_int_custom_property(name, value)
    span = exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME)
    if span is not None:
      for artifact in examples:
        artifact.set_int_custom_property(
            example_gen_utils.SPAN_PROPERTY_NAME, int(span))

  def _make_beam_pipeline(self) -> beam.Pipeline:
    """The base executor's pipeline, kept to read its counters once run."""
    self._pipeline = super()._make_beam_pipeline()  # pylint: disable=attribute-defined-outside-init
    return self._pipeline

  def _write_in_process(self, input_dict: Dict[str, List[Any]],
                        output_dict: Dict[str, List[Any]],
                        exec_properties: Dict[str, Any]) -> Dict[str, int]:
    """What the base executor's Do writes on Beam's local runner (the same
    splits, files and artifact properties), written here without Beam.

    A Beam pipeline would run every example through Beam's per-element
    machinery and TFX's Reshuffle (see the module docstring) in this same
    process; here each split has one TFRecord writer and the files are read
    one after the other, in blocks. Each row goes to the split its hash
    picks, in the order GenerateExamplesByBeam gives it. The files are
    gzipped at zlib's fastest level (_GZIP_LEVEL).

    Returns:
      The row counts (ROWS_PROPERTY, ROWS_WITHOUT_LABEL_PROPERTY).
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    input_config, output_config = _split_configs(exec_properties)
    bounds = _hash_bounds(input_config, output_config)
    names = example_gen_utils.generate_output_split_names(input_config,
                                                          output_config)
    examples = output_dict[standard_component_specs.EXAMPLES_KEY]
    artifact_utils.get_single_instance(examples).split_names = (
        artifact_utils.encode_split_names(names))
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    reading = Reading.from_exec_properties(exec_properties)
    # Every split's files are surveyed (and checked) before any is written.
    sources = [_SurveyedSplit.of(input_base, split.pattern, reading)
               for split in input_config.splits]
    counts = RowCounts()
    with contextlib.ExitStack() as stack:
      writers = [stack.enter_context(_split_writer(
          artifact_utils.get_split_uri(examples, name))) for name in names]
      if bounds:
        for row_hash, record in sources[0].encode(reading, counts):
          writers[bisect.bisect(bounds, row_hash % bounds[-1])].write(record)
      else:
        for writer, source in zip(writers, sources):
          for _, record in source.encode(reading, counts):
            writer.write(record)
    # As the base executor's Do records them.
    payload_format = exec_properties.get(
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
    file_format = exec_properties.get(
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
    for artifact in examples:
      if payload_format:
        examples_utils.set_payload_format(artifact, payload_format)
      if file_format:
        examples_utils.set_file_format(
            artifact, write_split.to_file_format_str(file_format))
    return counts.values

  def GenerateExamplesByBeam(
      self, pipeline: beam.Pipeline,
      exec_properties: Dict[str, Any]) -> Dict[str, beam.pvalue.PCollection]:
    input_config, output_config = _split_configs(exec_properties)
    bounds = _hash_bounds(input_config, output_config)
    if not bounds:  # The input's own splits: nothing to hash.
      return super().GenerateExamplesByBeam(pipeline, exec_properties)
    names = example_gen_utils.generate_output_split_names(
        input_config, output_config)
    parts = (
        pipeline
        | 'InputToRecord' >> _CsvToHashedExamples(  # pylint: disable=no-value-for-parameter
            exec_properties[standard_component_specs.INPUT_BASE_KEY],
            input_config.splits[0].pattern, exec_properties)
        | 'SplitData' >> beam.Partition(_bucket_split, len(bounds), bounds))
    return {
        name: part | f'DropHashes[{name}]' >> beam.Values()
        for name, part in zip(names, parts)
    }


def _hash_bounds(input_config: example_gen_pb2.Input,
                 output_config: example_gen_pb2.Output) -> List[int]:
  """The output splits' cumulative hash buckets; empty where the input's
  own splits are kept."""
  splits = output_config.split_config.splits
  if not splits:
    return []
  if output_config.split_config.partition_feature_name:
    raise ValueError(
        'ColumnarCsvExampleGen splits by a hash of each row; for a split '
        'by partition_feature_name use tfx.components.CsvExampleGen.')
  if len(input_config.splits) != 1:
    raise ValueError('Output splits need exactly one input split, got '
                     f'{len(input_config.splits)}.')
  return [int(bound) for bound in
          np.cumsum([split.hash_buckets for split in splits])]


class _SurveyedSplit(NamedTuple):
  """_CsvToHashedExamples in this process: the split's files, once their
  survey passed the label check."""
  files: List[str]
  column_names: List[str]
  survey: Survey

  @classmethod
  def of(cls, input_base: str, split_pattern: str,
         reading: Reading) -> '_SurveyedSplit':
    files = _matching_files(input_base, split_pattern)
    names = _check_headers(files, reading.fmt)
    survey = Survey()
    for path in files:
      survey = survey.merge(survey_file(path, names, reading))
    survey.check_labels(reading)
    return cls(files, names, survey)

  def encode(self, reading: Reading,
             counts: RowCounts) -> Iterator[Tuple[int, bytes]]:
    """The files' (row hash, serialized tf.Example), one file after the
    other."""
    for path in self.files:
      yield from encode_file(path, self.column_names, self.survey.kinds,
                             reading.fmt, reading.label_key, counts)


@contextlib.contextmanager
def _split_writer(split_uri: str) -> Iterator[tf.io.TFRecordWriter]:
  """A gzipped TFRecord writer of the split's one file, named as Beam's
  WriteToTFRecord names it (write_split's file name, shard 0 of 1)."""
  fileio.makedirs(split_uri)
  path = os.path.join(split_uri,
                      write_split.DEFAULT_FILE_NAME + '-00000-of-00001.gz')
  writer = tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(
      compression_type='GZIP', compression_level=_GZIP_LEVEL))
  try:
    yield writer
  finally:
    writer.close()


def _counted_by_beam(result: beam.runners.runner.PipelineResult
                     ) -> Dict[str, int]:
  """The rows read and those left out for an empty label: the Beam counters
  of `encode_file`."""
  counters = {ROWS_PROPERTY: 0, ROWS_WITHOUT_LABEL_PROPERTY: 0}
  query = result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(_COUNTERS))
  for counter in query['counters']:
    if counter.key.metric.name in counters:
      value = (counter.committed if counter.committed is not None else
               counter.attempted)
      counters[counter.key.metric.name] += value or 0
  return counters


def _split_configs(exec_properties: Dict[str, Any]
                   ) -> Tuple[example_gen_pb2.Input, example_gen_pb2.Output]:
  """The component's input and output configs, from their JSON properties."""
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
  output_config = example_gen_pb2.Output()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
      output_config)
  return input_config, output_config


class ColumnarCsvExampleGen(csv_component.CsvExampleGen):
  """CsvExampleGen (same inputs, outputs and driver) with the faster executor,
  and CsvExampleGen's base class's `custom_config` (see `custom_config()`)."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self,
               input_base: Optional[str] = None,
               input_config: Optional[example_gen_pb2.Input] = None,
               output_config: Optional[example_gen_pb2.Output] = None,
               custom_config: Optional[example_gen_pb2.CustomConfig] = None,
               **kwargs):
    """CsvExampleGen's arguments (range_config among `kwargs`), and the
    CustomConfig that says how the files are written."""
    # CsvExampleGen's own __init__ has no custom_config; its base's does.
    component.FileBasedExampleGen.__init__(  # pylint: disable=non-parent-init-called
        self, input_base=input_base, input_config=input_config,
        output_config=output_config, custom_config=custom_config, **kwargs)
