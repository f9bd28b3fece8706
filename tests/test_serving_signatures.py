"""The pushed model's signatures: JSON-style rows in 'serving_default',
serialized examples in 'predict', one Transform graph behind both.

The model is the suite's run's (the session fixture `pushed_model`), scored on
bundled rows it never saw, with their empty cells; the Evaluator's choice of
signature is checked with TFMA's own resolution on small SavedModels.
"""
import csv
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_model_analysis.utils import model_util

from local import csv_examples
from local.serving import serving_requests
from models import features
from models import serving
from models import signatures
from tests import helpers

# Bundled rows after the suite's training slice (helpers.SLICE_ROWS rows).
UNSEEN = slice(helpers.SLICE_ROWS + 1000, helpers.SLICE_ROWS + 1400)


@pytest.fixture(scope='module')
def pushed(pushed_model):
  """(the loaded newest pushed model, its run's schema file)."""
  return (tf.saved_model.load(pushed_model.model_dir),
          pushed_model.schema_file)


def _unseen_rows():
  with open(helpers.BUNDLED_CSV, newline='') as f:
    return list(csv.DictReader(f))[UNSEEN]


def _rows_inputs(signature, rows):
  """The rows signature's input tensors for CSV rows (empty cells NaN/'')."""
  specs = signature.structured_input_signature[1]
  instances = [serving_requests.csv_row_to_instance(r, specs) for r in rows]
  columns = serving_requests.instances_to_columns({'instances': instances},
                                                  specs)
  return {name: tf.constant(values, specs[name].dtype)
          for name, values in columns.items()}


@pytest.mark.slow
def test_rows_with_missing_values_score_as_their_examples(pushed):
  model, schema_file = pushed
  rows = _unseen_rows()
  rows_signature = model.signatures[signatures.ROWS_SIGNATURE]
  inputs = _rows_inputs(rows_signature, rows)
  # The label and the dropped columns are no inputs; the others all are.
  assert 'big_tipper' not in inputs and 'tips' not in inputs
  assert {'trip_miles', 'payment_type', 'company'} <= set(inputs)
  with_gaps = [r for r in rows if any(r[c] == '' for c in inputs)]
  assert len(with_gaps) > 50  # the bundled data's empty cells are here

  from_rows = rows_signature(**inputs)
  schema = csv_examples.load_schema(schema_file)
  examples = [csv_examples.row_to_example(r, schema).SerializeToString()
              for r in rows]
  from_examples = model.signatures[signatures.EXAMPLES_SIGNATURE](
      examples=tf.constant(examples))
  assert sorted(from_rows) == sorted([
      signatures.PROBABILITIES, signatures.CLASS_NAMES,
      signatures.PREDICTED_CLASS])
  for name in from_rows:
    np.testing.assert_array_equal(from_rows[name].numpy(),
                                  from_examples[name].numpy())
  probabilities = from_rows[signatures.PROBABILITIES].numpy()
  assert probabilities.shape == (len(rows), 1)
  assert 0 < probabilities.min() < 0.5 < probabilities.max() < 1
  names = from_rows[signatures.CLASS_NAMES].numpy()[0]
  assert [n.decode() for n in names] == ['0', '1']


@pytest.mark.slow
def test_the_saved_model_holds_the_transform_graph_once(pushed_model):
  """Its signatures and the Transform layer it tracks share the graph's
  loaded signature (models/transform_signature.py): one function in the
  saved model looks up the bundled data's vocabularies, where TFT's layer
  alone saves a pruned copy next to it."""
  saved = saved_model_pb2.SavedModel()
  with open(os.path.join(pushed_model.model_dir, 'saved_model.pb'),
            'rb') as f:
    saved.ParseFromString(f.read())
  library = saved.meta_graphs[0].graph_def.library.function
  lookups = [f.signature.name for f in library
             if any(n.op == 'LookupTableFindV2' for n in f.node_def)]
  assert len(lookups) == 1, lookups


@pytest.mark.slow
def test_the_saved_model_holds_no_optimizer_state(pushed_model):
  """Only what serving reads: the model's weights and the Transform graph's
  tables, no optimizer step or Adam slots."""
  names = [name for name, _ in tf.train.list_variables(
      os.path.join(pushed_model.model_dir, 'variables', 'variables'))]
  assert any(name.startswith('layer_with_weights-') for name in names)
  assert not [name for name in names if 'optimizer' in name], names


@pytest.mark.slow
def test_rows_signature_rejects_a_fraction_in_an_integer_column(pushed):
  model, _ = pushed
  rows_signature = model.signatures[signatures.ROWS_SIGNATURE]
  inputs = _rows_inputs(rows_signature, _unseen_rows()[:3])
  inputs['trip_seconds'] = tf.constant([60.0, 90.5, math.nan], tf.float64)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='column trip_seconds holds integers'):
    rows_signature(**inputs)


def _save_module(path, **functions):
  module = tf.Module()
  tf.saved_model.save(module, str(path), signatures=functions)
  return model_util.model_construct_fn(str(path), tags=['serve'],
                                       model_type='tf_generic')()


def _examples_fn(value):
  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                              name='examples')])
  def score(examples):
    return {'probabilities': tf.fill([tf.size(examples), 1], value)}
  return score


def test_the_evaluator_scores_examples_in_new_and_older_models(tmp_path):
  """No signature name (pipeline/eval_config.py): TFMA calls 'predict' when a
  model has it, else 'serving_default', the examples signature of models
  saved before 'serving_default' took rows."""

  @tf.function(input_signature=[{'x': tf.TensorSpec([None], tf.float64,
                                                    name='x')}])
  def rows(columns):
    return {'probabilities': tf.expand_dims(tf.cast(columns['x'], tf.float32),
                                            1)}

  new = _save_module(tmp_path / 'new', serving_default=rows,
                     predict=_examples_fn(0.25))
  old = _save_module(tmp_path / 'old', serving_default=_examples_fn(0.75))
  assert signatures.ROWS_SIGNATURE == 'serving_default'
  assert signatures.EXAMPLES_SIGNATURE == 'predict'
  for model, expected in ((new, 0.25), (old, 0.75)):
    assert not model_util.is_callable_fn(model)
    assert list(model_util.get_input_specs(model, '')) == ['examples']
    scores = model_util.get_callable(model, '')(
        examples=tf.constant([b'', b'']))['probabilities'].numpy()
    np.testing.assert_allclose(scores, [[expected]] * 2)


# Every kind of column the rows signature meets, several of each so that
# they travel together: sometimes-empty (VarLen) and always-present
# (FixedLen, with and without a default) numbers, integers and text.
_MIXED_SPEC = {
    'a_float': tf.io.VarLenFeature(tf.float32),
    'b_float': tf.io.VarLenFeature(tf.float32),
    'c_int': tf.io.VarLenFeature(tf.int64),
    'd_int': tf.io.VarLenFeature(tf.int64),
    'e_text': tf.io.VarLenFeature(tf.string),
    'f_text': tf.io.VarLenFeature(tf.string),
    'g_fixed': tf.io.FixedLenFeature([], tf.float32, default_value=-1.5),
    'h_fixed': tf.io.FixedLenFeature([], tf.float32, default_value=7.0),
    'i_count': tf.io.FixedLenFeature([], tf.int64, default_value=3),
    'j_needed': tf.io.FixedLenFeature([], tf.int64),
    'k_label': tf.io.FixedLenFeature([], tf.string, default_value='none'),
    'l_needed': tf.io.FixedLenFeature([], tf.float32),
    'm_needed': tf.io.FixedLenFeature([], tf.int64),
    # [1]-shaped, a default for a missing value (NaN for floats).
    'n_one': tf.io.FixedLenFeature([1], tf.float32, default_value=math.nan),
    'o_one': tf.io.FixedLenFeature([1], tf.float32, default_value=math.nan),
    'p_one': tf.io.FixedLenFeature([1], tf.int64, default_value=-2**62),
}
_NAN = math.nan
_MIXED_ROWS = {  # column -> values of 4 rows; NaN or '' is an empty cell
    'a_float': [1.5, _NAN, -2.0, _NAN],
    'b_float': [_NAN, _NAN, _NAN, _NAN],
    'c_int': [4.0, 5.0, _NAN, 2.0**40],
    'd_int': [_NAN, -3.0, 0.0, _NAN],
    'e_text': ['x', '', 'y', 'z'],
    'f_text': ['', '', '', 'w'],
    'g_fixed': [0.25, _NAN, 2.0, _NAN],
    'h_fixed': [_NAN, 1.0, _NAN, 3.0],
    'i_count': [_NAN, 9.0, 10.0, _NAN],
    'j_needed': [1.0, 2.0, 3.0, 4.0],
    'k_label': ['', 'yes', '', 'no'],
    'l_needed': [0.5, 0.5, -0.5, 8.0],
    'm_needed': [-1.0, 0.0, 1.0, 2.0**50],
    'n_one': [1.0, _NAN, 3.0, _NAN],
    'o_one': [_NAN, 2.5, _NAN, 4.0],
    'p_one': [_NAN, 7.0, -8.0, _NAN],
}


def _mixed_inputs(rows):
  specs = serving.rows_input_signature(_MIXED_SPEC)
  return {name: tf.constant(rows[column], specs[name].dtype)
          for column, name in features.input_names(_MIXED_SPEC).items()}


def _mixed_examples():
  examples = []
  for i in range(4):
    example = tf.train.Example()
    for column, values in _MIXED_ROWS.items():
      value = values[i]
      if value == '' or (isinstance(value, float) and math.isnan(value)):
        continue
      feature = example.features.feature[column]
      dtype = _MIXED_SPEC[column].dtype
      if dtype == tf.string:
        feature.bytes_list.value.append(value.encode())
      elif dtype == tf.int64:
        feature.int64_list.value.append(int(value))
      else:
        feature.float_list.value.append(value)
    examples.append(example.SerializeToString())
  return tf.constant(examples)


def test_rows_parse_exactly_as_their_examples_on_every_kind_of_column():
  parsed = tf.function(serving.rows_to_parsed)(_mixed_inputs(_MIXED_ROWS),
                                               _MIXED_SPEC)
  expected = tf.io.parse_example(_mixed_examples(), _MIXED_SPEC)
  assert sorted(parsed) == sorted(expected)
  for column, want in expected.items():
    got = parsed[column]
    assert got.dtype == want.dtype, column
    if isinstance(want, tf.SparseTensor):
      for part in ('indices', 'values'):
        np.testing.assert_array_equal(getattr(got, part).numpy(),
                                      getattr(want, part).numpy(),
                                      err_msg=f'{column} {part}')
      # [rows, 1], also where parsing gives [rows, 0] (b_float: no value).
      assert got.dense_shape.numpy().tolist() == [4, 1]
    else:
      np.testing.assert_array_equal(got.numpy(), want.numpy(),
                                    err_msg=column)


def _assert_parsed_alike(got, want):
  assert sorted(got) == sorted(want)
  for column, expected in want.items():
    value = got[column]
    assert value.dtype == expected.dtype, column
    if isinstance(expected, tf.SparseTensor):
      for part in ('indices', 'values', 'dense_shape'):
        np.testing.assert_array_equal(getattr(value, part).numpy(),
                                      getattr(expected, part).numpy(),
                                      err_msg=f'{column} {part}')
    else:
      np.testing.assert_array_equal(value.numpy(), expected.numpy(),
                                    err_msg=column)


def _with_empty_lists(serialized, columns):
  """The examples with an empty list for each of `columns` they lack, as
  ExampleGen writes an empty CSV cell."""
  examples = []
  for data in serialized.numpy():
    example = tf.train.Example.FromString(data)
    for column in columns:
      feature = example.features.feature[column]  # adds it where absent
      if _MIXED_SPEC[column].dtype == tf.int64:
        feature.int64_list.SetInParent()
      else:
        feature.float_list.SetInParent()
    examples.append(example.SerializeToString())
  return tf.constant(examples)


def test_examples_parse_as_tensorflow_parses_them_and_an_empty_list_is_missing():
  parse = tf.function(serving.parse_examples)
  examples = _mixed_examples()
  expected = tf.io.parse_example(examples, _MIXED_SPEC)
  _assert_parsed_alike(parse(examples, _MIXED_SPEC), expected)
  # An empty list in a number with a default is a missing value, as an
  # absent feature is; tf.io.parse_example refuses it.
  filled_in = ['n_one', 'o_one', 'p_one']
  with_empty = _with_empty_lists(examples, filled_in)
  assert with_empty.numpy().tolist() != examples.numpy().tolist()
  with pytest.raises(tf.errors.InvalidArgumentError):
    tf.io.parse_example(with_empty, _MIXED_SPEC)
  _assert_parsed_alike(parse(with_empty, _MIXED_SPEC), expected)
  # Alone, and with no row holding a value.
  alone = {'o_one': _MIXED_SPEC['o_one']}
  _assert_parsed_alike(parse(with_empty, alone),
                       tf.io.parse_example(examples, alone))
  _assert_parsed_alike(parse(with_empty[:1], alone),
                       tf.io.parse_example(examples[:1], alone))


@pytest.mark.parametrize('values', [[1.0, 2.0], [1.0, 2.0, 3.0]])
@pytest.mark.parametrize('spec', [_MIXED_SPEC, {'o_one': _MIXED_SPEC['o_one']}])
def test_a_second_value_in_a_filled_in_number_is_refused_by_name(spec, values):
  # o_one is the last float column filled in: a third value would point
  # past the matrix, if the refusal did not come first.
  example = tf.train.Example()
  example.features.feature['o_one'].float_list.value.extend(values)
  for column in ('j_needed', 'm_needed'):
    example.features.feature[column].int64_list.value.append(1)
  example.features.feature['l_needed'].float_list.value.append(1.0)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='column o_one has more than one value in a row'):
    tf.function(serving.parse_examples)(
        tf.constant([example.SerializeToString()] * 2), spec)


@pytest.mark.parametrize('bad, message', [
    ({'c_int': [4.0, 5.5, _NAN, 1.0]},
     'column c_int holds integers: send a whole number'),
    ({'c_int': [0.5, 5.0, _NAN, 1.0], 'd_int': [_NAN, 1.0, 2.5, 3.0]},
     'column c_int, column d_int holds integers'),
    ({'i_count': [_NAN, 1.0, 2.5, 3.0]}, 'column i_count holds integers'),
    ({'j_needed': [1.0, _NAN, 3.0, 4.0]},
     'column j_needed needs a value in every row: the schema requires it'),
    ({'m_needed': [1.0, 2.0, _NAN, 4.0], 'j_needed': [_NAN, 2.0, 3.0, 4.0]},
     'column j_needed, column m_needed needs a value in every row'),
    ({'l_needed': [1.0, 2.0, _NAN, 4.0]}, 'column l_needed needs a value'),
])
def test_rows_with_bad_values_are_refused_naming_each_column(bad, message):
  rows = dict(_MIXED_ROWS, **bad)
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    tf.function(serving.rows_to_parsed)(_mixed_inputs(rows), _MIXED_SPEC)
