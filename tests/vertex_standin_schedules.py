"""A stand-in Vertex AI API on 127.0.0.1: pipeline job schedules.

The routes of the v1 REST API that google-cloud-aiplatform's
PipelineJobSchedule calls (create, list, get, pause, resume, delete), over
an in-memory table, recording each request so a test asserts what the
client really sent. The client is pointed at it with
`aiplatform.init(api_endpoint=url, api_transport='rest')` and anonymous
credentials; nothing leaves the machine.
"""
import json
import re
from typing import Dict, List

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from tests import loopback

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
    return loopback.json_response(self.schedules[name])

  def list(self, request: Request, project: str, location: str):
    parent = f'projects/{project}/locations/{location}/'
    found = [s for n, s in self.schedules.items() if n.startswith(parent)]
    wanted = _DISPLAY_NAME_FILTER.search(request.args.get('filter', ''))
    if wanted:
      found = [s for s in found if s['displayName'] == wanted.group(1)]
    return loopback.json_response({'schedules': found} if found else {})

  def one(self, request: Request, project: str, location: str,
          schedule: str):
    schedule_id, _, action = schedule.partition(':')
    name = f'projects/{project}/locations/{location}/schedules/{schedule_id}'
    if name not in self.schedules:
      return loopback.json_response({'error': {'code': 404, 'status': 'NOT_FOUND',
                              'message': f'{name} not found'}}, 404)
    if request.method == 'GET' and not action:
      return loopback.json_response(self.schedules[name])
    if request.method == 'DELETE' and not action:
      del self.schedules[name]
      return loopback.json_response({'name': f'{name}/operations/1', 'done': True,
                    'response': {
                        '@type': 'type.googleapis.com/google.protobuf.Empty'}})
    if request.method == 'POST' and action in ('pause', 'resume'):
      self.schedules[name]['state'] = ('PAUSED' if action == 'pause' else
                                       'ACTIVE')
      return loopback.json_response({})
    return loopback.json_response({'error': {'code': 400, 'message': 'not implemented'}}, 400)

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
      response = loopback.json_response({'error': {'code': error.code,
                                  'message': error.description}}, error.code)
    return response(environ, start_response)
