"""Transform's preprocessing_fn: raw columns in, model-ready tensors out."""
from typing import Dict, Union

import tensorflow as tf
import tensorflow_transform as tft

from models import features

Tensor = Union[tf.Tensor, tf.SparseTensor]

# The vocabulary file (in the transform graph) of all categorical columns.
CATEGORY_VOCABULARY = 'categories'
_MISSING_INT = -(2**62)  # stands for an empty integer cell


def _fill_missing(x: Tensor, default) -> tf.Tensor:
  """A dense [batch] tensor: `x` with missing values replaced by `default`.

  Columns that are sometimes empty in the CSV arrive as SparseTensors of
  shape [batch, 1]; always-present ones arrive dense.
  """
  if not isinstance(x, tf.SparseTensor):
    return tf.reshape(x, [-1])
  dense = tf.sparse.to_dense(
      tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
      default_value=tf.cast(default, x.dtype))
  return tf.squeeze(dense, axis=1)


def _as_float(x: Tensor) -> Tensor:
  if isinstance(x, tf.SparseTensor):
    return tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32),
                           x.dense_shape)
  return tf.cast(x, tf.float32)


def _impute_and_scale(x: Tensor) -> tf.Tensor:
  """z-scores `x` with the mean and spread of its present values; missing -> 0.

  Both statistics come from one analysis pass (a missing value becomes the
  mean, so its z-score is 0). Imputing first and then calling
  tft.scale_to_z_score would need a second pass, which TFT 1.16 runs through a
  deep-copy optimisation that fails on Apache Beam 2.74.
  """
  x = _as_float(x)
  present = x.values if isinstance(x, tf.SparseTensor) else x
  mean = tft.mean(present)
  std = tf.sqrt(tft.var(present))
  filled = _fill_missing(x, mean)
  return tf.math.divide_no_nan(filled - mean, std)


def _category_tokens(key: str, x: Tensor) -> tf.Tensor:
  """'key=value' strings, [batch]; an empty value gives 'key='."""
  if x.dtype == tf.string:
    values = _fill_missing(x, '')
  else:
    values = tf.strings.as_string(_fill_missing(x, _MISSING_INT))
    values = tf.where(values == str(_MISSING_INT), '', values)
  return tf.strings.join([key + '=', values])


def preprocessing_fn(inputs: Dict[str, Tensor]) -> Dict[str, tf.Tensor]:
  """Maps raw columns to the model's features and label.

  Numeric columns: z-score, with missing values at the mean (0).
  Categorical columns: an integer index into the vocabulary of the
  VOCAB_SIZE most frequent (column, value) pairs, an empty value counting as
  a value of its own, with OOV_BUCKETS indices for pairs not seen in
  training. The label passes through as int64.

  Args:
    inputs: raw columns, as parsed from the examples with the data's schema.

  Returns:
    Transformed features keyed by `features.transformed_name(column)`.
  """
  outputs = {}
  for key in features.NUMERIC_FEATURES:
    outputs[features.transformed_name(key)] = _impute_and_scale(inputs[key])

  # One vocabulary over all categorical columns, of "column=value" tokens:
  # each TFT vocabulary is a separate multi-stage Beam computation, so one
  # shared vocabulary instead of one per column makes Transform several
  # times faster, and the column prefix keeps equal values of different
  # columns apart.
  tokens = {key: _category_tokens(key, inputs[key])
            for key in features.CATEGORICAL_FEATURES}
  if tokens:
    vocabulary = tft.vocabulary(
        tf.stack(list(tokens.values()), axis=1),
        top_k=features.VOCAB_SIZE,
        vocab_filename=CATEGORY_VOCABULARY)
    for key, column_tokens in tokens.items():
      outputs[features.transformed_name(key)] = tft.apply_vocabulary(
          column_tokens, vocabulary, num_oov_buckets=features.OOV_BUCKETS)

  outputs[features.transformed_name(features.LABEL_KEY)] = tf.cast(
      _fill_missing(inputs[features.LABEL_KEY], 0), tf.int64)
  return outputs
