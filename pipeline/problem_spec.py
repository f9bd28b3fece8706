"""The problem description, checked against the data before any Beam job.

`from_settings` turns the problem settings of pipeline/configs.py (LABEL_KEY,
PROBLEM_TYPE, DROP_COLUMNS, CATEGORICAL_COLUMNS, BUCKETIZE_COLUMNS,
VOCAB_SIZE, OOV_BUCKETS, VOCAB_SIZE_OVERRIDES) into a models.features.Problem,
which the pipeline hands to Transform and the Trainer. On a local data folder
it reads the CSV header and a sample of rows to infer the problem type when
PROBLEM_TYPE is empty, to find small integer code columns, and to reject a
bad configuration with a one-line ConfigError (label not a column, empty
in every row or constant, a listed column that does not exist, regression on a text label);
a gs:// folder cannot be read here, so only the settings themselves are
checked and PROBLEM_TYPE must be set.
"""
import csv
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from models import features
from pipeline.data_files import csv_format
from pipeline.errors import ConfigError
from pipeline.errors import DataError

# Rows read (over all CSV files, in name order) to infer types and classes.
SAMPLE_ROWS = 20000
# An integer label with at most this many distinct values is a class label.
MAX_INTEGER_CLASSES = 20
# An integer input column with at most this many distinct values is treated
# as categorical even when CATEGORICAL_COLUMNS does not list it.
MAX_AUTO_CATEGORICAL_VALUES = 10

# Value kinds, as in models.features.Problem.label_kind.
INT, FLOAT, STRING = 'integer', 'float', 'text'


@dataclasses.dataclass
class Sample:
  """The CSV header and up to SAMPLE_ROWS rows, by column: column -> its
  cell in each sampled row ('' where empty or absent). By column, not as a
  dict per row: a 1,000-column table's sample is a million cells, and the
  checks read it column by column."""
  columns: List[str]
  cells: Dict[str, List[str]]
  num_rows: int

  def values(self, column: str) -> List[str]:
    """The non-empty cells of `column`."""
    return list(filter(None, self.cells.get(column, ())))


def parse_columns(name: str, text: str) -> List[str]:
  """'a, b,c' -> ['a', 'b', 'c'] for the setting `name`."""
  columns = [c.strip() for c in text.split(',') if c.strip()]
  repeated = sorted({c for c in columns if columns.count(c) > 1})
  if repeated:
    raise ConfigError(f'{name} lists {", ".join(repeated)} more than once.')
  return columns


def unread_columns(settings) -> List[str]:
  """The CSV columns the model never takes as input: LABEL_KEY and
  DROP_COLUMNS (of `settings`, configs.load(...)).

  Raises:
    ConfigError: DROP_COLUMNS lists a column twice.
  """
  return [settings.LABEL_KEY,
          *parse_columns('DROP_COLUMNS', settings.DROP_COLUMNS)]


def parse_sizes(name: str, text: str, minimum: int) -> Dict[str, int]:
  """'a:10,b:4' -> {'a': 10, 'b': 4}, each size at least `minimum`."""
  sizes = {}
  for item in parse_columns(name, text):
    column, _, size = item.rpartition(':')
    try:
      number = int(size)
    except ValueError:
      number = None
    if not column.strip() or number is None:
      raise ConfigError(f'{name}: {item!r} is not column:number '
                        "(e.g. 'age:10').")
    if number < minimum:
      raise ConfigError(f'{name}: {item!r} needs a number of at least '
                        f'{minimum}.')
    sizes[column.strip()] = number
  return sizes


def read_sample(data_path: str, max_rows: int = SAMPLE_ROWS,
                fmt: csv_format.CsvFormat = csv_format.CsvFormat()) -> Sample:
  """The header of the first data file in `data_path` and up to `max_rows`
  rows of all of them, in file name order, read in the format `fmt`
  (numbers with a decimal comma as `12.5`; CSV_ENCODING). A later file's
  cells are matched to the first file's columns by its own header."""
  files = csv_format.csv_files(data_path)
  if not files:
    raise ConfigError(f'DATA_PATH={data_path!r} has no CSV files '
                      f'({", ".join(csv_format.CSV_FILE_SUFFIXES)}).')
  columns, cells, num_rows = None, {}, 0
  for path in files:
    try:
      header, rows = _read_rows(path, fmt, columns is None,
                                max_rows - num_rows)
    except UnicodeDecodeError as error:
      raise DataError(fmt.text_error(path, error)) from None
    if columns is None:
      columns = header
      cells = {column: [] for column in columns}
    by_name = dict(zip(header, _by_column(rows, len(header))))
    for column in cells:  # a repeated name once, as a dict keeps it
      cells[column].extend(by_name.get(column, ('',) * len(rows)))
    num_rows += len(rows)
    if num_rows >= max_rows:
      break
  if not columns:
    raise DataError(f'{files[0]}:1: no header row: the first line must name '
                    'the columns')
  return Sample(columns, cells, num_rows)


def _read_rows(path: str, fmt: csv_format.CsvFormat, first: bool,
               max_rows: int) -> Tuple[List[str], List[List[str]]]:
  """The file's header (its columns, stripped) and up to `max_rows` of its
  rows (lists of stripped cells, numbers in Python's notation), skipping
  blank lines; checks the delimiter against the header of the `first`
  file."""
  with fmt.open_text(path) as lines:
    reader = csv.reader(lines, delimiter=fmt.delimiter)
    header = [c.strip() for c in next(reader, None) or []]
    if first and header:
      advice = csv_format.delimiter_advice(
          path, fmt.delimiter.join(header), fmt)
      if advice:
        raise DataError(advice)
    rows = []
    if max_rows <= 0:
      return header, rows
    convert = None if fmt.decimal == '.' else fmt.number_text
    for row in reader:
      if not row:  # a blank line
        continue
      row = list(map(str.strip, row))
      rows.append(row if convert is None else list(map(convert, row)))
      if len(rows) >= max_rows:
        break
  return header, rows


def _by_column(rows: List[List[str]], width: int) -> List[Tuple[str, ...]]:
  """`rows` (of `width` cells; a short row's missing cells are '', a long
  row's extra ones are dropped) as columns: `width` of them, or none
  without rows."""
  even = [row if len(row) == width else (row + [''] * width)[:width]
          for row in rows]
  return list(zip(*even))


def _parses(convert: Callable[[str], object], text: str) -> bool:
  try:
    convert(text)
    return True
  except ValueError:
    return False


def value_kind(values: Sequence[str]) -> str:
  """INT, FLOAT or STRING: how CsvExampleGen types a column of `values`."""
  if all(_parses(int, v) for v in values):
    return INT
  if all(_parses(float, v) for v in values):
    return FLOAT
  return STRING


def _examples(values: Sequence[str], count: int = 3) -> str:
  return ', '.join(repr(v) for v in sorted(set(values))[:count])


def _check_label(label_key: str, problem_type: str, sample: Sample
                 ) -> Tuple[str, str, str]:
  """Checks the label against the sample; returns (problem type, why, the
  label's value kind)."""
  values = sample.values(label_key)
  if not values:
    raise ConfigError(f'LABEL_KEY={label_key!r} is empty in all '
                      f'{sample.num_rows} sampled rows.')
  # Rows with an empty label are left out (ExampleGen drops them); the
  # data checks count them and refuse too many (MAX_MISSING_LABEL_FRACTION).
  classes = sorted(set(values))
  if len(classes) == 1:
    raise ConfigError(f'LABEL_KEY={label_key!r} has the same value '
                      f'{classes[0]!r} in all {len(values)} sampled rows: '
                      'there is nothing to learn.')
  kind = value_kind(values)
  if problem_type == features.REGRESSION and kind == STRING:
    raise ConfigError(f'PROBLEM_TYPE=regression needs a numeric label, but '
                      f'LABEL_KEY={label_key!r} holds text such as '
                      f'{_examples(values)}.')
  why = 'set by PROBLEM_TYPE'
  if not problem_type:
    if kind == STRING or (kind == INT and
                          len(classes) <= MAX_INTEGER_CLASSES):
      problem_type = features.BINARY if len(classes) == 2 else (
          features.MULTICLASS)
      if problem_type == features.BINARY and kind != STRING and not (
          set(int(c) for c in classes) <= {0, 1}):
        problem_type = features.MULTICLASS
      why = f'inferred: {len(classes)} {kind} classes'
    else:
      problem_type = features.REGRESSION
      why = f'inferred: {kind} label with {len(classes)} distinct values'
  if problem_type == features.BINARY:
    if len(classes) != 2:
      raise ConfigError(f'PROBLEM_TYPE=binary needs exactly 2 classes, but '
                        f'LABEL_KEY={label_key!r} has {len(classes)} '
                        f'({_examples(values)}, ...): use multiclass.')
    if kind != STRING and {float(c) for c in classes} != {0.0, 1.0}:
      raise ConfigError(f'PROBLEM_TYPE=binary needs a numeric label of 0 and '
                        f'1, but LABEL_KEY={label_key!r} has '
                        f'{_examples(values)}: use multiclass or recode it.')
  return problem_type, why, kind


@dataclasses.dataclass
class Resolved:
  """A checked problem description and what was learnt on the way."""
  problem: features.Problem
  notes: List[str]

  def describe(self) -> str:
    """One line for the run's output."""
    p = self.problem
    kind = {features.BINARY: 'binary classification',
            features.MULTICLASS: 'multiclass classification',
            features.REGRESSION: 'regression'}[p.problem_type]
    return (f'Problem: {kind} of {p.label_key!r}'
            + (f' ({"; ".join(self.notes)})' if self.notes else '') + '.')


def resolve(data_path: str,
            label_key: str,
            problem_type: str = '',
            drop_columns: str = '',
            categorical_columns: str = '',
            bucketize_columns: str = '',
            vocab_size: int = 5000,
            oov_buckets: int = 10,
            vocab_size_overrides: str = '',
            eval_slice_columns: Sequence[str] = (),
            sample: Optional[Sample] = None,
            fmt: csv_format.CsvFormat = csv_format.CsvFormat()) -> Resolved:
  """Checks the problem settings against the data in `data_path`.

  Args:
    data_path: a folder of CSV files (read when local) or a gs:// URI.
    label_key ... vocab_size_overrides: the settings of the same names in
      pipeline/configs.py, as text.
    eval_slice_columns: EVAL_SLICE_COLUMNS; each must be a column.
    sample: the data's sample, if already read (tests).
    fmt: CSV_DELIMITER and CSV_DECIMAL, to read the sample.

  Returns:
    The problem description and notes on what was inferred.

  Raises:
    ConfigError: a setting does not fit the data, in one line naming it.
    DataError: the data cannot be read as the settings say (another
      delimiter, another encoding), naming the file and the fix.
  """
  columns = _ColumnSettings.parse(drop_columns, categorical_columns,
                                  bucketize_columns, vocab_size_overrides)
  columns.check(label_key)
  if data_path.startswith('gs://'):
    found = _unchecked_cloud_data(data_path, problem_type)
  else:
    found = _check_sample(sample or read_sample(data_path, fmt=fmt), label_key,
                          problem_type, columns, eval_slice_columns)
  problem = features.Problem(
      label_key=label_key, problem_type=found.problem_type,
      drop_columns=columns.drop,
      categorical_columns=columns.categorical + found.small_integer_codes,
      bucketize=columns.bucketize, vocab_size=vocab_size,
      oov_buckets=oov_buckets, vocab_sizes=columns.vocab_sizes,
      label_kind=found.label_kind)
  return Resolved(problem, found.notes)


@dataclasses.dataclass
class _ColumnSettings:
  """DROP_COLUMNS, CATEGORICAL_COLUMNS, BUCKETIZE_COLUMNS and
  VOCAB_SIZE_OVERRIDES, parsed."""
  drop: List[str]
  categorical: List[str]
  bucketize: Dict[str, int]
  vocab_sizes: Dict[str, int]

  @classmethod
  def parse(cls, drop_columns: str, categorical_columns: str,
            bucketize_columns: str,
            vocab_size_overrides: str) -> '_ColumnSettings':
    """Parses the settings' text; raises ConfigError on a malformed one."""
    return cls(
        drop=parse_columns('DROP_COLUMNS', drop_columns),
        categorical=parse_columns('CATEGORICAL_COLUMNS', categorical_columns),
        bucketize=parse_sizes('BUCKETIZE_COLUMNS', bucketize_columns,
                              minimum=2),
        vocab_sizes=parse_sizes('VOCAB_SIZE_OVERRIDES', vocab_size_overrides,
                                minimum=1))

  def listed(self) -> Dict[str, List[str]]:
    """Setting name -> the columns it names."""
    return {'DROP_COLUMNS': self.drop,
            'CATEGORICAL_COLUMNS': self.categorical,
            'BUCKETIZE_COLUMNS': list(self.bucketize),
            'VOCAB_SIZE_OVERRIDES': list(self.vocab_sizes)}

  def check(self, label_key: str) -> None:
    """Rejects settings that contradict each other or name the label."""
    for name, columns in self.listed().items():
      if label_key in columns:
        raise ConfigError(f'{name} names the label {label_key!r} '
                          '(LABEL_KEY).')
    for other, columns in (('CATEGORICAL_COLUMNS', self.categorical),
                           ('VOCAB_SIZE_OVERRIDES', self.vocab_sizes)):
      both = sorted(set(columns) & set(self.bucketize))
      if both:
        raise ConfigError(f'{", ".join(both)}: listed in both {other} and '
                          'BUCKETIZE_COLUMNS; choose one.')
    used = set(self.categorical) | set(self.bucketize) | set(self.vocab_sizes)
    dropped_and_used = sorted(set(self.drop) & used)
    if dropped_and_used:
      raise ConfigError(f'{", ".join(dropped_and_used)}: listed in '
                        'DROP_COLUMNS and also configured as a feature.')


@dataclasses.dataclass
class _Findings:
  """What the data, or its absence, tells about the problem."""
  problem_type: str
  label_kind: str  # as models.features.Problem.label_kind
  notes: List[str]  # how the problem type was found, then what was inferred
  small_integer_codes: List[str] = dataclasses.field(default_factory=list)


def _unchecked_cloud_data(data_path: str, problem_type: str) -> _Findings:
  """Data on Cloud Storage is not read: PROBLEM_TYPE must be set."""
  if not problem_type:
    raise ConfigError(f'PROBLEM_TYPE must be set when DATA_PATH is on '
                      f'Cloud Storage ({data_path}): it is inferred only '
                      'from local CSV files.')
  return _Findings(problem_type, '', [
      'set by PROBLEM_TYPE',
      'columns not checked: the data is on Cloud Storage'])


def _check_sample(sample: Sample, label_key: str, problem_type: str,
                  columns: _ColumnSettings,
                  eval_slice_columns: Sequence[str]) -> _Findings:
  """Checks the settings against the sampled rows; infers the problem type
  (when not set) and the small integer codes to treat as categorical."""
  _check_columns_exist(sample, label_key, {
      **columns.listed(), 'EVAL_SLICE_COLUMNS': list(eval_slice_columns)})
  problem_type, why, label_kind = _check_label(label_key, problem_type,
                                               sample)
  for column in columns.bucketize:
    if value_kind(sample.values(column)) == STRING:
      raise ConfigError(f'BUCKETIZE_COLUMNS names {column!r}, which holds '
                        'text: only numeric columns can be bucketized.')
  inputs = [c for c in sample.columns
            if c != label_key and c not in columns.drop]
  if not inputs:
    raise ConfigError('DROP_COLUMNS drops every column but the label: '
                      'nothing is left to learn from.')
  codes = _small_integer_codes(sample, inputs, columns)
  notes = [why] + ([f'small integer codes treated as categorical: '
                    f'{", ".join(codes)}'] if codes else [])
  return _Findings(problem_type, label_kind, notes, codes)


def _check_columns_exist(sample: Sample, label_key: str,
                         listed: Dict[str, List[str]]) -> None:
  """The label and every column a setting names must be in the CSV; one
  message names every setting that names another column."""
  known = set(sample.columns)
  wrong = []
  if label_key not in known:
    wrong.append(f'LABEL_KEY={label_key!r} is not a column of the CSV')
  for name, columns in listed.items():
    unknown = [c for c in columns if c not in known]
    if unknown:
      wrong.append(f'{name} names {", ".join(map(repr, unknown))}, not a '
                   'column of the CSV')
  if wrong:
    raise ConfigError('; '.join(wrong) + f' (columns: '
                      f'{", ".join(sample.columns)}).')


def _small_integer_codes(sample: Sample, inputs: Sequence[str],
                         columns: _ColumnSettings) -> List[str]:
  """Input columns no setting names whose values are a few integers."""
  configured = (set(columns.categorical) | set(columns.bucketize) |
                set(columns.vocab_sizes))
  codes = []
  for column in inputs:
    if column in configured:
      continue
    values = sample.values(column)
    # The count before the parse: counting distinct cells is cheaper than
    # parsing them, and it rules out most numeric columns of a wide table.
    if (values and len(set(values)) <= MAX_AUTO_CATEGORICAL_VALUES and
        value_kind(values) == INT):
      codes.append(column)
  return codes


def from_settings(settings, data_path: Optional[str] = None) -> Resolved:
  """`resolve` with the problem settings of `settings` (configs.load(...)),
  on `data_path` (default: settings.DATA_PATH)."""
  return resolve(
      data_path or settings.DATA_PATH,
      label_key=settings.LABEL_KEY,
      problem_type=settings.PROBLEM_TYPE,
      drop_columns=settings.DROP_COLUMNS,
      categorical_columns=settings.CATEGORICAL_COLUMNS,
      bucketize_columns=settings.BUCKETIZE_COLUMNS,
      vocab_size=settings.VOCAB_SIZE,
      oov_buckets=settings.OOV_BUCKETS,
      vocab_size_overrides=settings.VOCAB_SIZE_OVERRIDES,
      eval_slice_columns=settings.EVAL_SLICE_COLUMNS,
      fmt=csv_format.CsvFormat.from_settings(settings))
