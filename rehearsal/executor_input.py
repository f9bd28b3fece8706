"""The ExecutorInput a task receives, as Vertex AI or Kubeflow Pipelines send it.

Both orchestrators run a task's container with its `{{$}}` argument replaced
by an ExecutorInput JSON: input artifacts (upstream outputs with their
metadata), parameter values, pre-allocated output artifacts and the file the
task writes its ExecutorOutput to. They differ in the details, and TFX's
entrypoint (`kubeflow_v2_run_executor`) was written against Vertex AI's:

- output URI: Vertex `<root>/<project number>/<job>/<task>_<id>/<output>`;
  Kubeflow `<root>/<pipeline>/<run id>/<task>/<execution id>/<output>`.
- output file: Vertex `executor_output.json` next to the outputs, in the
  bucket; Kubeflow `/tmp/kfp_outputs/output_metadata.json` in the pod.
- artifact name: Vertex `projects/../metadataStores/default/artifacts/<id>`;
  Kubeflow the ML Metadata id (`"17"`), and outputs have none.
- input artifact type: Vertex the producer's declared type; Kubeflow an
  empty instance schema (the driver never fills `OutputArtifact.Schema`).
- input metadata: Vertex what the producer wrote; Kubeflow the ML Metadata
  custom properties: numbers as doubles, lists and structs wrapped, plus
  `display_name` and `store_session_info`.
- `lifecycle.preCacheCheck` (ExampleGen's driver): Vertex runs it before the
  container; the Kubeflow backend's driver and launcher never read it.
- input files: Vertex leaves them in the bucket (read through Cloud Storage
  FUSE); the Kubeflow launcher first copies every input artifact into the
  pod (rehearsal/launcher_download.py).

(Kubeflow Pipelines backend: `backend/src/v2/driver` provisions outputs and
resolves inputs, `backend/src/v2/metadata` converts artifacts to and from ML
Metadata, `backend/src/v2/component/launcher_v2.go` runs the container and
records what it wrote.)

`KFP_INPUT_TYPES` lists the input artifact types seen from Kubeflow
Pipelines releases and reported publicly; the rehearsal can send any of them.
"""
import abc
import copy
import itertools
import json
import os
import uuid
from typing import Any, Dict, Optional

import yaml

from rehearsal import compiled_spec

VERTEX = 'vertex'
KFP = 'kfp'
SHAPES = (VERTEX, KFP)

# How the Kubeflow Pipelines driver types an input artifact.
EMPTY_SCHEMA = 'empty-schema'  # instanceSchema: "" (KFP 2.x driver today)
UNTYPED = 'untyped'  # no type at all (artifacts read back from ML Metadata)
SYSTEM_TITLE = 'system-title'  # schemaTitle: system.* (kfp-operator reports)
KFP_INPUT_TYPES = (EMPTY_SCHEMA, UNTYPED, SYSTEM_TITLE)

# The generic Kubeflow type a TFX type collapses to; any other is an Artifact.
_SYSTEM_TITLES = {
    'tfx.Examples': 'system.Dataset',
    'tfx.Model': 'system.Model',
    'tfx.PushedModel': 'system.Model',
}
_KFP_OUTPUT_FILE = os.path.join('tmp', 'kfp_outputs', 'output_metadata.json')

RuntimeArtifact = Dict[str, Any]  # an ExecutorInput RuntimeArtifact as JSON


def type_title(artifact_type: Dict[str, Any]) -> str:
  """The title of an ArtifactTypeSchema ('' when it has none)."""
  if 'schemaTitle' in artifact_type:
    return artifact_type['schemaTitle']
  schema = yaml.safe_load(artifact_type.get('instanceSchema') or '') or {}
  return schema.get('title', '')


class Shape(abc.ABC):
  """How one orchestrator builds a task's ExecutorInput and stores outputs."""

  name = ''
  # Whether the orchestrator runs a container's lifecycle.preCacheCheck.
  runs_pre_cache_check = True
  # Whether the launcher copies input artifacts into the pod before the
  # command starts (rehearsal/launcher_download.py).
  downloads_inputs = False

  def __init__(self, pipeline_name: str, pipeline_root: str, pod_dir: str):
    """A shape for one pipeline run.

    Args:
      pipeline_name: the spec's pipelineInfo.name.
      pipeline_root: where artifacts go (already a local path).
      pod_dir: a folder for what a task's pod keeps on its own disk.
    """
    self.pipeline_name = pipeline_name
    self.pipeline_root = pipeline_root.rstrip('/')
    self.pod_dir = pod_dir
    self._ids = itertools.count(1)

  def executor_input(self, task: compiled_spec.Task,
                     inputs: Dict[str, RuntimeArtifact],
                     parameters: Dict[str, Any]) -> Dict[str, Any]:
    """The ExecutorInput JSON for `task`.

    Args:
      task: the task.
      inputs: input key -> the upstream artifact, as `record` stored it.
      parameters: the task's parameter values.

    Returns:
      The ExecutorInput, as a dict ready for json.dumps.
    """
    task_id = next(self._ids)
    return {
        'inputs': {
            'parameterValues': parameters,
            'artifacts': {
                key: {'artifacts': [self.input_artifact(task, key, stored)]}
                for key, stored in inputs.items()
            },
        },
        'outputs': {
            'artifacts': {
                key: {'artifacts': [self.output_artifact(task, task_id, key,
                                                         definition)]}
                for key, definition in task.output_definitions.items()
            },
            'outputFile': self.output_file(task, task_id),
        },
    }

  @abc.abstractmethod
  def output_artifact(self, task: compiled_spec.Task, task_id: int, key: str,
                      definition: Dict[str, Any]) -> RuntimeArtifact:
    """A pre-allocated output artifact."""

  @abc.abstractmethod
  def output_file(self, task: compiled_spec.Task, task_id: int) -> str:
    """Where the task writes its ExecutorOutput."""

  @abc.abstractmethod
  def record(self, provisioned: RuntimeArtifact,
             written: Optional[RuntimeArtifact]) -> RuntimeArtifact:
    """What the orchestrator stores of an output artifact after the task.

    Args:
      provisioned: the output artifact as the ExecutorInput had it.
      written: the same artifact in the task's ExecutorOutput, if there.
    """

  @abc.abstractmethod
  def input_artifact(self, task: compiled_spec.Task, key: str,
                     stored: RuntimeArtifact) -> RuntimeArtifact:
    """How a stored artifact reaches a downstream task as its input `key`."""


class VertexShape(Shape):
  """Vertex AI Pipelines: artifacts keep their declared types and metadata."""

  name = VERTEX
  # Stand-ins for what a Vertex AI PipelineJob has: a project number, a
  # region and a job id. Nothing reads them but the names they appear in.
  PROJECT_NUMBER = '123456789012'
  REGION = 'europe-west3'

  def __init__(self, pipeline_name: str, pipeline_root: str, pod_dir: str):
    super().__init__(pipeline_name, pipeline_root, pod_dir)
    self.job_id = f'{pipeline_name}-{uuid.uuid4().hex[:12]}'
    self._artifact_ids = itertools.count(1)

  def _task_root(self, task: compiled_spec.Task, task_id: int) -> str:
    return (f'{self.pipeline_root}/{self.PROJECT_NUMBER}/{self.job_id}/'
            f'{task.name}_{task_id}')

  def output_artifact(self, task, task_id, key, definition):
    return {
        'name': (f'projects/{self.PROJECT_NUMBER}/locations/{self.REGION}/'
                 f'metadataStores/default/artifacts/'
                 f'{self.job_id}-{next(self._artifact_ids)}'),
        'type': copy.deepcopy(definition['artifactType']),
        'uri': f'{self._task_root(task, task_id)}/{key}',
    }

  def output_file(self, task, task_id):
    return f'{self._task_root(task, task_id)}/executor_output.json'

  def record(self, provisioned, written):
    stored = copy.deepcopy(provisioned)
    if written:
      stored['uri'] = written.get('uri') or stored['uri']
      stored['metadata'] = copy.deepcopy(written.get('metadata', {}))
    return stored

  def input_artifact(self, task, key, stored):
    return copy.deepcopy(stored)


def _to_mlmd_value(value: Any) -> Dict[str, Any]:
  """A JSON value as the Kubeflow launcher stores it in ML Metadata."""
  if isinstance(value, bool):
    return {'intValue': int(value)}
  if isinstance(value, (int, float)):
    return {'doubleValue': float(value)}
  if isinstance(value, str):
    return {'stringValue': value}
  if isinstance(value, list):
    return {'structValue': {'list': value}}
  if isinstance(value, dict):
    return {'structValue': {'struct': value}}
  raise TypeError(f'ML Metadata cannot store {value!r}')


def _from_mlmd_value(value: Dict[str, Any]) -> Any:
  """An ML Metadata value as the Kubeflow driver turns it into metadata."""
  if 'stringValue' in value:
    return value['stringValue']
  if 'doubleValue' in value:
    return value['doubleValue']
  if 'intValue' in value:
    return float(value['intValue'])
  return value['structValue']


class KfpShape(Shape):
  """Open-source Kubeflow Pipelines 2.x: artifacts go through ML Metadata."""

  name = KFP
  runs_pre_cache_check = False
  downloads_inputs = True
  # The launcher's object store session for GCS with the pod's identity.
  STORE_SESSION_INFO = json.dumps({'Provider': 'gs',
                                   'Params': {'FromEnv': 'true'}})

  def __init__(self, pipeline_name: str, pipeline_root: str, pod_dir: str,
               input_types: str = EMPTY_SCHEMA):
    super().__init__(pipeline_name, pipeline_root, pod_dir)
    if input_types not in KFP_INPUT_TYPES:
      raise ValueError(f'input_types must be one of {KFP_INPUT_TYPES}')
    self.input_types = input_types
    self.run_id = str(uuid.uuid4())
    self._mlmd_ids = itertools.count(1)

  def output_artifact(self, task, task_id, key, definition):
    return {
        'type': copy.deepcopy(definition['artifactType']),
        'uri': (f'{self.pipeline_root}/{self.pipeline_name}/{self.run_id}/'
                f'{task.name}/{task_id}/{key}'),
    }

  def output_file(self, task, task_id):
    # Each task's pod has its own /tmp.
    return os.path.join(self.pod_dir, f'{task.name}-{task_id}',
                        _KFP_OUTPUT_FILE)

  @staticmethod
  def pod_of(output_file: str) -> str:
    """The folder standing in for the pod that writes `output_file`."""
    return output_file[:-len(_KFP_OUTPUT_FILE)].rstrip(os.sep)

  def record(self, provisioned, written):
    metadata = dict(provisioned.get('metadata', {}))
    uri = provisioned['uri']
    if written:
      uri = written.get('uri') or uri
      metadata.update(written.get('metadata', {}))
    properties = {k: _to_mlmd_value(v) for k, v in metadata.items()}
    properties.setdefault('display_name', _to_mlmd_value(
        uri.rstrip('/').rsplit('/', 1)[-1]))
    properties.setdefault('store_session_info',
                          _to_mlmd_value(self.STORE_SESSION_INFO))
    return {
        'id': str(next(self._mlmd_ids)),
        'uri': uri,
        'customProperties': properties,
        # Kept for input_types=SYSTEM_TITLE only: ML Metadata's type name.
        'typeTitle': type_title(provisioned['type']),
    }

  def input_artifact(self, task, key, stored):
    artifact = {
        'name': stored['id'],
        'uri': stored['uri'],
        'metadata': {k: _from_mlmd_value(v)
                     for k, v in stored['customProperties'].items()},
    }
    if self.input_types == EMPTY_SCHEMA:
      artifact['type'] = {'instanceSchema': ''}
    elif self.input_types == SYSTEM_TITLE:
      artifact['type'] = {
          'schemaTitle': _SYSTEM_TITLES.get(stored['typeTitle'],
                                            'system.Artifact')
      }
    return artifact


def create(shape: str, pipeline_name: str, pipeline_root: str, pod_dir: str,
           kfp_input_types: str = EMPTY_SCHEMA) -> Shape:
  """The Shape called `shape` (VERTEX or KFP) for one pipeline run."""
  if shape == VERTEX:
    return VertexShape(pipeline_name, pipeline_root, pod_dir)
  if shape == KFP:
    return KfpShape(pipeline_name, pipeline_root, pod_dir, kfp_input_types)
  raise ValueError(f'unknown shape {shape!r}; choose from {SHAPES}')
