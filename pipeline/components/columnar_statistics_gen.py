"""TFX's StatisticsGen with a columnar executor: TFDV's statistics, computed
in this process without a Beam pipeline when Beam would run here anyway.

TFX's executor builds one Beam pipeline for all splits: TFXIO's Beam source
decodes the examples to Arrow record batches, and TFDV's GenerateStatistics
feeds them to its statistics generators through Beam combiners. On Beam's
local runner most of that component's time is Beam's own: building and
serialising the pipeline, a bundle per fused stage, and pickling every
generator's accumulators between stages, which on a table of hundreds of
columns holds a quantiles sketch and a histogram per column.

This executor reads each split with the same TFXIO (its record batches,
decoded by the same tf.Example decoder), creates TFDV's own generators from
the same StatsOptions (`stats_impl.get_generators`), adds every batch to
their accumulators one after the other (so memory stays bounded by one
batch and the accumulators, however many rows), and counts the values for
TFDV's exact top-k and unique counts as TFDV's Beam transform does, keeping
the most frequent ones by the same order. The output is TFX's: per split a
`FeatureStats.pb` holding one serialized DatasetFeatureStatisticsList, and
the artifact properties TFX's executor sets.

Statistics that add up (counts, missing, min, max, top values, unique
counts) are TFX's exactly. Sums of floats (mean, standard deviation) and the
quantile sketches behind the histograms depend on how the rows were grouped
into batches, which Beam's runner chooses at run time from its own timing
(so two TFX runs on the same data may differ there too): within TFDV's
sketch error (StatsOptions.epsilon) for the quantiles and in the last digits
for the sums (tests/test_columnar_statistics_gen.py).

It steps aside, and TFX's executor runs as released, where it does not
cover the work: Beam arguments that do not run in this process (Dataflow),
examples not stored as tf.Example records, and options that need Beam:
slicing, sampling, weights, an allowlist or read-path filter, sharded
output, or a generator that is a Beam transform (lift statistics). The log
says which.
"""
import collections
import heapq
import os
from typing import Any, Dict, Iterable, List

from absl import logging
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_data_validation.statistics.generators import stats_generator
from tensorflow_data_validation.statistics.generators import top_k_uniques_stats_generator as top_k_generator
from tensorflow_data_validation.utils import schema_util
from tensorflow_data_validation.utils import top_k_uniques_stats_util
from tensorflow_data_validation.utils.example_weight_map import ExampleWeightMap
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.components.statistics_gen import component as statistics_gen_component
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.components.util import examples_utils
from tfx.components.util import tfxio_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import stats_utils
from tfx_bsl.statistics import merge_util
from tfx_bsl.tfxio import dataset_options
from tfx_bsl.tfxio import tf_example_record

from pipeline.components import equi_width_histogram
from pipeline.kfp_runtime import in_process_runner

# TFX's executor's telemetry descriptors, given to the same TFXIO.
_TELEMETRY_DESCRIPTORS = ['StatisticsGen']


class Unsupported(Exception):
  """TFX's executor computes these statistics (the reason)."""


def _stats_options(exec_properties: Dict[str, Any],
                   input_dict: Dict[str, List[types.Artifact]]
                   ) -> tfdv.StatsOptions:
  """The StatsOptions TFX's executor builds: its JSON property, and the
  schema input, if any."""
  options = tfdv.StatsOptions()
  options_json = exec_properties.get(specs.STATS_OPTIONS_JSON_KEY)
  if options_json:
    options = tfdv.StatsOptions.from_json(options_json)
  if input_dict.get(specs.SCHEMA_KEY):
    if options.schema:
      raise ValueError(
          'A schema was provided as an input and the stats_options '
          'exec_property also contains a schema value. At most one of these '
          'may be set.')
    options.schema = io_utils.SchemaReader().read(
        io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict[specs.SCHEMA_KEY])))
  return options


def _check_covered(options: tfdv.StatsOptions,
                   exec_properties: Dict[str, Any]) -> None:
  """Raises Unsupported for what only TFDV's Beam transform computes."""
  if exec_properties.get(specs.SHARDED_STATS_OUTPUT_KEY):
    raise Unsupported('sharded statistics output')
  if (options.sample_rate is not None or json_utils.loads(
      exec_properties.get(specs.SAMPLE_RATE_BY_SPLIT_KEY, 'null'))):
    raise Unsupported('sampling')
  if (options.slicing_config or options.experimental_slice_functions or
      options.experimental_slice_sqls):
    raise Unsupported('slicing')
  if options.feature_allowlist or options.experimental_filter_read_paths:
    raise Unsupported('a feature allowlist')
  if (options.example_weight_map or ExampleWeightMap()).all_weight_features():
    raise Unsupported('example weights')


class _TopKUniques:
  """TFDV's exact top-k values and unique counts (the Beam transform of
  TopKUniquesStatsGenerator): the same per-batch value counts, summed here
  instead of by Beam, and the same protos."""

  def __init__(self, options: tfdv.StatsOptions):
    schema = options.schema
    self._bytes_features = frozenset(
        schema_util.get_bytes_features(schema) if schema else [])
    self._categorical_numeric_types = (
        schema_util.get_categorical_numeric_feature_types(schema)
        if schema else {})
    self._num_top_values = options.num_top_values
    self._frequency_threshold = options.frequency_threshold
    self._num_rank_histogram_buckets = options.num_rank_histogram_buckets
    self._counts = collections.defaultdict(collections.Counter)

  def add(self, record_batch) -> None:
    for (_, path, value), (count, _) in top_k_generator._to_topk_tuples(  # pylint: disable=protected-access
        (None, record_batch), self._bytes_features,
        self._categorical_numeric_types, ExampleWeightMap()):
      self._counts[path][value] += count

  def outputs(self) -> Iterable[statistics_pb2.DatasetFeatureStatistics]:
    """Per feature the top-k proto and the unique-count proto, as Beam's
    Top.PerKey keeps them: the largest (count, value) pairs, largest
    first."""
    keep = max(self._num_top_values, self._num_rank_histogram_buckets)
    for path, counts in self._counts.items():
      top = heapq.nlargest(keep, ((n, v) for v, n in counts.items()))
      yield top_k_uniques_stats_util.make_dataset_feature_stats_proto_topk_single(
          feature_path_tuple=path,
          value_count_list=[top_k_uniques_stats_util.FeatureValueCount(v, n)
                            for n, v in top],
          is_weighted_stats=False,
          num_top_values=self._num_top_values,
          frequency_threshold=self._frequency_threshold,
          num_rank_histogram_buckets=self._num_rank_histogram_buckets)
      yield top_k_uniques_stats_util.make_dataset_feature_stats_proto_unique_single(
          feature_path_tuple=path, num_uniques=len(counts))


def _generators(options: tfdv.StatsOptions):
  """TFDV's generators for `options`: the combiners, and the exact top-k
  TFDV runs as a Beam transform (None with sketch-based top-k)."""
  combiners, top_k = [], None
  for generator in stats_impl.get_generators(options):
    if isinstance(generator, stats_generator.CombinerStatsGenerator):
      combiners.append(generator)
    elif isinstance(generator, top_k_generator.TopKUniquesStatsGenerator):
      top_k = _TopKUniques(options)
    else:
      raise Unsupported(f'the Beam statistics generator {generator.name}')
  return combiners, top_k


def split_statistics(record_batches, options: tfdv.StatsOptions
                     ) -> statistics_pb2.DatasetFeatureStatisticsList:
  """TFDV's statistics of one split, from its Arrow record batches: what
  tfdv.GenerateStatistics(options) gives for the same rows."""
  combiners, top_k = _generators(options)
  for combiner in combiners:
    combiner.setup()
  accumulators = [c.create_accumulator() for c in combiners]
  rows = 0
  for record_batch in record_batches:
    rows += record_batch.num_rows
    accumulators = [c.add_input(a, record_batch)
                    for c, a in zip(combiners, accumulators)]
    if top_k is not None:
      top_k.add(record_batch)
  if not rows:  # TFDV's placeholder for an empty input
    return statistics_pb2.DatasetFeatureStatisticsList(
        datasets=[statistics_pb2.DatasetFeatureStatistics()])
  with equi_width_histogram.used_by_tfdv():
    outputs = [c.extract_output(c.compact(a))
               for c, a in zip(combiners, accumulators)]
  if top_k is not None:
    outputs.extend(top_k.outputs())
  return merge_util.merge_dataset_feature_statistics(outputs)


def _record_batches(tfxio, options: tfdv.StatsOptions):
  """The split's examples as Arrow record batches of TFDV's batch size, in
  the files' order."""
  batch_size = (options.desired_batch_size or
                stats_impl.constants.DEFAULT_DESIRED_INPUT_BATCH_SIZE)
  return tfxio.RecordBatches(dataset_options.RecordBatchesOptions(
      batch_size=batch_size, num_epochs=1, shuffle=False))


class Executor(statistics_gen_executor.Executor):
  """TFX's StatisticsGen executor, without Beam where Beam runs here."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    try:
      plan = self._plan(input_dict, exec_properties)
    except Unsupported as reason:  # nothing is written yet
      logging.info("Computing statistics with TFDV's Beam pipeline: %s.",
                   reason)
      super().Do(input_dict, output_dict, exec_properties)
      return
    self._log_startup(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(
        input_dict[specs.EXAMPLES_KEY])
    statistics = artifact_utils.get_single_instance(
        output_dict[specs.STATISTICS_KEY])
    _set_properties(statistics, examples, list(plan))
    for split, (tfxio, options) in plan.items():
      logging.info('Generating statistics for split %s in this process.',
                   split)
      output_uri = artifact_utils.get_split_uri(
          output_dict[specs.STATISTICS_KEY], split)
      result = split_statistics(_record_batches(tfxio, options), options)
      fileio.makedirs(output_uri)
      with fileio.open(os.path.join(
          output_uri, statistics_gen_executor.DEFAULT_FILE_NAME), 'wb') as f:
        f.write(result.SerializeToString())
      logging.info('Statistics for split %s written to %s.', split,
                   output_uri)

  def _plan(self, input_dict, exec_properties):
    """Per split to compute, its TFXIO and StatsOptions.

    Raises:
      Unsupported: TFX's executor must compute the statistics (the reason).
    """
    if not in_process_runner.runs_in_process(self._beam_pipeline_args):
      raise Unsupported('the Beam arguments do not run in this process')
    options = _stats_options(exec_properties, input_dict)
    _check_covered(options, exec_properties)
    _generators(options)
    examples = artifact_utils.get_single_instance(
        input_dict[specs.EXAMPLES_KEY])
    plan = {}
    for split in _split_names(examples, exec_properties):
      tfxio = tfxio_utils.get_split_tfxio(
          examples=[examples], split=split,
          telemetry_descriptors=_TELEMETRY_DESCRIPTORS)
      if not isinstance(tfxio, tf_example_record.TFExampleRecord):
        raise Unsupported(f'examples read by {type(tfxio).__name__}')
      plan[split] = (tfxio, tfdv.StatsOptions.from_json(options.to_json()))
    if not plan:
      raise Unsupported('no splits (TFX reports the error)')
    return plan


def _split_names(examples: types.Artifact,
                 exec_properties: Dict[str, Any]) -> List[str]:
  """The splits TFX's executor computes statistics for, in its order."""
  exclude = json_utils.loads(
      exec_properties.get(specs.EXCLUDE_SPLITS_KEY, 'null')) or []
  if not isinstance(exclude, list):
    raise ValueError('exclude_splits in execution properties needs to be a '
                     f'list. Got {type(exclude)} instead.')
  if examples.has_custom_property(
      examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME):
    splits = list(json_utils.loads(examples.get_string_custom_property(
        examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME)))
  else:
    splits = artifact_utils.decode_split_names(examples.split_names)
  return [split for split in splits if split not in exclude]


def _set_properties(statistics: types.Artifact, examples: types.Artifact,
                    splits: List[str]) -> None:
  """The properties TFX's executor gives the statistics artifact (every
  split read whole: a sample rate of 1)."""
  statistics.split_names = artifact_utils.encode_split_names(splits)
  statistics.span = examples.span
  try:
    statistics.set_string_custom_property(
        statistics_gen_executor.STATS_DASHBOARD_LINK,
        stats_utils.generate_stats_dashboard_link(statistics))
  except Exception as e:  # pylint: disable=broad-except
    # As TFX's executor: a missing link never fails the statistics.
    logging.exception('Failed to generate stats dashboard link because %s', e)
    statistics.set_string_custom_property(
        statistics_gen_executor.STATS_DASHBOARD_LINK, '')
  statistics.set_json_value_custom_property(
      statistics_gen_executor.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME,
      json_utils.dumps({split: 1.0 for split in splits}))


class StatisticsGen(statistics_gen_component.StatisticsGen):
  """TFX's StatisticsGen (same inputs, outputs and parameters) with the
  columnar executor."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
