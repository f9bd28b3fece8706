"""One builder for every runtime: the local pipeline, the Kubeflow Pipelines
2.x spec and the Vertex AI spec have the same components, ids and wiring.

The local pipeline is built as local_runner.py builds it
(local/run/local_pipeline.py), the two specs are compiled by
kubeflow_runner.py offline, all from the same settings and the same span
folder. What may differ is listed once, in RUNTIME_ONLY; everything else
must be equal.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

from local.run import inputs as run_inputs
from local.run import local_pipeline
from pipeline import component_ids
from tests import helpers
from tests.test_kubeflow_runner import offline_env

PROJECT = 'builder-test-123'
BASELINE = 'baseline'
# The runtime-only differences in the DAG (pipeline.Runtime), per runtime:
# - where the Evaluator's baseline comes from (its step, by name): Vertex AI
#   compiles the Resolver into a metadata query of two steps; Kubeflow
#   Pipelines on GKE, which runs none, copies the newest pushed model;
# - the cloud Pusher also serves on Vertex AI (VERTEX_SERVING, on by
#   default) and labels the version with the Evaluator's metrics.
CLOUD_PUSHER_INPUTS = {component_ids.PUSHER: {'model_evaluation'}}
RUNTIME_ONLY = {
    'local': ({component_ids.MODEL_RESOLVER: BASELINE}, {}),
    'vertex': ({f'{component_ids.MODEL_RESOLVER}-model-resolver': BASELINE,
                f'{component_ids.MODEL_RESOLVER}-model-blessing-resolver':
                    None}, CLOUD_PUSHER_INPUTS),
    'kubeflow': ({component_ids.PUSHED_MODEL_BASELINE: BASELINE},
                 CLOUD_PUSHER_INPUTS),
}


@pytest.fixture(scope='module')
def span_data(tmp_path_factory):
  folder = tmp_path_factory.mktemp('spans')
  helpers.write_slice(str(folder / 'span-1'), rows=300)
  helpers.write_slice(str(folder / 'span-2'), rows=300)
  return str(folder)


def _name(task, runtime):
  return RUNTIME_ONLY[runtime][0].get(task, task)


def _common(inputs, task, runtime):
  """A step's inputs without those only this runtime has."""
  only = RUNTIME_ONLY[runtime][1].get(task, set())
  return {key: value for key, value in inputs.items() if key not in only}


def _local_wiring(data, tmp_path):
  env = dict(os.environ, DATA_PATH=data, LOCAL_OUTPUT_DIR=str(tmp_path),
             TRAIN_WINDOW_SPANS='2')
  pipeline = local_pipeline.create_pipeline(run_inputs.check(env), None)
  wiring = {}
  for component in pipeline.components:
    if _name(component.id, 'local') == BASELINE:
      wiring[BASELINE] = {}  # its inputs are the runtime's own (above)
      continue
    wiring[_name(component.id, 'local')] = {
        key: (_name(channel.producer_component_id, 'local'),
              channel.output_key)
        for key, channel in component.inputs.items()}
  return wiring


def _spec_wiring(spec, runtime):
  wiring = {}
  for name, task in spec['root']['dag']['tasks'].items():
    if _name(name, runtime) in (None, BASELINE):
      wiring[BASELINE] = {}
      continue
    wiring[name] = _common({
        key: (_name(source['taskOutputArtifact']['producerTask'], runtime),
              source['taskOutputArtifact']['outputArtifactKey'])
        for key, source in task.get('inputs', {}).get('artifacts', {}).items()
    }, name, runtime)
  return wiring


@pytest.fixture(scope='module')
def compiled(span_data, tmp_path_factory):
  out = tmp_path_factory.mktemp('compiled')
  done = subprocess.run(
      [sys.executable, os.path.join(helpers.REPO, 'kubeflow_runner.py'),
       '--target=all', f'--output_dir={out}'], cwd=helpers.REPO,
      env=offline_env(GOOGLE_CLOUD_PROJECT=PROJECT, PIPELINE_IMAGE_TAG='t',
                      DATA_PATH=span_data, TRAIN_WINDOW_SPANS='2'),
      capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stdout + done.stderr
  with open(out / 'taxi-tips.vertex.json') as vertex:
    vertex_spec = json.load(vertex)['pipelineSpec']
  with open(out / 'taxi-tips.kubeflow.yaml') as kubeflow:
    kubeflow_spec = yaml.safe_load(kubeflow)
  return {'vertex': vertex_spec, 'kubeflow': kubeflow_spec}


@pytest.mark.parametrize('target', ['vertex', 'kubeflow'])
def test_every_runtime_has_the_same_components_ids_and_wiring(
    span_data, compiled, tmp_path, target):
  local = _local_wiring(span_data, tmp_path)
  assert set(local) == (set(component_ids.of_pipeline(spans=True)) -
                        {component_ids.MODEL_RESOLVER}) | {BASELINE}
  assert _spec_wiring(compiled[target], target) == local


@pytest.mark.parametrize('target', ['vertex', 'kubeflow'])
def test_every_runtime_reads_the_same_record_of_accepted_spans(
    compiled, target):
  """The steps that read or write the record get its place under the
  target's pipeline root, the one runtime path they carry."""
  root = f'gs://{PROJECT}-taxi-tips/output/taxi-tips'
  spec = compiled[target]
  for task in (component_ids.EXAMPLE_VALIDATOR, component_ids.ANOMALY_GATE,
               component_ids.TRAINING_WINDOW):
    parameters = spec['root']['dag']['tasks'][task]['inputs']['parameters']
    value = parameters['accepted_spans_dir']['runtimeValue']['constant']
    assert value == f'{root}/accepted_spans'


def test_only_vertex_caches_examplegen_on_span_folders(compiled):
  """Vertex AI runs ExampleGen's driver first, whose fingerprint of the
  newest span's files keys the cache; Kubeflow Pipelines runs none, so its
  ExampleGen must read the bucket on every run."""
  def caches(target):
    task = compiled[target]['root']['dag']['tasks'][
        component_ids.EXAMPLE_GEN]
    return task.get('cachingOptions', {}).get('enableCache', False)
  assert caches('vertex')
  assert not caches('kubeflow')
