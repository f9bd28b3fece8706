"""How the data's CSV text is read: the delimiter, the decimal mark, and the
forms common tools write.

Every reader of the data uses this module, so a file reads the same way in
ExampleGen's executor (pipeline/components/columnar_csv_example_gen.py), the
pre-flight checks (local/run/preflight.py), the problem's sample
(pipeline/problem_spec.py) and `python -m local.serving.predict`:

- `CsvFormat(delimiter, decimal, encoding)` holds the settings CSV_DELIMITER
  (`,` unless set; a Norwegian spreadsheet exports `;`), CSV_DECIMAL (`.`,
  or `,` for decimal commas: `12,5` is the number 12.5) and CSV_ENCODING
  (`utf-8`, or `cp1252` for a spreadsheet's plain "CSV" export on Windows).
- A data file is `*.csv`, or one compressed as Beam reads it by its name's
  ending (`data.csv.gz`, `.csv.bz2`, `.csv.xz`): `is_csv_file`,
  `csv_files` and `open_text` / `open_bytes`.
- A UTF-8 byte order mark before the header (Excel's "CSV UTF-8") is
  ignored; lines may end in CRLF or LF; quoted fields may hold the
  delimiter, quotes (doubled) and line breaks; blank lines are skipped.
- A whole number may be written as a float (`123.0`, `1.0e3`; pandas writes
  integer columns with empty cells so): `whole_number` reads it as the
  integer it is, and refuses `123.5`.

Light on purpose (the standard library only): the checks before a run use
it before TensorFlow loads.
"""
import bz2
import codecs
import csv
import dataclasses
import decimal
import gzip
import io
import lzma
import os
import re
import zlib
from typing import BinaryIO, Iterator, List, Optional, TextIO

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

# Compressed CSV files by their name's ending: the compressions Apache Beam
# reads by extension that the standard library reads too.
_DECOMPRESSORS = {'.gz': gzip.open, '.bz2': bz2.open, '.xz': lzma.open}
CSV_SUFFIX = '.csv'
CSV_FILE_SUFFIXES = (CSV_SUFFIX,) + tuple(
    CSV_SUFFIX + ending for ending in _DECOMPRESSORS)
# What ExampleGen's input pattern matches: every data file, and more
# (`data.csv.bak`), which its executor leaves out (`is_csv_file`).
CSV_FILE_GLOB = '*' + CSV_SUFFIX + '*'
# What reading a damaged compressed file raises (a damaged gzip file:
# OSError, or EOFError when cut short).
DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
DEFAULT_ENCODING = 'utf-8'


def is_csv_file(name: str) -> bool:
  """Whether a file name is a data file: `*.csv`, `*.csv.gz`, `*.csv.bz2`
  or `*.csv.xz`."""
  return name.endswith(CSV_FILE_SUFFIXES)


def csv_files(folder: str) -> List[str]:
  """The data files directly in a local `folder`, in name order."""
  if not os.path.isdir(folder):
    return []
  return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                if is_csv_file(name) and
                os.path.isfile(os.path.join(folder, name)))


def uncompressed_name(name: str) -> str:
  """`data.csv.gz` -> `data.csv`; other names unchanged."""
  for ending in _DECOMPRESSORS:
    if name.endswith(CSV_SUFFIX + ending):
      return name[:-len(ending)]
  return name


def open_bytes(path: str) -> BinaryIO:
  """A local data file's bytes, decompressed by its name's ending."""
  for ending, opener in _DECOMPRESSORS.items():
    if path.endswith(ending):
      return opener(path, 'rb')
  return open(path, 'rb')


def check_encoding(name: str) -> Optional[str]:
  """Why CSV_ENCODING=`name` cannot be used, or None."""
  try:
    codec = codecs.lookup(name)
  except LookupError:
    return (f'CSV_ENCODING={name!r} is not an encoding Python knows: use '
            "'utf-8' (the default), or 'cp1252' or 'latin-1' for a "
            'spreadsheet\'s plain "CSV" export.')
  if '\r\n,;"'.encode(codec.name, errors='replace') != b'\r\n,;"':
    return (f'CSV_ENCODING={name!r} does not write delimiters and line '
            "breaks as single ASCII bytes: convert the files to 'utf-8', or "
            "use an encoding such as 'cp1252' or 'latin-1'.")
  return None


def is_utf8(encoding: str) -> bool:
  """Whether `encoding` is a name of UTF-8 (with or without a BOM)."""
  return codecs.lookup(encoding).name in ('utf-8', 'utf-8-sig')


def delimiter_name(delimiter: str) -> str:
  """How a message names a delimiter: `;`, or `tab`."""
  return 'tab' if delimiter == '\t' else delimiter


@dataclasses.dataclass(frozen=True)
class CsvFormat:
  """The CSV_DELIMITER, CSV_DECIMAL and CSV_ENCODING settings.

  Attributes:
    delimiter: the one character between fields.
    decimal: the decimal mark of numbers, '.' or ','.
    encoding: the files' text encoding (a Python codec name).
  """
  delimiter: str = ','
  decimal: str = '.'
  encoding: str = DEFAULT_ENCODING

  @classmethod
  def from_settings(cls, settings) -> 'CsvFormat':
    """CSV_DELIMITER, CSV_DECIMAL and CSV_ENCODING of `settings`
    (configs.load(...))."""
    return cls(settings.CSV_DELIMITER, settings.CSV_DECIMAL,
               settings.CSV_ENCODING)

  def to_config(self) -> dict:
    """The format as a JSON-able dict (ExampleGen's custom_config). The
    encoding only when it is not UTF-8, so a UTF-8 pipeline's configuration
    (and cache key) is what it was before the setting existed."""
    config = {'delimiter': self.delimiter, 'decimal': self.decimal}
    if not is_utf8(self.encoding):
      config['encoding'] = self.encoding
    return config

  @classmethod
  def from_config(cls, config: Optional[dict]) -> 'CsvFormat':
    """The inverse of `to_config`; the defaults for an empty config."""
    config = config or {}
    return cls(config.get('delimiter', ','), config.get('decimal', '.'),
               config.get('encoding', DEFAULT_ENCODING))

  @property
  def text_encoding(self) -> str:
    """The codec text is decoded with: UTF-8 drops a byte order mark."""
    return 'utf-8-sig' if is_utf8(self.encoding) else self.encoding

  def open_text(self, path: str) -> TextIO:
    """A local data file (decompressed by its name's ending) as text for
    `reader` and csv.DictReader; raises UnicodeDecodeError on bytes that
    are not CSV_ENCODING text."""
    return io.TextIOWrapper(open_bytes(path), encoding=self.text_encoding,
                            newline='')

  def decode_error(self, path: str, line: int, raw: bytes,
                   error: UnicodeDecodeError, column: str = '') -> str:
    """The one-line refusal of a line (or a cell of `column`) that is not
    CSV_ENCODING text, naming the file, the line, the byte and the
    setting."""
    byte = raw[error.start:error.start + 1]
    where = f' in column {column}' if column else ''
    return (f'{path}:{line}: not {self._encoding_name()} text{where} (byte '
            f'0x{byte.hex()} at character {error.start + 1})'
            + self._encoding_advice())

  def text_error(self, path: str, error: UnicodeDecodeError) -> str:
    """The one-line refusal of a file that is not CSV_ENCODING text, where
    the line is not known (a reader of whole files)."""
    byte = error.object[error.start:error.start + 1]
    return (f'{path}: not {self._encoding_name()} text (byte 0x{byte.hex()})'
            + self._encoding_advice())

  def _encoding_name(self) -> str:
    return 'UTF-8' if is_utf8(self.encoding) else self.encoding

  def _encoding_advice(self) -> str:
    if is_utf8(self.encoding):
      return (': Windows-1252 or Latin-1, as a spreadsheet\'s plain "CSV" '
              'export writes ø and å? Set CSV_ENCODING=\'cp1252\' (or '
              '\'latin-1\'), or save it as "CSV UTF-8" (or convert it with '
              '`iconv -f WINDOWS-1252 -t UTF-8`)')
    return (': set CSV_ENCODING to the encoding the file was written in '
            "('utf-8', 'cp1252', 'latin-1', ...)")

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


