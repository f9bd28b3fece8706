"""A new data set needs only DATA_PATH and LABEL_KEY: the bundled taxi data's
settings (pipeline/data_files/bundled_data.py) stay with it, and each pipeline has its
own reviewed schema (pipeline/data_files/schema_file.py)."""
import os

import pandas as pd
import pytest

from local.run import preflight
from pipeline.data_files import bundled_data
from pipeline import configs
from pipeline.data_files import csv_format
from pipeline import problem_spec
from pipeline.data_files import schema_file
from pipeline import setting_types
from pipeline.errors import ConfigError
from pipeline.errors import DataError
from tests import helpers

_TAXI_COLUMN_SETTINGS = {
    'DROP_COLUMNS': 'tips,trip_start_timestamp,pickup_census_tract',
    'CATEGORICAL_COLUMNS': (
        'trip_start_hour,trip_start_day,trip_start_month,'
        'pickup_community_area,dropoff_community_area,dropoff_census_tract'),
    'EVAL_SLICE_COLUMNS': ('payment_type',),
}


def _column_settings(settings):
  return {name: getattr(settings, name) for name in _TAXI_COLUMN_SETTINGS}


def test_the_bundled_data_keeps_its_settings_and_schema():
  settings = configs.load({})
  assert _column_settings(settings) == _TAXI_COLUMN_SETTINGS
  assert settings.PIPELINE_NAME == 'taxi-tips'
  assert settings.SCHEMA_PATH == helpers.REVIEWED_SCHEMA
  assert os.path.isfile(settings.SCHEMA_PATH)


def test_a_slice_or_an_export_of_the_bundled_data_keeps_them(tmp_path):
  folder = str(tmp_path / 'copy')
  helpers.write_slice(folder, rows=20)
  pd.read_csv(helpers.BUNDLED_CSV, nrows=20).to_csv(
      tmp_path / 'export.csv', sep=';', decimal=',', index=False)
  os.makedirs(tmp_path / 'excel')
  os.rename(tmp_path / 'export.csv', tmp_path / 'excel' / 'data.csv')
  for data in (folder, str(tmp_path / 'excel')):
    settings = configs.load({'DATA_PATH': data})
    assert _column_settings(settings) == _TAXI_COLUMN_SETTINGS, data
    assert settings.PIPELINE_NAME == 'taxi-tips'


def test_span_folders_of_the_bundled_data_keep_them(tmp_path):
  """Spans of the bundled data (span-1/, span-2/) are the bundled data: the
  newest span's header decides, as it is the one a run ingests."""
  spans = tmp_path / 'taxi_spans'
  helpers.write_slice(str(spans / 'span-1'), rows=20)
  helpers.write_breast_cancer(str(spans / 'span-2'))
  other = configs.load({'DATA_PATH': str(spans)})
  assert not any(_column_settings(other).values())
  assert other.PIPELINE_NAME == 'taxi-spans'  # the folder's name
  helpers.write_slice(str(spans / 'span-3'), rows=20)
  settings = configs.load({'DATA_PATH': str(spans)})
  assert _column_settings(settings) == _TAXI_COLUMN_SETTINGS
  assert settings.PIPELINE_NAME == 'taxi-tips'


def test_other_data_gets_empty_column_settings_and_its_folder_name(tmp_path):
  folder = str(tmp_path / 'Road Works_2024')
  helpers.write_iris(folder)
  settings = configs.load({'DATA_PATH': folder, 'LABEL_KEY': 'species'})
  assert _column_settings(settings) == {
      'DROP_COLUMNS': '', 'CATEGORICAL_COLUMNS': '', 'EVAL_SLICE_COLUMNS': ()}
  assert settings.PIPELINE_NAME == 'road-works-2024'
  assert settings.SCHEMA_PATH == schema_file.pipeline_schema_path(
      'road-works-2024')
  assert schema_file.read_text(settings.SCHEMA_PATH) is None  # none yet
  # Set, they win.
  settings = configs.load({'DATA_PATH': folder, 'PIPELINE_NAME': 'iris',
                           'DROP_COLUMNS': 'garden', 'SCHEMA_PATH': ''})
  assert (settings.PIPELINE_NAME, settings.DROP_COLUMNS,
          settings.SCHEMA_PATH) == ('iris', 'garden', '')


@pytest.mark.parametrize('data_path, name', [
    ('/data/inspections', 'inspections'),
    ('/data/inspections/', 'inspections'),
    ('gs://bucket/input/Bridge_Loads', 'bridge-loads'),
    ('/data/___', 'pipeline'),
    ('/data/' + 'x' * 200, 'x' * 128),
])
def test_a_folder_name_becomes_a_valid_pipeline_name(data_path, name):
  assert bundled_data.folder_pipeline_name(data_path) == name
  configs.load({'PIPELINE_NAME': name})  # passes the setting's own check


def test_what_followed_from_the_data_is_printed(tmp_path):
  folder = str(tmp_path / 'iris')
  helpers.write_iris(folder)
  environ = {'DATA_PATH': folder, 'LABEL_KEY': 'species'}
  lines = bundled_data.describe(
      configs.load(environ), setting_types.defaulted(configs, environ))
  assert lines == [
      "Pipeline name 'iris': from the data folder's name (set PIPELINE_NAME "
      'to choose another).',
      'Column settings: DROP_COLUMNS, CATEGORICAL_COLUMNS, EVAL_SLICE_COLUMNS '
      'empty (their defaults describe the bundled taxi data only); inferred '
      'from the data instead.']
  environ.update(PIPELINE_NAME='flowers', DROP_COLUMNS='garden')
  assert bundled_data.describe(
      configs.load(environ), setting_types.defaulted(configs, environ)) == [
          'Column settings: CATEGORICAL_COLUMNS, EVAL_SLICE_COLUMNS empty '
          '(their defaults describe the bundled taxi data only); inferred '
          'from the data instead.']
  assert bundled_data.describe(configs.load({}), ('DROP_COLUMNS',)) == [
      "Column settings: the bundled taxi data's DROP_COLUMNS "
      '(pipeline/configs.py).']


def test_a_new_data_set_passes_the_checks_with_only_data_path_and_label(
    tmp_path):
  """What stopped every new data set: the taxi schema and the taxi column
  settings followed DATA_PATH."""
  folder = str(tmp_path / 'iris')
  helpers.write_iris(folder)
  settings = configs.load({'DATA_PATH': folder, 'LABEL_KEY': 'species'})
  schema_text = schema_file.read_text(settings.SCHEMA_PATH)
  assert schema_text is None
  preflight.check_csv_folder(settings.DATA_PATH, None, settings.SCHEMA_PATH,
                             fmt=csv_format.CsvFormat.from_settings(settings))
  resolved = problem_spec.from_settings(settings)
  assert resolved.problem.problem_type == 'multiclass'
  assert resolved.problem.drop_columns == []


def test_settings_naming_absent_columns_are_listed_in_one_message(tmp_path):
  folder = str(tmp_path / 'iris')
  helpers.write_iris(folder)
  environ = {'DATA_PATH': folder, 'LABEL_KEY': 'species',
             **{name: ','.join(value) if isinstance(value, tuple) else value
                for name, value in _TAXI_COLUMN_SETTINGS.items()}}
  with pytest.raises(ConfigError) as error:
    problem_spec.from_settings(configs.load(environ))
  assert str(error.value).startswith(
      "DROP_COLUMNS names 'tips', 'trip_start_timestamp', "
      "'pickup_census_tract', not a column of the CSV; CATEGORICAL_COLUMNS "
      "names 'trip_start_hour', ")
  assert ("; EVAL_SLICE_COLUMNS names 'payment_type', not a column of the "
          'CSV (columns: sepal_length, ') in str(error.value)


def test_a_semicolon_export_is_sampled_with_its_settings(tmp_path):
  folder = str(tmp_path / 'diabetes')
  path = helpers.write_diabetes(folder)
  pd.read_csv(path).to_csv(path, sep=';', decimal=',', index=False)
  environ = {'DATA_PATH': folder, 'LABEL_KEY': 'progression',
             'EVAL_RMSE_THRESHOLD': '70'}
  with pytest.raises(DataError, match=r"splits into 11 columns on ';'.*set "
                     "CSV_DELIMITER=';' \\(and CSV_DECIMAL=','"):
    problem_spec.from_settings(configs.load(environ))
  environ.update(CSV_DELIMITER=';', CSV_DECIMAL=',')
  resolved = problem_spec.from_settings(configs.load(environ))
  # The decimal-comma label reads as numbers: a regression.
  assert resolved.problem.problem_type == 'regression'
  assert resolved.problem.label_kind == 'float'
