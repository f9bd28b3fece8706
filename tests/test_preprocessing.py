"""models/preprocessing.py run through TensorFlow Transform on a small batch."""
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


def _raw_spec():
  """Every column as the pipeline sees it: sometimes-empty ones are sparse."""
  spec = {}
  for key in features.NUMERIC_FEATURES:
    spec[key] = tf.io.VarLenFeature(tf.float32)
  for key in features.CATEGORICAL_FEATURES:
    dtype = tf.string if key in ('payment_type', 'company') else tf.int64
    spec[key] = tf.io.VarLenFeature(dtype)
  spec[features.LABEL_KEY] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def _row(fare, payment, company, hour, label):
  row = {key: [1.0] for key in features.NUMERIC_FEATURES}
  row.update({key: [1] for key in features.CATEGORICAL_FEATURES})
  row['fare'] = [] if fare is None else [fare]
  row['payment_type'] = [payment]
  row['company'] = [] if company is None else [company]
  row['trip_start_hour'] = [hour]
  row['trip_start_day'] = [hour]  # same integer values as the hour column
  row[features.LABEL_KEY] = label
  return row


_ROWS = [
    _row(10.0, b'Cash', b'Flash Cab', 7, 0),
    _row(20.0, b'Credit Card', None, 7, 1),
    _row(None, b'Credit Card', b'Flash Cab', 8, 1),  # fare missing
    _row(30.0, b'Cash', None, 9, 0),
]


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  temp = str(tmp_path_factory.mktemp('tft'))
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(_raw_spec()))
  with tft_beam.Context(temp_dir=temp, force_tf_compat_v1=True):
    (rows, _), transform_fn = (
        (_ROWS, metadata)
        | tft_beam.AnalyzeAndTransformDataset(preprocessing.preprocessing_fn))
    out = f'{temp}/transform_fn'
    _ = transform_fn | tft_beam.WriteTransformFn(out)
  return rows, tft.TFTransformOutput(out)


def test_numeric_columns_are_z_scored_and_missing_values_sit_at_zero(
    transformed):
  rows, _ = transformed
  fares = [r[_XF('fare')] for r in rows]
  # Present fares 10, 20, 30: mean 20, population std sqrt(200/3).
  std = math.sqrt(200 / 3)
  np.testing.assert_allclose(fares, [-10 / std, 0.0, 0.0, 10 / std],
                             rtol=1e-5)


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
          preprocessing.CATEGORY_VOCABULARY)
  ]
  assert 'payment_type=Cash' in vocabulary and 'company=' in vocabulary
  assert 'trip_start_hour=7' in vocabulary
  assert max(company) < len(vocabulary)


def test_unseen_categories_fall_into_oov_buckets(transformed):
  _, output = transformed
  size = len(output.vocabulary_by_name(preprocessing.CATEGORY_VOCABULARY))
  assert output.num_buckets_for_transformed_feature(
      _XF('payment_type')) == size + features.OOV_BUCKETS
  raw = {k: v for k, v in _row(15.0, b'Bitcoin', b'New Cab Co', 23, 0).items()
         if k != features.LABEL_KEY}
  batch = {}
  for key, values in raw.items():
    dtype = _raw_spec()[key].dtype
    batch[key] = tf.sparse.from_dense(tf.constant([values], dtype=dtype))
  result = output.transform_features_layer()(batch)  # as at serving time
  for key in ('payment_type', 'company', 'trip_start_hour'):
    index = int(result[_XF(key)].numpy()[0])
    assert size <= index < size + features.OOV_BUCKETS, key


def test_label_passes_through(transformed):
  rows, _ = transformed
  assert [r[_XF(features.LABEL_KEY)] for r in rows] == [0, 1, 1, 0]


def test_excluded_columns_are_not_model_inputs(transformed):
  rows, _ = transformed
  for column in features.EXCLUDED_COLUMNS:
    assert _XF(column) not in rows[0]
  assert 'tips' in features.EXCLUDED_COLUMNS  # the label is computed from it
