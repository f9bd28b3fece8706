"""A component's finished execution, read back from a local run's metadata
store so that its executor can run again on the same inputs.

`newest` rebuilds the input and output artifacts (keyed as the executor
expects them) and the execution properties of a component's newest
completed execution; `RecordedExecution.redirect_outputs` points the outputs
at a scratch folder, so running the executor again never touches the run's
own artifacts. The benchmarks profile executors this way
(bench/profile_component.py) and the tests compare two executors on the
same inputs.
"""
import dataclasses
import os
from typing import Any, Dict, List

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable.mlmd import event_lib
from tfx.types import artifact_utils
from tfx.types import standard_artifacts  # pylint: disable=unused-import

from local.run_artifacts import connection_config

ArtifactDict = Dict[str, List[types.Artifact]]


@dataclasses.dataclass
class RecordedExecution:
  """What an executor's Do received: inputs, outputs, properties."""
  inputs: ArtifactDict
  outputs: ArtifactDict
  exec_properties: Dict[str, Any]

  def redirect_outputs(self, folder: str) -> 'RecordedExecution':
    """A copy whose output artifacts are fresh, empty folders under `folder`
    (the inputs are shared)."""
    outputs = {}
    for key, artifacts in self.outputs.items():
      outputs[key] = []
      for i, artifact in enumerate(artifacts):
        copy = artifact_utils.deserialize_artifact(
            artifact.artifact_type, artifact.mlmd_artifact)
        copy.uri = os.path.join(folder, key, str(i))
        os.makedirs(copy.uri, exist_ok=True)
        outputs[key].append(copy)
    return RecordedExecution(self.inputs, outputs,
                             dict(self.exec_properties))


def _artifacts(store: metadata_store.MetadataStore, execution_id: int,
               is_valid_event) -> ArtifactDict:
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if is_valid_event(e)]
  mlmd_artifacts = store.get_artifacts_by_id(
      list({e.artifact_id for e in events}))
  artifact_types = {t.id: t for t in store.get_artifact_types_by_id(
      list({a.type_id for a in mlmd_artifacts}))}
  artifacts = [artifact_utils.deserialize_artifact(artifact_types[a.type_id],
                                                   a) for a in mlmd_artifacts]
  # One artifact can be two inputs (e.g. the Evaluator's model and baseline).
  return event_lib.reconstruct_artifact_multimap(artifacts, events)


def _exec_properties(execution: metadata_store_pb2.Execution
                     ) -> Dict[str, Any]:
  properties = {}
  for mapping in (execution.properties, execution.custom_properties):
    for key, value in mapping.items():
      if not key.startswith('__'):  # the orchestrator's own bookkeeping
        properties[key] = data_types_utils.get_metadata_value(value)
  return properties


def newest(output_dir: str, pipeline_name: str,
           component_id: str) -> RecordedExecution:
  """The newest completed execution of `component_id` in a local run's
  store.

  Args:
    output_dir: the run's LOCAL_OUTPUT_DIR.
    pipeline_name: the run's PIPELINE_NAME.
    component_id: the component's id (pipeline/component_ids.py).

  Returns:
    The execution's inputs, outputs and properties.

  Raises:
    FileNotFoundError: there is no metadata store.
    LookupError: the component never completed an execution.
  """
  store = metadata_store.MetadataStore(
      connection_config(output_dir, pipeline_name))
  context = store.get_context_by_type_and_name(
      'node', f'{pipeline_name}.{component_id}')
  done = [] if context is None else [
      e for e in store.get_executions_by_context(context.id)
      if e.last_known_state == metadata_store_pb2.Execution.COMPLETE]
  if not done:
    raise LookupError(f'no completed execution of {component_id} in the '
                      f'metadata store of {pipeline_name!r} under '
                      f'{output_dir}')
  execution = max(done, key=lambda e: e.id)
  return RecordedExecution(
      _artifacts(store, execution.id, event_lib.is_valid_input_event),
      _artifacts(store, execution.id, event_lib.is_valid_output_event),
      _exec_properties(execution))
