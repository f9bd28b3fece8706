"""`tfx ... --engine=kubeflow` in-process (deploy/tfx_cli.py, kfp_handler.py).

TFX's own click commands run with the project's engines against the Kubeflow
Pipelines stand-in (tests/kfp_standin.py), through the official kfp.Client;
the stand-in records what it was sent. The entry point itself, in a
subprocess, is tested in test_tfx_cli.py.
"""
import os

import kfp
import pytest
import yaml

from deploy import tfx_cli
from tests import helpers
from tests import kfp_standin


@pytest.fixture
def kfp_api(monkeypatch, tmp_path):
  """The stand-in API; yields (fake, endpoint)."""
  for name in ('KF_PIPELINES_ENDPOINT', 'KF_PIPELINES_TOKEN',
               'KF_PIPELINES_UI_ENDPOINT', 'KF_PIPELINES_IAP_OAUTH2_CLIENT_ID'):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv('HOME', str(tmp_path))
  # Never read or write the developer's own kfp context.
  monkeypatch.setattr(kfp.Client, '_LOCAL_KFP_CONTEXT',
                      str(tmp_path / 'kfp_context.json'))
  with kfp_standin.serve() as served:
    yield served


@pytest.fixture
def spec_file(tmp_path):
  """A small compiled pipeline spec, as kubeflow_runner.py writes them."""
  path = tmp_path / 'taxi-tips.kubeflow.yaml'
  path.write_text(yaml.safe_dump({
      'pipelineInfo': {'name': 'taxi-tips'},
      'schemaVersion': '2.1.0',
      'defaultPipelineRoot': 'gs://bucket/output/taxi-tips',
      'root': {'dag': {'tasks': {}}},
  }))
  return str(path)


def tfx(command: str) -> int:
  """Runs `tfx COMMAND` in this process; returns its exit status."""
  with pytest.raises(SystemExit) as exit_info:
    tfx_cli.main(command.split())
  code = exit_info.value.code
  return code if isinstance(code, int) else 1


def _created(endpoint, spec_file, versions=1):
  assert tfx(f'pipeline create --engine=kubeflow --endpoint={endpoint} '
             f'--pipeline_path={spec_file}') == 0
  for _ in range(versions - 1):
    assert tfx(f'pipeline update --engine=kubeflow --endpoint={endpoint} '
               f'--pipeline-path={spec_file}') == 0


def test_create_refuses_an_existing_pipeline(kfp_api, spec_file, capsys):
  fake, endpoint = kfp_api
  _created(endpoint, spec_file)
  assert tfx(f'pipeline create --engine=kubeflow --endpoint={endpoint} '
             f'--pipeline-path={spec_file}') == 1
  assert 'Error: pipeline "taxi-tips" already exists' in (
      capsys.readouterr().err)
  assert len(fake.requests_to('POST', '/pipelines/upload')) == 1


def test_update_uploads_a_version_of_the_named_pipeline(kfp_api, spec_file):
  fake, endpoint = kfp_api
  _created(endpoint, spec_file, versions=2)
  (pipeline_id,) = fake.pipelines
  (upload,) = fake.requests_to('POST', '/pipelines/upload_version')
  assert upload['query']['pipelineid'] == [pipeline_id]
  assert upload['query']['name'][0].startswith('taxi-tips-')
  assert 'multipart/form-data' in upload['content_type']
  assert len(fake.pipelines[pipeline_id]['versions']) == 2


def test_update_of_a_missing_pipeline_fails(kfp_api, spec_file, capsys):
  fake, endpoint = kfp_api
  assert tfx(f'pipeline update --engine=kubeflow --endpoint={endpoint} '
             f'--pipeline_path={spec_file}') == 1
  assert 'does not exist' in capsys.readouterr().err
  assert not fake.requests_to('POST', '/pipelines/upload_version')


def test_run_create_waits_for_success(kfp_api, spec_file, capsys,
                                      monkeypatch):
  fake, endpoint = kfp_api
  _created(endpoint, spec_file, versions=2)
  (pipeline_id,) = fake.pipelines
  newest = fake.pipelines[pipeline_id]['versions'][-1]
  monkeypatch.setenv('KF_PIPELINES_TOKEN', 'secret-token')

  assert tfx(f'run create --engine=kubeflow --endpoint={endpoint} '
             '--pipeline_name=taxi-tips --wait --poll_interval=0.01') == 0

  (experiment_id,) = fake.experiments
  assert fake.experiments[experiment_id] == 'taxi-tips'
  (run_request,) = fake.requests_to('POST', '/runs')
  assert run_request['authorization'] == 'Bearer secret-token'
  (run_id, body), = fake.runs.items()
  assert body['experiment_id'] == experiment_id
  assert body['pipeline_version_reference'] == {
      'pipeline_id': pipeline_id,
      'pipeline_version_id': newest['pipeline_version_id']}
  polls = fake.requests_to('GET', f'/runs/{run_id}')
  assert len(polls) == len(fake.run_states)  # stops at SUCCEEDED
  out = capsys.readouterr().out
  assert [s for s in fake.run_states if f'{run_id}: {s}' in out] == (
      fake.run_states)
  assert f'{endpoint}/#/runs/details/{run_id}' in out
  assert f'Run {run_id} succeeded.' in out


def test_run_create_exits_1_on_a_failed_run(kfp_api, spec_file, capsys):
  fake, endpoint = kfp_api
  fake.run_states = ['RUNNING', 'RUNNING', 'FAILED', 'SUCCEEDED']
  fake.run_error = 'Trainer: OOMKilled'
  _created(endpoint, spec_file)

  assert tfx(f'run create --engine=kubeflow --endpoint={endpoint} '
             '--pipeline_name=taxi-tips --wait --poll-interval=0.01') == 1

  (run_id,) = fake.runs
  assert len(fake.requests_to('GET', f'/runs/{run_id}')) == 3
  assert capsys.readouterr().err.strip() == (
      f'Error: run {run_id} ended FAILED: Trainer: OOMKilled')


def test_run_create_without_wait_does_not_poll(kfp_api, spec_file):
  fake, endpoint = kfp_api
  _created(endpoint, spec_file)
  assert tfx(f'run create --engine=kubeflow --endpoint={endpoint} '
             '--pipeline_name=taxi-tips') == 0
  (run_id,) = fake.runs
  assert not fake.requests_to('GET', f'/runs/{run_id}')


def test_run_list_status_and_delete(kfp_api, spec_file, capsys):
  fake, endpoint = kfp_api
  _created(endpoint, spec_file)
  flags = f'--engine=kubeflow --endpoint={endpoint}'
  assert tfx(f'run create {flags} --pipeline_name=taxi-tips') == 0
  (run_id,) = fake.runs
  capsys.readouterr()

  assert tfx(f'run list {flags} --pipeline_name=taxi-tips') == 0
  out = capsys.readouterr().out
  assert f'| {run_id} ' in out and f'/#/runs/details/{run_id}' in out
  assert tfx(f'run status {flags} --pipeline_name=taxi-tips '
             f'--run_id={run_id}') == 0
  assert '| PENDING ' in capsys.readouterr().out
  assert tfx(f'run delete {flags} --run_id={run_id}') == 0
  assert not fake.runs
  assert tfx(f'run delete {flags} --run_id={run_id}') == 1
  assert capsys.readouterr().err.startswith(
      'Error: Kubeflow Pipelines refused the request: HTTP 404')


def test_pipeline_list_and_delete(kfp_api, spec_file, capsys):
  fake, endpoint = kfp_api
  _created(endpoint, spec_file, versions=2)
  (pipeline_id,) = fake.pipelines
  capsys.readouterr()

  assert tfx(f'pipeline list --engine=kubeflow --endpoint={endpoint}') == 0
  assert f'| taxi-tips     | {pipeline_id} ' in capsys.readouterr().out
  assert tfx(f'pipeline delete --engine=kubeflow --endpoint={endpoint} '
             '--pipeline_name=taxi-tips') == 0
  assert not fake.pipelines
  assert len(fake.requests_to('DELETE', f'/pipelines/{pipeline_id}')) == 1
  assert 'deleted with 2 version(s)' in capsys.readouterr().out


def test_a_vertex_job_is_not_uploaded(kfp_api, tmp_path, capsys):
  fake, endpoint = kfp_api
  job = tmp_path / 'taxi-tips.vertex.yaml'
  job.write_text(yaml.safe_dump({'displayName': 'taxi-tips',
                                 'pipelineSpec': {}, 'runtimeConfig': {}}))
  assert tfx(f'pipeline create --engine=kubeflow --endpoint={endpoint} '
             f'--pipeline_path={job}') == 1
  assert 'not a pipeline spec' in capsys.readouterr().err
  assert not fake.pipelines


def test_wait_is_for_kubeflow_only(capsys):
  assert tfx('run create --engine=vertex --pipeline_name=taxi-tips '
             '--wait') == 2
  assert '--wait works with --engine=kubeflow only' in capsys.readouterr().err


def test_an_unknown_engine_is_a_usage_error(capsys):
  assert tfx('pipeline list --engine=kubeflw') == 2
  assert ('--engine=kubeflw is not supported; use one of airflow, beam, '
          'kubeflow, local, vertex') in capsys.readouterr().err


def test_a_pipeline_file_that_fails_to_compile(kfp_api, tmp_path, capsys):
  fake, endpoint = kfp_api
  broken = tmp_path / 'broken_runner.py'
  broken.write_text('import sys\nprint("configuration error: X", '
                    'file=sys.stderr)\nsys.exit(2)\n')
  assert tfx(f'pipeline create --engine=kubeflow --endpoint={endpoint} '
             f'--pipeline_path={broken}') == 1
  assert capsys.readouterr().err.splitlines() == [
      'configuration error: X',
      f'Error: compiling {broken} failed (exit status 2); see the messages '
      'above']
  assert not fake.pipelines


def test_compile_writes_the_kubeflow_target(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv('GOOGLE_CLOUD_PROJECT', 'test-project-123')
  monkeypatch.setenv('PIPELINE_IMAGE_TAG', 'cli-test')
  monkeypatch.setenv('LOCAL_OUTPUT_DIR', str(tmp_path))
  runner = os.path.join(helpers.REPO, 'kubeflow_runner.py')
  assert tfx(f'pipeline compile --engine=kubeflow --pipeline_path={runner}') == 0
  spec = yaml.safe_load(
      (tmp_path / 'compiled' / 'taxi-tips.kubeflow.yaml').read_text())
  assert spec['pipelineInfo']['name'] == 'taxi-tips'
  assert not (tmp_path / 'compiled' / 'taxi-tips.vertex.json').exists()
  assert 'Pipeline compiled successfully.' in capsys.readouterr().out
