"""The gate between ExampleValidator and Transform: anomalies stop the run.

ExampleValidator only records what it finds. `AnomalyGate` reads its anomalies
for every split and fails the run when any anomaly at or above the severity
ANOMALY_MIN_SEVERITY is not in ALLOWED_ANOMALIES, with a message naming each
column and the anomaly in TFDV's words, and the path of the anomalies file
(pipeline/components/anomaly_rules.py). When everything passes it hands the
schema on, so Transform and the Trainer (which read that copy) cannot start
before the gate passed, with any orchestrator: in the local DAG and in the
compiled Kubeflow and Vertex AI specs alike. Transform reads a copy without
the columns the schema checks for presence only
(pipeline/components/fitted_schema_gen.py): their type is not checked, so
TensorFlow could not parse them, and the model never reads them.

Drift from the previous span (pipeline/components/span_drift_validator.py)
stops the run the same way, with a message naming each column and its
distance, or, with DRIFT_ACTION=warn, only prints that message. With span
folders the gate also takes the span's examples and statistics, and records
a span that passed in the record of accepted spans under the pipeline root
(pipeline/components/accepted_spans.py): later runs' drift reference and
training window are taken from there, so a refused span never becomes
either.
"""
import os
import sys
from typing import List, Sequence

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from pipeline.components import accepted_spans
from pipeline.components import anomaly_rules
from pipeline.components.fitted_schema_gen import is_presence_only
from pipeline.components.span_statistics_gen import span_of
from pipeline.errors import DataError

# ExampleValidator writes each split's anomalies to Split-<name>/ in this file.
ANOMALIES_FILE_NAME = 'SchemaDiff.pb'


class AnomaliesFound(DataError):
  """ExampleValidator found anomalies that are not allowed."""


def read_anomalies(uri: str,
                   splits: Sequence[str]) -> List[anomaly_rules.Anomaly]:
  """Every anomaly in ExampleValidator's output at `uri`."""
  found = []
  for split in splits:
    path = os.path.join(uri, f'Split-{split}', ANOMALIES_FILE_NAME)
    anomalies = anomalies_pb2.Anomalies()
    anomalies.ParseFromString(io_utils.read_bytes_file(path))
    found.extend(anomaly_rules.from_proto(anomalies, split, path))
  return found


@component
def AnomalyGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[
        standard_artifacts.ExampleAnomalies],
    schema: InputArtifact[
        standard_artifacts.Schema],
    checked_schema: OutputArtifact[
        standard_artifacts.Schema],
    transform_schema: OutputArtifact[
        standard_artifacts.Schema],
    examples: InputArtifact[
        standard_artifacts.Examples] = None,
    statistics: InputArtifact[
        standard_artifacts.ExampleStatistics] = None,
    allowed_anomalies: Parameter[str] = '',
    min_severity: Parameter[str] = 'ERROR',
    drift_action: Parameter[str] = anomaly_rules.STOP,
    accepted_spans_dir: Parameter[str] = '',
) -> None:
  """Fails on anomalies that are not allowed; else passes the schema on.

  Args:
    anomalies: ExampleValidator's output.
    schema: the schema the data was validated against.
    checked_schema: a copy of `schema`, for the Trainer (which saves it
      with the model).
    transform_schema: `schema` without its presence-only columns, for
      Transform.
    examples: the span's examples (span folders only; recorded when the
      span passes).
    statistics: the span's statistics (span folders only; recorded with
      them).
    allowed_anomalies: ALLOWED_ANOMALIES, see parse_allow_list.
    min_severity: WARNING or ERROR; anomalies below it pass.
    drift_action: DRIFT_ACTION: 'stop' judges drift like any anomaly,
      'warn' prints it and passes.
    accepted_spans_dir: with span folders, the record of accepted spans this
      span joins when it passes; '' without.

  Raises:
    AnomaliesFound: with the message of `describe`.
  """
  splits = artifact_utils.decode_split_names(anomalies.split_names)
  baseline_span = (
      anomalies.get_int_custom_property(anomaly_rules.BASELINE_SPAN_PROPERTY)
      if anomalies.has_custom_property(anomaly_rules.BASELINE_SPAN_PROPERTY)
      else None)
  judged, drift = anomaly_rules.split_drift(
      read_anomalies(anomalies.uri, splits), drift_action)
  found = anomaly_rules.blocking(
      judged, anomaly_rules.parse_allow_list(allowed_anomalies), min_severity)
  if found:
    raise AnomaliesFound(anomaly_rules.describe(found, baseline_span))
  if drift:
    print('Warning (DRIFT_ACTION=warn): '
          + anomaly_rules.describe_drift(drift, baseline_span) + '.',
          file=sys.stderr, flush=True)
  source = io_utils.get_only_uri_in_dir(schema.uri)
  name = os.path.basename(source)
  for output in (checked_schema, transform_schema):
    fileio.makedirs(output.uri)  # object stores need none; disks may
  fileio.copy(source, os.path.join(checked_schema.uri, name))
  read = text_format.Parse(io_utils.read_string_file(source),
                           schema_pb2.Schema())
  parsed = [f for f in read.feature if not is_presence_only(f)]
  del read.feature[:]
  read.feature.extend(parsed)
  io_utils.write_string_file(os.path.join(transform_schema.uri, name),
                             text_format.MessageToString(read))
  if accepted_spans_dir and examples is not None and statistics is not None:
    accepted_spans.accept(accepted_spans_dir, accepted_spans.AcceptedSpan(
        span_of(examples), examples.uri, statistics.uri,
        artifact_utils.decode_split_names(statistics.split_names)))
