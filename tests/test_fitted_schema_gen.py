"""pipeline/components/fitted_schema_gen.py: a schema inferred from one sample
that lets the next normal sample through and still stops bad data.

In process: each table is written as CSV and read into examples as ExampleGen
reads it (its survey and encoder: an empty cell is an empty list, a column empty in
every row an untyped feature), described by TFDV and checked as
ExampleValidator checks it, with the presence check of
pipeline/components/span_drift_validator.py. The whole pipeline on these
rules (the served model's schema, `make schema`) is in
test_served_schema_e2e.py.
"""
import csv
import os
import tempfile

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders import example_coder

from pipeline.components import columnar_csv_example_gen
from pipeline.components import fitted_schema_gen
from pipeline.components import span_drift_validator
from tests import helpers

_MASS = 0.99


def _statistics(frame: pd.DataFrame):
  """TFDV's statistics of the examples ExampleGen makes of `frame`'s CSV."""
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'data.csv')
    frame.to_csv(path, index=False)
    with open(path, newline='') as f:
      names = next(csv.reader(f))
    kinds = columnar_csv_example_gen.survey_file(path, names).kinds
    examples = [record for _, record in columnar_csv_example_gen.encode_file(
        path, names, kinds)]
  batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(examples)
  return stats_impl.generate_statistics_in_memory(batch)


def _fitted(frame: pd.DataFrame, presence_only=(), label=''):
  stats = _statistics(frame)
  return fitted_schema_gen.infer(list(stats.datasets), _MASS, presence_only,
                                 label)


def _anomalies(frame: pd.DataFrame, schema) -> dict:
  stats = _statistics(frame)
  anomalies = span_drift_validator.add_missing_columns(
      tfdv.validate_statistics(stats, schema), stats, schema)
  return {name: info for name, info in anomalies.anomaly_info.items()}


def _feature(schema, name):
  (feature,) = [f for f in schema.feature if f.name == name]
  return feature


def _table(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
  rng = np.random.default_rng(seed)
  return pd.DataFrame({
      # A few values, each common: a closed list.
      'payment': rng.choice(['Cash', 'Card', 'Mobile', 'Voucher'], rows,
                            p=[0.5, 0.3, 0.15, 0.05]),
      # Many values, most seen once: no closed list.
      'company': [f'Company {int(v)}' for v in rng.zipf(1.3, rows)],
      'fare': rng.gamma(2.0, 5.0, rows),
      'label': rng.integers(0, 2, rows),
  })


def test_a_few_common_values_are_a_list_that_tolerates_a_small_share():
  schema = _fitted(_table())
  payment = _feature(schema, 'payment')
  assert payment.HasField('domain')
  assert payment.distribution_constraints.min_domain_mass == _MASS
  later = _table(seed=1)
  later.loc[:4, 'payment'] = 'Crypto'  # 5 of 2000 rows: 0.25 %
  assert 'payment' not in _anomalies(later, schema)
  later.loc[:599, 'payment'] = [f'Made-up {i % 50}' for i in range(600)]
  found = _anomalies(later, schema)['payment']  # 30 %
  assert found.reason[0].type == (
      anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES)


def test_a_small_sample_tolerates_what_its_size_cannot_rule_out():
  # 100 values: none unseen among them still allows up to 3 % new ones in
  # a batch of that size (the rule of three); a rare class or two passes,
  # 30 % does not.
  schema = _fitted(_table(rows=100))
  payment = _feature(schema, 'payment')
  assert payment.HasField('domain')
  assert payment.distribution_constraints.min_domain_mass == pytest.approx(
      0.97)
  later = _table(rows=100, seed=1)
  later.loc[:1, 'payment'] = ['Dispute', 'No Charge']
  assert 'payment' not in _anomalies(later, schema)
  later.loc[:29, 'payment'] = [f'Made-up {i}' for i in range(30)]
  assert 'payment' in _anomalies(later, schema)


def test_values_that_rarely_repeat_get_no_closed_list():
  schema = _fitted(_table())
  assert not _feature(schema, 'company').HasField('domain')
  # Nor a drift comparator: the shares of many rare values move by chance.
  assert not _feature(schema, 'company').HasField('drift_comparator')
  assert 'company' not in {d.name for d in schema.string_domain}
  assert 'company' not in _anomalies(_table(seed=1), schema)


def test_text_in_a_numeric_column_still_stops():
  schema = _fitted(_table())
  later = _table(seed=1)
  later['fare'] = [('n/a' if i < 100 else str(v))  # 5 %
                   for i, v in enumerate(later['fare'])]
  found = _anomalies(later, schema)['fare']
  assert found.reason[0].type == anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE


def test_an_empty_column_is_checked_for_presence_only():
  sample = _table()
  sample['tract'] = np.nan  # no value anywhere in the sample
  schema = _fitted(sample)
  tract = _feature(schema, 'tract')
  assert fitted_schema_gen.is_presence_only(tract)
  assert not tract.HasField('type') or tract.type == schema_pb2.TYPE_UNKNOWN
  later = _table(seed=1)
  later['tract'] = np.where(np.arange(len(later)) == 7, 17031081500, np.nan)
  assert 'tract' not in _anomalies(later, schema)
  found = _anomalies(_table(seed=1), schema)['tract']  # the column is gone
  assert found.reason[0].type == anomalies_pb2.AnomalyInfo.SCHEMA_MISSING_COLUMN
  assert found.severity == anomalies_pb2.AnomalyInfo.ERROR


def test_columns_the_model_never_reads_are_checked_for_presence_only():
  schema = _fitted(_table(), presence_only=['company'])
  assert fitted_schema_gen.is_presence_only(_feature(schema, 'company'))
  later = _table(seed=1)
  later['company'] = np.arange(len(later))  # now numbers
  assert 'company' not in _anomalies(later, schema)
  assert 'company' in _anomalies(later.drop(columns=['company']), schema)


def test_drift_comparators_on_every_read_column_but_the_label():
  schema = _fitted(_table(), presence_only=['company'], label='label')
  compared = {f.name for f in schema.feature if f.HasField('drift_comparator')}
  assert compared == {'payment', 'fare'}
  drifted = _table(seed=1)
  drifted['fare'] += 100  # every fare far above the sample's
  stats = _statistics(_table(seed=2))
  anomalies = tfdv.validate_statistics(_statistics(drifted), schema,
                                       previous_statistics=stats)
  assert set(anomalies.anomaly_info) == {'fare'}
  assert 'fare' not in tfdv.validate_statistics(
      _statistics(_table(seed=1)), schema,
      previous_statistics=stats).anomaly_info


def _halves(path: str, seed: int):
  frame = pd.read_csv(path)
  order = np.random.default_rng(seed).permutation(len(frame))
  half = len(frame) // 2
  return (frame.iloc[np.sort(order[:half])].reset_index(drop=True),
          frame.iloc[np.sort(order[half:])].reset_index(drop=True))


@pytest.mark.parametrize('writer,label', [
    (helpers.write_slice, 'big_tipper'),
    (helpers.write_taxi_payments, 'payment_type'),
    (helpers.write_breast_cancer, 'diagnosis'),
    (helpers.write_iris, 'species'),
    (helpers.write_diabetes, 'progression'),
])
def test_the_second_half_of_each_data_set_passes_the_firsts_schema(
    tmp_path, writer, label):
  path = writer(str(tmp_path))
  for seed in range(5):
    first, second = _halves(path, seed)
    schema = _fitted(first, label=label)
    assert _anomalies(second, schema) == {}, seed
