"""The project's `tfx` command, the real entry point in a subprocess.

`.venv/bin/tfx` (scripts/tfx_entry_point.py, installed by `make setup`) runs
against the Kubeflow Pipelines stand-in (tests/kfp_standin.py): the seed's
commands verbatim, with the venv's bin on PATH and without it (then with a
`pip` first on PATH that fails, as a foreign one would), and the one-line
errors. The handler's other commands are tested in-process in
test_kfp_handler.py.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
import yaml
from google.protobuf import json_format

from pipeline import configs
from tests import helpers
from tests import kfp_standin

VENV_BIN = os.path.join(helpers.REPO, '.venv', 'bin')  # as a user types it
TFX = os.path.join(VENV_BIN, 'tfx')
ENTRY_POINT = os.path.join(helpers.REPO, 'scripts', 'tfx_entry_point.py')
PROJECT = 'test-project-123'
IMAGE = (f'europe-west3-docker.pkg.dev/{PROJECT}/tfx-pipelines/taxi-tips:'
         'cli-test')


@pytest.fixture(scope='module')
def installed_entry_point():
  """`make setup` installed scripts/tfx_entry_point.py as .venv/bin/tfx."""
  with open(TFX) as installed, open(ENTRY_POINT) as source:
    assert installed.read().split('\n', 1)[1] == source.read().split(
        '\n', 1)[1], f'{TFX} is not the project\'s entry point: run make setup'


@pytest.fixture
def kfp_api(installed_entry_point):  # pylint: disable=unused-argument
  with kfp_standin.serve() as served:
    yield served


def _path_without_venv(tmp_path):
  """PATH without the venv's bin, behind a `pip` that fails if run."""
  fake_bin = tmp_path / 'bin'
  fake_bin.mkdir()
  pip = fake_bin / 'pip'
  pip.write_text('#!/bin/sh\necho "not this project\'s pip" >&2\nexit 3\n')
  pip.chmod(0o755)
  venv_bins = {os.path.realpath(VENV_BIN), VENV_BIN,
               os.path.dirname(sys.executable)}
  kept = [d for d in os.environ['PATH'].split(os.pathsep)
          if d and d not in venv_bins and os.path.realpath(d) not in venv_bins]
  return os.pathsep.join([str(fake_bin)] + kept)


def _env(tmp_path, venv_on_path: bool):
  """A user's shell: no setting overrides but the cloud ones, a fresh HOME."""
  settings = set(configs.Settings.names())
  env = {k: v for k, v in os.environ.items()
         if k not in settings
         and not k.startswith(('KF_PIPELINES_', 'VIRTUAL_ENV', 'TF_CPP_'))}
  home = tmp_path / 'home'
  home.mkdir(exist_ok=True)
  env.update({
      'HOME': str(home), 'NO_PROXY': '127.0.0.1', 'no_proxy': '127.0.0.1',
      'GOOGLE_CLOUD_PROJECT': PROJECT, 'PIPELINE_IMAGE_TAG': 'cli-test',
      'LOCAL_OUTPUT_DIR': str(tmp_path / 'tfx_output'),
      'GOOGLE_APPLICATION_CREDENTIALS': '/nonexistent/credentials.json',
      'PATH': (VENV_BIN + os.pathsep + os.environ['PATH'] if venv_on_path
               else _path_without_venv(tmp_path)),
  })
  return env


def _tfx(command: str, env, program: str = 'tfx'):
  """Runs `program` + the words of `command` in the checkout, as typed."""
  return subprocess.run([program] + command.split(), cwd=helpers.REPO,
                        env=env, capture_output=True, text=True, timeout=300,
                        check=False)


# The commands users of the AI Platform Pipelines template run, verbatim.
SEED_COMMANDS = [
    'tfx pipeline create --engine=kubeflow --endpoint=ENDPOINT '
    '--pipeline-path=kubeflow_runner.py',
    'tfx pipeline update --engine=kubeflow --endpoint=ENDPOINT '
    '--pipeline-path=kubeflow_runner.py',
    'tfx run create --pipeline_name=PIPELINE_NAME --endpoint=ENDPOINT '
    '--engine=kubeflow',
]
SEED_INFRASTRUCTURE = 'python pipeline/gcp_infrastructure.py'


def _seed_commands(endpoint):
  """The seed's `tfx` arguments for `endpoint` and the default pipeline."""
  return [c.replace('ENDPOINT', endpoint).replace('PIPELINE_NAME', 'taxi-tips')
          .split(' ', 1)[1] for c in SEED_COMMANDS]


def _run_all(commands, env, program):
  results = []
  for command in commands:
    result = _tfx(command, env, program)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert 'Traceback' not in result.stderr, result.stderr
    results.append(result)
  return results


def _assert_uploaded_versions_and_run(fake, endpoint, run_output):
  (upload,) = fake.requests_to('POST', '/pipelines/upload')
  assert upload['query']['name'] == ['taxi-tips']
  (pipeline_id,) = fake.pipelines
  first, second = fake.pipelines[pipeline_id]['versions']
  (version_upload,) = fake.requests_to('POST', '/pipelines/upload_version')
  assert version_upload['query']['pipelineid'] == [pipeline_id]
  assert version_upload['query']['name'][0].startswith('taxi-tips-')
  for version in (first, second):
    uploaded = yaml.safe_load(version['spec'])
    # A bare PipelineSpec (not the PipelineJob wrapper) that KFP's proto takes.
    spec = json_format.ParseDict(uploaded, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == 'taxi-tips'
    assert spec.default_pipeline_root == (
        f'gs://{PROJECT}-taxi-tips/output/taxi-tips')
    deployment = json_format.ParseDict(
        uploaded['deploymentSpec'],
        pipeline_spec_pb2.PipelineDeploymentConfig())
    assert {e.container.image for e in deployment.executors.values()} == {
        IMAGE}
  (run_id, body), = fake.runs.items()
  assert body['pipeline_version_reference'] == {
      'pipeline_id': pipeline_id,
      'pipeline_version_id': second['pipeline_version_id']}
  assert f'{endpoint}/#/runs/details/{run_id}' in run_output
  return run_id


@pytest.mark.slow
def test_seed_commands_with_the_venv_on_path(kfp_api, tmp_path):
  fake, endpoint = kfp_api
  results = _run_all(_seed_commands(endpoint), _env(tmp_path, True), 'tfx')
  _assert_uploaded_versions_and_run(fake, endpoint, results[-1].stdout)
  assert 'Pipeline "taxi-tips" created' in results[0].stdout
  assert 'Pipeline "taxi-tips" updated' in results[1].stdout


@pytest.mark.slow
def test_seed_commands_without_the_venv_on_path(kfp_api, tmp_path):
  fake, endpoint = kfp_api
  env = _env(tmp_path, False)
  # The first `pip` on PATH is a foreign one, which fails.
  assert shutil.which('pip', path=env['PATH']) == str(tmp_path / 'bin' / 'pip')
  results = _run_all(_seed_commands(endpoint), env, TFX)
  run_id = _assert_uploaded_versions_and_run(fake, endpoint,
                                             results[-1].stdout)
  terminate = _run_all(
      [f'run terminate --run_id={run_id} --endpoint={endpoint} '
       '--engine=kubeflow'], env, TFX)[0]
  assert fake.terminated == [run_id]
  assert f'Run {run_id} terminated.' in terminate.stdout


@pytest.fixture
def spec_file(tmp_path):
  path = tmp_path / 'taxi-tips.kubeflow.yaml'
  path.write_text(yaml.safe_dump({
      'pipelineInfo': {'name': 'taxi-tips'}, 'schemaVersion': '2.1.0',
      'root': {'dag': {'tasks': {}}}}))
  return str(path)


def _closed_port():
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    return sock.getsockname()[1]


def _one_line_error(result):
  assert result.returncode == 1, (result.stdout, result.stderr)
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  return lines[0]


@pytest.mark.usefixtures('installed_entry_point')
def test_unreachable_endpoint_is_one_line(tmp_path):
  endpoint = f'http://127.0.0.1:{_closed_port()}'
  result = _tfx(f'run create --pipeline_name=taxi-tips --endpoint={endpoint} '
                '--engine=kubeflow', _env(tmp_path, False), TFX)
  assert _one_line_error(result) == (
      f'Error: cannot reach Kubeflow Pipelines at {endpoint}: '
      '[Errno 111] Connection refused')


def test_unknown_pipeline_is_one_line(kfp_api, tmp_path):
  fake, endpoint = kfp_api
  result = _tfx(f'run create --pipeline_name=taxi-tipz --endpoint={endpoint} '
                '--engine=kubeflow', _env(tmp_path, False), TFX)
  assert _one_line_error(result) == (
      'Error: pipeline "taxi-tipz" does not exist at this endpoint; create it '
      'with `tfx pipeline create`')
  assert not fake.runs


def test_refused_upload_is_one_line(kfp_api, tmp_path, spec_file):
  fake, endpoint = kfp_api
  fake.refuse_uploads = ('Failed to create a pipeline: invalid pipeline spec:\n'
                         '  unknown field "pipelineInfoo"')
  result = _tfx(f'pipeline create --engine=kubeflow --endpoint={endpoint} '
                f'--pipeline-path={spec_file}', _env(tmp_path, False), TFX)
  assert _one_line_error(result) == (
      'Error: Kubeflow Pipelines refused the request: HTTP 400 Bad Request '
      'Failed to create a pipeline: invalid pipeline spec: unknown field '
      '"pipelineInfoo"')
  assert not fake.pipelines


@pytest.mark.slow
@pytest.mark.usefixtures('installed_entry_point')
def test_vertex_compile_without_the_venv_on_path(tmp_path):
  # TFX's own CLI runs the first `pip` on PATH to look for kfp.
  result = _tfx('pipeline compile --engine=vertex '
                '--pipeline_path=kubeflow_runner.py', _env(tmp_path, False),
                TFX)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Pipeline taxi-tips compiled successfully' in result.stdout
  compiled = tmp_path / 'tfx_output' / 'compiled'
  with open(compiled / 'taxi-tips.vertex.json') as job_file:
    job = json_format.ParseDict(json.load(job_file),
                                pipeline_spec_pb2.PipelineJob())
  assert job.runtime_config.gcs_output_directory == (
      f'gs://{PROJECT}-taxi-tips/output/taxi-tips')
  # Only the Vertex target: TFX's CLI allows one compilation per file.
  assert not (compiled / 'taxi-tips.kubeflow.yaml').exists()


def test_each_checkout_runs_its_own_code_through_a_shared_venv(tmp_path):
  # Two checkouts whose .venv links to one venv: each `.venv/bin/tfx` runs
  # the deploy/tfx_cli.py of the checkout it was started from.
  shared_bin = tmp_path / 'shared_venv' / 'bin'
  shared_bin.mkdir(parents=True)
  with open(ENTRY_POINT) as source:
    entry_point = source.read().split('\n', 1)[1]
  (shared_bin / 'tfx').write_text(f'#!{sys.executable}\n{entry_point}')
  (shared_bin / 'tfx').chmod(0o755)
  for name in ('first', 'second'):
    deploy = tmp_path / name / 'deploy'
    deploy.mkdir(parents=True)
    (deploy / '__init__.py').write_text('')
    (deploy / 'tfx_cli.py').write_text(
        'import sys\n'
        'def main():\n'
        f'  print("{name}", sys.argv[1:])\n'
        '  sys.exit(0)\n')
    (tmp_path / name / '.venv').symlink_to(tmp_path / 'shared_venv')
  for name in ('first', 'second'):
    result = subprocess.run(
        [str(tmp_path / name / '.venv' / 'bin' / 'tfx'), 'run', 'list'],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{name} ['run', 'list']\n"


def _section(text, heading):
  start = text.index(heading)
  end = text.find('\n## ', start + len(heading))
  return text[start:] if end < 0 else text[start:end]


@pytest.mark.parametrize('doc,heading', [
    ('README.md', '## On Google Cloud'),
    ('README.md', '## Kom i gang'),
    ('docs/kubeflow.md', '## 4b. Deploy to Kubeflow Pipelines'),
])
def test_the_docs_show_the_seed_commands_verbatim(doc, heading):
  with open(os.path.join(helpers.REPO, doc)) as f:
    lines = {line.strip() for line in _section(f.read(), heading).splitlines()}
  assert set(SEED_COMMANDS + [SEED_INFRASTRUCTURE]) <= lines
