"""A stand-in Vertex AI API on 127.0.0.1: pipeline job schedules.

The routes of the v1 REST API that google-cloud-aiplatform's
PipelineJobSchedule calls (create, list, get, pause, resume, delete), over
an in-memory table, recording each request so a test asserts what the
client really sent. The client is pointed at it with
`aiplatform.init(api_endpoint=url, api_transport='rest')` and anonymous
credentials; nothing leaves the machine.
"""
import contextlib
import json
import re
import threading
from typing import Dict, Iterator, List

from werkzeug import serving
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

_PARENT = '/v1/projects/<project>/locations/<location>/schedules'
_DISPLAY_NAME_FILTER = re.compile(r'display_name="([^"]*)"')


class VertexSchedulesStandin:
  """Schedules by resource name, and the requests that made them."""

  def __init__(self):
    self.schedules: Dict[str, Dict] = {}
    self.requests: List[Dict] = []  # {'method', 'path', 'query', 'body'}
    self._next_id = 0
    self._rules = Map([
        Rule(_PARENT, methods=['POST'], endpoint=self.create),
        Rule(_PARENT, methods=['GET'], endpoint=self.list),
        Rule(_PARENT + '/<schedule>', methods=['GET', 'POST', 'DELETE'],
             endpoint=self.one),
    ])

  def requests_to(self, method: str, suffix: str) -> List[Dict]:
    return [r for r in self.requests
            if r['method'] == method and r['path'].endswith(suffix)]

  def create(self, request: Request, project: str, location: str):
    self._next_id += 1
    body = request.get_json()
    name = (f'projects/{project}/locations/{location}/schedules/'
            f'{1000 + self._next_id}')
    self.schedules[name] = dict(body, name=name, state='ACTIVE',
                                createTime='2026-12-01T00:00:00Z')
    return _json(self.schedules[name])

  def list(self, request: Request, project: str, location: str):
    parent = f'projects/{project}/locations/{location}/'
    found = [s for n, s in self.schedules.items() if n.startswith(parent)]
    wanted = _DISPLAY_NAME_FILTER.search(request.args.get('filter', ''))
    if wanted:
      found = [s for s in found if s['displayName'] == wanted.group(1)]
    return _json({'schedules': found} if found else {})

  def one(self, request: Request, project: str, location: str,
          schedule: str):
    schedule_id, _, action = schedule.partition(':')
    name = f'projects/{project}/locations/{location}/schedules/{schedule_id}'
    if name not in self.schedules:
      return _json({'error': {'code': 404, 'status': 'NOT_FOUND',
                              'message': f'{name} not found'}}, 404)
    if request.method == 'GET' and not action:
      return _json(self.schedules[name])
    if request.method == 'DELETE' and not action:
      del self.schedules[name]
      return _json({'name': f'{name}/operations/1', 'done': True,
                    'response': {
                        '@type': 'type.googleapis.com/google.protobuf.Empty'}})
    if request.method == 'POST' and action in ('pause', 'resume'):
      self.schedules[name]['state'] = ('PAUSED' if action == 'pause' else
                                       'ACTIVE')
      return _json({})
    return _json({'error': {'code': 400, 'message': 'not implemented'}}, 400)

  def __call__(self, environ, start_response):
    request = Request(environ)
    body = request.get_data()
    self.requests.append({'method': request.method, 'path': request.path,
                          'query': dict(request.args),
                          'body': json.loads(body) if body else None})
    try:
      endpoint, values = self._rules.bind_to_environ(environ).match()
      response = endpoint(request, **values)
    except HTTPException as error:
      response = _json({'error': {'code': error.code,
                                  'message': error.description}}, error.code)
    return response(environ, start_response)


def _json(answer, status: int = 200) -> Response:
  return Response(json.dumps(answer), status=status,
                  content_type='application/json')


class _QuietHandler(serving.WSGIRequestHandler):

  def log_request(self, *args, **kwargs):  # keep the test output clean
    pass


@contextlib.contextmanager
def serve(standin: VertexSchedulesStandin) -> Iterator[str]:
  """Serves `standin` on a free loopback port; yields its URL."""
  server = serving.make_server('127.0.0.1', 0, standin, threaded=True,
                               request_handler=_QuietHandler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_port}'
  finally:
    server.shutdown()
    server.server_close()
