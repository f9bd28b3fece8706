"""Cloud settings: required ones named when missing, switches that turn
Dataflow and Vertex AI off, and the image tag tied to the git commit."""
import dataclasses
import subprocess

import pytest
from tfx import v1 as tfx

import kubeflow_runner
from models import features
from pipeline.components import atomic_push
from pipeline import cloud_settings
from pipeline import configs
from deploy import pipeline_image
from pipeline.errors import ConfigError

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
  assert settings.beam_pipeline_args() == []
  assert settings.ai_platform_training_args() is None
  assert settings.ai_platform_serving_args() is None

  pipeline = kubeflow_runner.create_pipeline(
      _configs(USE_DATAFLOW='false', USE_VERTEX_AI='false'), settings,
      kubeflow_runner.VERTEX)
  nodes = {c.id: c for c in pipeline.components}
  assert type(nodes['Trainer']) is tfx.components.Trainer  # pylint: disable=unidiomatic-typecheck
  assert type(nodes['Pusher']) is atomic_push.Pusher  # pylint: disable=unidiomatic-typecheck
  assert pipeline.beam_pipeline_args == []
  assert 'LatestBlessedModelResolver' in nodes


def test_switches_on_select_the_vertex_ai_components():
  settings = cloud_settings.from_settings(CONFIGS, 'abc1234')
  vertex = {c.id: c for c in kubeflow_runner.create_pipeline(
      CONFIGS, settings, kubeflow_runner.VERTEX).components}
  kubeflow = {c.id: c for c in kubeflow_runner.create_pipeline(
      CONFIGS, settings, kubeflow_runner.KUBEFLOW).components}
  ai_platform = tfx.extensions.google_cloud_ai_platform
  assert isinstance(vertex['Trainer'], ai_platform.Trainer)
  assert isinstance(vertex['Pusher'], ai_platform.Pusher)
  assert isinstance(kubeflow['Trainer'], ai_platform.Trainer)
  assert not isinstance(kubeflow['Pusher'], ai_platform.Pusher)
  assert 'LatestPushedModel' in kubeflow
  assert 'LatestBlessedModelResolver' not in kubeflow


def test_vertex_serving_and_a_serving_folder_baseline_exclude_each_other():
  settings = cloud_settings.from_settings(CONFIGS, 'abc1234')
  with pytest.raises(ValueError, match='baseline_from_serving_dir'):
    factory = kubeflow_runner.pipeline_factory
    factory.create_pipeline(
        pipeline_name='taxi-tips', pipeline_root='gs://b/r', data_path='gs://b/d',
        serving_model_dir='gs://b/s',
        problem=features.Problem('y', features.BINARY),
        training=factory.Training(steps=1, eval_steps=1, batch_size=1, seed=0),
        evaluation=factory.Evaluation(accuracy_threshold=0.5,
                                      baseline_tolerance=0.1),
        vertex_ai=factory.VertexAI(
            region='europe-west3',
            serving_args=settings.ai_platform_serving_args(),
            serving_image='image'),
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
