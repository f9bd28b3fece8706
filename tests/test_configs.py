"""pipeline/configs.py: defaults, typed environment overrides and validation."""
import csv
import dataclasses
import importlib
import os

import pytest

from pipeline import configs
from pipeline import setting_types
from pipeline.errors import ConfigError


@pytest.fixture
def load_configs():
  """configs.load() on an environment holding only the given variables."""
  return lambda **env: configs.load(env)


def test_defaults_without_any_environment(load_configs):
  c = load_configs()
  assert c.PIPELINE_NAME == 'taxi-tips'
  assert c.GOOGLE_CLOUD_PROJECT == ''
  assert c.GCS_BUCKET_NAME == ''  # no project, no bucket
  assert c.GOOGLE_CLOUD_REGION == 'europe-west3'
  assert c.GOOGLE_CLOUD_ZONE == 'europe-west3-a'
  # The gate must sit above always answering the bundled data's majority
  # class.
  with open(os.path.join(c.DATA_PATH, 'data.csv'), newline='') as f:
    labels = [row[c.LABEL_KEY] for row in csv.DictReader(f)]
  majority = max(labels.count(value) for value in set(labels)) / len(labels)
  assert 0.7 < majority < c.EVAL_ACCURACY_THRESHOLD <= 1


def test_overrides_are_typed(load_configs):
  c = load_configs(TRAIN_NUM_STEPS='250', EVAL_ACCURACY_THRESHOLD='0.9',
                   PIPELINE_NAME='road-incidents-2')
  assert c.TRAIN_NUM_STEPS == 250 and isinstance(c.TRAIN_NUM_STEPS, int)
  assert c.EVAL_ACCURACY_THRESHOLD == 0.9
  assert c.PIPELINE_NAME == 'road-incidents-2'


def test_bucket_is_derived_from_project_and_pipeline_name(load_configs):
  c = load_configs(GOOGLE_CLOUD_PROJECT='vegvesen-ml-42',
                   PIPELINE_NAME='traffic')
  assert c.GCS_BUCKET_NAME == 'vegvesen-ml-42-traffic'
  c = load_configs(GOOGLE_CLOUD_PROJECT='vegvesen-ml-42',
                   GCS_BUCKET_NAME='my-own-bucket')
  assert c.GCS_BUCKET_NAME == 'my-own-bucket'


@pytest.mark.parametrize('env, message', [
    ({'PIPELINE_NAME': 'Taxi_Tips'}, "PIPELINE_NAME='Taxi_Tips' is invalid"),
    ({'PIPELINE_NAME': '-taxi'}, 'Kubeflow Pipelines v2 rule'),
    ({'PIPELINE_NAME': 'a' * 129}, 'PIPELINE_NAME='),
    ({'TRAIN_NUM_STEPS': '0'}, 'TRAIN_NUM_STEPS=0 must be greater than 0'),
    ({'TRAIN_NUM_STEPS': 'many'}, "TRAIN_NUM_STEPS='many' is not an integer"),
    ({'TRAINER_EVAL_NUM_STEPS': '-5'}, 'TRAINER_EVAL_NUM_STEPS=-5 must be'),
    ({'EVAL_ACCURACY_THRESHOLD': '1.5'},
     'EVAL_ACCURACY_THRESHOLD=1.5 must lie between 0 and 1'),
    ({'EVAL_ACCURACY_THRESHOLD': 'high'}, 'is not a number'),
    ({'EVAL_BASELINE_TOLERANCE': '-0.1'}, 'EVAL_BASELINE_TOLERANCE=-0.1'),
    ({'GOOGLE_CLOUD_PROJECT': 'My Project'}, 'GOOGLE_CLOUD_PROJECT='),
    ({'GOOGLE_CLOUD_ZONE': 'us-central1-a'},
     "GOOGLE_CLOUD_ZONE='us-central1-a' is not in GOOGLE_CLOUD_REGION"),
    ({'ALLOWED_ANOMALIES': 'company, fare:NOPE'},
     "ALLOWED_ANOMALIES='company, fare:NOPE' is invalid: 'fare:NOPE' names no "
     'anomaly type'),
    ({'ANOMALY_MIN_SEVERITY': 'FATAL'}, 'use ERROR or WARNING'),
    ({'PREFLIGHT_SAMPLE_ROWS': '0'}, 'PREFLIGHT_SAMPLE_ROWS=0 must be'),
])
def test_bad_values_name_the_setting(load_configs, env, message):
  with pytest.raises(ConfigError) as error:
    load_configs(**env)
  assert message in str(error.value)


def test_boolean_settings():
  switch = setting_types.setting(False)
  for raw, expected in (('true', True), ('1', True), ('No', False),
                        ('off', False)):
    assert switch.value('SOME_SWITCH', {'SOME_SWITCH': raw}, None) is expected
  with pytest.raises(ConfigError, match="SOME_SWITCH='maybe' is not a boolean"):
    switch.value('SOME_SWITCH', {'SOME_SWITCH': 'maybe'}, None)


def test_pipeline_name_follows_the_kubeflow_v2_rule(load_configs):
  for good in ('a', 'taxi-tips', '0-starts-with-digit', 'x' * 128):
    assert load_configs(PIPELINE_NAME=good).PIPELINE_NAME == good
  for bad in ('UPPER', 'under_score', 'dot.name', ' space', 'x' * 129):
    with pytest.raises(ConfigError, match='PIPELINE_NAME'):
      load_configs(PIPELINE_NAME=bad)


def test_eval_slice_columns_are_a_comma_separated_list(load_configs):
  assert load_configs().EVAL_SLICE_COLUMNS == ('payment_type',)
  assert load_configs(EVAL_SLICE_COLUMNS=' company , fare').EVAL_SLICE_COLUMNS == (
      'company', 'fare')
  assert load_configs(EVAL_SLICE_COLUMNS='').EVAL_SLICE_COLUMNS == ()
  assert load_configs(
      EVAL_SLICE_COLUMNS='Antall km, Vekt (kg),Hage/område'
  ).EVAL_SLICE_COLUMNS == ('Antall km', 'Vekt (kg)', 'Hage/område')
  with pytest.raises(ConfigError, match=r"EVAL_SLICE_COLUMNS='a,,b' is "
                     'invalid: give comma-separated column names'):
    load_configs(EVAL_SLICE_COLUMNS='a,,b')


def test_problem_settings_are_overridable_and_checked(load_configs):
  c = load_configs(LABEL_KEY='species', PROBLEM_TYPE='multiclass',
                   DROP_COLUMNS='', VOCAB_SIZE='50', EVAL_RMSE_THRESHOLD='12.5')
  assert (c.LABEL_KEY, c.PROBLEM_TYPE, c.DROP_COLUMNS, c.VOCAB_SIZE,
          c.EVAL_RMSE_THRESHOLD) == ('species', 'multiclass', '', 50, 12.5)
  with pytest.raises(ConfigError, match="PROBLEM_TYPE='ranking' is invalid: "
                     'use one of binary, multiclass, regression.'):
    load_configs(PROBLEM_TYPE='ranking')
  with pytest.raises(ConfigError, match='VOCAB_SIZE=0 must be greater than 0'):
    load_configs(PROBLEM_TYPE='', VOCAB_SIZE='0')
  with pytest.raises(ConfigError, match='LABEL_KEY must not be empty.'):
    load_configs(VOCAB_SIZE='50', LABEL_KEY=' ')


def test_data_gate_settings(load_configs):
  c = load_configs()
  assert c.SCHEMA_PATH.endswith('schema/taxi-tips/schema.pbtxt')
  assert os.path.isfile(c.SCHEMA_PATH)  # the bundled pipeline's own
  assert (c.ALLOWED_ANOMALIES, c.ANOMALY_MIN_SEVERITY) == ('', 'ERROR')
  c = load_configs(
      ALLOWED_ANOMALIES='company:ENUM_TYPE_UNEXPECTED_STRING_VALUES, fare',
      ANOMALY_MIN_SEVERITY='WARNING', SCHEMA_PATH='')
  assert c.ALLOWED_ANOMALIES.startswith('company:')
  assert c.ANOMALY_MIN_SEVERITY == 'WARNING' and c.SCHEMA_PATH == ''


def test_csv_encoding_must_be_a_codec_that_keeps_delimiters_ascii(
    load_configs):
  assert load_configs().CSV_ENCODING == 'utf-8'
  assert load_configs(CSV_ENCODING='cp1252').CSV_ENCODING == 'cp1252'
  with pytest.raises(ConfigError, match="CSV_ENCODING='klingon' is not an "
                     'encoding Python knows'):
    load_configs(CSV_ENCODING='klingon')
  with pytest.raises(ConfigError, match="CSV_ENCODING='utf-16' does not "
                     'write delimiters and line breaks as single ASCII bytes'):
    load_configs(CSV_ENCODING='utf-16')


def test_span_drift_and_concurrency_settings(load_configs):
  c = load_configs()
  assert (c.TRAIN_WINDOW_SPANS, c.DRIFT_ACTION, c.CONCURRENT_RUNS) == (
      3, 'stop', 'refuse')
  for name, bad in (('DRIFT_ACTION', 'ignore'), ('CONCURRENT_RUNS', 'queue'),
                    ('TRAIN_WINDOW_SPANS', '0')):
    with pytest.raises(ConfigError, match=name):
      load_configs(**{name: bad})


# Values that pass the checks, tried for each setting in turn, and the other
# settings that must change with it.
_CANDIDATES = {
    bool: ('false', 'true'),
    int: ('7', '3', '30'),
    float: ('0.5', '0.25'),
    str: ('road-incidents', 'WARNING', 'multiclass', '2.4.0', 'fare:N:2',
          'us-central1', 'europe-west3-b', 'payment_type', 'logs.requests', ';', ',',
          'warn', 'wait', 'cp1252'),
}
_COMPANIONS = {'GOOGLE_CLOUD_REGION': {'GOOGLE_CLOUD_ZONE': 'us-central1-a'},
               'CSV_DECIMAL': {'CSV_DELIMITER': ';'}}


def _changed_by_override(name: str, default) -> bool:
  """Whether some valid value of `name` in the environment changes it."""
  kind = str if isinstance(default, tuple) else type(default)
  for raw in _CANDIDATES[kind]:
    try:
      value = getattr(configs.load({name: raw, **_COMPANIONS.get(name, {})}),
                      name)
    except ConfigError as error:
      assert name in str(error)  # a refusal names the setting
      continue
    if value != default:
      return True
  return False


def test_every_setting_declared_in_configs_is_overridable():
  names = configs.Settings.names()
  declared = [name for name, value in vars(configs).items()
              if isinstance(value, setting_types.Setting)]
  assert list(names) == declared and len(names) > 40
  defaults = configs.load({})
  for name in names:
    assert _changed_by_override(name, getattr(defaults, name)), name


def test_derived_defaults_follow_their_sources_unless_overridden():
  s = configs.load({'PIPELINE_NAME': '9-lives', 'GOOGLE_CLOUD_REGION':
                    'asia-east1', 'GOOGLE_CLOUD_ZONE': 'asia-east1-b'})
  assert s.VERTEX_ENDPOINT_NAME == '9-lives'
  assert s.PIPELINE_SERVICE_ACCOUNT == 'p-9-lives-runner'  # starts with a letter
  assert s.GKE_CLUSTER_NAME == 'p-9-lives-cluster'
  assert s.VERTEX_SERVING_IMAGE.startswith('asia-docker.pkg.dev/')
  s = configs.load({'PIPELINE_NAME': 'x', 'VERTEX_ENDPOINT_NAME': 'serving'})
  assert s.VERTEX_ENDPOINT_NAME == 'serving'


def test_settings_are_a_frozen_value_read_from_the_given_environment(
    monkeypatch):
  monkeypatch.setenv('TRAIN_NUM_STEPS', '17')
  assert configs.load(os.environ).TRAIN_NUM_STEPS == 17
  assert configs.load({}).TRAIN_NUM_STEPS == 1000  # the environment given only
  loaded = configs.load({})
  with pytest.raises(dataclasses.FrozenInstanceError):
    loaded.TRAIN_NUM_STEPS = 5  # type: ignore[misc]


def test_load_or_exit_ends_a_command_with_one_line(capsys):
  with pytest.raises(SystemExit) as stopped:
    configs.load_or_exit({'TRAIN_NUM_STEPS': 'abc'})
  assert stopped.value.code == configs.CONFIG_ERROR_STATUS == 2
  assert capsys.readouterr().err == (
      "configuration error: TRAIN_NUM_STEPS='abc' is not an integer.\n")
  assert configs.load_or_exit({}) == configs.load({})


@pytest.mark.parametrize('command, argv', [
    ('local.monitor.monitor', ['--input', 'rows.csv']),
    ('local.schema.schema_export', []),
    ('deploy.schedules', ['list', '--target=vertex']),
])
def test_a_bad_setting_ends_each_command_with_one_line(command, argv,
                                                       monkeypatch, capsys):
  """The commands that read the settings in-process stop before any work."""
  monkeypatch.setenv('TRAIN_NUM_STEPS', 'abc')
  with pytest.raises(SystemExit) as stopped:
    importlib.import_module(command).main(argv)
  assert stopped.value.code == configs.CONFIG_ERROR_STATUS
  assert capsys.readouterr().err == (
      "configuration error: TRAIN_NUM_STEPS='abc' is not an integer.\n")

