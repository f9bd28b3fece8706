"""A stand-in for the Kubeflow Pipelines 2.x API (v2beta1) on 127.0.0.1.

A werkzeug route table over in-memory pipelines, versions, experiments, runs
and recurring runs, serving the requests the official `kfp.Client` sends
(upload, version upload, list, run, poll, terminate, delete; recurring runs:
create, list, enable, disable, delete). Every request is recorded, so
tests assert what the client really sent. `serve()` runs it in a thread of
the test process; the CLI under test may run in another process.
"""
import contextlib
import http
import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests import loopback

API = '/apis/v2beta1'

Answer = Tuple[int, Dict[str, Any]]


def _not_found(what: str) -> Answer:
  return 404, {'error': f'{what} not found', 'code': 5,
               'message': f'{what} not found'}


class FakeKfp:
  """In-memory Kubeflow Pipelines state plus a log of the requests."""

  def __init__(self):
    self.requests: List[Dict[str, Any]] = []
    self.pipelines: Dict[str, Dict[str, Any]] = {}  # id -> name, versions
    self.experiments: Dict[str, str] = {}  # id -> display name
    self.runs: Dict[str, Dict[str, Any]] = {}  # id -> request body
    self.run_states = ['PENDING', 'RUNNING', 'SUCCEEDED']
    self.run_error: Optional[str] = None
    self.refuse_uploads: Optional[str] = None  # a message: answer 400
    self.terminated: List[str] = []
    self.recurring_runs: Dict[str, Dict[str, Any]] = {}  # id -> request body
    self._polls: Dict[str, int] = {}
    self._next_id = 0

  def new_id(self, prefix: str) -> str:
    self._next_id += 1
    return f'{prefix}-{self._next_id}'

  def requests_to(self, method: str, path: str) -> List[Dict[str, Any]]:
    return [r for r in self.requests
            if r['method'] == method and r['path'] == API + path]

  def add_version(self, pipeline_id: str, name: str, spec: str):
    version = {
        'pipeline_id': pipeline_id,
        'pipeline_version_id': self.new_id('version'),
        'display_name': name,
        # Strictly increasing, as the server's creation times.
        'created_at': f'2030-01-01T00:00:{self._next_id:02d}Z',
        'spec': spec,
    }
    self.pipelines[pipeline_id]['versions'].append(version)
    return _public(version)

  # --- Routes --------------------------------------------------------------

  def healthz(self, request):  # pylint: disable=unused-argument
    return 200, {'multi_user': False}

  def list_pipelines(self, request):
    found = [{'pipeline_id': i, 'display_name': p['display_name'],
              'created_at': '2030-01-01T00:00:00Z'}
             for i, p in self.pipelines.items()]
    if 'filter' in request.args:
      wanted = json.loads(request.args['filter'])['predicates'][0][
          'stringValue']
      found = [p for p in found if p['display_name'] == wanted]
    return 200, {'pipelines': found, 'total_size': len(found)} if found else {}

  def upload(self, request):
    if self.refuse_uploads:
      return 400, {'error': self.refuse_uploads, 'code': 3,
                   'message': self.refuse_uploads}
    name = request.args['name']
    pipeline_id = self.new_id('pipeline')
    self.pipelines[pipeline_id] = {'display_name': name, 'versions': []}
    self.add_version(pipeline_id, name, _uploaded_file(request))
    return 200, {'pipeline_id': pipeline_id, 'display_name': name}

  def upload_version(self, request):
    pipeline_id = request.args.get('pipelineid')
    if pipeline_id not in self.pipelines:
      return _not_found(f'pipeline {pipeline_id}')
    return 200, self.add_version(pipeline_id, request.args['name'],
                                 _uploaded_file(request))

  def list_versions(self, request, pipeline_id):
    if pipeline_id not in self.pipelines:
      return _not_found(f'pipeline {pipeline_id}')
    versions = sorted(self.pipelines[pipeline_id]['versions'],
                      key=lambda v: v['created_at'],
                      reverse=request.args.get('sort_by') == 'created_at desc')
    versions = versions[:int(request.args.get('page_size', 100))]
    return 200, {'pipeline_versions': [_public(v) for v in versions]}

  def delete_version(self, request, pipeline_id, version_id):  # pylint: disable=unused-argument
    if pipeline_id not in self.pipelines:
      return _not_found(f'pipeline {pipeline_id}')
    pipeline = self.pipelines[pipeline_id]
    pipeline['versions'] = [v for v in pipeline['versions']
                            if v['pipeline_version_id'] != version_id]
    return 200, {}

  def delete_pipeline(self, request, pipeline_id):  # pylint: disable=unused-argument
    if pipeline_id not in self.pipelines:
      return _not_found(f'pipeline {pipeline_id}')
    if self.pipelines[pipeline_id]['versions']:  # as the real backend
      return 400, {'error': 'pipeline still has versions'}
    del self.pipelines[pipeline_id]
    return 200, {}

  def list_experiments(self, request):
    wanted = json.loads(request.args['filter'])['predicates'][0]['stringValue']
    found = [{'experiment_id': i, 'display_name': n}
             for i, n in self.experiments.items() if n == wanted]
    return 200, {'experiments': found} if found else {}

  def create_experiment(self, request):
    experiment_id = self.new_id('experiment')
    self.experiments[experiment_id] = request.get_json()['display_name']
    return 200, {'experiment_id': experiment_id,
                 'display_name': self.experiments[experiment_id]}

  def create_run(self, request):
    run_id = self.new_id('run')
    self.runs[run_id] = request.get_json()
    return 200, self._run(run_id, 'PENDING')

  def list_runs(self, request):
    experiment = request.args.get('experiment_id')
    found = [self._run(i, 'RUNNING') for i, body in self.runs.items()
             if body.get('experiment_id') == experiment]
    return 200, {'runs': found} if found else {}

  def get_run(self, request, run_id):  # pylint: disable=unused-argument
    if run_id not in self.runs:
      return _not_found(f'run {run_id}')
    polls = self._polls[run_id] = self._polls.get(run_id, -1) + 1
    state = self.run_states[min(polls, len(self.run_states) - 1)]
    answer = self._run(run_id, state)
    if state == 'FAILED' and self.run_error:
      answer['error'] = {'code': 2, 'message': self.run_error}
    return 200, answer

  def terminate_run(self, request, run_id):  # pylint: disable=unused-argument
    if run_id not in self.runs:
      return _not_found(f'run {run_id}')
    self.terminated.append(run_id)
    return 200, {}

  def delete_run(self, request, run_id):  # pylint: disable=unused-argument
    if self.runs.pop(run_id, None) is None:
      return _not_found(f'run {run_id}')
    return 200, {}

  def create_recurring_run(self, request):
    run_id = self.new_id('recurring')
    self.recurring_runs[run_id] = dict(request.get_json(),
                                       recurring_run_id=run_id)
    return 200, self.recurring_runs[run_id]

  def list_recurring_runs(self, request):
    found = list(self.recurring_runs.values())
    if 'filter' in request.args:
      wanted = json.loads(request.args['filter'])['predicates'][0][
          'stringValue']
      found = [r for r in found if r['display_name'] == wanted]
    return 200, {'recurringRuns': found, 'total_size': len(found)}

  def set_recurring_run_mode(self, request, run_id, action):  # pylint: disable=unused-argument
    if run_id not in self.recurring_runs:
      return _not_found(f'recurring run {run_id}')
    self.recurring_runs[run_id]['mode'] = action.upper()
    return 200, {}

  def delete_recurring_run(self, request, run_id):  # pylint: disable=unused-argument
    if self.recurring_runs.pop(run_id, None) is None:
      return _not_found(f'recurring run {run_id}')
    return 200, {}

  def _run(self, run_id: str, state: str) -> Dict[str, Any]:
    return {'run_id': run_id, 'state': state,
            'display_name': self.runs[run_id].get('display_name'),
            'experiment_id': self.runs[run_id].get('experiment_id'),
            'created_at': '2030-01-01T00:00:00Z'}


_ROUTES = Map([
    Rule(f'{API}/healthz', endpoint='healthz', methods=['GET']),
    Rule(f'{API}/pipelines', endpoint='list_pipelines', methods=['GET']),
    Rule(f'{API}/pipelines/upload', endpoint='upload', methods=['POST']),
    Rule(f'{API}/pipelines/upload_version', endpoint='upload_version',
         methods=['POST']),
    Rule(f'{API}/pipelines/<pipeline_id>/versions', endpoint='list_versions',
         methods=['GET']),
    Rule(f'{API}/pipelines/<pipeline_id>/versions/<version_id>',
         endpoint='delete_version', methods=['DELETE']),
    Rule(f'{API}/pipelines/<pipeline_id>', endpoint='delete_pipeline',
         methods=['DELETE']),
    Rule(f'{API}/experiments', endpoint='list_experiments', methods=['GET']),
    Rule(f'{API}/experiments', endpoint='create_experiment',
         methods=['POST']),
    Rule(f'{API}/runs', endpoint='create_run', methods=['POST']),
    Rule(f'{API}/runs', endpoint='list_runs', methods=['GET']),
    Rule(f'{API}/runs/<run_id>:terminate', endpoint='terminate_run',
         methods=['POST']),
    Rule(f'{API}/runs/<run_id>', endpoint='get_run', methods=['GET']),
    Rule(f'{API}/runs/<run_id>', endpoint='delete_run', methods=['DELETE']),
    Rule(f'{API}/recurringruns', endpoint='create_recurring_run',
         methods=['POST']),
    Rule(f'{API}/recurringruns', endpoint='list_recurring_runs',
         methods=['GET']),
    Rule(f'{API}/recurringruns/<run_id>:<any(enable, disable):action>',
         endpoint='set_recurring_run_mode', methods=['POST']),
    Rule(f'{API}/recurringruns/<run_id>', endpoint='delete_recurring_run',
         methods=['DELETE']),
])


def _public(version: Dict[str, Any]) -> Dict[str, Any]:
  return {k: v for k, v in version.items() if k != 'spec'}


def _uploaded_file(request) -> str:
  return request.files['uploadfile'].read().decode()


def _application(fake: FakeKfp):
  """The WSGI application serving `fake`."""

  @Request.application
  def application(request):
    fake.requests.append({
        'method': request.method, 'path': request.path,
        'query': request.args.to_dict(flat=False),
        'content_type': request.content_type or '',
        'json': request.get_json(silent=True) if request.is_json else None,
        'authorization': request.headers.get('Authorization')})
    adapter = _ROUTES.bind_to_environ(request.environ)
    try:
      endpoint, values = adapter.match()
    except Exception:  # pylint: disable=broad-except
      status, answer = 404, {'error': f'not implemented: {request.method} '
                                      f'{request.path}'}
    else:
      status, answer = getattr(fake, endpoint)(request, **values)
    # The reason phrase as Kubeflow Pipelines (Go's net/http) writes it.
    return Response(json.dumps(answer),
                    status=f'{status} {http.HTTPStatus(status).phrase}',
                    content_type='application/json')

  return application


@contextlib.contextmanager
def serve() -> Iterator[Tuple[FakeKfp, str]]:
  """Serves a new FakeKfp on a free loopback port; yields (fake, endpoint)."""
  fake = FakeKfp()
  with loopback.serve(_application(fake)) as endpoint:
    yield fake, endpoint
