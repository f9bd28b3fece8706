"""pipeline/data_files/csv_format.py: numbers as written by pandas and spreadsheets, the
delimiter a header was written with, and the settings' rules."""
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.data_files import csv_format

COMMA = csv_format.CsvFormat(';', ',')
POINT = csv_format.CsvFormat()


@pytest.mark.parametrize('fmt, cell, whole', [
    (POINT, '123', 123), (POINT, '123.0', 123), (POINT, '1.0e3', 1000),
    (POINT, '-17031832200.0', -17031832200), (POINT, '123.5', None),
    (POINT, '123,0', None), (POINT, 'nan', None), (POINT, '1e30', None),
    (COMMA, '123,0', 123), (COMMA, '1,5e3', 1500), (COMMA, '123,5', None),
    (COMMA, 'Ørje, Norge', None),
])
def test_whole_numbers_however_written(fmt, cell, whole):
  assert fmt.whole_number(cell) == whole


@pytest.mark.parametrize('cell, number', [
    ('12,5', True), ('-0,25', True), ('7', True), ('1.5', True),
    ('1.234,5', False), ('1 234,5', False), ('Ås, Taxi', False), (',', False),
])
def test_decimal_commas(cell, number):
  assert COMMA.is_number(cell) is number


def test_python_and_arrow_read_decimal_commas_alike():
  cells = ['12,5', '-0,25', '1,5e3', '1.234,5', 'Ås, Taxi', '7', ',5']
  arrow = pc.replace_substring_regex(
      pa.array(cells), pattern=csv_format.DECIMAL_COMMA_PATTERN,
      replacement=csv_format.DECIMAL_COMMA_REPLACEMENT).to_pylist()
  assert arrow == [COMMA.number_text(cell) for cell in cells]


def test_the_likely_delimiter_of_a_header():
  assert csv_format.likely_delimiter('a;b;c', POINT) == ';'
  assert csv_format.likely_delimiter('a\tb', POINT) == '\t'
  assert csv_format.likely_delimiter('a,b;c', POINT) is None  # it splits
  assert csv_format.likely_delimiter('a,b', COMMA) == ','
  assert csv_format.likely_delimiter('single', POINT) is None
  assert csv_format.header_fields('\ufeff a ;b\r\n', COMMA) == ['a', 'b']


@pytest.mark.parametrize('delimiter, decimal, problem', [
    (',', '.', None), (';', ',', None), ('\t', ',', None),
    (',', ',', "both ','"), (';;', '.', "CSV_DELIMITER=';;' is invalid"),
    ('"', '.', 'not a quote'), (';', ' ', "CSV_DECIMAL=' ' is invalid"),
])
def test_the_marks_a_file_can_have(delimiter, decimal, problem):
  found = csv_format.check_marks(delimiter, decimal)
  assert (found is None) if problem is None else (problem in found)
