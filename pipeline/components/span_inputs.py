"""Which spans Transform, the Trainer and the drift check read, from ML Metadata.

With span folders (pipeline/data_files/spans.py) each run's ExampleGen ingests one span;
the spans of earlier runs are artifacts in ML Metadata. TFX's input
resolution picks them when a component starts:

- `training_window`: the Examples of the newest `num_spans` spans, for
  Transform (and through it the Trainer), the newest artifact of each span
  (a span ingested again after its files changed has a newer one).
- `checked_statistics`: the statistics of the newest spans, for the drift
  check; the validator compares the new span with the newest span before it
  (pipeline/components/span_drift_validator.py).

TFX's ready-made span ranges do not fit TFX 1.16's ExampleGen, which records
the span as a custom property: `rolling_range` (the `LatestSpan` op) reads the
`span` property and sees every span as 0, and `SpanRangeStrategy` keeps every
artifact of a span. `NewestPerSpan` is their rolling range on the span
ExampleGen recorded (pipeline/components/span_statistics_gen.py span_of).

Both see only spans the anomaly gate passed (`PassedAnomalyGate`): a span
that stopped a run (bad data, drift) is never trained on and never becomes
the reference of a later drift check, unless a later run of it passes (after
the data was fixed or the drift approved). The gate consumes each run's
examples and statistics for this purpose; the span of the running pipeline is
included because the gate runs before Transform.

Input resolution from ML Metadata runs in the local runner (and any
orchestrator that runs TFX's IR); TFX's compiler for Kubeflow Pipelines 2.x
and Vertex AI compiles no resolver functions, so the compiled specs read the
newest span only (docs/continuous_training.md).
"""
from typing import Dict, List, Sequence, Tuple

from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.input_resolution import resolver_function
from tfx.dsl.input_resolution import resolver_op

from pipeline.components import anomaly_gate
from pipeline.components.span_statistics_gen import span_of

# The anomaly gate's execution type in ML Metadata: its component type.
ANOMALY_GATE_TYPE = (f'{anomaly_gate.AnomalyGate.__module__}.'
                     f'{anomaly_gate.AnomalyGate.__name__}')
_PASSED = (metadata_store_pb2.Execution.COMPLETE,
           metadata_store_pb2.Execution.CACHED)


class PassedAnomalyGate(
    resolver_op.ResolverOp,
    # Input resolution finds a custom op by this name, its dotted path.
    canonical_name=f'{__name__}.PassedAnomalyGate',
    arg_data_types=(resolver_op.DataType.ARTIFACT_LIST,),
    return_data_type=resolver_op.DataType.ARTIFACT_LIST,
):
  """Keeps the artifacts that an anomaly gate execution consumed and passed."""

  def apply(self, input_list: Sequence[types.Artifact]
            ) -> Sequence[types.Artifact]:
    if not input_list:
      return []
    store = self.context.store
    try:
      gate_type = store.get_execution_type(ANOMALY_GATE_TYPE)
    except mlmd_errors.NotFoundError:
      return []  # no gate has run yet
    events = store.get_events_by_artifact_ids([a.id for a in input_list])
    consumed: Dict[int, List[int]] = {}
    for event in events:
      if event.type == metadata_store_pb2.Event.INPUT:
        consumed.setdefault(event.execution_id, []).append(event.artifact_id)
    passed = set()
    for execution in store.get_executions_by_id(list(consumed)):
      if (execution.type_id == gate_type.id and
          execution.last_known_state in _PASSED):
        passed.update(consumed[execution.id])
    return [a for a in input_list if a.id in passed]


def _span_and_age(artifact: types.Artifact) -> Tuple[int, int, int]:
  return (span_of(artifact), artifact.mlmd_artifact.create_time_since_epoch,
          artifact.id)


class NewestPerSpan(
    resolver_op.ResolverOp,
    canonical_name=f'{__name__}.NewestPerSpan',
    arg_data_types=(resolver_op.DataType.ARTIFACT_LIST,),
    return_data_type=resolver_op.DataType.ARTIFACT_LIST,
):
  """The newest artifact of each of the `n` newest spans, oldest span first."""
  n = resolver_op.Property(type=int, default=2)

  def apply(self, input_list: Sequence[types.Artifact]
            ) -> Sequence[types.Artifact]:
    newest: Dict[int, types.Artifact] = {}
    for artifact in sorted(input_list, key=_span_and_age):
      newest[span_of(artifact)] = artifact
    return [newest[span] for span in sorted(newest)[-self.n:]]


@resolver_function.resolver_function
def training_window(examples, *, num_spans: int):
  """The newest version of each of the newest `num_spans` checked spans."""
  return NewestPerSpan(PassedAnomalyGate(examples), n=num_spans)


@resolver_function.resolver_function
def checked_statistics(statistics):
  """The statistics of the two newest checked spans (the running span's
  not among them yet: the gate checks it after the validator)."""
  return NewestPerSpan(PassedAnomalyGate(statistics), n=2)
