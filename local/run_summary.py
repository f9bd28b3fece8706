"""What happened in a pipeline run, read back from the ML Metadata store.

Used by local_runner.py for the end-of-run summary and by the tests to check
that every component ran. Reads only; never writes to the store.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import tensorflow_model_analysis as tfma
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import component_ids
from pipeline.components import fitted_schema_gen
from pipeline.components import quality_gates
from pipeline.components.columnar_csv_example_gen import ROWS_PROPERTY
from pipeline.components.columnar_csv_example_gen import (
    ROWS_WITHOUT_LABEL_PROPERTY)

_STATE_NAMES = {
    v: k for k, v in metadata_store_pb2.Execution.State.items()
}


@dataclasses.dataclass
class ComponentRun:
  """One component's execution in a run."""
  component_id: str
  state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
  seconds: Optional[float]
  outputs: Dict[str, List[str]]  # output key -> artifact URIs


@dataclasses.dataclass
class RunSummary:
  """The outcome of a pipeline run."""
  run_id: str
  components: Dict[str, ComponentRun]
  metrics: Dict[str, float]  # candidate model, overall slice
  baseline_metrics: Dict[str, float]  # baseline model; empty without one
  blessed: Optional[bool]  # None when the Evaluator did not run
  blessing_failures: List[str]  # why not blessed, in words
  pushed_to: Optional[str]  # the pushed model's folder, if pushed
  # Which gate applied, and the gate metric of the model, the trivial model
  # and the baseline per slice (pipeline/components/quality_gates.py); None
  # for an evaluation without them.
  gates: Optional[Dict[str, Any]] = None
  # Data rows ExampleGen read, and those it left out for an empty label;
  # None when it did not run to completion.
  rows_read: Optional[int] = None
  rows_without_label: Optional[int] = None
  # Without a reviewed schema, the served model whose data's schema this
  # run's data was checked against; '' on a first run (none to check
  # against); None with a reviewed schema (fitted_schema_gen.py).
  schema_reference: Optional[str] = None


def _node_id(store, execution_id: int, pipeline_name: str) -> Optional[str]:
  for context in store.get_contexts_by_execution(execution_id):
    prefix = pipeline_name + '.'
    if context.name.startswith(prefix):
      return context.name[len(prefix):]
  return None


def latest_run_id(store: metadata_store.MetadataStore,
                  pipeline_name: str) -> Optional[str]:
  """The id of the newest run of `pipeline_name` in the store, if any."""
  pipeline_context = store.get_context_by_type_and_name('pipeline',
                                                        pipeline_name)
  if pipeline_context is None:
    return None
  runs = [c for c in store.get_children_contexts_by_context(
      pipeline_context.id) if c.type == 'pipeline_run'] or [
          c for c in store.get_contexts_by_type('pipeline_run')]
  if not runs:
    return None
  return max(runs, key=lambda c: (c.create_time_since_epoch, c.id)).name


def component_runs(store: metadata_store.MetadataStore, pipeline_name: str,
                   run_id: str) -> Dict[str, ComponentRun]:
  """Every component execution of run `run_id`, keyed by component id."""
  run_context = store.get_context_by_type_and_name('pipeline_run', run_id)
  if run_context is None:
    raise ValueError(f'no run {run_id!r} in the metadata store')
  runs = {}
  executions = store.get_executions_by_context(run_context.id)
  events = store.get_events_by_execution_ids([e.id for e in executions])
  artifact_ids = {e.artifact_id for e in events}
  artifacts = {a.id: a for a in store.get_artifacts_by_id(list(artifact_ids))}
  for execution in executions:
    node = _node_id(store, execution.id, pipeline_name)
    if node is None:
      continue
    outputs: Dict[str, List[str]] = {}
    for event in events:
      if (event.execution_id == execution.id and
          event.type == metadata_store_pb2.Event.OUTPUT):
        key = event.path.steps[0].key if event.path.steps else ''
        outputs.setdefault(key, []).append(artifacts[event.artifact_id].uri)
    seconds = None
    if execution.last_update_time_since_epoch:
      seconds = (execution.last_update_time_since_epoch -
                 execution.create_time_since_epoch) / 1000
    runs[node] = ComponentRun(
        component_id=node,
        state=_STATE_NAMES.get(execution.last_known_state, 'UNKNOWN'),
        seconds=seconds,
        outputs=outputs)
  return runs


def sliced_metrics(evaluation_uri: str
                   ) -> Dict[str, Dict[str, Dict[str, float]]]:
  """slice name ('' for the whole split) -> model name ('candidate' or
  'baseline') -> metric name -> value."""
  by_slice: Dict[str, Dict[str, Dict[str, float]]] = {}
  for slice_metrics in tfma.load_metrics(evaluation_uri):
    by_model = by_slice.setdefault(
        quality_gates.slice_key_name(slice_metrics.slice_key), {})
    for kv in slice_metrics.metric_keys_and_values:
      if kv.key.is_diff:
        continue
      if not kv.value.HasField('double_value'):
        continue
      model = kv.key.model_name or 'candidate'
      by_model.setdefault(model, {})[kv.key.name] = kv.value.double_value.value
  return by_slice


def overall_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
  """model name ('candidate'/'baseline') -> metric name -> value."""
  return sliced_metrics(evaluation_uri).get('', {})


def _describe_failure(failure,
                      baseline: Optional[Dict[str, float]] = None) -> str:
  """One failed threshold in words: metric, value, threshold, baseline.

  E.g. 'binary_accuracy 0.8290 is below the threshold 0.85' or
  'root_mean_squared_error 81.2 is above the limit 70.0'.

  Args:
    failure: a tfma ValidationFailure.
    baseline: the baseline model's metrics, to quote its value.
  """
  name = failure.metric_key.name
  value = failure.metric_value.double_value.value
  threshold = failure.metric_threshold
  if failure.metric_key.is_diff:
    change = threshold.change_threshold
    base = (baseline or {}).get(name)
    if change.direction == tfma.MetricDirection.LOWER_IS_BETTER:
      # An error metric (regression): the tolerance is relative.
      allowed = (f'{change.relative.value:.0%} of it'
                 if change.HasField('relative') else
                 f'{change.absolute.value:.4g}')
      quoted = '' if base is None else f' {base:.4g}'
      return (f'{name} is {value:.4g} above the baseline model\'s{quoted} '
              f'(allowed: {allowed})')
    allowed = change.absolute.value
    if base is None:
      return (f'{name} is {-value:.4f} below the baseline model\'s '
              f'(allowed: {-allowed:.4f})')
    return (f'{name} {base + value:.4f} is {-value:.4f} below the baseline '
            f'model\'s {base:.4f} (allowed drop: {-allowed:.4f})')
  bounds = threshold.value_threshold
  if bounds.HasField('lower_bound') and value < bounds.lower_bound.value:
    return (f'{name} {value:.4f} is below the threshold '
            f'{bounds.lower_bound.value}')
  if bounds.HasField('upper_bound') and value > bounds.upper_bound.value:
    return (f'{name} {value:.4g} is above the limit '
            f'{bounds.upper_bound.value}')
  return f'{name} {value:.4f} failed {failure.message or "its threshold"}'


def _failures(evaluation_uri: str) -> List[str]:
  """Every failed threshold in words, naming the slice where not the whole
  split."""
  result = tfma.load_validation_result(evaluation_uri)
  baselines = {name: by_model.get('baseline', {})
               for name, by_model in sliced_metrics(evaluation_uri).items()}
  reasons = []
  for per_slice in result.metric_validations_per_slice:
    name = quality_gates.slice_key_name(per_slice.slice_key)
    for failure in per_slice.failures:
      reason = _describe_failure(failure, baselines.get(name, {}))
      reasons.append(f'on slice {name}, {reason}' if name else reason)
  if result.missing_thresholds:
    reasons.append('thresholds could not be checked: '
                   f'{len(result.missing_thresholds)} metric(s) missing')
  return reasons


def summarize(connection_config: metadata_store_pb2.ConnectionConfig,
              pipeline_name: str,
              run_id: Optional[str] = None) -> RunSummary:
  """Summarizes run `run_id` (default: the newest run) of `pipeline_name`."""
  store = metadata_store.MetadataStore(connection_config)
  run_id = run_id or latest_run_id(store, pipeline_name)
  if run_id is None:
    raise ValueError(f'no run of pipeline {pipeline_name!r} in the store')
  runs = component_runs(store, pipeline_name, run_id)

  metrics, baseline, blessed, failures, pushed_to = {}, {}, None, [], None
  gates = None
  evaluator = runs.get(component_ids.EVALUATOR)
  if evaluator and evaluator.state in ('COMPLETE', 'CACHED'):
    evaluation_uri = evaluator.outputs['evaluation'][0]
    by_model = overall_metrics(evaluation_uri)
    metrics = by_model.get('candidate', {})
    baseline = by_model.get('baseline', {})
    blessing = store.get_artifacts_by_uri(evaluator.outputs['blessing'][0])
    blessed = bool(blessing and
                   blessing[-1].custom_properties['blessed'].int_value)
    if not blessed:
      failures = _failures(evaluation_uri)
    gates = quality_gates.read(evaluation_uri)
  pusher = runs.get(component_ids.PUSHER)
  if pusher and pusher.state in ('COMPLETE', 'CACHED'):
    pushed = store.get_artifacts_by_uri(pusher.outputs['pushed_model'][0])
    if pushed and pushed[-1].custom_properties['pushed'].int_value:
      pushed_to = pushed[-1].custom_properties['pushed_destination'].string_value
  rows_read, rows_without_label = _label_counts(store, runs)
  return RunSummary(run_id, runs, metrics, baseline, blessed, failures,
                    pushed_to, gates, rows_read, rows_without_label,
                    _schema_reference(store, runs))


def _label_counts(store: metadata_store.MetadataStore,
                  runs: Dict[str, ComponentRun]
                  ) -> Tuple[Optional[int], Optional[int]]:
  """The rows ExampleGen read and those without a label, from its examples'
  custom properties (pipeline/components/columnar_csv_example_gen.py)."""
  example_gen = runs.get(component_ids.EXAMPLE_GEN)
  if not example_gen or example_gen.state not in ('COMPLETE', 'CACHED'):
    return None, None
  artifacts = store.get_artifacts_by_uri(example_gen.outputs['examples'][0])
  properties = artifacts[-1].custom_properties if artifacts else {}
  if ROWS_PROPERTY not in properties:
    return None, None
  return (properties[ROWS_PROPERTY].int_value,
          properties[ROWS_WITHOUT_LABEL_PROPERTY].int_value)


def _schema_reference(store: metadata_store.MetadataStore,
                      runs: Dict[str, ComponentRun]) -> Optional[str]:
  """RunSummary.schema_reference, from the schema step's output."""
  schema_gen = runs.get(component_ids.SCHEMA_GEN)
  uris = schema_gen.outputs.get('reference_schema') if schema_gen else None
  if not uris:
    return None
  found = store.get_artifacts_by_uri(uris[0])
  if not found:
    return None
  value = found[-1].custom_properties.get(
      fitted_schema_gen.REFERENCE_PROPERTY)
  return value.string_value if value is not None else ''
