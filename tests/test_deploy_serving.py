"""`python -m deploy.serving status|rollback` against the Vertex AI stand-in:
what it prints, its one-line errors and its exit status."""
import os
import subprocess
import sys

import pytest

from deploy import serving
from pipeline.vertex_serving import api as vertex_api
from pipeline.vertex_serving import provenance
from pipeline.vertex_serving import rollout
from pipeline.vertex_serving import target as vertex_target
from tests import helpers
from tests.vertex_standin_models import VertexModelsStandin

PROJECT = 'test-project-123'


@pytest.fixture
def standin():
  server = VertexModelsStandin().start()
  yield server
  server.stop()


@pytest.fixture
def environ(standin):
  return {'GOOGLE_CLOUD_PROJECT': PROJECT, 'VERTEX_API_ENDPOINT': standin.url}


def _push(environ, version: int):
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  target = vertex_target.from_settings(configs.load(environ))
  rollout.push(vertex_api.connect(target), target,
               f'gs://bucket/serving_model/taxi-tips/{version}',
               provenance.Provenance('taxi-tips', f'run-{version}',
                                     f'{version:040d}',
                                     {'binary_accuracy': 0.88 + version / 1000,
                                      'auc': 0.949}))


def _main(capsys, environ, *argv):
  status = serving.main(list(argv), environ)
  out, err = capsys.readouterr()
  return status, out, err


def test_status_says_what_serves(capsys, environ):
  _push(environ, 1)
  _push(environ, 2)
  status, out, err = _main(capsys, environ, 'status')
  assert (status, err) == (0, '')
  lines = out.splitlines()
  assert lines[0].startswith('Endpoint taxi-tips: projects/')
  assert lines[1].startswith('Serving: version 2 of model taxi-tips (alias '
                             'production), 100 % of the traffic, since ')
  assert lines[2:] == ['Made by: pipeline taxi-tips, run run-2.',
                       'Metrics: auc 0.949, binary_accuracy 0.882.',
                       'Versions: 1, 2.']


def test_status_lists_the_versions_kept_deployed(capsys, environ):
  environ = {**environ, 'VERTEX_KEEP_DEPLOYED': '1'}
  _push(environ, 1)
  _push(environ, 2)
  _, out, _ = _main(capsys, environ, 'status')
  assert 'Also deployed: version 1 (0 % of the traffic).' in out.splitlines()


def test_rollback_then_status(capsys, environ, standin):
  _push(environ, 1)
  _push(environ, 2)
  status, out, _ = _main(capsys, environ, 'rollback')
  assert status == 0
  assert out == ('Rolled back: version 1 of model taxi-tips serves on '
                 'taxi-tips with the alias production. Undeployed: '
                 'version 2.\n')
  assert standin.serving_version() == '1'
  _, out, _ = _main(capsys, environ, 'status')
  assert 'Serving: version 1 of model taxi-tips (alias production)' in out
  status, out, _ = _main(capsys, environ, 'rollback', '--to', '2')
  assert (status, standin.serving_version()) == (0, '2')


@pytest.mark.parametrize('argv, pushes, message', [
    (['status'], 0, "serving error: no Vertex AI model 'taxi-tips' in "
     f'projects/{PROJECT}/locations/europe-west3: nothing has been pushed'),
    (['rollback'], 1, 'serving error: version 1 of \'taxi-tips\' is the '
     'oldest: there is no earlier version to roll back to'),
    (['rollback', '--to', '9'], 1,
     "serving error: 'taxi-tips' has no version 9: it has 1"),
])
def test_errors_are_one_line_with_status_1(capsys, environ, argv, pushes,
                                           message):
  for version in range(1, pushes + 1):
    _push(environ, version)
  status, out, err = _main(capsys, environ, *argv)
  assert (status, out) == (1, '')
  assert err.count('\n') == 1 and err.startswith(message), err


def test_a_missing_endpoint_is_named(capsys, environ, standin):
  _push(environ, 1)
  standin.endpoints.clear()
  status, _, err = _main(capsys, environ, 'status')
  assert status == 1
  assert err == ("serving error: no Vertex AI endpoint named 'taxi-tips' in "
                 f'projects/{PROJECT}/locations/europe-west3: nothing has '
                 'been deployed there yet (VERTEX_ENDPOINT_NAME)\n')


def test_a_refused_request_is_one_line(capsys, environ, standin):
  _push(environ, 1)
  standin.fail_next('ListEndpoints')
  status, _, err = _main(capsys, environ, 'status')
  assert status == 1
  assert err.startswith('Vertex AI error: 500 ') and err.count('\n') == 1


def test_bad_settings_exit_with_status_2(capsys, environ):
  status, _, err = _main(capsys, {}, 'status')
  assert status == 2
  assert err.startswith('configuration error: GOOGLE_CLOUD_PROJECT is not set')
  with pytest.raises(SystemExit) as exit_info:
    _main(capsys, {**environ, 'VERTEX_KEEP_DEPLOYED': '-1'}, 'status')
  assert exit_info.value.code == 2


def test_runs_as_a_module(environ):
  result = subprocess.run(
      [sys.executable, '-m', 'deploy.serving', 'status'], cwd=helpers.REPO,
      env={**os.environ, **environ}, capture_output=True, text=True,
      timeout=120, check=False)
  assert result.returncode == 1
  assert result.stderr.splitlines()[-1].startswith(
      "serving error: no Vertex AI model 'taxi-tips'")
