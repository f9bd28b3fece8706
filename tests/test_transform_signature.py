"""models/transform_signature.py: the saved Transform graph applied through
its loaded signature gives what TFT's layer gives, and only where it can."""
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import schema_utils

from models import features
from models import preprocessing
from models import serving
from models import transform_signature

# Sparse numbers, sparse text, a dense number and the label, as Transform
# reads them; parsed with a missing-value default for the dense number, as
# pipeline/components/dense_numeric_inputs.py gives it to Transform.
_SPEC = {
    'fare': tf.io.VarLenFeature(tf.float32),
    # Not a Python name: TensorFlow would rename such a keyword argument.
    'Vekt (kg)': tf.io.VarLenFeature(tf.float32),
    'company': tf.io.VarLenFeature(tf.string),
    'sensor': tf.io.FixedLenFeature([1], tf.float32),
    'label': tf.io.FixedLenFeature([], tf.int64),
}
_PARSED = {**_SPEC, 'sensor': tf.io.FixedLenFeature(
    [1], tf.float32, default_value=[np.nan])}
_PROBLEM = features.Problem(label_key='label', problem_type=features.BINARY)


def _row(i):
  return {'fare': [] if i % 5 == 2 else [float(i)],
          'Vekt (kg)': [] if i % 3 == 0 else [i * 1.5],
          'company': [] if i % 4 == 1 else [b'abc'[i % 3:i % 3 + 1]],
          'sensor': [np.nan if i % 6 == 3 else i / 10],
          'label': i % 2}


def _examples(rows):
  serialized = []
  for row in rows:
    example = tf.train.Example()
    feature = example.features.feature
    feature['fare'].float_list.value.extend(row['fare'])
    feature['Vekt (kg)'].float_list.value.extend(row['Vekt (kg)'])
    feature['company'].bytes_list.value.extend(row['company'])
    if not np.isnan(row['sensor'][0]):
      feature['sensor'].float_list.value.extend(row['sensor'])
    feature['label'].int64_list.value.append(row['label'])
    serialized.append(example.SerializeToString())
  return tf.constant(serialized)


def _write(fn, temp, tf_compat_v1):
  """The TFTransformOutput of `fn` analysed over 24 rows."""
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(_SPEC))
  with tft_beam.Context(temp_dir=f'{temp}/tmp',
                        force_tf_compat_v1=tf_compat_v1):
    transform_fn = ([_row(i) for i in range(24)], metadata) | (
        tft_beam.AnalyzeDataset(fn))
    _ = transform_fn | tft_beam.WriteTransformFn(f'{temp}/transform')
  return tft.TFTransformOutput(f'{temp}/transform')


@pytest.fixture(scope='module')
def tf1_graph(tmp_path_factory):
  """The project's preprocessing_fn saved as a TF1 graph, as the pipeline
  saves it."""
  fn = functools.partial(
      preprocessing.preprocessing_fn,
      custom_config={features.PROBLEM_CONFIG_KEY: _PROBLEM.to_config()})
  return _write(fn, str(tmp_path_factory.mktemp('tf1')), tf_compat_v1=True)


def _called(function) -> set:
  """The names of the functions a traced tf.function's graph calls."""
  graph = function.get_concrete_function().graph
  return {op.get_attr('f').name for op in graph.get_operations()
          if op.type in ('PartitionedCall', 'StatefulPartitionedCall')}


def _both(layer, inputs_of):
  """(through transform_function, through the layer): each the outputs on
  rows the first 24 did not include and the functions its traced graph
  calls, each in its own tf.function over serialized examples; `inputs_of`
  picks the parsed columns a call gives."""
  direct = transform_signature.transform_function(
      layer, transform_signature.loaded_signature(layer))
  results = []
  for apply in (direct, lambda raw: dict(layer(raw))):
    function = tf.function(
        lambda s, apply=apply: apply(inputs_of(
            serving.parse_examples(s, _PARSED))),
        input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    results.append(
        (function(_examples([_row(i) for i in range(30, 47)])),
         _called(function)))
  return results


def _assert_same(got, expected):
  assert got.keys() == expected.keys()
  for name, value in expected.items():
    assert got[name].dtype == value.dtype, name
    assert got[name].shape.as_list() == value.shape.as_list(), name
    np.testing.assert_array_equal(got[name].numpy(), value.numpy(),
                                  err_msg=name)


def test_every_input_given_calls_the_loaded_signature_and_gives_the_same(
    tf1_graph):
  layer = tf1_graph.transform_features_layer()
  signature = transform_signature.loaded_signature(layer)
  assert signature is not None  # TFT 1.16's TF1 graph: the direct path
  raw = serving.parse_examples(_examples([_row(1)]), _PARSED)
  assert signature.arguments_for(raw) is not None
  (direct, calls), (released, released_calls) = _both(layer, lambda raw: raw)
  _assert_same(direct, released)
  assert set(direct) >= {features.NUMERIC_FEATURE, 'company_xf', 'label_xf'}
  # The loaded signature itself, where the layer calls a pruned copy of it.
  assert calls == {signature.function.name.decode()}
  assert signature.function.name.decode() not in released_calls
  # models/serving.py's reader calls it in its own graph, with no traced
  # function of every raw column in between.
  transform = serving.RawTransform(layer, _PARSED)
  assert _called(transform.apply_serialized) == {
      signature.function.name.decode()}


def test_a_call_without_every_input_goes_through_the_layer(tf1_graph):
  layer = tf1_graph.transform_features_layer()
  signature = transform_signature.loaded_signature(layer)
  raw = serving.parse_examples(_examples([_row(1)]), _PARSED)
  assert signature.arguments_for(
      {k: v for k, v in raw.items() if k != 'label'}) is None
  assert signature.arguments_for(
      dict(raw, unknown=raw['sensor'])) is None
  without_label = lambda raw: {k: v for k, v in raw.items() if k != 'label'}
  (direct, calls), (released, _) = _both(layer, without_label)
  _assert_same(direct, released)
  assert 'label_xf' not in direct  # what the layer gives without it
  assert signature.function.name.decode() not in calls


def test_inputs_are_named_as_tensorflows_loader_names_them(
    tmp_path):
  """A TF1 signature with a dense, a sparse and a ragged input, saved with
  TensorFlow's builder and loaded with its TF1 loader, as TFT saves and
  loads the transform graph."""
  inputs_of = {
      'dense': lambda: tf.compat.v1.placeholder(tf.float32, [None, 1]),
      'sparse': lambda: tf.compat.v1.sparse_placeholder(tf.int64, [None, 4]),
      'ragged': lambda: tf.compat.v1.ragged.placeholder(tf.string, 1, [])}
  graph = tf.Graph()
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
    inputs = {name: make() for name, make in inputs_of.items()}
    outputs = {'n': tf.size(inputs['dense']) + tf.size(inputs['sparse'])
                    + tf.size(inputs['ragged'].flat_values)}
    info = tf.compat.v1.saved_model.build_tensor_info
    builder = tf.compat.v1.saved_model.Builder(str(tmp_path / 'model'))
    builder.add_meta_graph_and_variables(session, ['serve'], {
        'sig': tf.compat.v1.saved_model.build_signature_def(
            {k: info(v) for k, v in inputs.items()},
            {k: info(v) for k, v in outputs.items()})})
    builder.save()
    specs = {name: tf.type_spec_from_value(value)
             for name, value in inputs.items()}
  function = tf.saved_model.load(str(tmp_path / 'model')).signatures['sig']
  names = list(transform_signature.flat_arguments(specs))
  assert sorted(names) == sorted(function._arg_keywords)  # pylint: disable=protected-access
  assert len(names) == 1 + 3 + 2  # ragged: values and row splits


def test_inputs_of_another_shape_go_through_the_layer_and_its_errors(
    tf1_graph):
  layer = tf1_graph.transform_features_layer()
  signature = transform_signature.loaded_signature(layer)
  raw = serving.parse_examples(_examples([_row(1), _row(2)]), _PARSED)
  assert signature.arguments_for(raw) is not None
  wide = dict(raw, sensor=tf.concat([raw['sensor'], raw['sensor']], 1))
  assert signature.arguments_for(wide) is None
  with pytest.raises(ValueError, match='sensor'):
    transform_signature.transform_function(layer, signature)(wide)


def test_a_graph_saved_with_tf2_goes_through_the_layer(tmp_path):

  def preprocessing_fn(inputs):
    return {'sensor_xf': tft.scale_to_z_score(inputs['sensor']),
            'label_xf': inputs['label']}

  output = _write(preprocessing_fn, str(tmp_path), tf_compat_v1=False)
  layer = output.transform_features_layer()
  assert transform_signature.loaded_signature(layer) is None
  (direct, _), (released, _) = _both(layer, lambda raw: raw)
  _assert_same(direct, released)
  # Where the layer prunes, models/serving.py's uses share one traced call.
  transform = serving.RawTransform(layer, _PARSED)
  assert _called(transform.apply_serialized) == {
      transform.apply.get_concrete_function().name.decode()}
