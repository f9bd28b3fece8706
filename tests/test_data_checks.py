"""local/run/preflight.py: the pre-flight checks, one bad input each, and once
through local_runner.py's command line."""
import bz2
import gzip
import os

import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from local import output_layout
from local.run import preflight
from pipeline.data_files import csv_format
from pipeline.data_files import schema_file
from pipeline.errors import DataError
from tests import helpers

LABEL = 'label'
HEADER = 'fare,company,label\n'
GOOD_ROWS = '1.5,Acme,0\n2.0,Bolt,1\n,Acme,1\n'


def _schema():
  schema = schema_pb2.Schema()
  for name, kind in (('fare', schema_pb2.FLOAT), ('company', schema_pb2.BYTES),
                     ('label', schema_pb2.INT)):
    schema.feature.add(name=name, type=kind)
  return schema


def _folder(tmp_path, **files):
  for name, text in files.items():
    (tmp_path / name).write_text(text)
  return str(tmp_path)


def _check(folder, schema=None, sample_rows=1000,
           fmt=csv_format.CsvFormat()):
  return preflight.check_csv_folder(folder, schema, 'schema.pbtxt',
                                    sample_rows, fmt)


def test_good_data_passes_and_reports_what_was_read(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + GOOD_ROWS,
                                'b.csv': HEADER + GOOD_ROWS,
                                'README.md': 'not data'})
  report = _check(folder, _schema())
  assert [os.path.basename(p) for p in report.files] == ['a.csv', 'b.csv']
  assert report.rows_checked == 6


def test_no_csv_files(tmp_path):
  folder = _folder(tmp_path, **{'README.md': 'x'})
  with pytest.raises(DataError, match=r'^no CSV files \(\.csv, \.csv\.gz, '
                     r'\.csv\.bz2, \.csv\.xz\) in the data folder'):
    _check(folder)


def test_missing_folder(tmp_path):
  with pytest.raises(DataError, match='does not exist'):
    _check(str(tmp_path / 'nope'))


def test_empty_file(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': ''})
  with pytest.raises(DataError, match=r'a\.csv is empty: expected a header'):
    _check(folder)


def test_header_only(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER})
  with pytest.raises(DataError, match=r'a\.csv has a header but no data rows'):
    _check(folder)


def test_different_headers_name_both_files(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + GOOD_ROWS,
                                'b.csv': 'fare,label\n1,0\n'})
  with pytest.raises(DataError) as error:
    _check(folder)
  message = str(error.value)
  assert 'b.csv and ' in message and 'a.csv have different headers' in message
  assert 'lacks company' in message


def test_same_columns_in_another_order(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + GOOD_ROWS,
                                'b.csv': 'label,fare,company\n0,1,Acme\n'})
  with pytest.raises(DataError, match='same columns in another order'):
    _check(folder)


def test_unbalanced_quote_names_file_and_line(tmp_path):
  folder = _folder(tmp_path, **{
      'a.csv': HEADER + '1.0,Acme,0\n2.0,"Bolt,1\n3.0,Acme,0\n'})
  with pytest.raises(DataError,
                     match=r'a\.csv:3: malformed row: unbalanced quote'):
    _check(folder)


def test_unbalanced_quote_with_no_closing_quote_anywhere(tmp_path):
  rows = ''.join(f'{n},Acme,0\n' for n in range(300000))  # 2 MB after it
  folder = _folder(tmp_path, **{'a.csv': HEADER + '1.0,"Acme,0\n' + rows})
  with pytest.raises(DataError,
                     match=r'a\.csv:2: malformed row: unbalanced quote'):
    _check(folder)


def test_quoted_commas_are_fine(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + '1.0,"Acme, Inc.",0\n'
                                         '2.0,"Bolt ""X""",1\n'})
  assert _check(folder).rows_checked == 2


def test_wrong_field_count_names_file_and_line(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + '1.0,Acme,0\n2.0,1\n'})
  with pytest.raises(DataError,
                     match=r'a\.csv:3: malformed row: 2 fields where the '
                     r'header has 3'):
    _check(folder)


def test_missing_and_extra_columns_against_the_reviewed_schema(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': 'fare,colour,label\n1,red,0\n2,b,1\n'})
  with pytest.raises(DataError) as error:
    _check(folder, _schema())
  message = str(error.value)
  assert 'does not match the reviewed schema schema.pbtxt' in message
  assert 'missing column(s) company' in message
  assert 'extra column(s) colour' in message


def test_text_in_a_numeric_column(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + GOOD_ROWS + 'cheap,Acme,0\n'})
  with pytest.raises(DataError,
                     match=r"a\.csv:5: column fare holds 'cheap', not a "
                     'number'):
    _check(folder, _schema())


def test_a_fraction_in_an_integer_column_names_column_and_line(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + '1,Acme,0\n1,Acme,123.5\n'})
  with pytest.raises(DataError, match=r"a\.csv:3: column label holds "
                     r"'123\.5', not an integer as the reviewed schema "
                     'schema.pbtxt requires: correct the cell, or approve'):
    _check(folder, _schema())


def test_whole_numbers_written_as_floats_are_integers(tmp_path):
  # pandas writes an integer column with empty cells as floats.
  folder = _folder(tmp_path, **{
      'a.csv': HEADER + '1.5,Acme,1.0\n2,Bolt,0.0\n,Acme,1.0e0\n3,X,\n'})
  assert _check(folder, _schema()).rows_checked == 4


def _spreadsheet_export(tmp_path):
  """What a Norwegian spreadsheet writes: ';', decimal commas, a byte order
  mark, CRLF, a quoted field over two lines and a blank last line."""
  (tmp_path / 'a.csv').write_bytes(
      '\ufefffare;company;label\r\n12,5;"Ås; Taxi";1\r\n'
      '7;"Ørje\r\nTaxi";0\r\n-0,25;Acme;1\r\n\r\n'.encode('utf-8'))
  return str(tmp_path)


def test_a_spreadsheet_export_passes_with_its_two_settings(tmp_path):
  report = _check(_spreadsheet_export(tmp_path), _schema(),
                  fmt=csv_format.CsvFormat(';', ','))
  assert report.rows_checked == 3


def test_a_semicolon_header_names_the_delimiter_and_the_settings(tmp_path):
  folder = _spreadsheet_export(tmp_path)
  with pytest.raises(DataError) as error:
    _check(folder, _schema())
  assert str(error.value) == (
      f"{folder}/a.csv:1: the header is one column 'fare;company;label' with "
      "CSV_DELIMITER=',', but splits into 3 columns on ';': the file looks "
      "';'-separated; set CSV_DELIMITER=';' (and CSV_DECIMAL=',' if its "
      "numbers have decimal commas, as a spreadsheet's ';' export has)")


def test_decimal_commas_without_the_setting_say_which_setting(tmp_path):
  folder = _spreadsheet_export(tmp_path)
  with pytest.raises(DataError, match=r"a\.csv:2: column fare holds '12,5', "
                     r'not a number .*: it reads as a number with decimal '
                     "comma, CSV_DECIMAL=','"):
    _check(folder, _schema(), fmt=csv_format.CsvFormat(';', '.'))


def test_text_that_is_not_utf8_names_the_line_and_the_fix(tmp_path):
  (tmp_path / 'a.csv').write_bytes(
      HEADER.encode() + 'Ørje,Acme,1\n'.encode('cp1252'))
  with pytest.raises(DataError, match=r'a\.csv:2: not UTF-8 text \(byte 0xd8'
                     r".*Set CSV_ENCODING='cp1252' \(or 'latin-1'\), or save "
                     r'it as "CSV UTF-8".*iconv -f WINDOWS-1252 -t UTF-8'):
    _check(str(tmp_path))
  # With the setting, the export passes.
  report = _check(str(tmp_path), fmt=csv_format.CsvFormat(encoding='cp1252'))
  assert report.rows_checked == 1


def test_a_compressed_file_is_checked_as_its_plain_copy(tmp_path):
  with gzip.open(tmp_path / 'a.csv.gz', 'wt', newline='') as f:
    f.write(HEADER + GOOD_ROWS + 'cheap,Acme,0\n')
  with pytest.raises(DataError, match=r"a\.csv\.gz:5: column fare holds "
                     "'cheap', not a number"):
    _check(str(tmp_path), _schema())
  with bz2.open(tmp_path / 'a.csv.gz', 'wt') as f:  # not gzip inside
    f.write(HEADER + GOOD_ROWS)
  with pytest.raises(DataError, match=r'a\.csv\.gz cannot be decompressed '
                     r'\(.*\): compress it again, or store it as plain CSV'):
    _check(str(tmp_path))
  os.remove(tmp_path / 'a.csv.gz')
  with bz2.open(tmp_path / 'a.csv.bz2', 'wt') as f:
    f.write(HEADER + GOOD_ROWS)
  assert _check(str(tmp_path), _schema()).rows_checked == 3
  (tmp_path / 'a.csv').write_text(HEADER + GOOD_ROWS)
  with pytest.raises(DataError, match=r'a\.csv and .*a\.csv\.bz2 hold the '
                     'same file, compressed and not: every row would be read '
                     'twice; keep one of them'):
    _check(str(tmp_path))


def _labelled_rows(count, missing):
  """`count` rows whose label is empty in the first `missing` ones."""
  return ''.join(f'{i}.5,Acme,{"" if i < missing else i % 2}\n'
                 for i in range(count))


def test_rows_without_a_label_are_counted(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + _labelled_rows(100, 3)})
  report = preflight.check_csv_folder(folder, label_key=LABEL,
                                      max_missing_label_fraction=0.1)
  assert report.missing_labels == 3
  assert report.missing_label_note() == (
      ', 3 without a label (3.0%: left out of training and evaluation)')


def test_too_many_rows_without_a_label_are_refused_naming_the_setting(
    tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + _labelled_rows(100, 20)})
  with pytest.raises(DataError, match=r"a\.csv:2: the label 'label' is empty "
                     r'in 20 of 100 sampled rows \(20\.0%\), above '
                     r'MAX_MISSING_LABEL_FRACTION=0\.1: fill in the labels or '
                     'remove those rows'):
    preflight.check_csv_folder(folder, label_key=LABEL,
                               max_missing_label_fraction=0.1)
  report = preflight.check_csv_folder(folder, label_key=LABEL,
                                      max_missing_label_fraction=0.25)
  assert report.missing_labels == 20


def test_pandas_row_index_column_says_how_to_write_without_it(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': ',' + HEADER + '0,' + GOOD_ROWS})
  with pytest.raises(DataError, match=r'a\.csv:1: the first column has no '
                     r'name: pandas writes its row index so; write the file '
                     r'with `to_csv\(..., index=False\)`'):
    _check(folder)


def test_spreadsheet_column_names_pass(tmp_path):
  header = 'Vekt (kg),Årsdøgntrafikk,label\n'
  folder = _folder(tmp_path, **{'a.csv': header + GOOD_ROWS})
  assert _check(folder)


def test_two_columns_tensorflow_would_name_alike_are_named_with_the_fix(
    tmp_path):
  header = 'Vekt (kg),Vekt _kg_,label\n'
  folder = _folder(tmp_path, **{'a.csv': header + GOOD_ROWS})
  with pytest.raises(DataError, match=r"a\.csv:1: columns 'Vekt \(kg\)' and "
                     r"'Vekt _kg_' would both be the model input 'Vekt__kg_'"
                     r'.*: rename one of them'):
    _check(folder)


def test_a_label_the_reviewed_schema_lacks_says_how_to_move_on(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + GOOD_ROWS})
  schema = _schema()
  del schema.feature[2]  # the schema of a pipeline that predicted another
  schema.feature.add(name='tip', type=schema_pb2.FLOAT)
  with pytest.raises(DataError) as error:
    preflight.check_csv_folder(folder, schema, 'schema.pbtxt', 10,
                               pipeline_name='fares', label_key='label')
  message = str(error.value)
  assert 'missing column(s) tip; extra column(s) label' in message
  assert ('give it its own PIPELINE_NAME; if the data of pipeline '
          "'fares' changed on purpose, review and approve a new schema: "
          '`SCHEMA_PATH= make run`, then `make schema`') in message
  # The same columns, another label: the schema marks the one it was
  # approved for (`make schema` does).
  schema = _schema()
  assert schema_file.mark_label(schema, 'label')
  with pytest.raises(DataError, match="LABEL_KEY='fare', but the reviewed "
                     "schema schema.pbtxt was approved for the label 'label': "
                     'the schema no longer fits .*its own PIPELINE_NAME'):
    preflight.check_csv_folder(folder, schema, 'schema.pbtxt', 10,
                               pipeline_name='fares', label_key='fare')
  preflight.check_csv_folder(folder, schema, 'schema.pbtxt', 10,
                             pipeline_name='fares', label_key='label')


def test_values_beyond_the_sample_are_left_to_the_gate(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + GOOD_ROWS + 'cheap,Acme,0\n'})
  assert _check(folder, _schema(), sample_rows=3).rows_checked == 3


def test_cloud_storage_is_left_to_the_pipeline():
  report = preflight.check_csv_folder('gs://bucket/input')
  assert report.files == [] and 'Cloud Storage' in report.skipped


def test_every_message_is_one_line(tmp_path):
  folder = _folder(tmp_path, **{'a.csv': HEADER + GOOD_ROWS,
                                'b.csv': 'x,y\n1,2\n'})
  with pytest.raises(DataError) as error:
    _check(folder)
  assert '\n' not in str(error.value)


def test_the_local_runner_stops_on_bad_data_in_one_line(tmp_path):
  """Once through the command line: local_runner.py checks the data against
  the reviewed schema before any Beam job, says what is wrong in one line,
  exits 1 and writes nothing (a served model is left as it was)."""
  header, rows = helpers.drop_columns(*helpers.bundled_rows(50), ['fare'])
  data_file = helpers.write_csv(str(tmp_path / 'data'), header, rows)
  output = str(tmp_path / 'output')
  served = output_layout.serving_model_dir(output, 'preflight-test')
  os.makedirs(os.path.join(served, '1'))
  with open(os.path.join(served, '1', 'saved_model.pb'), 'wb') as f:
    f.write(b'the served model')
  before = helpers.tree_digest(output)

  run = helpers.run_local_pipeline(os.path.dirname(data_file), output,
                                   'preflight-test', timeout=300,
                                   SCHEMA_PATH=helpers.REVIEWED_SCHEMA)

  assert 'Traceback' not in run.output, run.output
  assert run.output == (
      f'data error: {data_file} does not match the reviewed schema '
      f'{helpers.REVIEWED_SCHEMA}: missing column(s) fare (fix the data; if '
      'it is another data set, give it its own PIPELINE_NAME; if the data of '
      "pipeline 'preflight-test' changed on purpose, review and approve a "
      'new schema: `SCHEMA_PATH= make run`, then `make schema`; see '
      'docs/data_quality.md)\n')
  assert run.returncode == 1
  assert helpers.tree_digest(output) == before
