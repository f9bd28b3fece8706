"""pipeline/components/chunked_validation.py finds what one call of
tfdv.validate_statistics finds, proto for proto, checking a few columns per
call (3 here, so that a dozen columns make several groups)."""
import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.components import chunked_validation

_PER_CALL = 3


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
  rng = np.random.default_rng(seed)
  frame = pd.DataFrame({
      f'n{i}': rng.normal(shift * i, 1.0, rows) for i in range(6)})
  frame['count'] = rng.integers(0, 10, rows)
  frame['colour'] = rng.choice(['red', 'green', 'blue'], rows)
  frame['city'] = rng.choice(['Oslo', 'Bergen'], rows)
  frame['label'] = rng.integers(0, 2, rows)
  frame['kind'] = rng.choice(['a', 'b'], rows)
  frame['weight'] = rng.uniform(0, 1, rows)
  return frame


def _statistics(frame: pd.DataFrame):
  return tfdv.generate_statistics_from_dataframe(frame)


def _schema(frame: pd.DataFrame) -> schema_pb2.Schema:
  """The schema TFDV infers from `frame`, its features out of name order
  (groups follow the schema's order, TFDV's drift results the names')."""
  schema = tfdv.infer_schema(_statistics(frame))
  features = sorted(schema.feature, key=lambda f: f.name[::-1])
  del schema.feature[:]
  schema.feature.extend(features)
  return schema


def _assert_as_one_call(statistics, schema, previous=None,
                        split: bool = True) -> anomalies_pb2.Anomalies:
  expected = tfdv.validate_statistics(statistics, schema,
                                      previous_statistics=previous)
  assert chunked_validation._can_chunk(  # pylint: disable=protected-access
      schema, statistics, previous, _PER_CALL) == split
  got = chunked_validation.validate_statistics(
      statistics, schema, previous_statistics=previous,
      columns_per_call=_PER_CALL)
  assert got == expected
  return expected


def test_clean_data_has_no_anomalies_either_way():
  frame = _frame(200, seed=1)
  found = _assert_as_one_call(_statistics(frame), _schema(frame))
  assert not found.anomaly_info and not found.HasField('dataset_anomaly_info')


def test_anomalies_in_every_group_are_those_of_one_call():
  schema = _schema(_frame(200, seed=1))
  tfdv.get_feature(schema, 'count').int_domain.max = 5
  tfdv.get_feature(schema, 'n3').presence.min_fraction = 1.0
  schema.dataset_constraints.min_examples_count = 1000
  # Environments travel with every group (no environment is validated
  # here, as ExampleValidator names none).
  schema.default_environment.extend(['TRAINING', 'SERVING'])
  tfdv.get_feature(schema, 'label').not_in_environment.append('SERVING')
  frame = _frame(150, seed=2)
  frame['colour'] = np.where(frame.index % 3 == 0, 'purple', frame['colour'])
  frame['n3'] = np.where(frame.index % 2 == 0, np.nan, frame['n3'])
  frame['city'] = frame.index.astype(float) / 7  # text became numbers
  frame = frame.drop(columns=['kind'])  # a column the schema needs
  frame['extra'] = 1.0  # a column the schema lacks
  found = _assert_as_one_call(_statistics(frame), schema)
  assert set(found.anomaly_info) >= {'count', 'colour', 'n3', 'city', 'kind',
                                     'extra'}
  assert found.HasField('dataset_anomaly_info')


def test_drift_from_the_previous_span_is_that_of_one_call():
  schema = _schema(_frame(200, seed=1))
  for feature in schema.feature:
    if feature.type == schema_pb2.BYTES:
      feature.drift_comparator.infinity_norm.threshold = 0.01
    else:
      feature.drift_comparator.jensen_shannon_divergence.threshold = 0.01
  schema.dataset_constraints.num_examples_drift_comparator.min_fraction_threshold = 0.9  # pylint: disable=line-too-long
  previous = _statistics(_frame(400, seed=3))
  current = _statistics(_frame(150, seed=4, shift=0.5))
  found = _assert_as_one_call(current, schema, previous)
  assert len(found.drift_skew_info) == len(schema.feature)
  assert len(found.anomaly_info) > 3
  assert found.HasField('dataset_anomaly_info')
  paths = [tuple(i.path.step) for i in found.drift_skew_info]
  assert paths == sorted(paths)
  # A column the previous span lacked: its drift cannot be measured.
  without = statistics_pb2.DatasetFeatureStatisticsList()
  without.CopyFrom(previous)
  kept = [f for f in without.datasets[0].features if f.path.step != ['n4']]
  del without.datasets[0].features[:]
  without.datasets[0].features.extend(kept)
  assert 'n4' in _assert_as_one_call(current, schema, without).anomaly_info


def test_data_without_examples_is_missing_data_either_way():
  schema = _schema(_frame(200, seed=1))
  empty = statistics_pb2.DatasetFeatureStatisticsList()
  empty.datasets.add(num_examples=0)
  assert _assert_as_one_call(empty, schema).data_missing


def _with(statistics, change):
  changed = statistics_pb2.DatasetFeatureStatisticsList()
  changed.CopyFrom(statistics)
  change(changed)
  return changed


@pytest.mark.parametrize('layout', [
    'sparse_feature', 'weighted_feature', 'struct', 'same_name',
    'two_datasets', 'weighted_examples', 'nested_path', 'few_columns'])
def test_layouts_whose_checks_read_other_features_take_one_call(layout):
  frame = _frame(100, seed=5)
  schema, statistics = _schema(frame), _statistics(frame)
  if layout == 'sparse_feature':
    sparse = schema.sparse_feature.add(name='point')
    sparse.index_feature.add(name='count')
    sparse.value_feature.name = 'n0'
  elif layout == 'weighted_feature':
    weighted = schema.weighted_feature.add(name='weighted')
    weighted.feature.step.append('n0')
    weighted.weight_feature.step.append('weight')
  elif layout == 'struct':
    schema.feature.add(name='nested', type=schema_pb2.STRUCT)
  elif layout == 'same_name':
    schema.feature.add().CopyFrom(schema.feature[0])
  elif layout == 'two_datasets':
    statistics = _with(statistics, lambda s: s.datasets.add().CopyFrom(
        s.datasets[0]))
    statistics.datasets[0].name = 'All Examples'  # TFDV's default slice
    statistics.datasets[1].name = 'a slice'
  elif layout == 'weighted_examples':
    statistics = _with(statistics, lambda s: setattr(
        s.datasets[0], 'weighted_num_examples', 50.0))
  elif layout == 'nested_path':
    statistics = _with(statistics, lambda s: s.datasets[0].features[0].path
                       .step.append('inner'))
  elif layout == 'few_columns':
    del schema.feature[_PER_CALL:]
  _assert_as_one_call(statistics, schema, split=False)
