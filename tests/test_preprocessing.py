"""models/preprocessing.py run through TensorFlow Transform on small batches.

One batch of taxi-like rows (the bundled data's problem), one with a string
multiclass label and one regression, each with the problem description that
the pipeline passes in Transform's custom_config.
"""
import functools
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import schema_utils

from models import features
from models import preprocessing

_XF = features.transformed_name
_NUMERIC_XF = features.NUMERIC_FEATURE


def _numeric(rows, spec, problem, column):
  """Column `column` of the numeric matrix in transformed `rows`."""
  position = preprocessing.numeric_columns(spec, problem).index(column)
  return [r[_NUMERIC_XF][position] for r in rows]

_NUMERIC = ('fare', 'trip_miles', 'trip_seconds', 'pickup_latitude')
_CATEGORICAL = ('payment_type', 'company', 'trip_start_hour',
                'trip_start_day')
_LABEL = 'big_tipper'
_DROPPED = 'tips'
# As pipeline/problem_spec.py builds it from the taxi defaults of configs.py
# (trip_seconds bucketized to exercise BUCKETIZE_COLUMNS).
_TAXI = features.Problem(
    label_key=_LABEL, problem_type=features.BINARY, drop_columns=[_DROPPED],
    categorical_columns=['trip_start_hour', 'trip_start_day'],
    bucketize={'trip_seconds': 2}, vocab_size=100, oov_buckets=3)


def _analyze(rows, spec, problem, temp):
  """(transformed rows, TFTransformOutput) of `rows` through TFT."""
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(spec))
  fn = functools.partial(
      preprocessing.preprocessing_fn,
      custom_config={features.PROBLEM_CONFIG_KEY: problem.to_config()})
  with tft_beam.Context(temp_dir=temp, force_tf_compat_v1=True):
    (out_rows, _), transform_fn = (
        (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(fn))
    out = f'{temp}/transform_fn'
    _ = transform_fn | tft_beam.WriteTransformFn(out)
  return out_rows, tft.TFTransformOutput(out)


def _raw_spec():
  """Every column as the pipeline sees it: sometimes-empty ones are sparse."""
  spec = {}
  for key in _NUMERIC:
    spec[key] = tf.io.VarLenFeature(tf.float32)
  for key in _CATEGORICAL:
    dtype = tf.string if key in ('payment_type', 'company') else tf.int64
    spec[key] = tf.io.VarLenFeature(dtype)
  spec[_DROPPED] = tf.io.VarLenFeature(tf.float32)
  spec[_LABEL] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def _row(fare, payment, company, hour, label, seconds=60.0):
  row = {key: [1.0] for key in _NUMERIC}
  row.update({key: [1] for key in _CATEGORICAL})
  row['fare'] = [] if fare is None else [fare]
  row['trip_seconds'] = [] if seconds is None else [seconds]
  row['payment_type'] = [payment]
  row['company'] = [] if company is None else [company]
  row['trip_start_hour'] = [hour]
  row['trip_start_day'] = [hour]  # same integer values as the hour column
  row[_DROPPED] = [2.0]
  row[_LABEL] = label
  return row


_ROWS = [
    _row(10.0, b'Cash', b'Flash Cab', 7, 0, seconds=10.0),
    _row(20.0, b'Credit Card', None, 7, 1, seconds=20.0),
    _row(None, b'Credit Card', b'Flash Cab', 8, 1, seconds=None),  # missing
    _row(30.0, b'Cash', None, 9, 0, seconds=1000.0),
]


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  return _analyze(_ROWS, _raw_spec(), _TAXI,
                  str(tmp_path_factory.mktemp('tft')))


def test_numeric_columns_are_z_scored_and_missing_values_sit_at_zero(
    transformed):
  rows, output = transformed
  fares = _numeric(rows, _raw_spec(), _TAXI, 'fare')
  # Present fares 10, 20, 30: mean 20, population std sqrt(200/3).
  std = math.sqrt(200 / 3)
  np.testing.assert_allclose(fares, [-10 / std, 0.0, 0.0, 10 / std],
                             rtol=1e-5)
  # Every numeric column but the bucketized one, in one matrix.
  assert preprocessing.numeric_columns(_raw_spec(), _TAXI) == [
      'fare', 'pickup_latitude', 'trip_miles']
  spec = output.transformed_feature_spec()[_NUMERIC_XF]
  assert spec.shape == [3] and spec.dtype == tf.float32


def _column(rows, values, dtype, batch=3):
  """A sometimes-empty column as parsing gives it: a value in `rows`."""
  return tf.SparseTensor(
      tf.constant([[r, 0] for r in rows], tf.int64, shape=[len(rows), 2]),
      tf.constant(values, dtype), [batch, 1 if rows else 0])


def test_numeric_matrix_puts_each_value_at_its_row_and_column():
  nan = float('nan')
  matrix = preprocessing._numeric_matrix({  # pylint: disable=protected-access
      'a': _column([0, 2], [1.5, 2.5], tf.float32),
      'b': _column([], [], tf.float32),  # no value in this batch
      'c': _column([1], [7], tf.int64),
      'd': tf.constant([[4.0], [5.0], [6.0]]),  # always present
      'e': _column([0, 1, 2], [-1.0, -2.0, -3.0], tf.float32),
      'f': _column([2], [9], tf.int64),
  })
  np.testing.assert_array_equal(matrix.numpy(), [
      [1.5, nan, nan, 4.0, -1.0, nan],
      [nan, nan, 7.0, 5.0, -2.0, nan],
      [2.5, nan, nan, 6.0, -3.0, 9.0]])


def test_numeric_matrix_takes_dense_columns_of_either_shape():
  # [batch, 1] columns (FixedLenFeature([1])) are concatenated as they are;
  # a [batch] column among them is stacked with them instead.
  columns = {'a': tf.constant([[1.0], [2.0]]), 'b': tf.constant([[3], [4]]),
             'c': tf.constant([[5.0], [6.0]])}
  expected = [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]
  np.testing.assert_array_equal(
      preprocessing._numeric_matrix(columns).numpy(), expected)  # pylint: disable=protected-access
  columns['c'] = tf.constant([5.0, 6.0])
  np.testing.assert_array_equal(
      preprocessing._numeric_matrix(columns).numpy(), expected)  # pylint: disable=protected-access


def test_categories_share_one_vocabulary_keyed_by_column(transformed):
  rows, output = transformed
  payment = [r[_XF('payment_type')] for r in rows]
  assert payment[0] == payment[3] and payment[1] == payment[2]
  assert payment[0] != payment[1]
  # The same integer in two columns maps to two different indices.
  assert rows[0][_XF('trip_start_hour')] != rows[0][_XF('trip_start_day')]
  # An empty string cell is a category of its own, not an OOV bucket.
  company = [r[_XF('company')] for r in rows]
  assert company[1] == company[3] != company[0]
  vocabulary = [
      v.decode() for v in output.vocabulary_by_name(
          features.CATEGORY_VOCABULARY)
  ]
  assert 'payment_type=Cash' in vocabulary and 'company=' in vocabulary
  assert 'trip_start_hour=7' in vocabulary
  assert max(company) < len(vocabulary)


def test_unseen_categories_fall_into_oov_buckets(transformed):
  _, output = transformed
  size = len(output.vocabulary_by_name(features.CATEGORY_VOCABULARY))
  assert output.num_buckets_for_transformed_feature(
      _XF('payment_type')) == size + _TAXI.oov_buckets
  raw = {k: v for k, v in _row(15.0, b'Bitcoin', b'New Cab Co', 23, 0).items()
         if k != _LABEL}
  batch = {}
  for key, values in raw.items():
    dtype = _raw_spec()[key].dtype
    batch[key] = tf.sparse.from_dense(tf.constant([values], dtype=dtype))
  result = output.transform_features_layer()(batch)  # as at serving time
  for key in ('payment_type', 'company', 'trip_start_hour'):
    index = int(result[_XF(key)].numpy()[0])
    assert size <= index < size + _TAXI.oov_buckets, key


def test_numeric_binary_label_passes_through(transformed):
  rows, output = transformed
  assert [r[_XF(_LABEL)] for r in rows] == [0, 1, 1, 0]
  assert output.vocabulary_file_by_name(features.LABEL_VOCABULARY) is None


def test_dropped_columns_are_not_model_inputs(transformed):
  rows, _ = transformed
  assert _XF(_DROPPED) not in rows[0]
  assert set(rows[0]) == {_NUMERIC_XF} | {
      _XF(k) for k in ('trip_seconds',) + _CATEGORICAL + (_LABEL,)}


def test_bucketized_column_gets_quantile_buckets_and_missing_the_middle(
    transformed):
  rows, output = transformed
  buckets = [r[_XF('trip_seconds')] for r in rows]
  # Two buckets split at the median of 10, 20, 1000; missing -> bucket 1.
  assert buckets[0] == 0 and buckets[3] == 1 and buckets[2] in (0, 1)
  assert output.num_buckets_for_transformed_feature(_XF('trip_seconds')) == 2


_IRIS_PROBLEM = features.Problem(
    label_key='species', problem_type=features.MULTICLASS,
    vocab_sizes={'garden': 1, 'plot': 2}, oov_buckets=2)


@pytest.fixture(scope='module')
def multiclass(tmp_path_factory):
  spec = {'petal_length': tf.io.FixedLenFeature([], tf.float32),
          'petal_size': tf.io.VarLenFeature(tf.string),
          'garden': tf.io.FixedLenFeature([], tf.string),
          'plot': tf.io.FixedLenFeature([], tf.int64),
          'species': tf.io.FixedLenFeature([], tf.string)}
  rows = [
      {'petal_length': 1.0, 'petal_size': [b'small'], 'garden': b'north',
       'plot': 3, 'species': b'setosa'},
      {'petal_length': 4.0, 'petal_size': [], 'garden': b'north',
       'plot': 3, 'species': b'versicolor'},
      {'petal_length': 6.0, 'petal_size': [b'large'], 'garden': b'south',
       'plot': 4, 'species': b'virginica'},
      {'petal_length': 5.5, 'petal_size': [b'large'], 'garden': b'north',
       'plot': 5, 'species': b'virginica'},
  ]
  return _analyze(rows, spec, _IRIS_PROBLEM,
                  str(tmp_path_factory.mktemp('tft_multiclass')))


def test_string_label_becomes_class_indices_with_their_names(multiclass):
  rows, output = multiclass
  names = [v.decode() for v in output.vocabulary_by_name(
      features.LABEL_VOCABULARY)]
  assert sorted(names) == ['setosa', 'versicolor', 'virginica']
  assert names[0] == 'virginica'  # the most frequent class first
  labels = [names[r['species_xf']] for r in rows]
  assert labels == ['setosa', 'versicolor', 'virginica', 'virginica']


def test_column_with_its_own_vocabulary_keeps_its_top_k(multiclass):
  rows, output = multiclass
  own = output.vocabulary_by_name(features.column_vocabulary('garden'))
  assert [v.decode() for v in own] == ['north']  # vocab_sizes: garden 1
  gardens = [r['garden_xf'] for r in rows]
  assert gardens[0] == gardens[1] == gardens[3] == 0
  assert gardens[2] in (1, 2)  # 'south': an OOV bucket
  assert output.num_buckets_for_transformed_feature('garden_xf') == 1 + 2
  # An integer column with a vocabulary size is categorical, not z-scored.
  plots = [r['plot_xf'] for r in rows]
  assert plots[0] == plots[1] == 0  # '3', the most frequent value
  assert output.num_buckets_for_transformed_feature('plot_xf') == 2 + 2
  assert output.transformed_feature_spec()['plot_xf'].dtype == tf.int64
  # A missing string cell is a category of its own in the shared vocabulary.
  shared = [v.decode() for v in output.vocabulary_by_name(
      features.CATEGORY_VOCABULARY)]
  assert 'petal_size=' in shared and 'petal_size=large' in shared


_REGRESSION_ROWS = [
    {'bmi': [20.0], 'sex': 1, 'never_filled': [], 'progression': 75.0},
    {'bmi': [], 'sex': 2, 'never_filled': [], 'progression': 151.0},
    {'bmi': [30.0], 'sex': 2, 'never_filled': [], 'progression': 206.5}]


@pytest.fixture(scope='module')
def regression_spec():
  spec = {'bmi': tf.io.VarLenFeature(tf.float32),
          'sex': tf.io.FixedLenFeature([], tf.int64),
          'never_filled': tf.io.VarLenFeature(tf.float32),
          'progression': tf.io.FixedLenFeature([], tf.float32)}
  problem = features.Problem(label_key='progression',
                             problem_type=features.REGRESSION,
                             categorical_columns=['sex'])
  return spec, problem


@pytest.fixture(scope='module')
def regression(tmp_path_factory, regression_spec):
  spec, problem = regression_spec
  return _analyze(_REGRESSION_ROWS, spec, problem,
                  str(tmp_path_factory.mktemp('tft_regression')))


def test_regression_label_keeps_its_units_and_features_are_encoded(
    regression, regression_spec):
  rows, output = regression
  np.testing.assert_allclose([r['progression_xf'] for r in rows],
                             [75.0, 151.0, 206.5])
  spec, problem = regression_spec
  np.testing.assert_allclose(_numeric(rows, spec, problem, 'bmi'),
                             [-1.0, 0.0, 1.0], rtol=1e-5)
  assert rows[1]['sex_xf'] == rows[2]['sex_xf'] != rows[0]['sex_xf']
  # A numeric column with no value at all: zeros, not NaN.
  assert _numeric(rows, spec, problem, 'never_filled') == [0.0, 0.0, 0.0]
  assert output.vocabulary_file_by_name(features.LABEL_VOCABULARY) is None
  spec = output.transformed_feature_spec()
  assert spec['progression_xf'].dtype == tf.float32
  assert spec['sex_xf'].dtype == tf.int64


def test_missing_problem_description_is_a_clear_error():
  with pytest.raises(ValueError, match="custom_config has no 'problem'"):
    preprocessing.preprocessing_fn({}, custom_config={})


# Headers a spreadsheet or an export writes: every ASCII punctuation
# character, a decimal comma and `>=` (a traffic-count export), letters
# outside Latin-1.
PUNCTUATION_COLUMNS = ('Lengdeintervall >= 5,6m', 'a!"#$%&\'()*+,-./b',
                       ':;<=>?@[\\]^_`{|}~', 'Скорость км/ч', 'trip/')


def test_any_printable_header_runs_through_transform(tmp_path):
  # TFT names each column's placeholder after the column; `>` and a
  # trailing `/` made invalid node names (models/transform_names.py).
  numeric, bucketized, text, own_vocabulary, label = PUNCTUATION_COLUMNS
  spec = {numeric: tf.io.VarLenFeature(tf.float32),
          bucketized: tf.io.FixedLenFeature([], tf.float32),
          text: tf.io.VarLenFeature(tf.string),
          own_vocabulary: tf.io.FixedLenFeature([], tf.string),
          label: tf.io.FixedLenFeature([], tf.int64)}
  rows = [{numeric: [float(i)] if i % 3 else [], bucketized: float(i),
           text: [b'x' if i % 2 else b'y'], own_vocabulary: b'abc'[i % 3:][:1],
           label: i % 2} for i in range(6)]
  problem = features.Problem(label_key=label, problem_type=features.BINARY,
                             bucketize={bucketized: 2},
                             vocab_sizes={own_vocabulary: 2})
  out_rows, output = _analyze(rows, spec, problem, str(tmp_path))
  # The numeric column travels in the numeric matrix; the others by name.
  assert sorted(out_rows[0]) == sorted(
      [_NUMERIC_XF] + [_XF(c) for c in PUNCTUATION_COLUMNS if c != numeric])
  scaled = _numeric(out_rows, spec, problem, numeric)
  assert all(np.isfinite(scaled)) and scaled[0] == scaled[3] == 0.0  # missing
  assert [r[_XF(label)] for r in out_rows] == [0, 1, 0, 1, 0, 1]
  assert {r[_XF(text)] for r in out_rows} == {0, 1}
  assert output.vocabulary_file_by_name(
      features.column_vocabulary(own_vocabulary))
