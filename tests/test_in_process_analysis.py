"""TFT's analysis computed in this process
(pipeline/components/in_process_analysis.py) against TFT's own Beam
pipeline on the same record batches: the same vocabulary files, metadata
and transformed features for the analyzers it computes (combiners,
quantiles, two phases, vocabularies of every supported kind), and
`Unsupported`, before anything is written, for those it leaves to Beam.
The executor around it: tests/test_shared_trace_transform.py.
"""
import gzip
import os
import random
from typing import Dict, List

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform import analyzer_nodes
from tensorflow_transform.beam import impl as tft_beam_impl
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.tfxio import dataset_options
from tfx_bsl.tfxio import tf_example_record

from local.run import direct_runner
from pipeline.components import in_process_analysis
from pipeline.components import in_process_transform
from pipeline.components import in_process_vocabulary

_ROWS = 500
_BATCH = 64
_WORDS = ['north', 'south', 'east', 'west', 'ring', 'bridge', 'tunnel']


def _feature_spec():
  return {
      'x': tf.io.FixedLenFeature([], tf.float32),
      'words': tf.io.VarLenFeature(tf.string),
      'lanes': tf.io.VarLenFeature(tf.int64),
      'weight': tf.io.FixedLenFeature([], tf.float32),
      'label': tf.io.FixedLenFeature([], tf.int64),
  }


def _example(rng: random.Random) -> bytes:
  words = [rng.choice(_WORDS[:rng.randrange(1, len(_WORDS) + 1)])
           for _ in range(rng.randrange(0, 3))]
  feature = {
      'x': tf.train.Feature(float_list=tf.train.FloatList(
          value=[rng.lognormvariate(0, 1)])),
      'words': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[word.encode() for word in words])),
      'lanes': tf.train.Feature(int64_list=tf.train.Int64List(
          value=[rng.randrange(1, 5)] if rng.random() < 0.9 else [])),
      # Weights whose sums round: the order of the additions shows.
      'weight': tf.train.Feature(float_list=tf.train.FloatList(
          value=[rng.choice([0.1, 0.3, 1.7])])),
      'label': tf.train.Feature(int64_list=tf.train.Int64List(
          value=[int(rng.random() < 0.4)])),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def broad_preprocessing_fn(inputs):
  """Every analyzer kind the module computes, some of them twice."""
  x, words, lanes = inputs['x'], inputs['words'], inputs['lanes']
  joined = tf.strings.reduce_join(tf.sparse.to_dense(words), axis=1,
                                  separator=' ')
  zeros = tf.zeros_like(x)
  outputs = {
      'z': tft.scale_to_z_score(x),
      'min_max': tft.scale_by_min_max(x),
      'sum_and_size': zeros + tft.sum(x) + tf.cast(tft.size(x), tf.float32),
      'bucket': tft.bucketize(x, 4),
      # An analyzer of an analyzer's output: a second phase.
      'centered_max': zeros + tft.max(x - tft.mean(x)),
      'word': tft.compute_and_apply_vocabulary(
          words, top_k=4, frequency_threshold=2, num_oov_buckets=1),
      # A row's words joined ('' for none), weighted by the row's weight.
      'weighted_words': tft.compute_and_apply_vocabulary(
          joined, weights=inputs['weight'], vocab_filename='weighted'),
      'lane': tft.compute_and_apply_vocabulary(lanes, vocab_filename='lanes'),
      'label': tft.compute_and_apply_vocabulary(
          tf.strings.as_string(inputs['label']), vocab_filename='labels'),
  }
  for name, vocabulary in (
      ('gzip', tft.vocabulary(words, file_format='tfrecord_gzip',
                              vocab_filename='gzip')),
      ('shuffled', tft.vocabulary(words, fingerprint_shuffle=True,
                                  vocab_filename='shuffled')),
      ('reserved', tft.vocabulary(words, reserved_tokens=['<pad>'],
                                  vocab_filename='reserved')),
      ('none_frequent', tft.vocabulary(words, frequency_threshold=10**6,
                                       vocab_filename='none_frequent')),
      ('none_in_top', tft.vocabulary(words, frequency_threshold=10**6,
                                     top_k=3, vocab_filename='none_in_top')),
  ):
    outputs[name] = tft.apply_vocabulary(
        words, vocabulary, default_value=-1,
        file_format='tfrecord_gzip' if name == 'gzip' else 'text')
  tft.vocabulary(words, store_frequency=True, vocab_filename='frequencies')
  tft.vocabulary(joined, weights=inputs['weight'], store_frequency=True,
                 vocab_filename='weighted_frequencies')
  # Its sketch keeps any one of the tokens tied at the top_k boundary, from
  # run to run, in TFT's Beam pipeline too: a top_k over the number of
  # distinct words.
  outputs['approximate'] = tft.apply_vocabulary(
      words, tft.experimental.approximate_vocabulary(
          words, top_k=len(_WORDS) + 1, vocab_filename='approximate'),
      default_value=-1)
  return outputs


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  """(record batch reader, tensor adapter config, schema, test examples)."""
  folder = tmp_path_factory.mktemp('data')
  rng = random.Random(3)
  path = str(folder / 'examples.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for _ in range(_ROWS):
      writer.write(_example(rng))
  schema = schema_utils.schema_from_feature_spec(_feature_spec())
  tfxio = tf_example_record.TFExampleRecord(
      file_pattern=path, schema=schema, telemetry_descriptors=['test'])

  def batches() -> List[pa.RecordBatch]:
    return list(tfxio.RecordBatches(dataset_options.RecordBatchesOptions(
        batch_size=_BATCH, num_epochs=1, shuffle=False)))

  examples = [_example(rng) for _ in range(80)]
  return batches, tfxio.TensorAdapterConfig(), schema, examples


def _with_beam(preprocessing_fn, data, folder: str) -> str:
  """The transform graph folder TFT's Beam pipeline writes."""
  batches, config, schema, _ = data
  graph = os.path.join(folder, 'graph')
  # The raw data's metadata, as TFX's executor writes it beside.
  metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                             os.path.join(graph, 'metadata'))
  with direct_runner.direct_pipeline() as pipeline:
    with tft_beam.Context(temp_dir=os.path.join(folder, 'tmp'),
                          force_tf_compat_v1=True):
      transform_fn = (
          (pipeline | beam.Create(batches(), reshuffle=False), config)
          | tft_beam.AnalyzeDataset(preprocessing_fn))
      _ = transform_fn | tft_beam.WriteTransformFn(graph)
  return graph


def _here(preprocessing_fn, data, folder: str) -> str:
  """The transform graph folder the in-process analysis writes."""
  batches, config, schema, _ = data
  with tft_beam.Context(temp_dir=os.path.join(folder, 'tmp'),
                        force_tf_compat_v1=True):
    result = in_process_analysis.analyze(
        preprocessing_fn, {'only': batches}, config,
        tft_beam.Context.create_base_temp_dir())
  in_process_transform.write_transform_graph(
      result, dataset_metadata.DatasetMetadata(schema),
      os.path.join(folder, 'graph'))
  return os.path.join(folder, 'graph')


def _files(folder: str, under: str) -> Dict[str, bytes]:
  """The files under `folder`/`under`, by relative path; gzip files by
  their uncompressed contents (gzip headers hold a time)."""
  contents = {}
  root = os.path.join(folder, under)
  for path, _, names in os.walk(root):
    for name in names:
      with open(os.path.join(path, name), 'rb') as f:
        content = f.read()
      if name.endswith('.gz'):
        content = gzip.decompress(content)
      contents[os.path.relpath(os.path.join(path, name), root)] = content
  return contents


def _transformed(folder: str, examples) -> Dict[str, np.ndarray]:
  output = tft.TFTransformOutput(folder)
  parsed = tf.io.parse_example(tf.constant(examples),
                               output.raw_feature_spec())
  return {key: tf.sparse.to_dense(value).numpy()
          if isinstance(value, tf.SparseTensor) else value.numpy()
          for key, value in output.transform_features_layer()(parsed).items()}


def test_the_analysis_here_writes_what_beam_writes(data, tmp_path):
  beam_graph = _with_beam(broad_preprocessing_fn, data,
                          str(tmp_path / 'beam'))
  here_graph = _here(broad_preprocessing_fn, data, str(tmp_path / 'here'))
  # The same vocabulary files, each kind of them.
  assets = _files(here_graph, 'transform_fn/assets')
  assert assets == _files(beam_graph, 'transform_fn/assets')
  assert sorted(assets) == sorted([
      'approximate', 'frequencies', 'gzip.tfrecord.gz', 'labels', 'lanes',
      'none_frequent', 'none_in_top', 'reserved', 'shuffled', 'weighted',
      'weighted_frequencies', 'vocab_compute_and_apply_vocabulary_vocabulary'])
  # Sums of weights that round (0.1 + 0.3 ...), added up in the same order.
  assert any(b'.' in line.split(b' ')[0] and len(line.split(b' ')[0]) > 8
             for line in assets['weighted_frequencies'].splitlines())
  assert assets['reserved'].startswith(b'<pad>\n')
  assert assets['frequencies'].split(b'\n')[0].split(b' ')[1] in (
      w.encode() for w in _WORDS)
  # Nothing passes a threshold of a million: TFT's placeholder token.
  assert len(assets['none_frequent'].splitlines()) == 1
  assert assets['none_frequent'] == assets['none_in_top']
  # The same metadata of the transformed data (schema and asset map).
  assert (_files(here_graph, 'transformed_metadata') ==
          _files(beam_graph, 'transformed_metadata'))
  # The same transformed features.
  examples = data[3]
  expected = _transformed(beam_graph, examples)
  got = _transformed(here_graph, examples)
  assert sorted(got) == sorted(expected)
  for key, value in expected.items():
    if value.dtype.kind == 'f':
      np.testing.assert_allclose(got[key], value, rtol=1e-6, err_msg=key)
    else:
      np.testing.assert_array_equal(got[key], value, err_msg=key)
  # Not constants: the analyzers saw the data.
  assert len(np.unique(got['bucket'])) == 4
  assert len(np.unique(got['word'])) > 2


def _labels_vocabulary_fn(inputs):
  return {'word': tft.compute_and_apply_vocabulary(
      inputs['words'], labels=tf.sparse.to_dense(tf.sparse.map_values(
          lambda v: tf.zeros_like(v, tf.int64), inputs['words'])))}


def _coverage_fn(inputs):
  return {'word': tft.compute_and_apply_vocabulary(
      inputs['words'], top_k=2, coverage_top_k=1,
      key_fn=lambda token: token[:1])}


def _per_key_fn(inputs):
  keys = tf.strings.as_string(inputs['label'])
  return {'scaled': tft.scale_by_min_max_per_key(inputs['x'], keys)}


@pytest.mark.parametrize('preprocessing_fn, reason', [
    (_labels_vocabulary_fn, 'a vocabulary ordered by'),
    (_coverage_fn, 'coverage'),
    (_per_key_fn, 'CacheableCombinePerKey'),
])
def test_what_it_does_not_compute_is_refused_before_anything_is_written(
    preprocessing_fn, reason, data, tmp_path):
  with pytest.raises(in_process_analysis.Unsupported, match=reason):
    _here(preprocessing_fn, data, str(tmp_path))
  assert not [path for path in tmp_path.rglob('*') if path.is_file()]


class _Dataset:
  """What why_not reads of TFX's dataset: its reader."""

  def __init__(self, tfxio):
    self.tfxio = tfxio


def test_only_what_the_pipeline_asks_of_transform_is_analysed_here():
  reader = tf_example_record.TFExampleRecord(
      file_pattern='unread', schema=schema_utils.schema_from_feature_spec(
          _feature_spec()), telemetry_descriptors=['test'])
  asked = dict(in_process=True, analyze_data_list=[_Dataset(reader)],
               force_tf_compat_v1=True, input_cache_dir=None,
               output_cache_dir=None, disable_statistics=True,
               per_set_stats_output_paths=[], materialization_format=None,
               stats_output_paths={})
  assert in_process_transform.why_not(**asked) is None
  for change, reason in (
      ({'in_process': False}, 'run pipelines elsewhere'),
      ({'force_tf_compat_v1': False}, 'TF2 mode'),
      ({'input_cache_dir': 'cache'}, 'analyzer cache'),
      ({'output_cache_dir': 'cache'}, 'analyzer cache'),
      ({'disable_statistics': False}, 'statistics'),
      ({'stats_output_paths': {'post': 'stats'}}, 'statistics'),
      ({'per_set_stats_output_paths': ['stats']}, 'statistics'),
      ({'materialization_format': 'tfrecords_gzip'}, 'transformed examples'),
      ({'analyze_data_list': [_Dataset(reader), _Dataset(object())]},
       'read by object')):
    assert reason in in_process_transform.why_not(**{**asked, **change})


def test_the_files_are_read_one_after_the_other_in_sorted_order(tmp_path):
  # TFXIO's own reader interleaves as many files as the machine has cores;
  # the analysis reads whole files in turn, so its batches (and sums) are
  # the same on every machine.
  rng = random.Random(9)
  rows = {}
  for name, count in (('part-b', 5), ('part-a', 7), ('part-c', 3)):
    rows[name] = [_example(rng) for _ in range(count)]
    with tf.io.TFRecordWriter(str(tmp_path / name)) as writer:
      for row in rows[name]:
        writer.write(row)
  reader = tf_example_record.TFExampleRecord(
      file_pattern=[str(tmp_path / 'part-*')],
      schema=schema_utils.schema_from_feature_spec(_feature_spec()),
      raw_record_column_name='raw', telemetry_descriptors=['test'])
  batches = list(in_process_transform._record_batches(reader, 4))  # pylint: disable=protected-access
  assert [batch.num_rows for batch in batches] == [4, 3, 4, 1, 3]
  read = [record for batch in batches
          for record in batch.column(batch.schema.get_field_index('raw'))
          .flatten().to_pylist()]
  assert read == rows['part-a'] + rows['part-b'] + rows['part-c']
  with pytest.raises(ValueError, match='no examples match'):
    list(in_process_transform._record_batches(  # pylint: disable=protected-access
        tf_example_record.TFExampleRecord(
            file_pattern=str(tmp_path / 'none-*'),
            telemetry_descriptors=['test']), 4))


def test_a_file_format_it_does_not_write_is_refused_at_the_plan():
  operation = analyzer_nodes.VocabularyOrderAndWrite(
      vocab_filename='v', store_frequency=False, fingerprint_shuffle=False,
      file_format='parquet')
  assert in_process_vocabulary.unsupported_reason(operation) == (
      "vocabulary file format 'parquet'")


def test_a_tft_without_what_it_calls_keeps_beam(monkeypatch):
  assert in_process_analysis.missing_from_tft() == []
  monkeypatch.delattr(tft_beam_impl, '_TensorBinding')
  assert in_process_analysis.missing_from_tft() == [
      'tensorflow_transform.beam.impl._TensorBinding']
  reader = tf_example_record.TFExampleRecord(
      file_pattern='unread', telemetry_descriptors=['test'])
  reason = in_process_transform.why_not(
      True, [_Dataset(reader)], True, None, None, True, [], None, {})
  assert '_TensorBinding' in reason


def test_a_tft_batch_runner_of_other_parameters_keeps_beam(monkeypatch):
  def other_init(self, tf_config, shared_graph_state_handle, passthrough_keys,
                 use_tf_compat_v1, input_tensor_adapter_config):
    del self, tf_config, shared_graph_state_handle, passthrough_keys
    del use_tf_compat_v1, input_tensor_adapter_config
  monkeypatch.setattr(tft_beam_impl._RunMetaGraphDoFn, '__init__', other_init)  # pylint: disable=protected-access
  assert [name for name in in_process_analysis.missing_from_tft()
          if name.startswith('_RunMetaGraphDoFn(')]
