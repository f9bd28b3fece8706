"""Reads a compiled pipeline spec (KFP IR) the way an orchestrator does.

Only what running the pipeline's tasks needs: the tasks of the root DAG in an
order that respects their dependencies, and for each task its component's
inputs and outputs, its container command and arguments and its constant
parameters. Knows nothing about TFX components by name: whatever tasks the
spec has are run.
"""
import dataclasses
import json
from typing import Any, Dict, List, Optional

import yaml


class SpecError(ValueError):
  """The spec uses a feature this reader cannot run."""


@dataclasses.dataclass(frozen=True)
class ArtifactInput:
  """An input artifact: which upstream task's output it is."""
  producer_task: str
  output_key: str


@dataclasses.dataclass(frozen=True)
class Container:
  """The container a task runs: command, arguments, optional pre-cache hook,
  the environment variables the spec sets."""
  image: str
  command: List[str]
  args: List[str]
  pre_cache_check: Optional['Container'] = None
  env: Dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Task:
  """One task of the root DAG, ready to be turned into an ExecutorInput."""
  name: str
  dependencies: List[str]
  parameters: Dict[str, Any]  # name -> constant (JSON value)
  artifacts: Dict[str, ArtifactInput]
  # name -> {'artifactType': ...} as in the component's definitions.
  input_definitions: Dict[str, Dict[str, Any]]
  output_definitions: Dict[str, Dict[str, Any]]
  parameter_types: Dict[str, str]
  container: Container
  caching: bool


def load(path: str) -> Dict[str, Any]:
  """The pipeline spec in `path`: a spec YAML, or a PipelineJob JSON."""
  with open(path) as spec_file:
    document = yaml.safe_load(spec_file)  # JSON is YAML too
  # A Vertex AI PipelineJob wraps the spec; a Kubeflow upload is the spec.
  return document.get('pipelineSpec', document)


def pipeline_root(spec: Dict[str, Any],
                  job: Optional[Dict[str, Any]] = None) -> str:
  """The spec's default pipeline root (or the PipelineJob's output dir)."""
  if job and job.get('runtimeConfig', {}).get('gcsOutputDirectory'):
    return job['runtimeConfig']['gcsOutputDirectory']
  root = spec.get('defaultPipelineRoot')
  if not root:
    raise SpecError('the spec has no defaultPipelineRoot')
  return root


def _constant(name: str, value_spec: Dict[str, Any],
              root_inputs: Dict[str, Any]) -> Any:
  """A task parameter's value: a constant, or a pipeline input's default."""
  runtime_value = value_spec.get('runtimeValue')
  if runtime_value is not None:
    if 'constant' in runtime_value:  # schema 2.1
      return runtime_value['constant']
    constant_value = runtime_value.get('constantValue', {})  # schema 2.0
    if 'intValue' in constant_value:
      return float(constant_value['intValue'])
    if 'doubleValue' in constant_value:
      return float(constant_value['doubleValue'])
    if 'stringValue' in constant_value:
      return constant_value['stringValue']
  pipeline_input = value_spec.get('componentInputParameter')
  if pipeline_input:
    definition = root_inputs.get(pipeline_input, {})
    if 'defaultValue' in definition:
      return definition['defaultValue']
    raise SpecError(f'parameter {name!r} takes the pipeline input '
                    f'{pipeline_input!r}, which has no default value')
  raise SpecError(f'parameter {name!r}: only constants and pipeline inputs '
                  f'with defaults are supported, not {json.dumps(value_spec)}')


def _container(executor: Dict[str, Any]) -> Container:
  container = executor.get('container')
  if container is None:
    raise SpecError('only container executors can run outside Vertex AI, not '
                    f'{sorted(executor)} (a TFX Resolver or Importer)')
  hook = container.get('lifecycle', {}).get('preCacheCheck')
  return Container(
      image=container.get('image', ''),
      command=list(container.get('command', [])),
      args=list(container.get('args', [])),
      pre_cache_check=(Container(image=container.get('image', ''),
                                 command=list(hook.get('command', [])),
                                 args=list(hook.get('args', [])))
                       if hook else None),
      env={item['name']: item.get('value', '')
           for item in container.get('env', [])})


def tasks(spec: Dict[str, Any]) -> List[Task]:
  """The root DAG's tasks, each after every task it depends on.

  Ties are broken by name, so the order is the same on every run.

  Args:
    spec: a pipeline spec, as `load` returns it.

  Returns:
    The tasks in an executable order.

  Raises:
    SpecError: the DAG has a cycle, a nested DAG or a non-container step.
  """
  root_inputs = spec.get('root', {}).get('inputDefinitions', {}).get(
      'parameters', {})
  executors = spec['deploymentSpec']['executors']
  by_name = {}
  for name, task_spec in spec['root']['dag']['tasks'].items():
    component = spec['components'][task_spec['componentRef']['name']]
    if 'dag' in component:
      raise SpecError(f'task {name!r} is a nested pipeline; not supported')
    inputs = task_spec.get('inputs', {})
    artifacts = {}
    for key, artifact_spec in inputs.get('artifacts', {}).items():
      upstream = artifact_spec.get('taskOutputArtifact')
      if not upstream:
        raise SpecError(f'input artifact {key!r} of {name!r} does not come '
                        'from an upstream task')
      artifacts[key] = ArtifactInput(upstream['producerTask'],
                                     upstream['outputArtifactKey'])
    dependencies = set(task_spec.get('dependentTasks', []))
    dependencies.update(a.producer_task for a in artifacts.values())
    definitions = component.get('inputDefinitions', {})
    by_name[name] = Task(
        name=name,
        dependencies=sorted(dependencies),
        parameters={
            key: _constant(key, value, root_inputs)
            for key, value in inputs.get('parameters', {}).items()
        },
        artifacts=artifacts,
        input_definitions=definitions.get('artifacts', {}),
        output_definitions=component.get('outputDefinitions', {}).get(
            'artifacts', {}),
        parameter_types={
            key: value.get('parameterType', value.get('type', ''))
            for key, value in definitions.get('parameters', {}).items()
        },
        container=_container(executors[component['executorLabel']]),
        caching=task_spec.get('cachingOptions', {}).get('enableCache',
                                                        False))
  ordered, done = [], set()
  while len(ordered) < len(by_name):
    ready = sorted(name for name, task in by_name.items()
                   if name not in done and set(task.dependencies) <= done)
    if not ready:
      raise SpecError('the DAG has a cycle or depends on unknown tasks: '
                      f'{sorted(set(by_name) - done)}')
    for name in ready:
      ordered.append(by_name[name])
      done.add(name)
  return ordered
