"""ExampleValidator that also checks drift from the previous accepted span.

TFX's ExampleValidator checks a span's statistics against the schema only.
TFDV can also compare them with an earlier span's statistics, feature by
feature, with the drift comparators the reviewed schema carries (Jensen-Shannon
divergence for numeric features, L-infinity distance for categorical ones);
a distance above its threshold is an anomaly like any other
(COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH, COMPARATOR_L_INFTY_HIGH), which the
anomaly gate reads.

`SpanDriftValidator` is ExampleValidator with one more execution property:
`accepted_spans_dir`, the record of the spans that passed the anomaly gate
(pipeline/components/accepted_spans.py). Its executor compares each split
with the same split of the newest accepted span below the new span's, and
records that span on the anomalies artifact (`drift_baseline_span`).
Without an earlier accepted span (the first run), or without a record (a
folder of plain CSV files), it validates exactly as ExampleValidator does.
The record is read from files, on every runtime alike: the local runner,
Kubeflow Pipelines and Vertex AI.

It also checks what TFDV leaves out: a column the schema checks for presence
only (a column the model never reads, or one that had no value when the
schema was inferred: pipeline/components/fitted_schema_gen.py) must be in the
data; a missing one is an anomaly (SCHEMA_MISSING_COLUMN) that names it.

TFDV's check takes time growing with the square of the columns; it is run a
hundred columns at a time where that finds the same anomalies
(pipeline/components/chunked_validation.py).
"""
import os
from typing import Any, Dict, List, Optional

from absl import logging
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.components.example_validator import component as validator_component
from tfx.components.example_validator import executor as validator_executor
from tfx.components.example_validator import labels
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import writer_utils

from pipeline.components import accepted_spans
from pipeline.components import chunked_validation
from pipeline.components.anomaly_rules import BASELINE_SPAN_PROPERTY
from pipeline.components.fitted_schema_gen import is_presence_only
from pipeline.components.span_statistics_gen import span_of

ACCEPTED_SPANS_DIR_KEY = 'accepted_spans_dir'
# StatisticsGen's file in each split folder of its artifact.
STATISTICS_FILE = 'FeatureStats.pb'


def add_missing_columns(
    anomalies: anomalies_pb2.Anomalies,
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema) -> anomalies_pb2.Anomalies:
  """`anomalies` plus one for each presence-only column of `schema` that
  `statistics` lacks (TFDV validates no such column)."""
  present = {f.path.step[-1] if f.path.step else f.name
             for dataset in statistics.datasets for f in dataset.features}
  for feature in schema.feature:
    if not is_presence_only(feature) or feature.name in present:
      continue
    info = anomalies.anomaly_info[feature.name]
    info.severity = anomalies_pb2.AnomalyInfo.ERROR
    info.short_description = 'Column dropped'
    info.description = ('The column is missing from the data; the schema '
                        'checks only that it is there.')
    reason = info.reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.SCHEMA_MISSING_COLUMN
    reason.short_description = info.short_description
    reason.description = info.description
  return anomalies


def split_of(split_uri: str) -> str:
  """'train' for an artifact's split folder '<uri>/Split-train'."""
  return os.path.basename(split_uri.rstrip('/')).split('-', 1)[1]


class Executor(validator_executor.Executor):
  """ExampleValidator's executor, comparing with the previous span too."""

  _previous: Optional[accepted_spans.AcceptedSpan] = None

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]):
    current = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.STATISTICS_KEY])
    record = exec_properties.get(ACCEPTED_SPANS_DIR_KEY)
    self._previous = (accepted_spans.previous(record, span_of(current))
                      if record else None)
    if self._previous is not None:
      logging.info('Comparing span %d with span %d for drift.',
                   span_of(current), self._previous.span)
      anomalies = artifact_utils.get_single_instance(
          output_dict[standard_component_specs.ANOMALIES_KEY])
      anomalies.set_int_custom_property(BASELINE_SPAN_PROPERTY,
                                        self._previous.span)
    exec_properties = {key: value for key, value in exec_properties.items()
                       if key != ACCEPTED_SPANS_DIR_KEY}
    return super().Do(input_dict, output_dict, exec_properties)

  def _Validate(self, inputs: Dict[str, Any], outputs: Dict[str, Any]):
    """ExampleValidator's check of one split, with the previous span's."""
    output_uri = outputs[labels.SCHEMA_DIFF_PATH]
    split = split_of(output_uri)
    previous = None
    if self._previous is not None and split in self._previous.splits:
      previous = tfdv.load_stats_binary(os.path.join(
          self._previous.statistics_uri, f'Split-{split}', STATISTICS_FILE))
    statistics = inputs[standard_component_specs.STATISTICS_KEY]
    schema = inputs[standard_component_specs.SCHEMA_KEY]
    anomalies = add_missing_columns(chunked_validation.validate_statistics(
        statistics=statistics, schema=schema, previous_statistics=previous,
        custom_validation_config=inputs.get(
            standard_component_specs.CUSTOM_VALIDATION_CONFIG_KEY)),
        statistics, schema)
    writer_utils.write_anomalies(
        os.path.join(output_uri, validator_executor.DEFAULT_FILE_NAME),
        anomalies)
    return anomalies


class SpanDriftValidatorSpec(standard_component_specs.ExampleValidatorSpec):
  """ExampleValidator's spec with the record of accepted spans."""

  PARAMETERS = {
      **standard_component_specs.ExampleValidatorSpec.PARAMETERS,
      ACCEPTED_SPANS_DIR_KEY: ExecutionParameter(type=str, optional=True),
  }


class SpanDriftValidator(validator_component.ExampleValidator):
  """ExampleValidator (same output) that also checks drift between spans."""

  SPEC_CLASS = SpanDriftValidatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, statistics: types.BaseChannel,
               schema: types.BaseChannel,
               accepted_spans_dir: str = ''):
    """Validates `statistics` against `schema` and the previous span.

    Args:
      statistics: the new span's statistics (StatisticsGen).
      schema: the schema with its drift comparators.
      accepted_spans_dir: the record of accepted spans; the newest one below
        the new span is the reference (empty: no drift check).
    """
    # ExampleValidator's __init__ takes no extra input: build the spec here.
    super(validator_component.ExampleValidator, self).__init__(  # pylint: disable=bad-super-call
        spec=SpanDriftValidatorSpec(
            statistics=statistics,
            schema=schema,
            accepted_spans_dir=accepted_spans_dir,
            exclude_splits='[]',
            anomalies=types.Channel(
                type=standard_artifacts.ExampleAnomalies)))
