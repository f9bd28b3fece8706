"""How the data's CSV text is read: the delimiter, the decimal mark, and the
forms common tools write.

Every reader of the data uses this module, so a file reads the same way in
ExampleGen's executor (pipeline/components/columnar_csv_example_gen.py), the
pre-flight checks (local/run/preflight.py), the problem's sample
(pipeline/problem_spec.py) and `python -m local.serving.predict`:

- `CsvFormat(delimiter, decimal)` holds the settings CSV_DELIMITER (`,`
  unless set; a Norwegian spreadsheet exports `;`) and CSV_DECIMAL (`.`, or
  `,` for decimal commas: `12,5` is the number 12.5).
- A UTF-8 byte order mark before the header (Excel's "CSV UTF-8") is
  ignored; lines may end in CRLF or LF; quoted fields may hold the
  delimiter, quotes (doubled) and line breaks; blank lines are skipped.
- A whole number may be written as a float (`123.0`, `1.0e3`; pandas writes
  integer columns with empty cells so): `whole_number` reads it as the
  integer it is, and refuses `123.5`.

Light on purpose (the standard library only): the checks before a run use
it before TensorFlow loads.
"""
import csv
import dataclasses
import decimal
import re
from typing import Iterator, List, Optional, TextIO

# Delimiters a header is tried with when it does not split on the configured
# one, most likely first.
_OTHER_DELIMITERS = (';', '\t', ',', '|')
# How CSV_DELIMITER may spell a tab, since an environment variable holding a
# tab character is hard to type.
TAB_NAMES = ('\\t', 'tab', 'TAB')
DECIMAL_MARKS = ('.', ',')
BYTE_ORDER_MARK = '\ufeff'
_INT64_LIMIT = 2**63  # whole numbers beyond an int64 are not integers here
# A number with a decimal comma (`-12,5`, `1,5e3`), and how it is written
# with a decimal point: re (here) and RE2 (Arrow, in ExampleGen) read both
# alike.
DECIMAL_COMMA_PATTERN = r'^([+-]?[0-9]*),([0-9]*(?:[eE][+-]?[0-9]+)?)$'
DECIMAL_COMMA_REPLACEMENT = r'\1.\2'
_DECIMAL_COMMA = re.compile(DECIMAL_COMMA_PATTERN)
# What `whole_number` takes: a sign, digits, an optional fraction and
# exponent (no spaces, underscores, 'nan' or 'inf', which Python also reads).
_NUMBER = re.compile(r'[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?')


def delimiter_name(delimiter: str) -> str:
  """How a message names a delimiter: `;`, or `tab`."""
  return 'tab' if delimiter == '\t' else delimiter


@dataclasses.dataclass(frozen=True)
class CsvFormat:
  """The CSV_DELIMITER and CSV_DECIMAL settings.

  Attributes:
    delimiter: the one character between fields.
    decimal: the decimal mark of numbers, '.' or ','.
  """
  delimiter: str = ','
  decimal: str = '.'

  @classmethod
  def from_settings(cls, settings) -> 'CsvFormat':
    """CSV_DELIMITER and CSV_DECIMAL of `settings` (configs.load(...))."""
    return cls(settings.CSV_DELIMITER, settings.CSV_DECIMAL)

  def to_config(self) -> dict:
    """The format as a JSON-able dict (ExampleGen's custom_config)."""
    return {'delimiter': self.delimiter, 'decimal': self.decimal}

  @classmethod
  def from_config(cls, config: Optional[dict]) -> 'CsvFormat':
    """The inverse of `to_config`; the defaults for an empty config."""
    config = config or {}
    return cls(config.get('delimiter', ','), config.get('decimal', '.'))

  def reader(self, lines: TextIO) -> Iterator[List[str]]:
    """csv.reader for a text file opened with newline=''; raises csv.Error
    on an unclosed quote."""
    return csv.reader(lines, delimiter=self.delimiter, strict=True)

  def number_text(self, cell: str) -> str:
    """`cell` as Python and Arrow read numbers: with a decimal comma, a cell
    that is a number with one (`12,5`) -> `12.5`; anything else unchanged
    (so `1.234,5` stays text)."""
    if self.decimal == '.':
      return cell
    return _DECIMAL_COMMA.sub(DECIMAL_COMMA_REPLACEMENT, cell)

  def is_number(self, cell: str) -> bool:
    """Whether the (non-empty) cell is a number in this format."""
    return bool(_NUMBER.fullmatch(self.number_text(cell.strip())))

  def whole_number(self, cell: str) -> Optional[int]:
    """The integer a cell holds, also when written as a float (`123.0`,
    `1.0e3`, with a decimal comma `123,0`); None when it holds no whole
    number (`123.5`, text)."""
    text = self.number_text(cell.strip())
    if not _NUMBER.fullmatch(text):
      return None
    value = decimal.Decimal(text)
    if value != value.to_integral_value() or abs(value) >= _INT64_LIMIT:
      return None
    return int(value)


def header_fields(line: str, csv_format: CsvFormat) -> List[str]:
  """The column names in a header line (a byte order mark dropped, each
  name stripped of spaces)."""
  line = line.lstrip(BYTE_ORDER_MARK).rstrip('\r\n')
  fields = next(csv.reader([line], delimiter=csv_format.delimiter), [])
  return [name.strip() for name in fields]


def likely_delimiter(line: str, csv_format: CsvFormat) -> Optional[str]:
  """Another delimiter the header line splits on, when it does not split on
  the configured one; None otherwise."""
  if len(header_fields(line, csv_format)) > 1:
    return None
  for other in _OTHER_DELIMITERS:
    if other != csv_format.delimiter and len(header_fields(
        line, CsvFormat(other, '.'))) > 1:
      return other
  return None


def delimiter_advice(path: str, line: str,
                     csv_format: CsvFormat) -> Optional[str]:
  """The one-line refusal of a header that splits on another delimiter than
  CSV_DELIMITER, naming it and the settings to use; None if it does not."""
  other = likely_delimiter(line, csv_format)
  if other is None:
    return None
  name = delimiter_name(other)
  advice = (f'set CSV_DELIMITER={name!r}' if other != '\t' else
            "set CSV_DELIMITER='\\t'")
  if other == ';' and csv_format.decimal == '.':
    advice += (" (and CSV_DECIMAL=',' if its numbers have decimal commas, "
               "as a spreadsheet's ';' export has)")
  return (f'{path}:1: the header is one column '
          f'{line.strip()[:60]!r} with CSV_DELIMITER='
          f'{delimiter_name(csv_format.delimiter)!r}, but splits into '
          f'{len(header_fields(line, CsvFormat(other)))} columns on '
          f'{name!r}: the file looks {name!r}-separated; {advice}')


def parse_delimiter(value: str) -> str:
  """CSV_DELIMITER's value as the character it names (`\\t`, `tab`)."""
  return '\t' if value in TAB_NAMES else value


def check_marks(delimiter: str, decimal_mark: str) -> Optional[str]:
  """Why a delimiter and decimal mark cannot be used together, or None."""
  if len(delimiter) != 1 or delimiter in '"\r\n':
    return (f'CSV_DELIMITER={delimiter!r} is invalid: use one character '
            "such as ',' or ';' (or '\\t' for tab), not a quote or a line "
            'break.')
  if decimal_mark not in DECIMAL_MARKS:
    return (f'CSV_DECIMAL={decimal_mark!r} is invalid: use '
            f"{' or '.join(map(repr, DECIMAL_MARKS))}.")
  if delimiter == decimal_mark:
    return (f'CSV_DELIMITER and CSV_DECIMAL are both {delimiter!r}: a file '
            "with decimal commas is separated by ';' "
            "(CSV_DELIMITER=';').")
  return None


