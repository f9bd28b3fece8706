"""The Kubeflow Pipelines CLI (deploy/kfp_cli.py) against a fake API server.

The server on 127.0.0.1 implements the v2beta1 endpoints the real kfp.Client
calls and records every request, so the tests assert what the CLI really sends:
uploads, version uploads, run creation and status polling.
"""
import email
import http.server
import json
import os
import socket
import threading
import time
import urllib.parse

import kfp
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
import yaml
from google.protobuf import json_format

from deploy import kfp_cli
from tests import helpers

_API = '/apis/v2beta1'
_SERVER_LIFETIME_S = 120


class FakeKfp:
  """In-memory Kubeflow Pipelines state plus a log of the requests."""

  def __init__(self):
    self.requests = []
    self.pipelines = {}  # id -> {'display_name', 'versions': [...]}
    self.experiments = {}  # id -> display name
    self.runs = {}  # id -> request body
    self.run_states = ['PENDING', 'RUNNING', 'SUCCEEDED']
    self.run_error = None
    self._polls = {}
    self._next_id = 0

  def new_id(self, prefix):
    self._next_id += 1
    return f'{prefix}-{self._next_id}'

  def requests_to(self, method, path):
    return [r for r in self.requests
            if r['method'] == method and r['path'] == path]

  def add_version(self, pipeline_id, name, spec):
    version = {
        'pipeline_id': pipeline_id,
        'pipeline_version_id': self.new_id('version'),
        'display_name': name,
        # Strictly increasing, as the server's creation times.
        'created_at': f'2030-01-01T00:00:{self._next_id:02d}Z',
        'spec': spec,
    }
    self.pipelines[pipeline_id]['versions'].append(version)
    return {k: v for k, v in version.items() if k != 'spec'}

  def handle(self, method, path, query, body, content_type):
    """Returns (HTTP status, JSON answer) for one request."""
    q = {k: v[0] for k, v in query.items()}
    parts = path[len(_API):].strip('/').split('/')
    if path == f'{_API}/healthz' and method == 'GET':
      return 200, {'multi_user': False}
    if path == f'{_API}/pipelines' and method == 'GET':
      found = [{'pipeline_id': i, 'display_name': p['display_name']}
               for i, p in self.pipelines.items()]
      if 'filter' in q:
        wanted = json.loads(q['filter'])['predicates'][0]['stringValue']
        found = [p for p in found if p['display_name'] == wanted]
      return 200, ({'pipelines': found, 'total_size': len(found)}
                   if found else {})
    if path == f'{_API}/pipelines/upload' and method == 'POST':
      pipeline_id = self.new_id('pipeline')
      self.pipelines[pipeline_id] = {'display_name': q['name'],
                                     'versions': []}
      self.add_version(pipeline_id, q['name'],
                       _uploaded_file(body, content_type))
      return 200, {'pipeline_id': pipeline_id, 'display_name': q['name']}
    if path == f'{_API}/pipelines/upload_version' and method == 'POST':
      if q.get('pipelineid') not in self.pipelines:
        return 404, {'error': 'no such pipeline'}
      return 200, self.add_version(q['pipelineid'], q['name'],
                                   _uploaded_file(body, content_type))
    if parts[0] == 'pipelines' and len(parts) >= 2:
      pipeline = self.pipelines.get(parts[1])
      if pipeline is None:
        return 404, {'error': 'no such pipeline'}
      if len(parts) == 3 and method == 'GET':  # .../versions
        versions = sorted(pipeline['versions'], key=lambda v: v['created_at'],
                          reverse=q.get('sort_by') == 'created_at desc')
        versions = versions[:int(q.get('page_size', 100))]
        return 200, {'pipeline_versions': [
            {k: v for k, v in version.items() if k != 'spec'}
            for version in versions]}
      if len(parts) == 4 and method == 'DELETE':
        pipeline['versions'] = [v for v in pipeline['versions']
                                if v['pipeline_version_id'] != parts[3]]
        return 200, {}
      if len(parts) == 2 and method == 'DELETE':
        if pipeline['versions']:  # As the real backend: versions go first.
          return 400, {'error': 'pipeline still has versions'}
        del self.pipelines[parts[1]]
        return 200, {}
    if path == f'{_API}/experiments' and method == 'GET':
      wanted = json.loads(q['filter'])['predicates'][0]['stringValue']
      found = [{'experiment_id': i, 'display_name': n}
               for i, n in self.experiments.items() if n == wanted]
      return 200, {'experiments': found} if found else {}
    if path == f'{_API}/experiments' and method == 'POST':
      experiment_id = self.new_id('experiment')
      self.experiments[experiment_id] = json.loads(body)['display_name']
      return 200, {'experiment_id': experiment_id,
                   'display_name': self.experiments[experiment_id]}
    if path == f'{_API}/runs' and method == 'POST':
      run_id = self.new_id('run')
      self.runs[run_id] = json.loads(body)
      return 200, {'run_id': run_id, 'state': 'PENDING'}
    if parts[0] == 'runs' and len(parts) == 2 and method == 'GET':
      polls = self._polls[parts[1]] = self._polls.get(parts[1], -1) + 1
      state = self.run_states[min(polls, len(self.run_states) - 1)]
      answer = {'run_id': parts[1], 'state': state}
      if state == 'FAILED' and self.run_error:
        answer['error'] = {'code': 2, 'message': self.run_error}
      return 200, answer
    return 404, {'error': f'not implemented: {method} {path}'}


def _uploaded_file(body, content_type):
  message = email.message_from_bytes(
      f'Content-Type: {content_type}\r\n\r\n'.encode() + body)
  for part in message.get_payload():
    if part.get_param('name', header='content-disposition') == 'uploadfile':
      return part.get_payload(decode=True).decode()
  raise AssertionError('no uploadfile part in the upload')


def _handler(fake):

  class Handler(http.server.BaseHTTPRequestHandler):

    def _serve(self):
      url = urllib.parse.urlsplit(self.path)
      length = int(self.headers.get('Content-Length') or 0)
      body = self.rfile.read(length) if length else b''
      content_type = self.headers.get('Content-Type', '')
      fake.requests.append({
          'method': self.command, 'path': url.path,
          'query': urllib.parse.parse_qs(url.query), 'body': body,
          'content_type': content_type,
          'authorization': self.headers.get('Authorization')})
      status, answer = fake.handle(self.command, url.path,
                                   urllib.parse.parse_qs(url.query), body,
                                   content_type)
      data = json.dumps(answer).encode()
      self.send_response(status)
      self.send_header('Content-Type', 'application/json')
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, *args):  # keep the test output clean
      pass

  return Handler


@pytest.fixture
def kfp_server(monkeypatch, tmp_path):
  """A fake Kubeflow Pipelines API on 127.0.0.1; yields (fake, endpoint)."""
  for name in ('KF_PIPELINES_ENDPOINT', 'KF_PIPELINES_TOKEN',
               'KF_PIPELINES_IAP_OAUTH2_CLIENT_ID'):
    monkeypatch.delenv(name, raising=False)
  # Never read or write the developer's own kfp context.
  monkeypatch.setattr(kfp.Client, '_LOCAL_KFP_CONTEXT',
                      str(tmp_path / 'kfp_context.json'))
  fake = FakeKfp()
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _handler(fake))
  thread = threading.Thread(target=server.serve_forever,
                            kwargs={'poll_interval': 0.05}, daemon=True)
  thread.start()
  # A bounded lifetime, should a test hang.
  timer = threading.Timer(_SERVER_LIFETIME_S, server.shutdown)
  timer.daemon = True
  timer.start()
  try:
    yield fake, f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    timer.cancel()
    server.shutdown()
    server.server_close()


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


def _cli(*args):
  return kfp_cli.main(list(args))


@pytest.mark.slow
def test_create_compiles_kubeflow_runner_and_uploads_the_spec(
    kfp_server, monkeypatch, capsys):
  fake, endpoint = kfp_server
  monkeypatch.setenv('GOOGLE_CLOUD_PROJECT', 'test-project-123')
  monkeypatch.setenv('PIPELINE_IMAGE_TAG', 'cli-test')

  assert _cli('pipeline', 'create', '--endpoint', endpoint,
              '--pipeline_path', os.path.join(helpers.REPO,
                                              'kubeflow_runner.py')) == 0

  uploads = fake.requests_to('POST', f'{_API}/pipelines/upload')
  assert len(uploads) == 1
  assert uploads[0]['query']['name'] == ['taxi-tips']
  (pipeline,) = fake.pipelines.values()
  uploaded = yaml.safe_load(pipeline['versions'][0]['spec'])
  # A bare PipelineSpec (not the PipelineJob wrapper) that KFP's proto takes.
  spec = json_format.ParseDict(uploaded, pipeline_spec_pb2.PipelineSpec())
  assert spec.pipeline_info.name == 'taxi-tips'
  assert spec.default_pipeline_root == (
      'gs://test-project-123-taxi-tips/output/taxi-tips')
  deployment = json_format.ParseDict(
      uploaded['deploymentSpec'], pipeline_spec_pb2.PipelineDeploymentConfig())
  images = {e.container.image for e in deployment.executors.values()}
  assert images == {'europe-west3-docker.pkg.dev/test-project-123/'
                    'tfx-pipelines/taxi-tips:cli-test'}
  assert 'Pipeline "taxi-tips" created' in capsys.readouterr().out


def test_create_refuses_an_existing_pipeline(kfp_server, spec_file, capsys):
  fake, endpoint = kfp_server
  assert _cli('pipeline', 'create', '--endpoint', endpoint,
              '--pipeline_path', spec_file) == 0
  assert _cli('pipeline', 'create', '--endpoint', endpoint,
              '--pipeline-path', spec_file) == 1
  assert 'already exists' in capsys.readouterr().err
  assert len(fake.requests_to('POST', f'{_API}/pipelines/upload')) == 1


def test_update_uploads_a_version_of_the_named_pipeline(kfp_server, spec_file):
  fake, endpoint = kfp_server
  assert _cli('pipeline', 'create', '--endpoint', endpoint,
              '--pipeline_path', spec_file) == 0
  assert _cli('pipeline', 'update', '--endpoint', endpoint,
              '--pipeline_path', spec_file) == 0

  (pipeline_id,) = fake.pipelines
  (upload,) = fake.requests_to('POST', f'{_API}/pipelines/upload_version')
  assert upload['query']['pipelineid'] == [pipeline_id]
  assert upload['query']['name'][0].startswith('taxi-tips-')
  assert 'multipart/form-data' in upload['content_type']
  assert len(fake.pipelines[pipeline_id]['versions']) == 2


def test_update_of_a_missing_pipeline_fails(kfp_server, spec_file, capsys):
  fake, endpoint = kfp_server
  assert _cli('pipeline', 'update', '--endpoint', endpoint,
              '--pipeline_path', spec_file) == 1
  assert 'does not exist' in capsys.readouterr().err
  assert not fake.requests_to('POST', f'{_API}/pipelines/upload_version')


def test_run_create_waits_for_success(kfp_server, spec_file, capsys):
  fake, endpoint = kfp_server
  _cli('pipeline', 'create', '--endpoint', endpoint, '--pipeline_path',
       spec_file)
  _cli('pipeline', 'update', '--endpoint', endpoint, '--pipeline_path',
       spec_file)
  (pipeline_id,) = fake.pipelines
  newest = fake.pipelines[pipeline_id]['versions'][-1]

  assert _cli('run', 'create', '--endpoint', endpoint, '--pipeline_name',
              'taxi-tips', '--wait', '--poll_interval', '0.01',
              '--token', 'secret-token') == 0

  (experiment_id,) = fake.experiments
  assert fake.experiments[experiment_id] == 'taxi-tips'
  (run_request,) = fake.requests_to('POST', f'{_API}/runs')
  assert run_request['authorization'] == 'Bearer secret-token'
  (run_id, body), = fake.runs.items()
  assert body['experiment_id'] == experiment_id
  assert body['pipeline_version_reference'] == {
      'pipeline_id': pipeline_id,
      'pipeline_version_id': newest['pipeline_version_id']}
  polls = fake.requests_to('GET', f'{_API}/runs/{run_id}')
  assert len(polls) == len(fake.run_states)  # stops at SUCCEEDED
  out = capsys.readouterr().out
  assert [s for s in fake.run_states if f'{run_id}: {s}' in out] == (
      fake.run_states)
  assert f'Run {run_id} succeeded.' in out


def test_run_create_exits_nonzero_on_a_failed_run(kfp_server, spec_file,
                                                  capsys):
  fake, endpoint = kfp_server
  fake.run_states = ['RUNNING', 'RUNNING', 'FAILED', 'SUCCEEDED']
  fake.run_error = 'Trainer: OOMKilled'
  _cli('pipeline', 'create', '--endpoint', endpoint, '--pipeline_path',
       spec_file)

  assert _cli('run', 'create', '--endpoint', endpoint, '--pipeline_name',
              'taxi-tips', '--wait', '--poll_interval', '0.01') == 1

  (run_id,) = fake.runs
  assert len(fake.requests_to('GET', f'{_API}/runs/{run_id}')) == 3
  err = capsys.readouterr().err
  assert 'Trainer: OOMKilled' in err
  assert f'Run {run_id} ended FAILED' in err


def test_run_create_without_wait_does_not_poll(kfp_server, spec_file):
  fake, endpoint = kfp_server
  _cli('pipeline', 'create', '--endpoint', endpoint, '--pipeline_path',
       spec_file)
  assert _cli('run', 'create', '--endpoint', endpoint, '--pipeline_name',
              'taxi-tips') == 0
  (run_id,) = fake.runs
  assert not fake.requests_to('GET', f'{_API}/runs/{run_id}')


def test_list_and_delete(kfp_server, spec_file, capsys):
  fake, endpoint = kfp_server
  _cli('pipeline', 'create', '--endpoint', endpoint, '--pipeline_path',
       spec_file)
  _cli('pipeline', 'update', '--endpoint', endpoint, '--pipeline_path',
       spec_file)
  (pipeline_id,) = fake.pipelines
  capsys.readouterr()

  assert _cli('pipeline', 'list', '--endpoint', endpoint) == 0
  assert f'taxi-tips\t{pipeline_id}' in capsys.readouterr().out
  assert _cli('pipeline', 'delete', '--endpoint', endpoint,
              '--pipeline_name', 'taxi-tips') == 0
  assert not fake.pipelines
  assert len(fake.requests_to(
      'DELETE', f'{_API}/pipelines/{pipeline_id}')) == 1


def test_unreachable_endpoint_fails_fast(spec_file, capsys):
  with socket.socket() as sock:  # a port nothing listens on
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
  start = time.monotonic()
  assert _cli('pipeline', 'create', '--endpoint', f'http://127.0.0.1:{port}',
              '--pipeline_path', spec_file) == 1
  assert time.monotonic() - start < 10
  assert f'cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}' in (
      capsys.readouterr().err)


def test_a_vertex_job_json_is_not_uploaded(kfp_server, tmp_path, capsys):
  _, endpoint = kfp_server
  job = tmp_path / 'taxi-tips.vertex.yaml'
  job.write_text(yaml.safe_dump({'displayName': 'taxi-tips',
                                 'pipelineSpec': {}, 'runtimeConfig': {}}))
  assert _cli('pipeline', 'create', '--endpoint', endpoint, '--pipeline_path',
              str(job)) == 1
  assert 'not a pipeline spec' in capsys.readouterr().err
