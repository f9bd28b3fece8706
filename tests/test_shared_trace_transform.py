"""The pipeline's Transform executor (pipeline/components/shared_trace_transform.py)
against TFX's own, on the same small wide table with empty cells: one trace
of the preprocessing_fn instead of five for the same transform graph,
vocabulary and metadata, the analysis computed in this process
(pipeline/components/in_process_transform.py) where TFX runs Beam, and
Beam's pipeline again for an analyzer computed only there; the numeric matrix's columns read as dense inputs
(pipeline/components/dense_numeric_inputs.py) for the same transformed
features as TFX's sparse ones; the examples read in fixed batches
(pipeline/components/transform_batches.py), the same graph from every run.
"""
import json
import logging
import math
import os
import random
from typing import Dict, List, Tuple

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform import impl_helper
from tensorflow_transform.beam import impl as tft_beam_impl
from tensorflow_transform.tf_metadata import schema_utils
from tfx.components.transform import executor as stock_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import transform_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from local.run import direct_runner
from models import features
from models import preprocessing
from models import serving
from pipeline.components import dense_numeric_inputs
from pipeline.components import shared_trace_transform
from pipeline.components import transform_batches

_COLUMNS = [f'sensor_{i:02d}' for i in range(40)]
_COUNTS = ['count_a', 'count_b']  # integer columns, also with empty cells
_PROBLEM = features.Problem(label_key='alarm', problem_type=features.BINARY,
                            vocab_size=20, oov_buckets=2)
_CALLS = []


def counting_preprocessing_fn(inputs, custom_config=None):
  """models/preprocessing.py's preprocessing_fn, counting its traces."""
  _CALLS.append(1)
  return preprocessing.preprocessing_fn(inputs, custom_config)


def per_key_preprocessing_fn(inputs, custom_config=None):
  """The project's features and one of an analyzer that the in-process
  analysis leaves to Beam (a per-key combine)."""
  outputs = counting_preprocessing_fn(inputs, custom_config)
  reading = tf.reshape(inputs[_COLUMNS[0]], [-1])  # NaN where empty
  outputs['per_key'] = tft.scale_by_min_max_per_key(
      tf.where(tf.math.is_nan(reading), 0.0, reading),
      tf.strings.as_string(inputs['alarm']))
  return outputs


def _feature_spec():
  spec = {key: tf.io.VarLenFeature(tf.float32) for key in _COLUMNS}
  spec.update({key: tf.io.VarLenFeature(tf.int64) for key in _COUNTS})
  spec['site'] = tf.io.VarLenFeature(tf.string)
  spec['alarm'] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def _example(rng: random.Random) -> bytes:
  feature = {}
  for key in _COLUMNS:  # about 5 % empty cells
    values = [] if rng.random() < 0.05 else [rng.gauss(0, 1)]
    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(
        value=values))
  for key in _COUNTS:
    values = [] if rng.random() < 0.1 else [rng.randrange(-5, 50)]
    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(
        value=values))
  feature['site'] = tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[rng.choice([b'north', b'south', b'east'])]))
  feature['alarm'] = tf.train.Feature(int64_list=tf.train.Int64List(
      value=[int(rng.random() < 0.3)]))
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
  """An Examples artifact (train and eval splits) and a Schema artifact."""
  folder = tmp_path_factory.mktemp('inputs')
  rng = random.Random(7)
  examples = standard_artifacts.Examples()
  examples.uri = str(folder / 'examples')
  examples.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  for split, rows in (('train', 300), ('eval', 100)):
    os.makedirs(os.path.join(examples.uri, f'Split-{split}'))
    with tf.io.TFRecordWriter(
        os.path.join(examples.uri, f'Split-{split}', 'data.gz'),
        options='GZIP') as writer:
      for _ in range(rows):
        writer.write(_example(rng))
  schema = standard_artifacts.Schema()
  schema.uri = str(folder / 'schema')
  os.makedirs(schema.uri)
  proto: schema_pb2.Schema = schema_utils.schema_from_feature_spec(
      _feature_spec())
  with open(os.path.join(schema.uri, 'schema.pbtxt'), 'w') as f:
    f.write(str(proto))
  return examples, schema


def _run(executor_class, inputs, out_dir,
         preprocessing_fn='counting_preprocessing_fn'):
  """The transform graph folder `executor_class` writes, and how many times
  it traced the preprocessing_fn (`preprocessing_fn`, of this module)."""
  examples, schema = inputs
  graph = standard_artifacts.TransformGraph()
  graph.uri = str(out_dir / 'transform_graph')
  executor = executor_class(base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=[], tmp_dir=str(out_dir / 'tmp'), unique_id='test',
      make_beam_pipeline_fn=direct_runner.direct_pipeline))
  _CALLS.clear()
  executor.Do(
      {specs.EXAMPLES_KEY: [examples], specs.SCHEMA_KEY: [schema]},
      {specs.TRANSFORM_GRAPH_KEY: [graph]},
      {specs.PREPROCESSING_FN_KEY: f'{__name__}.{preprocessing_fn}',
       specs.CUSTOM_CONFIG_KEY: json.dumps(
           {features.PROBLEM_CONFIG_KEY: _PROBLEM.to_config()}),
       specs.SPLITS_CONFIG_KEY: proto_utils.proto_to_json(
           transform_pb2.SplitsConfig(analyze=['train'],
                                      transform=['train', 'eval'])),
       specs.FORCE_TF_COMPAT_V1_KEY: 1,
       specs.DISABLE_STATISTICS_KEY: 1})
  return graph.uri, len(_CALLS)


def _other_files(folder: str) -> Dict[str, bytes]:
  """Every file under `folder` but the graph, by relative path."""
  contents = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      if name != 'saved_model.pb':
        with open(path, 'rb') as f:
          contents[os.path.relpath(path, folder)] = f.read()
  return contents


def _saved_model(folder: str) -> saved_model_pb2.SavedModel:
  """The transform graph's SavedModel proto."""
  model = saved_model_pb2.SavedModel()
  with open(os.path.join(folder, 'transform_fn', 'saved_model.pb'),
            'rb') as f:
    model.ParseFromString(f.read())
  return model


def _serialized_nodes(folder: str) -> List[bytes]:
  """Every node of the transform graph, serialized, with `folder` left out
  of the vocabulary's path (TFT's temporary folder for it, which the
  graph holds as a constant)."""
  nodes = []
  for node in _saved_model(folder).meta_graphs[0].graph_def.node:
    strings = node.attr['value'].tensor.string_val
    strings[:] = [value.replace(folder.encode(), b'') for value in strings]
    nodes.append(node.SerializeToString(deterministic=True))
  return sorted(nodes)


def _nodes(folder: str) -> List[Tuple[str, str]]:
  """(name, op) of every node of the transform graph."""
  return sorted((node.name, node.op)
                for node in _saved_model(folder).meta_graphs[0].graph_def.node)


def _transformed(folder: str, examples) -> Dict[str, np.ndarray]:
  """The transformed features of serialized `examples`, parsed as the
  Trainer and the serving signatures parse them."""
  output = tft.TFTransformOutput(folder)
  parsed = serving.parse_examples(examples, output.raw_feature_spec())
  return {key: value.numpy() for key, value in
          output.transform_features_layer()(parsed).items()}


class _StockWithDenseInputs(stock_executor.Executor):
  """TFX's executor, tracing as released, with the dense inputs alone
  (and the fixed batches, transform_batches.py, that come with them)."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    with dense_numeric_inputs.dense_inputs(_PROBLEM):
      super().Do(input_dict, output_dict, exec_properties)


def test_same_transform_graph_from_one_trace(inputs, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  ours, our_traces = _run(shared_trace_transform.Executor, inputs,
                          tmp_path / 'ours')
  # The analysis ran in this process (in_process_transform.py), on the
  # inspection's trace; TFX's executor runs TFT's Beam pipeline.
  assert 'Transform analysed 1 dataset(s) in this process' in caplog.text
  stock, stock_traces = _run(_StockWithDenseInputs, inputs,
                             tmp_path / 'stock')
  assert (our_traces, stock_traces) == (1, 5)
  # The same metadata and vocabulary files, and the same graph.
  files = _other_files(ours)
  assert files == _other_files(stock)
  assert any(features.CATEGORY_VOCABULARY in path for path in files)
  assert _nodes(ours) == _nodes(stock)
  # The same batches, so the same analyzer values: the same graph,
  # constants included.
  assert _serialized_nodes(ours) == _serialized_nodes(stock)
  # Outside the executor, TFT traces as released and TFX runs its own
  # processor.
  assert (impl_helper.trace_preprocessing_function.__module__ ==
          impl_helper.__name__)
  assert (stock_executor.TransformProcessor.__module__ ==
          stock_executor.__name__)


def test_an_analyzer_computed_only_by_beam_runs_tfx_pipeline(
    inputs, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  graph, traces = _run(shared_trace_transform.Executor, inputs,
                       tmp_path / 'ours', 'per_key_preprocessing_fn')
  assert ("Transform runs TFT's Beam pipeline: operation "
          'CacheableCombinePerKey') in caplog.text
  assert 'in this process' not in caplog.text
  # The inspections' trace, which the attempt here built its analysis from,
  # then TFX's analysis-cache question and TFT's Beam analysis, as before.
  assert traces == 3
  rng = random.Random(5)
  examples = tf.constant([_example(rng) for _ in range(20)])
  scaled = _transformed(graph, examples)['per_key']
  assert scaled.shape == (20,) and 0 <= scaled.min() <= scaled.max() <= 1


def test_dense_numeric_inputs_transform_as_tfx_sparse_ones(inputs, tmp_path):
  ours, _ = _run(shared_trace_transform.Executor, inputs, tmp_path / 'ours')
  stock, _ = _run(stock_executor.Executor, inputs, tmp_path / 'stock')
  # The numeric columns are dense [1] inputs with a default for a missing
  # value; text and the label as TFX reads them.
  raw = tft.TFTransformOutput(ours).raw_feature_spec()
  for key in _COLUMNS:
    assert raw[key].shape == [1] and math.isnan(raw[key].default_value)
  for key in _COUNTS:
    assert raw[key] == tf.io.FixedLenFeature([1], tf.int64,
                                             features.MISSING_INT)
  stock_raw = tft.TFTransformOutput(stock).raw_feature_spec()
  assert raw['site'] == stock_raw['site'] == tf.io.VarLenFeature(tf.string)
  assert raw['alarm'] == stock_raw['alarm']
  assert sorted(raw) == sorted(stock_raw)
  # The transform graph reads one tensor per numeric column, not three.
  assert len(_nodes(ours)) < len(_nodes(stock))
  # The same vocabulary.
  vocabulary = os.path.join('transform_fn', 'assets',
                            features.CATEGORY_VOCABULARY)
  assert (_other_files(ours)[vocabulary] ==
          _other_files(stock)[vocabulary])
  # The same outputs on examples with empty cells (an empty list, as
  # ExampleGen writes them): the analyzers' means and variances are sums
  # over batches, and TFX's executor reads batches whose sizes Beam adapts
  # to the time each takes, so the last float digits may differ.
  rng = random.Random(11)
  examples = tf.constant([_example(rng) for _ in range(50)])
  expected = _transformed(stock, examples)
  got = _transformed(ours, examples)
  assert sorted(got) == sorted(expected) == sorted(
      [features.NUMERIC_FEATURE, _PROBLEM.label_feature,
       features.transformed_name('site')])
  matrix = got[features.NUMERIC_FEATURE]
  assert matrix.shape == (50, len(_COLUMNS) + len(_COUNTS))
  assert np.isfinite(matrix).all()
  for key, value in expected.items():
    np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5)


def test_the_analysis_reads_fixed_batches_and_each_run_the_same_graph(
    inputs, tmp_path, monkeypatch):
  monkeypatch.setattr(transform_batches, 'ROWS_PER_BATCH', 64)
  batches = []
  handle = tft_beam_impl._RunMetaGraphDoFn._handle_batch  # pylint: disable=protected-access

  def counted(self, batch):
    batches.append(batch.num_rows)
    return handle(self, batch)

  monkeypatch.setattr(tft_beam_impl._RunMetaGraphDoFn, '_handle_batch',  # pylint: disable=protected-access
                      counted)
  first, _ = _run(shared_trace_transform.Executor, inputs, tmp_path / 'one')
  # The 300 training rows in batches of 64, whatever each batch took.
  assert sorted(batches) == [44, 64, 64, 64, 64]
  batches.clear()
  second, _ = _run(shared_trace_transform.Executor, inputs, tmp_path / 'two')
  assert sorted(batches) == [44, 64, 64, 64, 64]
  # The same analyzer values (the means and variances are float sums over
  # the batches), so the same graph, constants included.
  assert _serialized_nodes(first) == _serialized_nodes(second)
  assert _other_files(first) == _other_files(second)
  # TFX's own executor lets Beam tune the sizes, from one row up.
  batches.clear()
  _run(stock_executor.Executor, inputs, tmp_path / 'stock')
  assert sum(batches) == 300 and min(batches) == 1


def test_the_tracing_function_it_was_written_for_is_shared_while_inside():
  released = impl_helper.trace_preprocessing_function
  with shared_trace_transform.shared_inspection_trace():
    assert impl_helper.trace_preprocessing_function is not released
  assert impl_helper.trace_preprocessing_function is released


def test_a_tracing_function_of_other_parameters_is_left_alone(monkeypatch):
  # A later tensorflow-transform whose tracing function takes another
  # parameter: the executor must not stand in for it.
  def later_trace(preprocessing_fn, input_specs, use_tf_compat_v1,
                  base_temp_dir=None, output_keys_to_name_map=None):
    del preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir
    del output_keys_to_name_map
    raise AssertionError('not traced in this test')

  monkeypatch.setattr(impl_helper, 'trace_preprocessing_function',
                      later_trace)
  with shared_trace_transform.shared_inspection_trace():
    assert impl_helper.trace_preprocessing_function is later_trace
