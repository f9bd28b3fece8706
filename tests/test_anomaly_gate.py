"""pipeline/components/anomaly_rules.py and anomaly_gate.py: which anomalies stop a run."""
import os

from google.protobuf import text_format
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from pipeline.components import anomaly_gate
from pipeline.components import anomaly_rules
from pipeline.errors import DataError

_Info = anomalies_pb2.AnomalyInfo


@pytest.fixture(scope='module')
def real_anomalies():
  """TFDV's anomalies for unseen categories and a string in a number column."""
  train = pd.DataFrame({'company': ['Acme', 'Bolt'] * 50,
                        'fare': [1.5, 2.5] * 50})
  serving = pd.DataFrame({'company': ['Acme', 'Zip', 'Zap', 'Bolt'] * 25,
                          'fare': ['1.5', 'cheap'] * 50})
  schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(train))
  return tfdv.validate_statistics(
      tfdv.generate_statistics_from_dataframe(serving), schema)


def _write(folder, split, anomalies):
  os.makedirs(os.path.join(folder, f'Split-{split}'))
  with open(os.path.join(folder, f'Split-{split}',
                         anomaly_gate.ANOMALIES_FILE_NAME), 'wb') as f:
    f.write(anomalies.SerializeToString())


def test_reads_every_split_and_names_column_kind_and_file(real_anomalies,
                                                          tmp_path):
  _write(str(tmp_path), 'train', real_anomalies)
  _write(str(tmp_path), 'eval', anomalies_pb2.Anomalies())
  found = anomaly_gate.read_anomalies(str(tmp_path), ['train', 'eval'])
  kinds = {(a.column, a.kind) for a in found}
  assert ('company', 'ENUM_TYPE_UNEXPECTED_STRING_VALUES') in kinds
  assert {a.column for a in found} == {'company', 'fare'}
  assert {a.split for a in found} == {'train'}
  message = anomaly_rules.describe(found)
  assert '\n' not in message
  assert 'in 2 column(s)' in message
  assert 'company: Unexpected string values' in message
  assert 'Zap' in message and 'Zip' in message  # TFDV's long description
  assert os.path.join(str(tmp_path), 'Split-train', 'SchemaDiff.pb') in message


def test_allow_list_by_column_by_type_and_by_wildcard(real_anomalies):
  found = anomaly_rules.from_proto(real_anomalies, 'train', 'f')
  block = lambda text: {a.column for a in anomaly_rules.blocking(  # pylint: disable=g-long-lambda
      found, anomaly_rules.parse_allow_list(text), 'ERROR')}
  assert block('') == {'company', 'fare'}
  assert block('company') == {'fare'}
  assert block('company:ENUM_TYPE_UNEXPECTED_STRING_VALUES') == {'fare'}
  assert block('*:ENUM_TYPE_UNEXPECTED_STRING_VALUES') == {'fare'}
  assert block('company:FEATURE_TYPE_LOW_NUMBER_VALUES') == {'company',
                                                              'fare'}
  assert block('company, fare') == set()


def test_severity_threshold():
  anomalies = anomalies_pb2.Anomalies()
  anomalies.anomaly_info['a'].severity = _Info.WARNING
  anomalies.anomaly_info['a'].reason.add(
      type=_Info.FEATURE_TYPE_HIGH_NUMBER_VALUES, short_description='w')
  anomalies.anomaly_info['b'].severity = _Info.ERROR
  anomalies.anomaly_info['b'].reason.add(
      type=_Info.SCHEMA_MISSING_COLUMN, short_description='e')
  anomalies.dataset_anomaly_info.severity = _Info.UNKNOWN
  anomalies.dataset_anomaly_info.reason.add(
      type=_Info.DATASET_LOW_NUM_EXAMPLES, short_description='d')
  found = anomaly_rules.from_proto(anomalies, 'eval', 'f')
  columns = lambda severity: {a.column for a in anomaly_rules.blocking(  # pylint: disable=g-long-lambda
      found, [], severity)}
  assert columns('ERROR') == {'b', anomaly_rules.DATASET}
  assert columns('WARNING') == {'a', 'b', anomaly_rules.DATASET}


def test_allow_list_rejects_unknown_anomaly_types():
  with pytest.raises(ValueError, match="'fare:NO_SUCH_TYPE' names no anomaly"):
    anomaly_rules.parse_allow_list('company, fare:NO_SUCH_TYPE')


def test_gate_error_is_a_data_error():
  assert issubclass(anomaly_gate.AnomaliesFound, DataError)


def test_long_descriptions_are_cut_short():
  anomalies = anomalies_pb2.Anomalies()
  info = anomalies.anomaly_info['company']
  info.severity = _Info.ERROR
  info.reason.add(type=_Info.ENUM_TYPE_UNEXPECTED_STRING_VALUES,
                  short_description='Unexpected string values',
                  description='Examples contain values missing from the '
                  'schema: ' + ', '.join(f'Cab {n} (<1%)' for n in range(999)))
  [anomaly] = anomaly_rules.from_proto(anomalies, 'train', 'f')
  words = anomaly.in_words()
  assert words.startswith('company: Unexpected string values (Examples '
                          'contain values missing from the schema: Cab 0')
  assert words.endswith(' ...)')
  assert len(words) < anomaly_rules.LONG_DESCRIPTION_CHARS + 60


def test_transform_reads_the_checked_schema_without_presence_only_columns(
    tmp_path):
  # The gate's executor as the orchestrator runs it, on anomalies without
  # a finding: the Trainer's copy is the schema as checked; Transform's
  # leaves out the columns checked for presence only, whose type nothing
  # checks (fitted_schema_gen.py).
  def artifact(kind, name):
    made = kind()
    made.uri = str(tmp_path / name)
    return made

  anomalies = artifact(standard_artifacts.ExampleAnomalies, 'anomalies')
  anomalies.split_names = artifact_utils.encode_split_names(['train'])
  _write(anomalies.uri, 'train', anomalies_pb2.Anomalies())
  schema = artifact(standard_artifacts.Schema, 'schema')
  os.makedirs(schema.uri)
  text = ('feature { name: "fare" type: FLOAT }\n'
          'feature { name: "tract" lifecycle_stage: DEBUG_ONLY }\n')
  with open(os.path.join(schema.uri, 'schema.pbtxt'), 'w') as f:
    f.write(text)
  checked = artifact(standard_artifacts.Schema, 'checked')
  transform = artifact(standard_artifacts.Schema, 'transform')
  executor = anomaly_gate.AnomalyGate.EXECUTOR_SPEC.executor_class()
  executor.Do({'anomalies': [anomalies], 'schema': [schema]},
              {'checked_schema': [checked], 'transform_schema': [transform]},
              {'allowed_anomalies': '', 'min_severity': 'ERROR',
               'drift_action': 'stop'})

  def names(folder):
    with open(os.path.join(folder, 'schema.pbtxt')) as f:
      parsed = text_format.Parse(f.read(), schema_pb2.Schema())
    return [feature.name for feature in parsed.feature]

  assert names(checked.uri) == ['fare', 'tract']
  assert names(transform.uri) == ['fare']
