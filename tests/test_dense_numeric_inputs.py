"""Which columns Transform reads as dense inputs, how an empty list becomes a
missing value, and the guard on TFX's Transform processor
(pipeline/components/dense_numeric_inputs.py). The project's Transform
executor end to end against TFX's: tests/test_shared_trace_transform.py.
"""
import math

import pyarrow as pa
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.transform import executor as stock_executor
from tfx_bsl.tfxio import tensor_adapter
from tfx_bsl.tfxio import tensor_representation_util

from models import features
from pipeline.components import dense_numeric_inputs

_SCHEMA = text_format.Parse('''
    feature { name: "speed" type: FLOAT }
    feature { name: "count" type: INT }
    feature { name: "lanes" type: INT }
    feature { name: "hour" type: INT }
    feature { name: "road" type: BYTES }
    feature { name: "label" type: INT shape { dim { size: 1 } }
              presence { min_fraction: 1 } }
    feature { name: "always" type: FLOAT shape { dim { size: 1 } }
              presence { min_fraction: 1 } }
    feature { name: "spare" type: FLOAT }
    feature { name: "unread" type: FLOAT lifecycle_stage: DEBUG_ONLY }
    feature { name: "vendor_code" type: INT }
''', schema_pb2.Schema())
_PROBLEM = features.Problem(
    label_key='label', problem_type=features.BINARY, drop_columns=['spare'],
    categorical_columns=['lanes'], bucketize={'hour': 4},
    vocab_sizes={'vendor_code': 10})


def test_only_the_numeric_matrix_sometimes_empty_columns_are_dense():
  # Not the label, text, dropped, categorical, bucketized or own-vocabulary
  # columns, a column always present (dense already) or one TFT does not
  # read.
  assert dense_numeric_inputs.dense_columns(_SCHEMA, _PROBLEM) == [
      'count', 'speed']


def test_the_dense_inputs_have_their_type_missing_value_default():
  schema = dense_numeric_inputs.with_dense_inputs(_SCHEMA, ['count', 'speed'])
  assert dense_numeric_inputs.dense_columns_in(schema) == ['count', 'speed']
  assert dense_numeric_inputs.dense_columns_in(_SCHEMA) == []
  representations = (
      tensor_representation_util.GetTensorRepresentationsFromSchema(schema))
  speed = representations['speed'].dense_tensor
  assert [d.size for d in speed.shape.dim] == [1]
  assert math.isnan(speed.default_value.float_value)
  assert (representations['count'].dense_tensor.default_value.int_value ==
          features.MISSING_INT)
  # Every other column TFT reads keeps the representation TFXIO infers.
  inferred = (
      tensor_representation_util.InferTensorRepresentationsFromMixedSchema(
          _SCHEMA))
  assert sorted(representations) == sorted(inferred)
  for name in set(inferred) - {'count', 'speed'}:
    assert representations[name] == inferred[name], name
  # The schema it was made from is unchanged.
  assert not _SCHEMA.tensor_representation_group


def _batch():
  return pa.RecordBatch.from_arrays(
      [pa.array([[1.5], [], None, [2.0], []], pa.large_list(pa.float32())),
       pa.array([[1], [2], [], [4], [5]], pa.large_list(pa.int64())),
       pa.array([[b'a'], [], [b'c'], [], [b'e']],
                pa.large_list(pa.binary()))],
      ['speed', 'count', 'road'])


@pytest.mark.parametrize('start, length', [(0, 5), (1, 3), (3, 2), (4, 1)])
def test_an_empty_list_becomes_a_missing_value_in_the_dense_columns_only(
    start, length):
  batch = _batch().slice(start, length)
  got = dense_numeric_inputs.empty_lists_as_missing(batch, ['speed', 'count'])
  assert got.schema == batch.schema
  want = {
      'speed': [[1.5], None, None, [2.0], None],
      'count': [[1], [2], None, [4], [5]],
      'road': [[b'a'], [], [b'c'], [], [b'e']],  # not a dense column
  }
  assert got.to_pydict() == {
      key: values[start:start + length] for key, values in want.items()}


def test_the_dense_tensors_fill_in_the_missing_values():
  schema = dense_numeric_inputs.with_dense_inputs(_SCHEMA, ['count', 'speed'])
  representations = (
      tensor_representation_util.GetTensorRepresentationsFromSchema(schema))
  batch = dense_numeric_inputs.empty_lists_as_missing(_batch(),
                                                      ['speed', 'count'])
  adapter = tensor_adapter.TensorAdapter(tensor_adapter.TensorAdapterConfig(
      batch.schema, {k: representations[k] for k in ('speed', 'count')}))
  tensors = adapter.ToBatchTensors(batch)
  speed = tensors['speed'].numpy().ravel().tolist()
  assert speed[0] == 1.5 and speed[3] == 2.0
  assert all(math.isnan(speed[i]) for i in (1, 2, 4))
  assert tensors['count'].numpy().ravel().tolist() == [
      1, 2, features.MISSING_INT, 4, 5]


def test_a_tfx_processor_of_other_methods_keeps_its_own(monkeypatch):
  # A later TFX whose processor reads the schema with another parameter:
  # the executor must leave its processor alone (and say so).
  class LaterProcessor(stock_executor.TransformProcessor):

    def _GetSchema(self, schema_path, data_format=None):
      raise AssertionError('not read in this test')

  monkeypatch.setattr(stock_executor, 'TransformProcessor', LaterProcessor)
  with dense_numeric_inputs.dense_inputs(_PROBLEM):
    assert stock_executor.TransformProcessor is LaterProcessor


def test_the_processor_is_substituted_only_while_inside():
  released = stock_executor.TransformProcessor
  with dense_numeric_inputs.dense_inputs(_PROBLEM):
    inside = stock_executor.TransformProcessor
    assert issubclass(inside, dense_numeric_inputs.DenseInputsProcessor)
    assert inside.problem == _PROBLEM
  assert stock_executor.TransformProcessor is released
  with dense_numeric_inputs.dense_inputs(None):  # not the project's fn
    assert stock_executor.TransformProcessor is released
