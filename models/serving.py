"""The saved model's signatures: raw data in, the served outputs out.

Both serving signatures run the same Transform graph and the same Keras
model; they differ only in how the raw columns arrive:

- `rows` (ROWS_SIGNATURE, 'serving_default'): one named [batch] input per
  raw column the model reads, as TensorFlow Serving's and Vertex AI's REST
  API build them from `{"instances": [{column: value, ...}]}`;
- `examples` (EXAMPLES_SIGNATURE): serialized tf.Examples, parsed with the
  raw feature spec (`parse_examples`: an empty list, as ExampleGen writes an
  empty CSV cell, is a missing value, as an absent feature is), as the
  Evaluator sends them.

`rows` turns its inputs into exactly the tensors parsing tf.Examples gives
(a missing value is an absent feature), so a row scores the same through
either signature.
Nothing here names a column: the inputs come from Transform's raw feature
spec and the problem description (models/features.py). A `rows` input is
named `features.input_name(column)`: the column's name where TensorFlow
accepts it ('trip_miles'), else one derived by a fixed rule ('Vekt (kg)' ->
'Vekt__kg_').
"""
from typing import Any, Callable, Dict, List, Mapping

import numpy as np
import tensorflow as tf

from models import features
from models import signatures
from models import transform_signature

Tensor = Any  # a tf.Tensor or tf.SparseTensor
FeatureSpec = Mapping[str, Any]  # column -> tf.io.FixedLenFeature/VarLen...

def request_feature_spec(raw_spec: FeatureSpec,
                         problem: features.Problem) -> Dict[str, Any]:
  """The raw columns a request carries: all but the label and the dropped
  columns (e.g. the taxi data's `tips`, which a client cannot know before the
  trip ends)."""
  unused = {problem.label_key, *problem.drop_columns}
  return {k: v for k, v in sorted(raw_spec.items()) if k not in unused}


def row_input_dtype(dtype: tf.DType) -> tf.DType:
  """The rows signature's input type for a column parsed as `dtype`: text
  stays text, every number is a float64 (NaN when missing; exact for
  integers up to 2**53)."""
  return tf.string if dtype == tf.string else tf.float64


def rows_input_signature(spec: FeatureSpec) -> Dict[str, tf.TensorSpec]:
  """One [batch] TensorSpec per column of `spec`, keyed and named by the
  column's input name (features.input_name).

  Raises:
    ValueError: two columns with the same input name, or a feature that is
      neither fixed- nor variable-length.
  """
  inputs = {}
  for column, name in features.input_names(spec).items():
    feature = spec[column]
    if not isinstance(feature, (tf.io.FixedLenFeature, tf.io.VarLenFeature)):
      raise ValueError(f'column {column!r}: {type(feature).__name__} is not '
                       'supported in the serving signature')
    inputs[name] = tf.TensorSpec([None], row_input_dtype(feature.dtype),
                                 name=name)
  return inputs


def _refuse_rows(bad: tf.Tensor, columns: List[str], problem: str,
                 name: str):
  """Fails the call when any of `bad` ([batch, columns] bool) is true,
  naming each column with a bad value: 'column <name>[, column <name>...]
  <problem>'. Returns the check (None where it runs eagerly), for what must
  run after it."""
  per_column = tf.reduce_any(bad, axis=0)
  listed = tf.strings.reduce_join(
      tf.boolean_mask(tf.constant(columns), per_column), separator=', column ')
  return tf.debugging.Assert(
      tf.logical_not(tf.reduce_any(per_column)),
      [tf.strings.join(['column ', listed, f' {problem}'])], name=name)


def _group_as_parsed(columns: List[str], matrix: tf.Tensor,
                     feature) -> Dict[str, Tensor]:
  """Columns parsed alike (`feature`'s kind, type and shape), the rows
  signature's [batch, columns] `matrix` of them, as tf.io.parse_example
  gives them: a SparseTensor of the present values for a VarLenFeature, a
  dense tensor (defaults already filled in) for a FixedLenFeature.

  The columns travel as one matrix, so the ops do not grow with the number
  of columns (a wide table's rows signature had about ten per column); ''
  or NaN is a missing value.
  """
  if matrix.dtype == tf.string:
    present = tf.not_equal(matrix, signatures.MISSING_TEXT)
    typed = matrix
  else:
    present = tf.logical_not(tf.math.is_nan(matrix))
    if feature.dtype.is_integer:
      _refuse_rows(
          tf.logical_and(present, tf.not_equal(tf.math.floor(matrix), matrix)),
          columns, 'holds integers: send a whole number, or NaN when the '
          'value is missing', name='whole_numbers')
    # A NaN left is a float column's NaN default (as parsing gives it), a
    # missing value the sparse tensor leaves out, or one refused above; only
    # an integer type needs it replaced before the cast.
    typed = tf.cast(matrix if feature.dtype.is_floating else
                    tf.where(present, matrix, tf.zeros_like(matrix)),
                    feature.dtype)
  if isinstance(feature, tf.io.VarLenFeature):
    indices = tf.where(present)  # row-major, as parsing orders values
    sparse = tf.SparseTensor(indices, tf.gather_nd(typed, indices),
                             tf.shape(matrix, out_type=tf.int64))
    parts = (tf.sparse.split(sparse, num_split=len(columns), axis=1)
             if len(columns) > 1 else [sparse])
    return dict(zip(columns, parts))
  if list(feature.shape) == [1]:  # one op for all the columns
    return dict(zip(columns, tf.split(typed, len(columns), axis=1)
                    if len(columns) > 1 else [typed]))
  return dict(zip(columns, [tf.reshape(column, [-1] + list(feature.shape))
                            for column in tf.unstack(typed, axis=1)]))


def _default_of(feature: tf.io.FixedLenFeature):
  """A single-valued FixedLenFeature's default, as a Python scalar."""
  return np.asarray(feature.default_value).reshape(-1)[0].item()


def _fixed_defaults(columns: List[str], spec: FeatureSpec,
                    values: tf.Tensor) -> tf.Tensor:
  """[batch, columns] `values` (FixedLenFeatures of one type) with each
  missing value replaced by its column's default; fails the call, naming
  the columns, when a column without a default (the schema requires a
  value) misses one."""
  dtype = spec[columns[0]].dtype
  required = [spec[c].default_value is None for c in columns]
  missing = (tf.equal(values, signatures.MISSING_TEXT)
             if dtype == tf.string else tf.math.is_nan(values))
  if any(required):
    _refuse_rows(tf.logical_and(missing, tf.constant(required)), columns,
                 'needs a value in every row: the schema requires it',
                 name='required')
  if all(required):
    return values
  # A required column keeps its missing values (refused above).
  fill = tf.constant(
      [_default_of(spec[c]) if spec[c].default_value is not None else
       (signatures.MISSING_TEXT if dtype == tf.string else float('nan'))
       for c in columns], values.dtype)
  return tf.where(missing, fill[tf.newaxis, :], values)


def rows_to_parsed(rows: Mapping[str, tf.Tensor],
                   spec: FeatureSpec) -> Dict[str, Tensor]:
  """The rows signature's inputs (keyed by input name) as
  tf.io.parse_example(examples, spec) would give them (keyed by column) for
  the same rows: the same values, types, shapes and, for a sometimes-empty
  column, the same sparse indices (its dense shape is [rows, 1] also when
  no row has a value, where parsing gives [rows, 0]; Transform reads only
  the row count).

  Raises (when the function runs):
    tf.errors.InvalidArgumentError: a fraction in an integer column, or a
      missing value in a column the schema requires, naming the columns.
  """
  names = features.input_names(spec)
  groups: Dict[Any, List[str]] = {}
  for column in names:
    feature = spec[column]
    groups.setdefault((type(feature), feature.dtype,
                       tuple(getattr(feature, 'shape', ()))), []).append(
                           column)
  parsed = {}
  for columns in groups.values():
    feature = spec[columns[0]]
    matrix = tf.stack([rows[names[c]] for c in columns], axis=1)
    if isinstance(feature, tf.io.FixedLenFeature):
      matrix = _fixed_defaults(columns, spec, matrix)
    parsed.update(_group_as_parsed(columns, matrix, feature))
  return parsed


def _filled_in(columns: List[str], spec: FeatureSpec,
               sparse: List[tf.SparseTensor],
               rows: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Columns of one numeric type (FixedLenFeatures of shape [1] with a
  default), parsed as sparse tensors, as [rows, 1] tensors with each
  column's default where a row has no value.

  One SparseConcat over all the columns, each taken as [rows, 2], puts a
  row's only value at an even position of its column's pair; an odd one is
  a second value, refused by name (FixedLenFeature refuses it too).
  """
  if len(sparse) == 1:  # SparseConcat takes two or more
    indices, values = sparse[0].indices, sparse[0].values
    column = tf.zeros_like(indices[:, 1])
    second = tf.reduce_max(tf.cast(indices[:, 1] > 0, tf.int32),
                           keepdims=True)
  else:
    pair = tf.stack([rows, tf.constant(2, tf.int64)])
    indices, values, _ = tf.raw_ops.SparseConcat(
        indices=[x.indices for x in sparse], values=[x.values for x in sparse],
        shapes=[pair] * len(sparse), concat_dim=1)
    column = indices[:, 1] // 2
    # A third value of the last column points past it (and comes with a
    # second value, refused below): counted with the last column.
    second = tf.math.unsorted_segment_max(
        tf.cast(tf.equal(indices[:, 1] % 2, 1), tf.int32),
        tf.minimum(column, len(columns) - 1), len(columns))
  one_value = _refuse_rows(
      tf.greater(second, 0)[tf.newaxis, :], columns,
      'has more than one value in a row: the schema gives it one',
      name='one_value')
  defaults = tf.constant([_default_of(spec[c]) for c in columns],
                         values.dtype)
  # After the refusal: a third value in the last column would point past
  # the matrix.
  with tf.control_dependencies([one_value]):
    matrix = tf.tensor_scatter_nd_update(
        tf.tile(defaults[tf.newaxis, :], tf.stack([rows, 1])),
        tf.stack([indices[:, 0], column], axis=1), values)
  parts = (tf.split(matrix, len(columns), axis=1) if len(columns) > 1
           else [matrix])
  return dict(zip(columns, parts))


def _fills_in(feature) -> bool:
  """Whether `feature` is a single number with a default for a missing one
  (Transform's dense numeric inputs, pipeline/components/
  dense_numeric_inputs.py)."""
  return (isinstance(feature, tf.io.FixedLenFeature) and
          list(feature.shape) == [1] and feature.default_value is not None and
          feature.dtype != tf.string)


def parse_examples(serialized: tf.Tensor,
                   spec: FeatureSpec) -> Dict[str, Tensor]:
  """tf.io.parse_example(serialized, spec), except that a number with a
  default (a FixedLenFeature of shape [1]) takes an empty list, as
  ExampleGen writes an empty CSV cell, for a missing value, as it takes an
  absent feature; tf.io.parse_example refuses the empty list.

  Those columns are parsed as sparse and filled in together, a few ops per
  type rather than per column (`_filled_in`).
  """
  filled = {column: feature for column, feature in spec.items()
            if _fills_in(feature)}
  if not filled:
    return tf.io.parse_example(serialized, spec)
  parsed = tf.io.parse_example(
      serialized, {column: (tf.io.VarLenFeature(feature.dtype)
                            if column in filled else feature)
                   for column, feature in spec.items()})
  rows = tf.shape(serialized, out_type=tf.int64)[0]
  by_type: Dict[tf.DType, List[str]] = {}
  for column in sorted(filled):
    by_type.setdefault(filled[column].dtype, []).append(column)
  for columns in by_type.values():
    parsed.update(_filled_in(columns, spec, [parsed[c] for c in columns],
                             rows))
  return parsed


def parsed_signature(spec: FeatureSpec) -> Dict[str, Any]:
  """The type of tf.io.parse_example's output for `spec`, per column."""
  return {column: (tf.SparseTensorSpec([None, None], feature.dtype)
                   if isinstance(feature, tf.io.VarLenFeature) else
                   tf.TensorSpec([None] + list(feature.shape), feature.dtype))
          for column, feature in spec.items()}


class RawTransform:
  """Transform's layer over every parsed raw column (label included), and
  over serialized raw tf.Examples, for the Trainer's datasets, the serving
  signatures and the transform signature.

  Every call of `apply` gives every raw column, so it calls the Transform
  graph's loaded signature (models/transform_signature.py): each function
  that calls it holds one call op, and the saved model the graph once. Where
  the layer applies the graph instead (a graph saved with TF2, or with
  Python functions in it), each use in a new function copies (prunes) the
  whole graph, a cost that grows with the columns: there `apply` is one
  traced function, which all uses share. A traced function of its own where
  none is needed would cost a trace and a saved function with an input per
  raw column (0.3 s of the Trainer at 1,000 columns).
  """

  @classmethod
  def of(cls, tf_transform_output) -> 'RawTransform':
    """The RawTransform of a TFTransformOutput: its layer over its raw
    feature spec."""
    return cls(tf_transform_output.transform_features_layer(),
               tf_transform_output.raw_feature_spec())

  def __init__(self, tft_layer, raw_spec: FeatureSpec):
    """`tft_layer`: TFTransformOutput.transform_features_layer();
    `raw_spec`: its raw feature spec (TFTransformOutput.raw_feature_spec())."""
    self.layer = tft_layer
    self.raw_spec = dict(raw_spec)
    signature = transform_signature.loaded_signature(tft_layer)
    self.apply = transform_signature.transform_function(tft_layer, signature)
    specs = parsed_signature(raw_spec)
    if signature is None or signature.arguments_for(specs) is None:
      # Nothing here branches on a tensor's value: nothing for AutoGraph.
      self.apply = tf.function(self.apply, input_signature=[specs],
                               autograph=False)
    # Serialized raw tf.Examples in, the transformed features out: what the
    # Trainer reads its rows with and the transform signature is, so that
    # parsing every column is traced once, and no reader traces its own.
    self.apply_serialized = tf.function(
        lambda serialized: self.apply(parse_examples(serialized,
                                                     self.raw_spec)),
        input_signature=[tf.TensorSpec([None], tf.string,
                                       name=signatures.EXAMPLES_INPUT)],
        autograph=False)


def _with_absent_columns(raw: Dict[str, Tensor],
                         raw_spec: FeatureSpec) -> Dict[str, Tensor]:
  """`raw` (parsed request columns) with the columns of `raw_spec` a request
  does not carry (the label, the dropped columns) added as parsing gives an
  example without them: no values, or the default (zero or '' where there
  is none). The model reads none of them; they let serving call the one
  traced Transform over all columns (`RawTransform.apply`)."""
  first = next(iter(raw.values()))
  rows = (first.dense_shape[0] if isinstance(first, tf.SparseTensor)
          else tf.shape(first, out_type=tf.int64)[0])
  full = dict(raw)
  for column, feature in raw_spec.items():
    if column in full:
      continue
    if isinstance(feature, tf.io.VarLenFeature):
      full[column] = tf.SparseTensor(
          tf.zeros([0, 2], tf.int64), tf.zeros([0], feature.dtype),
          tf.stack([rows, tf.constant(0, tf.int64)]))
    else:
      default = feature.default_value
      if default is None:
        default = '' if feature.dtype == tf.string else 0
      value = tf.reshape(tf.constant(default, feature.dtype), [-1])[0]
      full[column] = tf.fill(
          tf.concat([[rows], tf.constant(list(feature.shape), tf.int64)], 0),
          value)
  return full


def _scorer(model, transform: RawTransform, problem: features.Problem,
            class_names: List[str]) -> Callable[[Dict[str, Tensor]],
                                                Dict[str, tf.Tensor]]:
  """raw parsed request columns -> the served outputs
  (models/signatures.py), through `transform` and the model."""
  model_inputs = list(model.input)  # the features keying the input dict

  def score(raw: Dict[str, Tensor]) -> Dict[str, tf.Tensor]:
    transformed = transform.apply(_with_absent_columns(raw,
                                                       transform.raw_spec))
    output = model({k: transformed[k] for k in model_inputs})
    if not problem.is_classification:
      return {signatures.PREDICTIONS: output}
    if problem.problem_type == features.BINARY:
      per_class = tf.concat([1.0 - output, output], axis=1)
    else:
      per_class = output
    table = tf.constant(class_names)
    return {
        signatures.PROBABILITIES: output,
        signatures.CLASS_NAMES: tf.tile(tf.expand_dims(table, 0),
                                        [tf.shape(output)[0], 1]),
        signatures.PREDICTED_CLASS: tf.gather(table,
                                              tf.argmax(per_class, axis=1)),
    }

  return score


def make_signatures(model, transform: RawTransform,
                    problem: features.Problem,
                    class_names: List[str]) -> Dict[str, Any]:
  """The saved model's signatures, keyed by name (models/signatures.py).

  Args:
    model: the trained Keras model over the transformed features.
    transform: Transform's layer and raw feature spec (label included); the
      layer is attached to `model` so that the Transform graph is saved with
      it, and the transform signature is `transform.apply_serialized`
      (traced already if the Trainer's datasets used it).
    problem: the problem description.
    class_names: the classes in the order of the model's class indices (empty
      for a regression).

  Returns:
    ROWS_SIGNATURE, EXAMPLES_SIGNATURE and TRANSFORM_SIGNATURE, as traced
    (concrete) functions.
  """
  model.tft_layer = transform.layer
  spec = request_feature_spec(transform.raw_spec, problem)
  # Both serving signatures call one traced function over the parsed
  # columns, so the export's retracing of each signature does not trace the
  # model again; it and the transform signature call one traced Transform,
  # which calls the Transform graph's loaded signature, so the saved model
  # holds that graph (a cost growing with the columns) once.
  score = tf.function(_scorer(model, transform, problem, class_names),
                      input_signature=[parsed_signature(spec)],
                      autograph=False)
  examples_input = tf.TensorSpec([None], tf.string,
                                 name=signatures.EXAMPLES_INPUT)

  # Nothing here branches on a tensor's value, so AutoGraph has nothing to
  # rewrite; converting these functions and Transform's layer under them
  # took about 2 s of every export.
  @tf.function(input_signature=[rows_input_signature(spec)], autograph=False)
  def rows(columns):
    return score(rows_to_parsed(columns, spec))

  @tf.function(input_signature=[examples_input], autograph=False)
  def examples(serialized):
    return score(parse_examples(serialized, spec))

  # Traced here, before the export: traced inside it (a save context is
  # part of a function's cache key), they would trace the Transform graph
  # again rather than reuse the datasets' copy.
  return {signatures.ROWS_SIGNATURE: rows.get_concrete_function(),
          signatures.EXAMPLES_SIGNATURE: examples.get_concrete_function(),
          signatures.TRANSFORM_SIGNATURE:
              transform.apply_serialized.get_concrete_function()}
