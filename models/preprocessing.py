"""Transform's preprocessing_fn: raw columns in, model-ready tensors out.

Every feature is derived from the input tensors' types (which come from the
data's schema) and the problem description in `custom_config`
(models/features.py); no column is named here.
"""
from typing import Any, Dict, List, Mapping, Optional, Union

import tensorflow as tf
import tensorflow_transform as tft

from models import features
from models import transform_names  # pylint: disable=unused-import

Tensor = Union[tf.Tensor, tf.SparseTensor]

# Kept for callers of the former module constant.
CATEGORY_VOCABULARY = features.CATEGORY_VOCABULARY


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


def _present(x: Tensor) -> tf.Tensor:
  return x.values if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def _zero_if_nan(x: tf.Tensor) -> tf.Tensor:
  return tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)


def _dense_block(tensors: List[tf.Tensor]) -> tf.Tensor:
  """Dense columns of one dtype as a float [batch, len] matrix.

  Columns parsed as [batch, 1] (a FixedLenFeature of shape [1]: a column
  with a value in every row, or one Transform gets dense with a default for
  a missing value) are concatenated as they are: no op per column; others
  are reshaped to [batch] and stacked. In an integer column,
  `features.MISSING_INT` (the default of a dense integer input) is a
  missing value: NaN, as a float column's default is.
  """
  if all(x.shape.rank == 2 and x.shape[1] == 1 for x in tensors):
    matrix = tensors[0] if len(tensors) == 1 else tf.concat(tensors, axis=1)
  else:
    matrix = tf.stack([tf.reshape(x, [-1]) for x in tensors], axis=1)
  if matrix.dtype != tf.int64:  # MISSING_INT is an int64
    return tf.cast(matrix, tf.float32)
  return tf.where(tf.equal(matrix, features.MISSING_INT), float('nan'),
                  tf.cast(matrix, tf.float32))


def _sparse_block(tensors: List[tf.SparseTensor]) -> tf.Tensor:
  """Sometimes-empty columns of one dtype (SparseTensors of at most one
  value per row) as a float [batch, len] matrix, NaN where missing.

  One SparseConcat over all the columns, each taken as [batch, 1] (a column
  without a value in the batch has dense shape [batch, 0]), puts each value
  at its row and column: no op per column.
  """
  rows = tensors[0].dense_shape[0]
  if len(tensors) == 1:  # SparseConcat takes two or more
    indices, values = tensors[0].indices, tensors[0].values
  else:
    column = tf.stack([rows, tf.constant(1, tf.int64)])
    indices, values, _ = tf.raw_ops.SparseConcat(
        indices=[x.indices for x in tensors],
        values=[x.values for x in tensors],
        shapes=[column] * len(tensors), concat_dim=1)
  return tf.tensor_scatter_nd_update(
      tf.fill(tf.stack([rows, len(tensors)]), float('nan')), indices,
      tf.cast(values, tf.float32))


def _numeric_matrix(columns: Mapping[str, Tensor]) -> tf.Tensor:
  """The numeric `columns` as one dense float [batch, columns] matrix, in
  name order, NaN where a value is missing.

  Built with one op per column (its number of values) and a few per group of
  columns of the same kind and dtype: the Trainer and every serving
  signature copy the whole transform graph when they apply it, so ops per
  column would make every column cost time.
  """
  groups: Dict[Any, List[str]] = {}
  for key in sorted(columns):
    x = columns[key]
    groups.setdefault((isinstance(x, tf.SparseTensor), x.dtype), []).append(
        key)
  blocks, order = [], []
  for (sparse, _), keys in groups.items():
    block = _sparse_block if sparse else _dense_block
    blocks.append(block([columns[k] for k in keys]))
    order += keys
  matrix = tf.concat(blocks, axis=1) if len(blocks) > 1 else blocks[0]
  if order == sorted(order):
    return matrix
  return tf.gather(matrix, [order.index(k) for k in sorted(order)], axis=1)


def _impute_and_scale(columns: Mapping[str, Tensor]) -> tf.Tensor:
  """The numeric `columns`, in name order, as one [batch, columns] matrix of
  z-scores with the mean and spread of each column's present values; a
  missing value (or NaN) becomes 0, the z-score of the mean.

  The columns travel as one matrix so that the cost does not grow with the
  number of columns times a fixed cost per column: one mean-and-variance
  analyzer for all of them (TFT counts, sums and merges per column and
  leaves NaN out), one input of the model. A column without a single value
  in the training split has no mean: every row then gets 0 rather than NaN.
  Mean and variance come from one analysis pass (imputing first and then
  calling tft.scale_to_z_score would need a second, which TFT 1.16 runs
  through a deep-copy optimisation that fails on Apache Beam 2.74).
  """
  matrix = _numeric_matrix(columns)
  mean = _zero_if_nan(tft.mean(matrix, reduce_instance_dims=False))
  std = _zero_if_nan(tf.sqrt(tft.var(matrix, reduce_instance_dims=False)))
  return _zero_if_nan(tf.math.divide_no_nan(matrix - mean, std))


def _bucketize(x: Tensor, num_buckets: int) -> tf.Tensor:
  """Bucket indices 0..num_buckets-1 by quantiles of the present values.

  A missing value goes to the middle bucket. The boundaries come from the
  present values in the same single analysis pass as everything else.
  """
  x = _as_float(x)
  boundaries = tft.quantiles(_present(x), num_buckets,
                             epsilon=min(1.0 / num_buckets, 0.01))
  middle = boundaries[0, (num_buckets - 1) // 2]
  return tft.apply_buckets(_fill_missing(x, middle), boundaries)


def _as_text(x: Tensor) -> tf.Tensor:
  """The values of `x` as strings, [batch]; an empty cell gives ''."""
  if x.dtype == tf.string:
    return _fill_missing(x, '')
  if x.dtype.is_integer:
    values = tf.strings.as_string(_fill_missing(x, features.MISSING_INT))
    return tf.where(values == str(features.MISSING_INT), '', values)
  filled = _fill_missing(x, float('nan'))
  return tf.where(tf.math.is_nan(filled), '', tf.strings.as_string(filled))


def _token_weights(tokens: tf.Tensor) -> tf.Tensor:
  """A weight of 1 per token, for TFT's frequency vocabularies.

  With weights, TFT counts each batch's distinct tokens inside the graph and
  hands Beam one (token, count) pair per distinct token; without, it hands
  Beam every token of every row to count in Python: 5.3 million tokens for
  the shared vocabulary of a million-row data set's training split. Weights
  of 1 sum to the same counts, so the vocabulary is the same.
  """
  return tf.ones_like(tokens, dtype=tf.float32)


def _encode_label(x: Tensor, problem: features.Problem) -> tf.Tensor:
  """The label as the model sees it (see models/features.py)."""
  if problem.problem_type == features.REGRESSION:
    return _fill_missing(_as_float(x), 0.0)
  if problem.problem_type == features.BINARY and x.dtype != tf.string:
    # Numeric binary labels are 0 and 1 (pipeline/problem_spec.py checks).
    return tf.cast(_fill_missing(x, 0), tf.int64)
  # String labels, and multiclass labels of any type, through a vocabulary
  # whose file in the transform graph maps class indices back to names. Its
  # order is by frequency, so for a binary string label the positive class
  # (index 1) is the rarer one. Rows with an empty label (or a class the
  # training split never had) get class 0 rather than failing the transform.
  text = _as_text(x)
  return tft.compute_and_apply_vocabulary(
      text, default_value=0, weights=_token_weights(text),
      vocab_filename=features.LABEL_VOCABULARY)


def numeric_columns(columns: Mapping[str, Any],
                    problem: features.Problem) -> List[str]:
  """The raw columns in the matrix `features.NUMERIC_FEATURE`, in its order.

  Args:
    columns: raw column -> anything with a `dtype` (the input tensors, or a
      raw feature spec's entries).
    problem: the problem description.

  Returns:
    In name order, the numeric columns that the problem does not drop,
    predict, treat as categorical, bucketize or give a vocabulary.
  """
  other = ({problem.label_key} | set(problem.drop_columns) |
           set(problem.categorical_columns) | set(problem.bucketize) |
           set(problem.vocab_sizes))
  return sorted(key for key, value in columns.items()
                if key not in other and value.dtype != tf.string)


def preprocessing_fn(inputs: Dict[str, Tensor],
                     custom_config: Optional[Mapping[str, Any]] = None
                    ) -> Dict[str, tf.Tensor]:
  """Maps raw columns to the model's features and label.

  Float columns (and integer columns not declared categorical): z-scores,
  with missing values at the mean (0), together in one [batch, columns]
  matrix `features.NUMERIC_FEATURE` in column-name order (`numeric_columns`);
  or quantile buckets of their own when the problem lists the column in
  `bucketize`. String and categorical columns, and those with a vocabulary
  size of their own: an index into the shared vocabulary
  of the `vocab_size` most frequent (column, value) pairs, or into a
  vocabulary of their own when `vocab_sizes` names them, an empty value
  counting as a value of its own, with `oov_buckets` indices for values not
  seen in training. Dropped columns are
  left out. The label is encoded per problem type (`_encode_label`).

  Args:
    inputs: raw columns, as parsed from the examples with the data's schema;
      the pipeline's Transform gives the numeric matrix's columns
      (`numeric_columns`) as dense [batch, 1] tensors, a missing value NaN
      in a float column and `features.MISSING_INT` in an integer one
      (pipeline/components/dense_numeric_inputs.py), and TFX's Transform
      as SparseTensors where a cell may be empty: both give the same
      features.
    custom_config: the Transform component's custom_config; TFX passes it
      because this function accepts it. Holds the problem description.

  Returns:
    Transformed features keyed by `features.transformed_name(column)`, and
    the numeric matrix keyed by `features.NUMERIC_FEATURE`.
  """
  problem = features.Problem.from_config(custom_config)
  if problem.label_key not in inputs:
    raise ValueError(f'label {problem.label_key!r} is not a column of the '
                     f'data (columns: {", ".join(sorted(inputs))})')
  skipped = set(problem.drop_columns) | {problem.label_key}
  categorical = set(problem.categorical_columns)

  outputs = {}
  shared_tokens = {}
  numeric = numeric_columns(inputs, problem)
  if numeric:
    outputs[features.NUMERIC_FEATURE] = _impute_and_scale(
        {key: inputs[key] for key in numeric})
  for key in sorted(set(inputs) - set(numeric)):
    if key in skipped:
      continue
    x = inputs[key]
    name = features.transformed_name(key)
    if x.dtype == tf.string or key in categorical or key in (
        problem.vocab_sizes):
      if key in problem.vocab_sizes:
        text = _as_text(x)
        outputs[name] = tft.compute_and_apply_vocabulary(
            text, top_k=problem.vocab_sizes[key], weights=_token_weights(text),
            num_oov_buckets=problem.oov_buckets,
            vocab_filename=features.column_vocabulary(key))
      else:
        shared_tokens[key] = tf.strings.join([key + '=', _as_text(x)])
    else:
      outputs[name] = _bucketize(x, problem.bucketize[key])

  # One vocabulary over the other categorical columns, of "column=value"
  # tokens: each TFT vocabulary is a separate multi-stage Beam computation,
  # so one shared vocabulary instead of one per column makes Transform
  # several times faster, and the column prefix keeps equal values of
  # different columns apart.
  if shared_tokens:
    tokens = tf.stack(list(shared_tokens.values()), axis=1)
    vocabulary = tft.vocabulary(
        tokens, top_k=problem.vocab_size, weights=_token_weights(tokens),
        vocab_filename=features.CATEGORY_VOCABULARY)
    for key, column_tokens in shared_tokens.items():
      outputs[features.transformed_name(key)] = tft.apply_vocabulary(
          column_tokens, vocabulary, num_oov_buckets=problem.oov_buckets)

  outputs[problem.label_feature] = _encode_label(inputs[problem.label_key],
                                                 problem)
  return outputs
