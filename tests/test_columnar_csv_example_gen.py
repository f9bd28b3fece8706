"""The columnar CSV executor writes what TFX's CsvExampleGen writes.

Both executors run on the same awkward CSV files (mixed int/float cells,
empty cells, a column empty in every row, quoted commas and line breaks, two
files) and on a slice of the bundled data: the same examples, the same split
names and bucket ratios, and the same split on every run.
"""
import collections
import glob
import gzip
import os

import pandas as pd
import pyarrow as pa
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.example_gen.csv_example_gen import executor as stock_executor
from tfx.dsl.components.base import base_beam_executor
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from pipeline.data_files import csv_format
from pipeline.data_files import schema_file
from pipeline.components import columnar_csv_example_gen as columnar
from pipeline.errors import DataError
from tests import helpers
from tests.helpers import write_slice

HEADER = 'id,fare,miles,company,note,empty,flag\n'
_LABEL = 'big_tipper'  # the bundled data's label
ROWS_A = [
    '1,12.5,3,Taxi Co,,,1\n',
    '2,7,,"Comma, Inc.","line one\nline two",,0\n',
    '3,,0.25,,"say ""hi""",,1\n',
    '\n',  # blank lines are skipped by both
    '-4,1e3,2,Taxi Co,plain,,0\n',
]
ROWS_B = [
    '5,0,1,Other,,,1\n',
    '6,3.25,4,Other,x,,\n',
]


def _write(folder, name, rows):
  with open(os.path.join(folder, name), 'w', newline='') as f:
    f.write(HEADER)
    f.writelines(rows)


def _run(executor_class, input_base, output_dir, input_splits=None,
         custom_config=None, pattern=None):
  examples = tfx.types.standard_artifacts.Examples()
  examples.uri = output_dir
  exec_properties = _exec_properties(input_base, custom_config, input_splits,
                                     pattern)
  executor_class().Do({}, {specs.EXAMPLES_KEY: [examples]}, exec_properties)
  return examples


def _exec_properties(input_base, custom_config=None, input_splits=None,
                     pattern=None):
  """ExampleGen's properties: one input split `pattern` (default `*.csv`)
  hashed 2:1 into train and eval, or the given input splits kept."""
  if input_splits:
    input_config = tfx.proto.Input(splits=[
        tfx.proto.Input.Split(name=name, pattern=split_pattern)
        for name, split_pattern in input_splits.items()])
    output_config = tfx.proto.Output()
  else:
    input_config = tfx.proto.Input(
        splits=[tfx.proto.Input.Split(name='all',
                                      pattern=pattern or '*.csv')])
    output_config = tfx.proto.Output(split_config=tfx.proto.SplitConfig(
        splits=[
            tfx.proto.SplitConfig.Split(name='train', hash_buckets=2),
            tfx.proto.SplitConfig.Split(name='eval', hash_buckets=1),
        ]))
  exec_properties = {
      specs.INPUT_BASE_KEY: input_base,
      specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
      specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output_config),
      specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
      # What the component passes by default.
      specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
  }
  if custom_config is not None:
    exec_properties[specs.CUSTOM_CONFIG_KEY] = proto_utils.proto_to_json(
        custom_config)
  return exec_properties


def _split_contents(output_dir):
  """split name -> Counter of deterministically serialized examples."""
  result = {}
  for split_dir in sorted(glob.glob(os.path.join(output_dir, 'Split-*'))):
    records = collections.Counter()
    for path in glob.glob(os.path.join(split_dir, '*.gz')):
      for record in tf.data.TFRecordDataset(path, compression_type='GZIP'):
        example = tf.train.Example.FromString(record.numpy())
        records[example.SerializeToString(deterministic=True)] += 1
    result[os.path.basename(split_dir)] = records
  return result


def _all_examples(contents):
  return sum(contents.values(), collections.Counter())


def test_same_examples_and_splits_as_csv_example_gen(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  _write(str(data), 'a.csv', ROWS_A)
  _write(str(data), 'b.csv', ROWS_B)

  stock = _run(stock_executor.Executor, str(data), str(tmp_path / 'stock'))
  ours = _run(columnar.Executor, str(data), str(tmp_path / 'ours'))

  expected = _split_contents(stock.uri)
  assert sum(_all_examples(expected).values()) == 6
  assert _all_examples(_split_contents(ours.uri)) == _all_examples(expected)
  assert ours.split_names == stock.split_names == '["train", "eval"]'
  for name in ('payload_format', 'file_format'):
    assert (ours.get_string_custom_property(name) ==
            stock.get_string_custom_property(name) != '')


def test_input_splits_are_kept(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  _write(str(data), 'train.csv', ROWS_A)
  _write(str(data), 'eval.csv', ROWS_B)
  splits = {'train': 'train.csv', 'eval': 'eval.csv'}
  stock = _run(stock_executor.Executor, str(data), str(tmp_path / 'stock'),
               splits)
  ours = _run(columnar.Executor, str(data), str(tmp_path / 'ours'), splits)
  expected = _split_contents(stock.uri)
  assert sum(expected['Split-eval'].values()) == 2
  assert _split_contents(ours.uri) == expected


def test_types_empty_cells_and_untyped_column(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  _write(str(data), 'a.csv', ROWS_A)
  ours = _run(columnar.Executor, str(data), str(tmp_path / 'ours'))
  examples = {}
  for counter in _split_contents(ours.uri).values():
    for record in counter:
      example = tf.train.Example.FromString(record)
      examples[example.features.feature['id'].int64_list.value[0]] = (
          example.features.feature)
  assert sorted(examples) == [-4, 1, 2, 3]
  # fare has '7' and '12.5': FLOAT; miles is empty in row 2: an empty list.
  assert examples[2]['fare'].float_list.value == [7.0]
  assert examples[2]['miles'].WhichOneof('kind') == 'float_list'
  assert list(examples[2]['miles'].float_list.value) == []
  assert examples[-4]['fare'].float_list.value == [1000.0]
  assert examples[2]['company'].bytes_list.value == [b'Comma, Inc.']
  assert examples[2]['note'].bytes_list.value == [b'line one\nline two']
  assert examples[3]['note'].bytes_list.value == [b'say "hi"']
  # Empty in every row: no type, an untyped feature as CsvExampleGen writes.
  assert examples[1]['empty'].WhichOneof('kind') is None
  assert examples[1]['flag'].int64_list.value == [1]


def test_same_examples_and_a_stable_split_on_the_bundled_data(tmp_path):
  data = tmp_path / 'data'
  write_slice(str(data), rows=3000)
  stock = _split_contents(
      _run(stock_executor.Executor, str(data), str(tmp_path / 'stock')).uri)
  ours = _split_contents(
      _run(columnar.Executor, str(data), str(tmp_path / 'ours')).uri)
  again = _split_contents(
      _run(columnar.Executor, str(data), str(tmp_path / 'again')).uri)
  assert _all_examples(ours) == _all_examples(stock)
  assert sum(_all_examples(ours).values()) == 3000
  # 2 of 3 hash buckets go to train: about 2000 rows (binomial sd about 26).
  assert 1880 < sum(ours['Split-train'].values()) < 2120
  assert again == ours  # the split does not change from run to run


def test_files_with_different_headers_are_refused(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  _write(str(data), 'a.csv', ROWS_A)
  with open(data / 'b.csv', 'w') as f:
    f.write('id,fare\n1,2\n')
  with pytest.raises(columnar.CsvHeaderError, match='b.csv'):
    _run(columnar.Executor, str(data), str(tmp_path / 'ours'))


def test_two_headers_tensorflow_would_name_alike_are_refused_naming_both(
    tmp_path):
  # The checks before a run refuse it on a local disk; ExampleGen on any.
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'a.csv').write_text('Vekt (kg),Vekt _kg_,label\n1,2,0\n')
  with pytest.raises(DataError, match=r"a\.csv:1: columns 'Vekt \(kg\)' and "
                     r"'Vekt _kg_' would both be the model input 'Vekt__kg_'"
                     '.*rename one of them'):
    _run(columnar.Executor, str(data), str(tmp_path / 'out'))


def test_the_local_runner_writes_without_a_whole_data_reshuffle(
    tmp_path, monkeypatch):
  """Beam's local runner would hold every example in memory to reshuffle."""
  def no_reshuffle(*unused_args, **unused_kwargs):
    raise AssertionError('WriteSplit (with its Reshuffle) was used')

  monkeypatch.setattr(columnar.write_split, 'WriteSplit', no_reshuffle)
  data = tmp_path / 'data'
  write_slice(str(data), rows=300)
  ours = _run(columnar.Executor, str(data), str(tmp_path / 'ours'))
  assert sum(_all_examples(_split_contents(ours.uri)).values()) == 300


def test_in_process_and_on_beam_each_split_holds_the_same_rows(tmp_path):
  """The local runner's writer (no Beam) and Beam's path (as on Dataflow)
  put every row in the same split; the files are gzipped TFRecords named
  as Beam names them."""
  data = tmp_path / 'data'
  write_slice(str(data), rows=400)
  local = _run(columnar.Executor, str(data), str(tmp_path / 'local'))
  runner = 'apache_beam.runners.portability.fn_api_runner.FnApiRunner'
  on_beam = tfx.types.standard_artifacts.Examples()
  on_beam.uri = str(tmp_path / 'beam')
  columnar.Executor(base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=[f'--runner={runner}'])).Do(
          {}, {specs.EXAMPLES_KEY: [on_beam]}, _exec_properties(str(data)))
  ours = _split_contents(local.uri)
  assert ours == _split_contents(on_beam.uri)
  assert sorted(sum(split.values()) for split in ours.values()) != [0, 400]
  assert sorted(os.listdir(os.path.join(local.uri, 'Split-train'))) == [
      'data_tfrecord-00000-of-00001.gz']
  assert local.split_names == on_beam.split_names


def test_row_hashes_are_pandas_row_hashes_for_every_kind_of_column():
  """The split of a row is its pandas row hash, as it always was."""
  batch = pa.RecordBatch.from_arrays([
      pa.array([1, -2, 3, 40], pa.int64()),
      pa.array([1, None, 3, None], pa.int64()),
      pa.array([0.5, None, -1e3, 2.25], pa.float32()),
      pa.array([b'Taxi Co', None, b'', 'Caf\u00e9'.encode()], pa.binary()),
      pa.array([None] * 4, pa.string()),  # empty in every row
  ], ['i', 'i_empty', 'f', 's', 'none'])
  expected = pd.util.hash_pandas_object(batch.to_pandas(), index=False)
  assert columnar.row_hashes(batch).tolist() == expected.tolist()
  one = pa.RecordBatch.from_arrays([batch.column(2)], ['f'])
  assert (columnar.row_hashes(one).tolist() ==
          pd.util.hash_pandas_object(one.to_pandas(), index=False).tolist())
  assert len(set(columnar.row_hashes(batch).tolist())) == 4


def test_memory_stays_flat_reading_in_blocks(tmp_path, monkeypatch):
  """Blocks, not the whole file, are held: a tiny block size still works."""
  monkeypatch.setattr(columnar, 'BLOCK_BYTES', 2048)
  data = tmp_path / 'data'
  path = write_slice(str(data), rows=500)
  names = columnar._header(path)  # pylint: disable=protected-access
  kinds = columnar.survey_file(path, names).kinds
  as_text = {name: pa.string() for name in names}
  blocks = list(columnar._blocks(path, names, as_text))  # pylint: disable=protected-access
  assert len(blocks) > 10
  assert sum(b.num_rows for b in blocks) == 500
  rows = list(columnar.encode_file(path, names, kinds))
  assert len(rows) == 500
  assert len({row_hash for row_hash, _ in rows}) > 490


def _numbers_csv(path, columns, rows):
  with open(path, 'w') as f:
    f.write(','.join(f'c{j}' for j in range(columns)) + '\n')
    for i in range(rows):
      f.write(','.join(f'{(i * 7 + j) % 1000}.5' for j in range(columns)) +
              '\n')


def test_a_wide_table_is_read_in_larger_blocks(tmp_path, monkeypatch):
  """The per-block costs are per column: a table with many columns gets
  blocks as many times larger, so the same bytes take as few blocks as in a
  narrow table, up to MAX_BLOCK_BYTES."""
  monkeypatch.setattr(columnar, 'BLOCK_BYTES', 4096)
  narrow, wide = str(tmp_path / 'narrow.csv'), str(tmp_path / 'wide.csv')
  _numbers_csv(narrow, 8, 2000)  # about 96 KB each
  _numbers_csv(wide, 256, 62)

  def blocks(path):
    names = columnar._header(path)  # pylint: disable=protected-access
    as_text = {name: pa.string() for name in names}
    return list(columnar._blocks(path, names, as_text))  # pylint: disable=protected-access

  narrow_blocks, wide_blocks = blocks(narrow), blocks(wide)
  assert sum(b.num_rows for b in narrow_blocks) == 2000
  assert sum(b.num_rows for b in wide_blocks) == 62
  assert len(narrow_blocks) > 16
  assert len(wide_blocks) <= 3
  rows = list(columnar.encode_file(wide, columnar._header(wide),  # pylint: disable=protected-access
                                   columnar.survey_file(
                                       wide, columnar._header(wide)).kinds))  # pylint: disable=protected-access
  assert len(rows) == 62
  monkeypatch.setattr(columnar, 'MAX_BLOCK_BYTES', 8192)
  assert len(blocks(wide)) > 8


# --- The CSVs people have: exports of the bundled data -----------------------


def _reviewed_integer_columns():
  with open(helpers.REVIEWED_SCHEMA) as f:
    schema = schema_file.parse(f.read())
  return [f.name for f in schema.feature if f.type == schema_pb2.INT]


def _read_with(tmp_path, name, fmt=csv_format.CsvFormat(), pattern=None):
  """The examples ExampleGen writes from tmp_path/name, told the reviewed
  schema's integer columns, as the pipeline tells it."""
  config = columnar.custom_config(fmt, _reviewed_integer_columns())
  return _split_contents(_run(columnar.Executor, str(tmp_path / name),
                              str(tmp_path / f'{name}_out'),
                              custom_config=config, pattern=pattern).uri)


@pytest.fixture(scope='module')
def bundled_slice(tmp_path_factory):
  """600 rows of the bundled data and the examples read from them."""
  tmp_path = tmp_path_factory.mktemp('exports')
  path = write_slice(str(tmp_path / 'original'), rows=600)
  return tmp_path, path, _read_with(tmp_path, 'original')


def test_a_pandas_round_trip_gives_the_original_examples(bundled_slice):
  tmp_path, original_csv, original = bundled_slice
  frame = pd.read_csv(original_csv)
  # pandas writes integer columns with empty cells as floats.
  assert frame['dropoff_census_tract'].dtype == 'float64'
  os.makedirs(tmp_path / 'pandas')
  frame.to_csv(tmp_path / 'pandas' / 'data.csv', index=False)
  assert '17031081500.0' in (tmp_path / 'pandas' / 'data.csv').read_text()
  assert _read_with(tmp_path, 'pandas') == original  # the same split, too


def test_a_semicolon_export_with_decimal_commas_gives_the_original_examples(
    bundled_slice):
  tmp_path, original_csv, original = bundled_slice
  os.makedirs(tmp_path / 'excel')
  export = tmp_path / 'excel' / 'data.csv'
  # What a Norwegian spreadsheet writes: ';', decimal commas, CRLF, a byte
  # order mark ("CSV UTF-8"), and a blank line at the end.
  pd.read_csv(original_csv).to_csv(export, sep=';', decimal=',', index=False,
                                   lineterminator='\r\n',
                                   encoding='utf-8-sig')
  with open(export, 'a', newline='') as f:
    f.write('\r\n')
  assert '12,45' in export.read_text(encoding='utf-8-sig')
  semicolons = _read_with(tmp_path, 'excel', csv_format.CsvFormat(';', ','))
  assert semicolons == original


def test_a_compressed_copy_gives_the_original_examples(bundled_slice):
  tmp_path, original_csv, original = bundled_slice
  os.makedirs(tmp_path / 'gzip')
  with open(original_csv, 'rb') as f, gzip.open(
      tmp_path / 'gzip' / 'data.csv.gz', 'wb') as out:
    out.write(f.read())
  # Beside it, a file the input pattern matches that is not data.
  (tmp_path / 'gzip' / 'data.csv.bak').write_text('not,the,data\n1,2,3\n')
  assert _read_with(tmp_path, 'gzip', pattern='*.csv*') == original


def test_a_windows_1252_export_gives_the_original_examples(bundled_slice):
  tmp_path, original_csv, original = bundled_slice
  frame = pd.read_csv(original_csv)
  # Letters outside ASCII, as a Norwegian export has them.
  frame['company'] = frame['company'].fillna('').str.replace('a', 'å')
  os.makedirs(tmp_path / 'utf8')
  frame.to_csv(tmp_path / 'utf8' / 'data.csv', index=False)
  os.makedirs(tmp_path / 'cp1252')
  frame.to_csv(tmp_path / 'cp1252' / 'data.csv', index=False,
               encoding='cp1252')
  utf8 = _read_with(tmp_path, 'utf8')
  assert sum(_all_examples(utf8).values()) == 600
  assert 'å'.encode() in b''.join(_all_examples(utf8))
  assert _read_with(tmp_path, 'cp1252',
                    csv_format.CsvFormat(encoding='cp1252')) == utf8


def test_text_that_is_not_utf8_is_refused_naming_cell_and_setting(tmp_path):
  # What the checks before a run see on a local disk, ExampleGen sees for
  # files on Cloud Storage.
  os.makedirs(tmp_path / 'data')
  with open(tmp_path / 'data' / 'data.csv', 'wb') as f:
    f.write(HEADER.encode() + ''.join(ROWS_A).encode())
    f.write('7,1,1,Ørje Taxi,,,1\n'.encode('cp1252'))
  with pytest.raises(DataError, match=r"data\.csv:8: not UTF-8 text in column "
                     r"company \(byte 0xd8 at character 1\).*Set "
                     "CSV_ENCODING='cp1252'"):
    _run(columnar.Executor, str(tmp_path / 'data'), str(tmp_path / 'out'))


def _without_label(header, rows, count):
  """The rows, the label cell emptied in every `len(rows) // count`-th."""
  label = header.index(_LABEL)
  step = len(rows) // count
  for row in rows[::step][:count]:
    row[label] = ''
  return rows


def test_rows_without_a_label_are_left_out_and_counted(tmp_path):
  header, rows = helpers.bundled_rows(400)
  helpers.write_csv(str(tmp_path / 'data'), header,
                    _without_label(header, rows, 12))  # 3 %
  labels = columnar.LabelRows(_LABEL, 0.1)
  examples = _run(columnar.Executor, str(tmp_path / 'data'),
                  str(tmp_path / 'out'), custom_config=columnar.custom_config(
                      csv_format.CsvFormat(), (), labels))
  assert examples.get_int_custom_property(columnar.ROWS_PROPERTY) == 400
  assert examples.get_int_custom_property(
      columnar.ROWS_WITHOUT_LABEL_PROPERTY) == 12
  written = _all_examples(_split_contents(examples.uri))
  assert sum(written.values()) == 388
  for record in written:
    label = tf.train.Example.FromString(record).features.feature[
        _LABEL]
    assert len(label.int64_list.value) == 1


def test_the_counts_are_recorded_on_the_path_dataflow_takes_too(tmp_path):
  """Beyond the local runner, the base executor's Do (with its Reshuffle)
  writes the examples; the counts come from the same Beam counters."""
  header, rows = helpers.bundled_rows(100)
  helpers.write_csv(str(tmp_path / 'data'), header,
                    _without_label(header, rows, 5))
  examples = tfx.types.standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'out')
  runner = 'apache_beam.runners.portability.fn_api_runner.FnApiRunner'
  executor = columnar.Executor(base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=[f'--runner={runner}']))
  exec_properties = _exec_properties(
      str(tmp_path / 'data'), columnar.custom_config(
          csv_format.CsvFormat(), (), columnar.LabelRows(_LABEL, 0.1)))
  executor.Do({}, {specs.EXAMPLES_KEY: [examples]}, exec_properties)
  assert (examples.get_int_custom_property(columnar.ROWS_PROPERTY),
          examples.get_int_custom_property(
              columnar.ROWS_WITHOUT_LABEL_PROPERTY)) == (100, 5)
  assert sum(_all_examples(_split_contents(examples.uri)).values()) == 95


def test_too_many_rows_without_a_label_stop_the_run_naming_the_setting(
    tmp_path):
  header, rows = helpers.bundled_rows(400)
  helpers.write_csv(str(tmp_path / 'data'), header,
                    _without_label(header, rows, 80))  # 20 %
  config = columnar.custom_config(csv_format.CsvFormat(), (),
                                  columnar.LabelRows(_LABEL, 0.1))
  with pytest.raises(DataError, match=r"data\.csv:2: the label 'big_tipper' "
                     r'is empty in 80 of 400 rows \(20\.0%\), above '
                     r'MAX_MISSING_LABEL_FRACTION=0\.1: fill in the labels'):
    _run(columnar.Executor, str(tmp_path / 'data'), str(tmp_path / 'out'),
         custom_config=config)
  assert not glob.glob(str(tmp_path / 'out' / 'Split-*' / '*.gz'))


def test_a_fraction_in_an_integer_column_is_refused_with_its_line(tmp_path):
  header, rows = helpers.bundled_rows(400)
  column = header.index('trip_seconds')
  rows[350][column] = '123.5'  # past the pre-flight's sample of a big file
  rows[10][column] = '300.0'  # a whole number written as a float is fine
  helpers.write_csv(str(tmp_path / 'data'), header, rows)
  with pytest.raises(DataError, match=r'data\.csv:352: column trip_seconds '
                     r"holds '123\.5', not an integer as the reviewed schema "
                     'requires'):
    _read_with(tmp_path, 'data')
