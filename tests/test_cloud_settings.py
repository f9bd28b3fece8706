"""Cloud settings: required ones named when missing, switches that turn
Dataflow and Vertex AI off, the serving settings that reach both targets' Pusher,
and the image tag tied to the git commit."""
import dataclasses
import json
import subprocess

import pytest
from tfx import v1 as tfx

import kubeflow_runner
from models import features
from pipeline.components import atomic_push
from pipeline.components import vertex_push
from pipeline import cloud_settings
from pipeline import configs
from pipeline import pipeline as pipeline_factory
from deploy import pipeline_image
from pipeline.errors import ConfigError
from pipeline.vertex_serving import target as vertex_target
from pipeline.kfp_runtime import beam_runner

ENVIRONMENT = {
    'GOOGLE_CLOUD_PROJECT': 'test-project-123',
    'GOOGLE_CLOUD_REGION': 'europe-west3',
    'GCS_BUCKET_NAME': 'test-bucket',
    'PIPELINE_NAME': 'taxi-tips',
    'ARTIFACT_REGISTRY_REPOSITORY': 'repo',
    'DATAFLOW_MACHINE_TYPE': 'n1-standard-8',
    'DATAFLOW_MAX_WORKERS': '7',
    'VERTEX_TRAINING_MACHINE_TYPE': 'n1-highmem-4',
    'VERTEX_ENDPOINT_NAME': 'taxi-endpoint',
    'VERTEX_SERVING_IMAGE': 'serving-image',
}
CONFIGS = configs.load(ENVIRONMENT)


def _configs(**changes):
  return configs.load({**ENVIRONMENT, **changes})


def test_paths_and_image_follow_the_bucket_layout():
  settings = cloud_settings.from_settings(CONFIGS, 'abc1234')
  assert settings.pipeline_root == 'gs://test-bucket/output/taxi-tips'
  assert settings.data_path == 'gs://test-bucket/input/data'
  assert settings.serving_model_dir == 'gs://test-bucket/serving_model/taxi-tips'
  assert settings.image == ('europe-west3-docker.pkg.dev/test-project-123/'
                            'repo/taxi-tips:abc1234')
  args = settings.beam_pipeline_args()
  assert '--machine_type=n1-standard-8' in args
  assert '--max_num_workers=7' in args
  assert f'--sdk_container_image={settings.image}' in args


@pytest.mark.parametrize('setting, changes, tag', [
    ('GOOGLE_CLOUD_PROJECT', {'GOOGLE_CLOUD_PROJECT': ''}, 'abc1234'),
    ('GCS_BUCKET_NAME', {'GCS_BUCKET_NAME': ''}, 'abc1234'),
    ('ARTIFACT_REGISTRY_REPOSITORY', {'ARTIFACT_REGISTRY_REPOSITORY': ''},
     'abc1234'),
    ('PIPELINE_IMAGE_TAG', {}, ''),
])
def test_missing_settings_are_named(setting, changes, tag):
  # Settings made empty after loading (configs.load refuses some empties
  # itself), so the cloud targets' own check is what speaks.
  settings = dataclasses.replace(CONFIGS, **changes)
  with pytest.raises(ConfigError, match=setting):
    cloud_settings.from_settings(settings, tag)


def test_switches_turn_dataflow_and_vertex_ai_off():
  settings = cloud_settings.from_settings(
      _configs(USE_DATAFLOW='false', USE_VERTEX_AI='false'), 'abc1234')
  # Beam in each step's process (never Prism), with no sdist of TFX.
  assert settings.beam_pipeline_args() == [
      f'--runner={beam_runner.IN_PROCESS_RUNNER}',
      f'--sdk_container_image={settings.image}']
  assert settings.ai_platform_training_args() is None

  pipeline = kubeflow_runner.create_pipeline(
      _configs(USE_DATAFLOW='false', USE_VERTEX_AI='false'), settings,
      kubeflow_runner.VERTEX)
  nodes = {c.id: c for c in pipeline.components}
  assert type(nodes['Trainer']) is tfx.components.Trainer  # pylint: disable=unidiomatic-typecheck
  assert type(nodes['Pusher']) is atomic_push.Pusher  # pylint: disable=unidiomatic-typecheck
  assert pipeline.beam_pipeline_args == settings.beam_pipeline_args()
  assert 'LatestBlessedModelResolver' in nodes


def test_switches_on_select_the_vertex_ai_components():
  settings = cloud_settings.from_settings(CONFIGS, 'abc1234')
  vertex = {c.id: c for c in kubeflow_runner.create_pipeline(
      CONFIGS, settings, kubeflow_runner.VERTEX).components}
  kubeflow = {c.id: c for c in kubeflow_runner.create_pipeline(
      CONFIGS, settings, kubeflow_runner.KUBEFLOW).components}
  ai_platform = tfx.extensions.google_cloud_ai_platform
  assert isinstance(vertex['Trainer'], ai_platform.Trainer)
  assert isinstance(kubeflow['Trainer'], ai_platform.Trainer)
  # One deploy step for both targets: the serving folder, then Vertex AI.
  for pusher in (vertex['Pusher'], kubeflow['Pusher']):
    assert isinstance(pusher, vertex_push.Pusher)
    destination = json.loads(pusher.exec_properties['push_destination'])
    assert destination == {
        'filesystem': {'base_directory': settings.serving_model_dir}}
  assert 'LatestPushedModel' in kubeflow
  assert 'LatestBlessedModelResolver' not in kubeflow


def test_serving_settings_reach_the_pusher_of_both_targets():
  configured = _configs(VERTEX_KEEP_DEPLOYED='2', VERTEX_MODEL_ID='tips',
                        VERTEX_PRODUCTION_ALIAS='live',
                        VERTEX_SERVING_MACHINE_TYPE='n1-standard-4',
                        VERTEX_REQUEST_LOG_TABLE='logs.requests')
  settings = cloud_settings.from_settings(configured, 'abc1234')
  for target in kubeflow_runner.TARGETS:
    pusher = {c.id: c for c in kubeflow_runner.create_pipeline(
        configured, settings, target).components}['Pusher']
    config = json.loads(pusher.exec_properties['custom_config'])
    assert config[vertex_push.VERTEX_SERVING_KEY] == {
        'project': 'test-project-123', 'region': 'europe-west3',
        'pipeline_name': 'taxi-tips', 'model_id': 'tips',
        'endpoint_name': 'taxi-endpoint', 'serving_image': 'serving-image',
        'machine_type': 'n1-standard-4', 'alias': 'live', 'keep_deployed': 2,
        'request_log_table': 'bq://test-project-123.logs.requests',
        'request_log_sampling': 1.0, 'api_endpoint': '',
        'min_replicas': 1, 'max_replicas': 1}


def test_vertex_serving_can_be_turned_off_alone():
  configured = _configs(VERTEX_SERVING='false')
  settings = cloud_settings.from_settings(configured, 'abc1234')
  nodes = {c.id: c for c in kubeflow_runner.create_pipeline(
      configured, settings, kubeflow_runner.KUBEFLOW).components}
  assert type(nodes['Pusher']) is atomic_push.Pusher  # pylint: disable=unidiomatic-typecheck
  assert isinstance(nodes['Trainer'], tfx.extensions.google_cloud_ai_platform.Trainer)


def test_vertex_serving_needs_a_serving_folder_on_cloud_storage():
  target = vertex_target.from_settings(CONFIGS)
  with pytest.raises(ValueError, match='gs:// serving folder'):
    pipeline_factory.create_pipeline(
        pipeline_name='taxi-tips', pipeline_root='gs://b/r', data_path='gs://b/d',
        serving_model_dir='/tmp/serving',
        problem=features.Problem('y', features.BINARY),
        training=pipeline_factory.Training(steps=1, eval_steps=1, batch_size=1,
                                           seed=0),
        evaluation=pipeline_factory.Evaluation(accuracy_threshold=0.5,
                                               baseline_tolerance=0.1),
        vertex_ai=pipeline_factory.VertexAI(serving=target),
        baseline_from_serving_dir=True)


def test_image_tag_is_the_override_or_the_git_commit():
  assert pipeline_image.image_tag('release-7') == 'release-7'
  commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                          capture_output=True, text=True, check=True,
                          cwd=kubeflow_runner.os.path.dirname(
                              kubeflow_runner.__file__)).stdout.strip()
  assert pipeline_image.image_tag('') == commit


def test_settings_are_immutable():
  settings = cloud_settings.from_settings(CONFIGS, 'abc1234')
  with pytest.raises(dataclasses.FrozenInstanceError):
    settings.project = 'other'  # type: ignore[misc]
