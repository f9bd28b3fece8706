"""The columnar StatisticsGen executor against TFX's own (TFDV on Beam).

Both executors run on the same Examples artifact and their FeatureStats.pb
are compared feature by feature: every statistic equal, except a mean and a
standard deviation, which are sums of floats whose order follows how the
rows were batched (Beam's runner picks its batch sizes from its own timing,
so two runs of TFX's executor differ there too): equal to 1e-12 relative.
"""
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.schema_gen import executor as schema_gen_executor
from tfx.components.statistics_gen import executor as tfx_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils

from local.run import direct_runner
from pipeline.components import columnar_csv_example_gen
from pipeline.components import columnar_statistics_gen as columnar
from pipeline.components import span_statistics_gen
from pipeline.kfp_runtime import beam_runner
from tests.helpers import write_slice

_SPLITS = ('train', 'eval', 'empty')


def _feature(values):
  if not values:
    return tf.train.Feature()
  if isinstance(values[0], bytes):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
  if isinstance(values[0], float):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _rows(count, seed):
  """Examples with every kind of column: floats with empty cells and an
  infinity, ints, strings with ties in their counts (also where TFDV cuts
  its list of most frequent values), a list column, a column absent from
  some examples, one always empty, and the label."""
  rng = np.random.default_rng(seed)
  for i in range(count):
    row = {
        'fare': [] if i % 7 == 0 else [float(rng.normal(12, 30))],
        'miles': [float('inf')] if i == 5 else [float(rng.exponential(3))],
        'trips': [int(rng.integers(-5, 40))],
        'company': [] if i % 11 == 0 else [
            rng.choice([b'Taxi Co', b'Other', b'Flash Cab', b'\xc3\xa9t\xc3\xa9',
                        b'c%d' % (i % 50)])],
        'tags': [bytes(t) for t in rng.choice([b'a', b'b', b'c'],
                                              int(rng.integers(0, 4)))],
        'empty': [],
        'code': [int(i % 9)],
        # More distinct values than TFDV keeps (1,000), tied at the cut.
        'ticket': [b'v%04d' % (i % 1200)],
        'label': [int(rng.random() < 0.3)],
    }
    if i % 3:
      row['sometimes'] = [float(i)]
    yield tf.train.Example(features=tf.train.Features(
        feature={k: _feature(v) for k, v in row.items()}))


def _examples(folder, rows):
  """An Examples artifact with gzipped tf.Example files per split."""
  examples = standard_artifacts.Examples()
  examples.uri = str(folder)
  examples.split_names = artifact_utils.encode_split_names(list(rows))
  for split, split_rows in rows.items():
    path = os.path.join(str(folder), f'Split-{split}')
    os.makedirs(path)
    with tf.io.TFRecordWriter(
        os.path.join(path, 'data_tfrecord-00000-of-00001.gz'),
        options='GZIP') as writer:
      for example in split_rows:
        writer.write(example.SerializeToString())
  return examples


@pytest.fixture(scope='module')
def mixed_examples(tmp_path_factory):
  folder = tmp_path_factory.mktemp('mixed')
  return _examples(folder / 'examples', {
      'train': list(_rows(2500, 0)), 'eval': list(_rows(700, 1)),
      'empty': []})


@pytest.fixture(scope='module')
def tfx_mixed(mixed_examples, tmp_path_factory):
  """TFX's executor's statistics of the mixed examples (no schema)."""
  return _run(tfx_executor.Executor, mixed_examples,
              tmp_path_factory.mktemp('tfx_mixed') / 'statistics')


def _run(executor_class, examples, folder, schema=None,
         beam_pipeline_args=(), **exec_properties):
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri = str(folder)
  input_dict = {specs.EXAMPLES_KEY: [examples]}
  if schema is not None:
    schema_artifact = standard_artifacts.Schema()
    schema_artifact.uri = str(folder) + '-schema'
    io_utils.write_pbtxt_file(
        os.path.join(schema_artifact.uri, 'schema.pbtxt'), schema)
    input_dict[specs.SCHEMA_KEY] = [schema_artifact]
  executor = executor_class(base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=list(beam_pipeline_args),
      make_beam_pipeline_fn=direct_runner.direct_pipeline,
      tmp_dir=str(folder) + '-tmp', unique_id='test'))
  executor.Do(input_dict, {specs.STATISTICS_KEY: [statistics]},
              {specs.EXCLUDE_SPLITS_KEY: '[]', **exec_properties})
  return statistics


def _statistics(artifact, split):
  path = os.path.join(artifact_utils.get_split_uri([artifact], split),
                      tfx_executor.DEFAULT_FILE_NAME)
  with open(path, 'rb') as f:
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def _without_sums(feature):
  """The feature's statistics without mean and standard deviation, and
  those, apart."""
  feature = statistics_pb2.FeatureNameStatistics.FromString(
      feature.SerializeToString())
  sums = []
  if feature.HasField('num_stats'):
    for stats in (feature.num_stats,
                  feature.num_stats.weighted_numeric_stats):
      sums += [stats.mean, stats.std_dev]
      stats.ClearField('mean')
      stats.ClearField('std_dev')
  return feature, sums


def assert_same_statistics(ours, theirs):
  """Every statistic equal, means and standard deviations to 1e-12."""
  assert len(ours.datasets) == len(theirs.datasets) == 1
  ours, theirs = ours.datasets[0], theirs.datasets[0]
  assert ours.num_examples == theirs.num_examples
  assert ours.weighted_num_examples == theirs.weighted_num_examples
  assert ours.name == theirs.name
  by_path = {tuple(f.path.step): f for f in theirs.features}
  assert sorted(tuple(f.path.step) for f in ours.features) == sorted(by_path)
  for feature in ours.features:
    mine, my_sums = _without_sums(feature)
    tfx, tfx_sums = _without_sums(by_path[tuple(feature.path.step)])
    assert text_format.MessageToString(mine) == text_format.MessageToString(
        tfx)
    np.testing.assert_allclose(my_sums, tfx_sums, rtol=1e-12, atol=0)


@pytest.mark.parametrize('with_schema', [False, True])
def test_same_statistics_and_properties_as_tfx(mixed_examples, tfx_mixed,
                                               tmp_path, with_schema):
  schema = None
  if with_schema:  # an int column as categorical: top values for it too
    schema = tfdv.infer_schema(_statistics(
        _run(columnar.Executor, mixed_examples, tmp_path / 'first'), 'train'))
    tfdv.get_feature(schema, 'code').int_domain.is_categorical = True
  ours = _run(columnar.Executor, mixed_examples, tmp_path / 'ours', schema)
  theirs = (_run(tfx_executor.Executor, mixed_examples, tmp_path / 'tfx',
                 schema) if with_schema else tfx_mixed)

  for split in _SPLITS:
    assert_same_statistics(_statistics(ours, split), _statistics(theirs, split))
  train = _statistics(ours, 'train').datasets[0]
  rows = list(_rows(2500, 0))
  assert train.num_examples == len(rows)
  features = {f.path.step[0]: f for f in train.features}
  assert features['fare'].num_stats.common_stats.num_missing == sum(
      not r.features.feature['fare'].float_list.value for r in rows)
  assert features['company'].string_stats.unique == len(
      {v for r in rows for v in r.features.feature['company'].bytes_list.value})
  assert features['code'].HasField('string_stats') == with_schema
  assert _statistics(ours, 'empty') == statistics_pb2.DatasetFeatureStatisticsList(
      datasets=[statistics_pb2.DatasetFeatureStatistics()])
  assert ours.split_names == theirs.split_names == '["train", "eval", "empty"]'
  assert ours.span == theirs.span
  assert ours.mlmd_artifact.custom_properties == (
      theirs.mlmd_artifact.custom_properties)


def test_excluded_splits_are_left_out_as_tfx_leaves_them(mixed_examples,
                                                          tmp_path):
  ours = _run(columnar.Executor, mixed_examples, tmp_path / 'ours',
              exclude_splits='["empty", "train"]')
  theirs = _run(tfx_executor.Executor, mixed_examples, tmp_path / 'tfx',
                exclude_splits='["empty", "train"]')
  assert ours.split_names == theirs.split_names == '["eval"]'
  assert sorted(os.listdir(ours.uri)) == sorted(os.listdir(theirs.uri)) == [
      'Split-eval']
  assert_same_statistics(_statistics(ours, 'eval'), _statistics(theirs, 'eval'))


def _schema_gen(statistics, folder):
  schema = standard_artifacts.Schema()
  schema.uri = str(folder)
  schema_gen_executor.Executor().Do(
      {specs.STATISTICS_KEY: [statistics]}, {specs.SCHEMA_KEY: [schema]},
      {specs.INFER_FEATURE_SHAPE_KEY: 1, specs.EXCLUDE_SPLITS_KEY: '[]'})
  return io_utils.SchemaReader().read(
      os.path.join(schema.uri, schema_gen_executor.DEFAULT_FILE_NAME))


def test_bundled_slice_same_statistics_and_schema(tmp_path):
  """The bundled data's first rows through the pipeline's ExampleGen: the
  same statistics, and SchemaGen infers the same schema from both."""
  data = tmp_path / 'data'
  with open(write_slice(str(data), rows=3000)) as f:
    header = f.readline().strip().split(',')
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  columnar_csv_example_gen.Executor().Do(
      {}, {specs.EXAMPLES_KEY: [examples]},
      {specs.INPUT_BASE_KEY: str(data),
       specs.INPUT_CONFIG_KEY: json.dumps(
           {'splits': [{'name': 'all', 'pattern': '*.csv'}]}),
       specs.OUTPUT_CONFIG_KEY: json.dumps({'split_config': {'splits': [
           {'name': 'train', 'hash_buckets': 2},
           {'name': 'eval', 'hash_buckets': 1}]}}),
       specs.OUTPUT_DATA_FORMAT_KEY: 6,  # FORMAT_TF_EXAMPLE
       specs.OUTPUT_FILE_FORMAT_KEY: 5})  # FORMAT_TFRECORDS_GZIP
  ours = _run(columnar.Executor, examples, tmp_path / 'ours')
  theirs = _run(tfx_executor.Executor, examples, tmp_path / 'tfx')
  for split in ('train', 'eval'):
    assert_same_statistics(_statistics(ours, split), _statistics(theirs, split))
  assert sum(_statistics(ours, s).datasets[0].num_examples
             for s in ('train', 'eval')) == 3000
  ours_schema = _schema_gen(ours, tmp_path / 'ours_schema')
  assert sorted(f.name for f in ours_schema.feature) == sorted(header)
  assert ours_schema == _schema_gen(theirs, tmp_path / 'tfx_schema')


def test_the_span_statistics_gen_computes_in_process_too(mixed_examples,
                                                          tfx_mixed, tmp_path):
  mixed_examples.set_int_custom_property(span_statistics_gen.SPAN, 3)
  try:
    ours = _run(span_statistics_gen.Executor, mixed_examples, tmp_path / 'o')
  finally:
    mixed_examples.mlmd_artifact.custom_properties.pop(span_statistics_gen.SPAN)
  assert ours.span == 3
  assert_same_statistics(_statistics(ours, 'train'),
                         _statistics(tfx_mixed, 'train'))


def test_options_that_need_beam_go_to_tfx(mixed_examples, tmp_path, caplog):
  """Sampling (here at a rate of 1: every row) is TFDV's Beam transform's:
  TFX's executor computes it, as the log says."""
  options = tfdv.StatsOptions(sample_rate=1.0)
  with caplog.at_level(logging.INFO):
    ours = _run(columnar.Executor, mixed_examples, tmp_path / 'ours',
                stats_options_json=options.to_json())
  assert "with TFDV's Beam pipeline: sampling" in caplog.text
  assert _statistics(ours, 'eval').datasets[0].num_examples == 700


def test_beam_arguments_for_another_runner_go_to_tfx(mixed_examples, tmp_path,
                                                      monkeypatch, caplog):
  """On Dataflow (any runner not in this process) TFX's executor runs as
  released: here it records that it was called instead of starting a job."""
  called = []
  monkeypatch.setattr(tfx_executor.Executor, 'Do',
                      lambda self, *args: called.append(args))
  with caplog.at_level(logging.INFO):
    _run(columnar.Executor, mixed_examples, tmp_path / 'ours',
         beam_pipeline_args=['--runner=DataflowRunner', '--project=p'])
  assert len(called) == 1
  assert not os.path.exists(tmp_path / 'ours')
  assert 'do not run in this process' in caplog.text
  # The image's in-container runner is this process: no hand-over.
  ours = _run(columnar.Executor, mixed_examples, tmp_path / 'container',
              beam_pipeline_args=[f'--runner={beam_runner.IN_PROCESS_RUNNER}'])
  assert len(called) == 1
  assert _statistics(ours, 'eval').datasets[0].num_examples == 700
