"""Schedules (deploy/schedules.py) against stand-ins of both orchestrators.

Kubeflow Pipelines: tests/kfp_standin.py (its v2beta1 recurring-run routes); Vertex AI: tests/vertex_standin_schedules.py. Both on
127.0.0.1, driven by the official clients (kfp.Client; aiplatform over REST
with anonymous credentials), so the tests assert the requests really sent.
"""
import json

from google.auth import credentials as auth_credentials
import kfp
import pytest

from deploy import schedules
from deploy.schedule_types import ScheduleError, target_cron
from tests import kfp_standin
from tests import loopback
from tests import vertex_standin_schedules

PROJECT = 'road-admin-1'
CRON = '0 3 * * *'


# --- Kubeflow Pipelines -----------------------------------------------------


@pytest.fixture
def kfp_fake(monkeypatch, tmp_path):
  """The stand-in API on 127.0.0.1 with one pipeline of two versions;
  yields (fake, endpoint)."""
  for name in ('KF_PIPELINES_ENDPOINT', 'KF_PIPELINES_TOKEN'):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv('PIPELINE_NAME', 'taxi-tips')
  monkeypatch.setattr(kfp.Client, '_LOCAL_KFP_CONTEXT',
                      str(tmp_path / 'kfp_context.json'))
  with kfp_standin.serve() as (fake, endpoint):
    fake.pipelines['pipeline-0'] = {'display_name': 'taxi-tips',
                                    'versions': []}
    fake.add_version('pipeline-0', 'taxi-tips', 'spec')
    fake.add_version('pipeline-0', 'taxi-tips-2', 'spec')
    yield fake, endpoint


def _kfp(endpoint, *args):
  return schedules.main([*args, '--target=kubeflow', '--endpoint', endpoint])


def test_kubeflow_schedule_create_list_pause_resume_delete(kfp_fake, capsys):
  fake, endpoint = kfp_fake
  assert _kfp(endpoint, 'create', '--cron', CRON) == 0

  (request,) = fake.requests_to('POST', '/recurringruns')
  sent = request['json']
  newest = fake.pipelines['pipeline-0']['versions'][-1]
  (experiment_id,) = fake.experiments
  assert sent['display_name'] == 'taxi-tips-schedule'
  assert sent['trigger'] == {'cron_schedule': {'cron': '0 0 3 * * *'}}
  assert sent['pipeline_version_reference'] == {
      'pipeline_id': 'pipeline-0',
      'pipeline_version_id': newest['pipeline_version_id']}
  assert sent['experiment_id'] == experiment_id
  assert fake.experiments[experiment_id] == 'taxi-tips'
  assert (sent['max_concurrency'], sent['no_catchup'], sent['mode']) == (
      1, True, 'ENABLE')
  (run_id,) = fake.recurring_runs
  assert f'Schedule "taxi-tips-schedule" created on kubeflow' in (
      capsys.readouterr().out)

  assert _kfp(endpoint, 'list') == 0
  assert capsys.readouterr().out == (
      f'taxi-tips-schedule\tactive\t0 0 3 * * *\t{run_id}\n')
  assert _kfp(endpoint, 'pause') == 0
  assert fake.recurring_runs[run_id]['mode'] == 'DISABLE'
  assert _kfp(endpoint, 'resume') == 0
  assert fake.recurring_runs[run_id]['mode'] == 'ENABLE'
  assert _kfp(endpoint, 'delete') == 0
  assert not fake.recurring_runs
  assert len(fake.requests_to('DELETE', f'/recurringruns/{run_id}')) == 1


def test_kubeflow_refusals_are_one_line(kfp_fake, capsys):
  fake, endpoint = kfp_fake
  assert _kfp(endpoint, 'create', '--cron', CRON) == 0
  assert _kfp(endpoint, 'create', '--cron', CRON) == 1
  assert 'a recurring run named "taxi-tips-schedule" exists already' in (
      capsys.readouterr().err)
  assert len(fake.recurring_runs) == 1  # a retry makes no second schedule
  assert _kfp(endpoint, 'pause', '--name', 'nightly') == 1
  assert capsys.readouterr().err == (
      'error: no recurring run named "nightly" on Kubeflow Pipelines; `list` '
      'shows the ones there are\n')
  requests = len(fake.requests)
  assert _kfp(endpoint, 'create', '--name', 'x', '--cron', '3 * *') == 1
  assert "--cron '3 * *' is not a cron expression" in capsys.readouterr().err
  assert len(fake.requests) == requests  # refused before any request
  del fake.pipelines['pipeline-0']
  assert _kfp(endpoint, 'create', '--name', 'other', '--cron', CRON) == 1
  assert 'pipeline "taxi-tips" does not exist on Kubeflow Pipelines' in (
      capsys.readouterr().err)


# --- Vertex AI Pipelines ----------------------------------------------------


@pytest.fixture
def vertex(monkeypatch, tmp_path):
  """The stand-in on 127.0.0.1 and a compiled job file; yields (standin,
  a function running the command against it)."""
  monkeypatch.setenv('GOOGLE_CLOUD_PROJECT', PROJECT)
  monkeypatch.setenv('PIPELINE_NAME', 'taxi-tips')
  monkeypatch.setenv('GOOGLE_CLOUD_REGION', 'europe-north1')
  monkeypatch.setenv('GOOGLE_CLOUD_ZONE', 'europe-north1-a')
  job = tmp_path / 'taxi-tips.vertex.json'
  job.write_text(json.dumps({
      'displayName': 'taxi-tips',
      'pipelineSpec': {'pipelineInfo': {'name': 'taxi-tips'},
                       'schemaVersion': '2.1.0', 'sdkVersion': 'tfx-1.16.0',
                       'root': {'dag': {'tasks': {}}},
                       'deploymentSpec': {'executors': {}}},
      'runtimeConfig': {'gcsOutputDirectory':
                            f'gs://{PROJECT}-taxi-tips/output/taxi-tips'}}))
  standin = vertex_standin_schedules.VertexSchedulesStandin()
  with loopback.serve(standin) as url:

    def command(*args):
      return schedules.main(
          [*args, '--target=vertex', '--api-endpoint', url,
           '--pipeline-file', str(job)],
          credentials=auth_credentials.AnonymousCredentials())

    yield standin, command


def test_vertex_schedule_create_list_pause_resume_delete(vertex, capsys):
  standin, command = vertex
  assert command('create', '--cron', f'CRON_TZ=Europe/Oslo {CRON}') == 0

  (request,) = standin.requests_to('POST', '/schedules')
  assert request['path'] == (
      f'/v1/projects/{PROJECT}/locations/europe-north1/schedules')
  sent = request['body']
  assert sent['displayName'] == 'taxi-tips-schedule'
  assert sent['cron'] == f'CRON_TZ=Europe/Oslo {CRON}'
  assert sent['maxConcurrentRunCount'] == '1'
  job = sent['createPipelineJobRequest']['pipelineJob']
  assert job['pipelineSpec']['pipelineInfo']['name'] == 'taxi-tips'
  assert job['runtimeConfig']['gcsOutputDirectory'] == (
      f'gs://{PROJECT}-taxi-tips/output/taxi-tips')
  assert job['serviceAccount'] == (
      f'taxi-tips-runner@{PROJECT}.iam.gserviceaccount.com')
  (name,) = standin.schedules
  assert capsys.readouterr().out == (
      f'Schedule "taxi-tips-schedule" created on vertex (CRON_TZ=Europe/Oslo '
      f'{CRON}; {name}).\n')

  assert command('list') == 0
  assert capsys.readouterr().out == (
      f'taxi-tips-schedule\tactive\tCRON_TZ=Europe/Oslo {CRON}\t{name}\n')
  assert command('pause') == 0
  assert standin.schedules[name]['state'] == 'PAUSED'
  assert command('resume') == 0
  assert standin.schedules[name]['state'] == 'ACTIVE'
  assert command('delete') == 0
  assert not standin.schedules
  assert len(standin.requests_to('DELETE', name)) == 1


def test_vertex_refusals_are_one_line(vertex, capsys, monkeypatch):
  standin, command = vertex
  assert command('create', '--cron', CRON) == 0
  assert command('create', '--cron', CRON) == 1
  assert capsys.readouterr().err == (
      'error: a pipeline job schedule named "taxi-tips-schedule" exists '
      'already; delete it first, or choose another --name\n')
  assert len(standin.requests_to('POST', '/schedules')) == 1
  assert command('delete', '--name', 'nightly') == 1
  assert 'no pipeline job schedule named "nightly"' in capsys.readouterr().err
  monkeypatch.setenv('GOOGLE_CLOUD_PROJECT', '')
  assert command('list') == 1
  assert 'GOOGLE_CLOUD_PROJECT is not set' in capsys.readouterr().err


def test_cron_expressions_per_target():
  assert target_cron('0 3 * * 1-5', 'kubeflow') == '0 0 3 * * 1-5'
  assert target_cron(' 0  3 * * * ', 'vertex') == '0 3 * * *'
  assert target_cron('TZ=Europe/Oslo */15 * * * *', 'vertex') == (
      'TZ=Europe/Oslo */15 * * * *')
  with pytest.raises(ScheduleError, match='leave out .CRON_TZ=Europe/Oslo'):
    target_cron('CRON_TZ=Europe/Oslo 0 3 * * *', 'kubeflow')
  for bad in ('', '0 3 * *', '0 0 3 * * *', '0 3 * * ; rm'):
    with pytest.raises(ScheduleError, match='not a cron expression'):
      target_cron(bad, 'vertex')
