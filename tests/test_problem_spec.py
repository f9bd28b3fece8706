"""pipeline/problem_spec.py: inferring the problem and rejecting bad settings."""
import gzip
import os

import pytest

from models import features
from pipeline import configs
from pipeline import problem_spec
from pipeline.data_files import csv_format
from pipeline.errors import ConfigError
from tests import helpers


def _csv(tmp_path, header, rows, name=helpers.CSV_NAME):
  folder = str(tmp_path / 'data')
  helpers.write_csv(folder, header, rows, name)
  return folder


_HEADER = ('id', 'size', 'colour', 'code', 'label')


def _data(tmp_path, labels, codes=None):
  codes = codes or [i % 4 for i in range(len(labels))]
  rows = [(i, 1.5 * i, 'red' if i % 2 else 'blue', codes[i], label)
          for i, label in enumerate(labels)]
  return _csv(tmp_path, _HEADER, rows)


def _resolve(data_path, **settings):
  settings.setdefault('label_key', 'label')
  return problem_spec.resolve(data_path, **settings)


@pytest.mark.parametrize('labels, expected, why', [
    ([0, 1] * 10, features.BINARY, '2 integer classes'),
    (['yes', 'no', 'no'] * 5, features.BINARY, '2 text classes'),
    (['cat', 'dog', 'bird'] * 5, features.MULTICLASS, '3 text classes'),
    ([1, 2, 3, 4] * 5, features.MULTICLASS, '4 integer classes'),
    # Two integer classes that are not 0 and 1: a class vocabulary, so
    # multiclass (a sigmoid needs 0/1 labels).
    ([1, 2] * 10, features.MULTICLASS, '2 integer classes'),
    ([0.5 * i for i in range(30)], features.REGRESSION,
     'float label with 30 distinct values'),
    (list(range(30)), features.REGRESSION,
     'integer label with 30 distinct values'),
])
def test_problem_type_is_inferred_from_the_label(tmp_path, labels, expected,
                                                 why):
  resolved = _resolve(_data(tmp_path, labels))
  assert resolved.problem.problem_type == expected
  assert resolved.problem.label_kind and resolved.problem.label_kind in why
  assert why in resolved.describe()
  assert resolved.describe().startswith('Problem: ')


def test_settings_become_the_problem_description(tmp_path):
  resolved = _resolve(
      _data(tmp_path, [0, 1] * 10, codes=[100 + i for i in range(20)]),
      problem_type='binary', drop_columns='id', categorical_columns='code',
      bucketize_columns='size:4', vocab_size=50, oov_buckets=2,
      vocab_size_overrides='colour:1')
  assert resolved.problem == features.Problem(
      label_key='label', problem_type='binary', drop_columns=['id'],
      categorical_columns=['code'], bucketize={'size': 4}, vocab_size=50,
      oov_buckets=2, vocab_sizes={'colour': 1}, label_kind='integer')
  assert 'set by PROBLEM_TYPE' in resolved.describe()
  # It survives the trip through a component's JSON custom_config.
  assert features.Problem.from_config(
      {'problem': resolved.problem.to_config()}) == resolved.problem


def test_small_integer_codes_are_categorical_without_being_listed(tmp_path):
  # `code` has 4 values; `id` has 20, above the limit of 10.
  resolved = _resolve(_data(tmp_path, [0, 1] * 10))
  assert resolved.problem.categorical_columns == ['code']
  assert 'small integer codes treated as categorical: code' in (
      resolved.describe())


def test_every_csv_file_is_sampled(tmp_path):
  folder = _csv(tmp_path, ('x', 'label'), [(1, 'a'), (2, 'a')], 'a.csv')
  _csv(tmp_path, ('x', 'label'), [(3, 'b')], 'b.csv')
  (tmp_path / 'data' / 'README.md').write_text('not data')
  assert _resolve(folder).problem.problem_type == features.BINARY


def test_the_sample_matches_each_file_by_its_own_header(tmp_path):
  folder = str(tmp_path / 'data')
  os.makedirs(folder)
  # The second file orders its columns otherwise and lacks one; blank lines
  # are skipped, a short row's missing cells are empty, a long row's extra
  # cells are left out, cells and names are stripped.
  (tmp_path / 'data' / 'a.csv').write_text(
      'x, label ,note\n 1 ,a,first\n\n2,b\n')
  (tmp_path / 'data' / 'b.csv').write_text(
      'label,x\nc,3,extra\n d,\n')
  sample = problem_spec.read_sample(folder)
  assert sample.columns == ['x', 'label', 'note']
  assert sample.num_rows == 4
  assert sample.cells == {'x': ['1', '2', '3', ''],
                          'label': ['a', 'b', 'c', 'd'],
                          'note': ['first', '', '', '']}
  assert sample.values('x') == ['1', '2', '3']
  assert sample.values('note') == ['first']
  assert problem_spec.read_sample(folder, max_rows=3).cells['label'] == [
      'a', 'b', 'c']
  assert problem_spec.read_sample(folder, max_rows=2).num_rows == 2


def test_a_repeated_column_name_is_sampled_once(tmp_path):
  folder = str(tmp_path / 'data')
  os.makedirs(folder)
  # As a dict per row kept it: the last column of the name.
  (tmp_path / 'data' / 'a.csv').write_text('x,y,x\n1,a,2\n3,b,4\n')
  sample = problem_spec.read_sample(folder)
  assert sample.cells == {'x': ['2', '4'], 'y': ['a', 'b']}
  assert sample.values('x') == ['2', '4']


def test_a_decimal_comma_sample_holds_python_numbers(tmp_path):
  folder = str(tmp_path / 'data')
  os.makedirs(folder)
  (tmp_path / 'data' / 'a.csv').write_text('x;label\n1,5;a\n2;b\n')
  sample = problem_spec.read_sample(
      folder, fmt=csv_format.CsvFormat(delimiter=';', decimal=','))
  assert sample.cells == {'x': ['1.5', '2'], 'label': ['a', 'b']}


@pytest.mark.parametrize('settings, message', [
    (dict(label_key='tip'),
     "LABEL_KEY='tip' is not a column of the CSV (columns: id, size, colour, "
     'code, label).'),
    (dict(drop_columns='id,ident'),
     "DROP_COLUMNS names 'ident', not a column of the CSV"),
    (dict(categorical_columns='shade'),
     "CATEGORICAL_COLUMNS names 'shade', not a column of the CSV"),
    (dict(bucketize_columns='weight:3'),
     "BUCKETIZE_COLUMNS names 'weight', not a column of the CSV"),
    (dict(vocab_size_overrides='hue:3'),
     "VOCAB_SIZE_OVERRIDES names 'hue', not a column of the CSV"),
    (dict(eval_slice_columns=('colour', 'payment_type')),
     "EVAL_SLICE_COLUMNS names 'payment_type', not a column of the CSV"),
    (dict(bucketize_columns='colour:3'),
     "BUCKETIZE_COLUMNS names 'colour', which holds text"),
    (dict(bucketize_columns='size'),
     "BUCKETIZE_COLUMNS: 'size' is not column:number"),
    (dict(bucketize_columns='size:1'),
     "BUCKETIZE_COLUMNS: 'size:1' needs a number of at least 2"),
    (dict(drop_columns='label'),
     "DROP_COLUMNS names the label 'label' (LABEL_KEY)."),
    (dict(drop_columns='id,id'), 'DROP_COLUMNS lists id more than once.'),
    (dict(categorical_columns='size', bucketize_columns='size:3'),
     'size: listed in both CATEGORICAL_COLUMNS and BUCKETIZE_COLUMNS'),
    (dict(vocab_size_overrides='size:5', bucketize_columns='size:3'),
     'size: listed in both VOCAB_SIZE_OVERRIDES and BUCKETIZE_COLUMNS'),
    (dict(drop_columns='code', categorical_columns='code'),
     'code: listed in DROP_COLUMNS and also configured as a feature'),
    (dict(drop_columns='id,size,colour,code'),
     'DROP_COLUMNS drops every column but the label'),
    (dict(problem_type='regression'),
     'PROBLEM_TYPE=regression needs a numeric label, but '
     "LABEL_KEY='label' holds text such as 'no', 'yes'."),
])
def test_bad_settings_are_one_line_errors_naming_them(tmp_path, settings,
                                                      message):
  folder = _data(tmp_path, ['yes', 'no'] * 10)
  with pytest.raises(ConfigError) as error:
    _resolve(folder, **settings)
  assert message in str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('labels, settings, message', [
    (['a'] * 20, {}, "LABEL_KEY='label' has the same value 'a' in all 20 "
     'sampled rows: there is nothing to learn.'),
    ([''] * 20, {}, "LABEL_KEY='label' is empty in all 20 sampled rows."),
    (['a', 'b', 'c'] * 5, dict(problem_type='binary'),
     'PROBLEM_TYPE=binary needs exactly 2 classes'),
    ([1, 2] * 10, dict(problem_type='binary'),
     'PROBLEM_TYPE=binary needs a numeric label of 0 and 1'),
])
def test_bad_labels_are_one_line_errors(tmp_path, labels, settings, message):
  with pytest.raises(ConfigError) as error:
    _resolve(_data(tmp_path, labels), **settings)
  assert message in str(error.value)
  assert '\n' not in str(error.value)


def test_rows_with_an_empty_label_are_left_out_of_the_problem(tmp_path):
  # The data checks count them and refuse too many
  # (MAX_MISSING_LABEL_FRACTION); the classes come from the rest.
  resolved = _resolve(_data(tmp_path, ['a', 'b', ''] * 5))
  assert resolved.problem.problem_type == features.BINARY
  assert '2 text classes' in resolved.describe()


def test_a_folder_without_csv_files_is_an_error(tmp_path):
  (tmp_path / 'data.csv.bak').write_text('a,label\n1,2\n')
  with pytest.raises(ConfigError, match=r'has no CSV files \(\.csv, '
                     r'\.csv\.gz, \.csv\.bz2, \.csv\.xz\)'):
    _resolve(str(tmp_path))


def test_a_compressed_cp1252_export_gives_the_sample_of_its_original(
    tmp_path):
  original = _data(tmp_path / 'original', ['blå', 'grønn'] * 10)
  with open(os.path.join(original, helpers.CSV_NAME), encoding='utf-8') as f:
    text = f.read()
  os.makedirs(tmp_path / 'export')
  with gzip.open(tmp_path / 'export' / 'data.csv.gz', 'wb') as f:
    f.write(text.encode('cp1252'))
  fmt = csv_format.CsvFormat(encoding='cp1252')
  assert (problem_spec.read_sample(str(tmp_path / 'export'), fmt=fmt) ==
          problem_spec.read_sample(original))


def test_cloud_storage_data_needs_an_explicit_problem_type():
  with pytest.raises(ConfigError, match='PROBLEM_TYPE must be set when '
                     'DATA_PATH is on Cloud Storage'):
    _resolve('gs://bucket/input/data')
  resolved = _resolve('gs://bucket/input/data', problem_type='multiclass',
                      drop_columns='id')
  assert resolved.problem.problem_type == features.MULTICLASS
  assert 'columns not checked' in resolved.describe()


def test_bundled_data_resolves_to_todays_taxi_problem():
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  resolved = problem_spec.from_settings(configs.load({}))  # the defaults
  assert resolved.problem.problem_type == features.BINARY
  assert resolved.problem.label_key == 'big_tipper'
  assert 'tips' in resolved.problem.drop_columns  # the label's source
  assert 'trip_start_hour' in resolved.problem.categorical_columns


def test_unread_columns_are_the_label_and_the_dropped_columns():
  settings = configs.load({'LABEL_KEY': 'fare', 'DROP_COLUMNS': ' tips, company'})
  assert problem_spec.unread_columns(settings) == ['fare', 'tips', 'company']
  twice = configs.load({'DROP_COLUMNS': 'tips,tips'})
  with pytest.raises(ConfigError, match='DROP_COLUMNS lists tips'):
    problem_spec.unread_columns(twice)
