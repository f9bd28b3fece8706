"""Serving on Vertex AI: the cloud targets' Pusher, rollback and status.

The Pusher's executor (pipeline/components/vertex_push.py) and the library
behind it (pipeline/vertex_serving/) call google-cloud-aiplatform's own
clients, pointed with VERTEX_API_ENDPOINT at a stand-in of the Vertex AI API
on loopback (tests/vertex_standin_models.py); the tests assert the requests
the stand-in received, in order, and the state it is left in.
"""
import datetime
import json
import os
import types

import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_model_analysis.proto import metrics_for_slice_pb2
from tfx.dsl.components.base import base_executor
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts

from pipeline import configs
from pipeline.components import atomic_push
from pipeline.components import vertex_push
from pipeline.errors import ConfigError
from pipeline.vertex_serving import api as vertex_api
from pipeline.vertex_serving import provenance
from pipeline.vertex_serving import rollout
from pipeline.vertex_serving import target as vertex_target
from tests.vertex_standin_models import VertexModelsStandin

PROJECT = 'test-project-123'
MODEL = 'taxi-tips'
FIRST_PUSH = ['GetModel', 'UploadModel', 'ListEndpoints', 'CreateEndpoint',
              'DeployModel', 'GetEndpoint', 'MergeVersionAliases']
LATER_PUSH = ['GetModel', 'ListModelVersions', 'UploadModel', 'ListEndpoints',
              'DeployModel', 'GetEndpoint', 'UpdateEndpoint',
              'MergeVersionAliases', 'UndeployModel']


@pytest.fixture
def standin():
  server = VertexModelsStandin().start()
  yield server
  server.stop()


def _settings(standin, **overrides):
  return configs.load({'GOOGLE_CLOUD_PROJECT': PROJECT,
                       'VERTEX_API_ENDPOINT': standin.url, **overrides})


@pytest.fixture
def target(standin):
  return vertex_target.from_settings(_settings(standin))


@pytest.fixture(autouse=True)
def distinct_push_versions(monkeypatch):
  """Serving-folder versions are seconds; pushes here are a second apart."""
  seconds = iter(range(1_800_000_000, 1_900_000_000, 100))
  monkeypatch.setattr(atomic_push, 'time',
                      types.SimpleNamespace(time=lambda: next(seconds)))


class Pushes:
  """Runs the Pusher's executor on models that differ by their weights."""

  def __init__(self, tmp_path, standin, target):
    self.tmp_path, self.standin, self.target = tmp_path, standin, target
    self.serving = tmp_path / 'serving'
    self.count = 0

  def model(self, weights: bytes) -> str:
    folder = self.tmp_path / f'model-{weights.decode()}'
    serving_model = folder / 'Format-Serving'
    (serving_model / 'variables').mkdir(parents=True, exist_ok=True)
    (serving_model / 'saved_model.pb').write_bytes(b'graph')
    (serving_model / 'variables' / 'variables.index').write_bytes(weights)
    return str(folder)

  def evaluation(self, accuracy: float) -> str:
    folder = self.tmp_path / f'evaluation-{self.count}'
    folder.mkdir()
    overall = metrics_for_slice_pb2.MetricsForSlice()
    for name, value in (('binary_accuracy', accuracy), ('auc', 0.949),
                        ('example_count', 4968.0), ('mean_label', 0.2)):
      item = overall.metric_keys_and_values.add()
      item.key.name = name
      item.value.double_value.value = value
    by_payment = metrics_for_slice_pb2.MetricsForSlice()
    by_payment.slice_key.single_slice_keys.add(column='payment_type',
                                               bytes_value=b'Cash')
    item = by_payment.metric_keys_and_values.add()
    item.key.name = 'binary_accuracy'
    item.value.double_value.value = 0.5
    with tf.io.TFRecordWriter(
        str(folder / 'metrics-00000-of-00001.tfrecord')) as writer:
      writer.write(overall.SerializeToString())
      writer.write(by_payment.SerializeToString())
    return str(folder)

  def push(self, weights: bytes, blessed: bool = True, accuracy=0.8893,
           target=None):
    """One Pusher execution; returns the pushed_model artifact."""
    self.count += 1
    model = standard_artifacts.Model()
    model.uri = self.model(weights)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(self.tmp_path / f'blessing-{self.count}')
    blessing.set_int_custom_property('blessed', int(blessed))
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = self.evaluation(accuracy)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(self.tmp_path / f'pushed-{self.count}')
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(
            base_directory=str(self.serving)))
    config = {vertex_push.VERTEX_SERVING_KEY:
              (target or self.target).to_config()}
    executor = vertex_push.Executor(base_executor.BaseExecutor.Context(
        pipeline_run_id=f'Run 2026-12-01T12:0{self.count}'))
    self.standin.calls.clear()
    executor.Do(
        {'model': [model], 'model_blessing': [blessing],
         vertex_push.EVALUATION_KEY: [evaluation]},
        {'pushed_model': [pushed]},
        {'push_destination': json_format.MessageToJson(destination),
         'custom_config': json.dumps(config)})
    return pushed


@pytest.fixture
def pushes(tmp_path, standin, target):
  return Pushes(tmp_path, standin, target)


def _bodies(standin, rpc):
  return [body for name, _, _, body in standin.requests if name == rpc]


def test_first_push_creates_the_model_and_the_endpoint(pushes, standin):
  pushed = pushes.push(b'w1')
  assert standin.calls == FIRST_PUSH
  upload, = _bodies(standin, 'UploadModel')
  assert upload['modelId'] == MODEL and 'parentModel' not in upload
  folder = pushed.get_string_custom_property('pushed_destination')
  assert os.path.dirname(folder) == str(pushes.serving)  # still written
  model = upload['model']
  assert model['artifactUri'] == folder
  assert model['containerSpec']['imageUri'] == (
      'europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest')
  labels = model['labels']
  assert labels['pipeline'] == 'taxi-tips'
  assert labels['pipeline_run'] == 'run_2026-12-01t12_01'
  assert labels['metric_binary_accuracy'] == '0_8893'
  assert labels['metric_auc'] == '0_949'
  assert labels['metric_example_count'] == '4968'
  assert 'metric_mean_label' not in labels  # only the metric table's
  assert len(labels[provenance.DIGEST_LABEL]) == 40
  create, = _bodies(standin, 'CreateEndpoint')
  assert create['displayName'] == 'taxi-tips'
  assert 'enabled' not in create.get('predictRequestResponseLoggingConfig', {})
  deploy, = _bodies(standin, 'DeployModel')
  assert deploy['deployedModel']['model'].endswith(f'/models/{MODEL}@1')
  assert deploy['deployedModel']['dedicatedResources'] == {
      'machineSpec': {'machineType': 'n1-standard-2'},
      'minReplicaCount': 1, 'maxReplicaCount': 1}
  assert deploy['trafficSplit'] == {'0': 100}
  assert standin.serving_version() == '1'
  assert standin.alias_holder(MODEL, 'production') == '1'
  assert pushed.get_string_custom_property('vertex_model_version').endswith(
      f'/models/{MODEL}@1')


def test_second_push_is_a_new_version_that_takes_the_traffic(pushes,
                                                             standin):
  pushes.push(b'w1')
  first_deployment, = standin.endpoints.values()
  first_id = first_deployment['deployedModels'][0]['id']
  pushes.push(b'w2')
  assert standin.calls == LATER_PUSH
  upload = _bodies(standin, 'UploadModel')[-1]
  assert upload['parentModel'].endswith(f'/models/{MODEL}')
  assert 'modelId' not in upload
  # Deployed next to the serving one without traffic; moved once up.
  deploy = _bodies(standin, 'DeployModel')[-1]
  assert deploy['trafficSplit'] == {first_id: 100, '0': 0}
  update = _bodies(standin, 'UpdateEndpoint')[-1]
  second_id = [d['id'] for d in first_deployment['deployedModels']][-1]
  assert update['trafficSplit'] == {second_id: 100}
  assert list(standin.models) == [MODEL]
  assert [v['versionId'] for v in standin.models[MODEL]] == ['1', '2']
  assert len(standin.endpoints) == 1
  assert standin.deployed_versions() == ['2']
  assert standin.alias_holder(MODEL, 'production') == '2'


def test_three_pushes_leave_one_deployment(pushes, standin):
  for weights in (b'w1', b'w2', b'w3'):
    pushes.push(weights)
  assert standin.deployed_versions() == ['3']
  assert standin.serving_version() == '3'
  assert len(standin.endpoints) == 1 and list(standin.models) == [MODEL]


def test_keep_deployed_keeps_the_previous_ones_without_traffic(
    tmp_path, standin):
  keep_one = vertex_target.from_settings(
      _settings(standin, VERTEX_KEEP_DEPLOYED='1'))
  pushes = Pushes(tmp_path, standin, keep_one)
  for weights in (b'w1', b'w2', b'w3'):
    pushes.push(weights)
  assert standin.deployed_versions() == ['2', '3']
  assert standin.serving_version() == '3'


def test_a_retried_push_finds_its_version(pushes, standin):
  pushes.push(b'w1')
  pushes.push(b'w1')
  assert standin.calls == ['GetModel', 'ListModelVersions', 'ListEndpoints']
  assert len(standin.models[MODEL]) == 1


def test_a_push_retried_after_a_failure_finishes_without_duplicates(
    pushes, standin):
  pushes.push(b'w1')
  standin.fail_next('UpdateEndpoint')
  with pytest.raises(Exception, match='injected'):
    pushes.push(b'w2')
  # The failed push changed nothing that serves.
  assert standin.serving_version() == '1'
  assert standin.alias_holder(MODEL, 'production') == '1'
  pushes.push(b'w2')
  assert standin.calls == ['GetModel', 'ListModelVersions', 'ListEndpoints',
                           'UpdateEndpoint', 'MergeVersionAliases',
                           'UndeployModel']
  assert [v['versionId'] for v in standin.models[MODEL]] == ['1', '2']
  assert standin.deployed_versions() == ['2']


def test_a_model_that_is_not_blessed_is_not_served(pushes, standin):
  pushed = pushes.push(b'w1', blessed=False)
  assert standin.calls == []
  assert pushed.get_int_custom_property('pushed') == 0
  assert not pushes.serving.exists()


def test_request_logging_to_bigquery_is_switched_on(pushes, standin):
  pushes.push(b'w1')
  logged = vertex_target.from_settings(
      _settings(standin, VERTEX_REQUEST_LOG_TABLE='serving.requests',
                VERTEX_REQUEST_LOG_SAMPLING='0.5'))
  pushes.push(b'w2', target=logged)
  update = next(body for name, _, query, body in standin.requests
                if name == 'UpdateEndpoint'
                and 'predict' in query.get('updateMask', '').lower())
  assert update['predictRequestResponseLoggingConfig'] == {
      'enabled': True, 'samplingRate': 0.5,
      'bigqueryDestination': {
          'outputUri': f'bq://{PROJECT}.serving.requests'}}
  pushes.push(b'w3', target=logged)  # already on: no update of it
  assert standin.calls == LATER_PUSH


def test_rollback_serves_the_previous_version_again(pushes, standin, target):
  pushes.push(b'w1')
  pushes.push(b'w2')
  standin.calls.clear()
  served = rollout.rollback(vertex_api.connect(target), target)
  # Version 1 was undeployed (VERTEX_KEEP_DEPLOYED=0): deployed again.
  assert standin.calls == ['GetModel', 'ListEndpoints', 'ListModelVersions',
                           'DeployModel', 'GetEndpoint', 'UpdateEndpoint',
                           'MergeVersionAliases', 'UndeployModel']
  assert (served.version_id, served.undeployed) == ('1', ['2'])
  assert standin.serving_version() == '1'
  assert standin.deployed_versions() == ['1']
  assert standin.alias_holder(MODEL, 'production') == '1'
  assert [v['versionId'] for v in standin.models[MODEL]] == ['1', '2']


def test_rollback_to_a_version_still_deployed_moves_traffic_only(
    tmp_path, standin):
  keep_one = vertex_target.from_settings(
      _settings(standin, VERTEX_KEEP_DEPLOYED='1'))
  pushes = Pushes(tmp_path, standin, keep_one)
  pushes.push(b'w1')
  pushes.push(b'w2')
  standin.calls.clear()
  rollout.rollback(vertex_api.connect(keep_one), keep_one)
  assert standin.calls == ['GetModel', 'ListEndpoints', 'ListModelVersions',
                           'UpdateEndpoint', 'MergeVersionAliases']
  assert standin.serving_version() == '1'
  assert standin.deployed_versions() == ['1', '2']


def test_rollback_errors_name_what_is_missing(pushes, standin, target):
  api = vertex_api.connect(target)
  with pytest.raises(rollout.ServingError,
                     match="no Vertex AI model 'taxi-tips' in projects/"):
    rollout.rollback(api, target)
  pushes.push(b'w1')
  with pytest.raises(rollout.ServingError, match='version 1 .* is the oldest'):
    rollout.rollback(api, target)
  with pytest.raises(rollout.ServingError, match='has no version 7: it has 1'):
    rollout.rollback(api, target, '7')
  standin.endpoints.clear()
  with pytest.raises(rollout.ServingError,
                     match="no Vertex AI endpoint named 'taxi-tips'"):
    rollout.status(api, target)


def test_status_names_the_version_its_run_and_metrics(pushes, target):
  pushes.push(b'w1', accuracy=0.87)
  pushes.push(b'w2', accuracy=0.8893)
  status = rollout.status(vertex_api.connect(target), target)
  assert status.serving.version_id == '2'
  assert [v.version_id for v in status.versions] == ['1', '2']
  assert status.deployed == {'2': 100}
  assert status.provenance.run == 'run_2026-12-01t12_02'
  assert status.provenance.metrics['binary_accuracy'] == pytest.approx(0.8893)
  # Version 2 serves since the traffic moved to it (now), not since the
  # stand-in deployed it (its clock is in January 2026).
  assert abs(status.since - datetime.datetime.now(datetime.timezone.utc)
             ) < datetime.timedelta(minutes=5)


def test_status_of_a_first_push_counts_from_its_deployment(pushes, target):
  pushes.push(b'w1')
  status = rollout.status(vertex_api.connect(target), target)
  assert status.since.year == 2026 and status.since.month == 1


def test_labels_round_trip_and_are_valid():
  made = provenance.Provenance('Taxi.Tips', 'Run 7: 2026-12-01T12:00:00.5',
                               'ab' * 20, {'auc': 0.94912345, 'rmse': 1e7})
  labels = made.labels()
  for key, value in labels.items():
    assert len(key) <= 63 and len(value) <= 63
    assert set(key + value) <= set('abcdefghijklmnopqrstuvwxyz0123456789_-')
  back = provenance.Provenance.from_labels(labels)
  assert back.metrics == {'auc': pytest.approx(0.949123), 'rmse': 1e7}
  assert back.digest == 'ab' * 20


def test_the_digest_follows_the_files(tmp_path):
  (tmp_path / 'a').mkdir()
  (tmp_path / 'a' / 'saved_model.pb').write_bytes(b'graph')
  first = provenance.saved_model_digest(str(tmp_path / 'a'))
  (tmp_path / 'a' / 'saved_model.pb').write_bytes(b'other graph')
  assert provenance.saved_model_digest(str(tmp_path / 'a')) != first


@pytest.mark.parametrize('uri, run', [
    ('gs://b/output/taxi-tips/123/taxi-tips-20261201/Pusher_-42/pushed_model',
     'taxi-tips-20261201'),  # Vertex AI Pipelines
    ('gs://b/output/taxi-tips/taxi-tips/0b5c-4e1d/Pusher/7/pushed_model',
     '0b5c-4e1d'),  # Kubeflow Pipelines
])
def test_the_run_is_read_from_the_artifact_path_on_the_cloud(uri, run):
  assert vertex_push.run_name(None, uri) == run
  assert vertex_push.run_name('local-run', uri) == 'local-run'


def test_settings_make_the_target():
  settings = configs.load({'GOOGLE_CLOUD_PROJECT': PROJECT,
                           'PIPELINE_NAME': '9-lives',
                           'VERTEX_REQUEST_LOG_TABLE': 'other-project.l.t'})
  target = vertex_target.from_settings(settings)
  assert target.model_id == 'p-9-lives'  # a model id starts with a letter
  assert target.endpoint_name == '9-lives'
  assert target.request_log_table == 'bq://other-project.l.t'
  assert target.api_host == 'europe-west3-aiplatform.googleapis.com'
  assert settings.VERTEX_SERVING is True
  assert configs.load({'USE_VERTEX_AI': 'false'}).VERTEX_SERVING is False
  with pytest.raises(ConfigError, match='GOOGLE_CLOUD_PROJECT is not set'):
    vertex_target.from_settings(configs.load({}))
