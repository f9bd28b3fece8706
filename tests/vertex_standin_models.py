"""A stand-in for Vertex AI's model and endpoint API, on loopback.

Serves the REST API (v1) that google-cloud-aiplatform's ModelServiceClient
and EndpointServiceClient speak with `transport='rest'`: the model registry
(upload as a model or as a version of one, versions, aliases) and endpoints
(create, list, deploy, undeploy, traffic, request logging). It keeps what a
test needs to see and enforces the rules of the real service that the
serving code must respect: the traffic split sums to 100 and names deployed
models only, a deployment with traffic cannot be undeployed, a model id is
taken once, an alias belongs to one version. Long-running operations are
answered done. Resource names carry the project's number, as Vertex AI's do.

Every call is recorded in `calls` by its RPC name (e.g. 'UploadModel'), for
tests that assert the requests in order; `fail_next` makes one call fail.
Built on werkzeug; one route table.
"""
import datetime
import itertools
import re
import threading
from typing import Any, Dict, List, Optional

from werkzeug import routing
from werkzeug.wrappers import Request, Response

from tests import loopback

PROJECT_NUMBER = '123456789012'
_TYPE = 'type.googleapis.com/google.cloud.aiplatform.v1.'
_FILTER = re.compile(r'(labels\.[a-z0-9_-]+|display_name)="([^"]*)"')


class ApiError(Exception):
  """An error answer: HTTP status, gRPC status name, message."""

  def __init__(self, code: int, status: str, message: str):
    super().__init__(message)
    self.code, self.status, self.message = code, status, message


class _IdConverter(routing.BaseConverter):
  """One resource id: no '/' and no ':' (which starts a custom verb)."""
  regex = r'[^/:]+'


_LOCATION = '/v1/projects/<project>/locations/<location>'
_MODEL = _LOCATION + '/models/<id:model>'
_ENDPOINT = _LOCATION + '/endpoints/<id:endpoint>'
_ROUTES = routing.Map([
    routing.Rule(_LOCATION + '/models:upload', methods=['POST'],
                 endpoint='UploadModel'),
    routing.Rule(_MODEL, methods=['GET'], endpoint='GetModel'),
    routing.Rule(_MODEL + ':listVersions', methods=['GET'],
                 endpoint='ListModelVersions'),
    routing.Rule(_MODEL + ':mergeVersionAliases', methods=['POST'],
                 endpoint='MergeVersionAliases'),
    routing.Rule(_LOCATION + '/endpoints', methods=['GET'],
                 endpoint='ListEndpoints'),
    routing.Rule(_LOCATION + '/endpoints', methods=['POST'],
                 endpoint='CreateEndpoint'),
    routing.Rule(_ENDPOINT, methods=['GET'], endpoint='GetEndpoint'),
    routing.Rule(_ENDPOINT, methods=['PATCH'], endpoint='UpdateEndpoint'),
    routing.Rule(_ENDPOINT + ':deployModel', methods=['POST'],
                 endpoint='DeployModel'),
    routing.Rule(_ENDPOINT + ':undeployModel', methods=['POST'],
                 endpoint='UndeployModel'),
], converters={'id': _IdConverter})


class VertexModelsStandin:
  """The stand-in's state and its HTTP server (`start`, `stop`, `url`).

  Attributes:
    models: model id -> its versions (Model JSON dicts), oldest first.
    endpoints: endpoint id -> Endpoint JSON dict.
    calls: the RPC name of every request, in order.
    requests: (RPC name, path parameters, query, JSON body) of every request.
  """

  def __init__(self, region: str = 'europe-west3'):
    self.region = region
    self.models: Dict[str, List[Dict[str, Any]]] = {}
    self.endpoints: Dict[str, Dict[str, Any]] = {}
    self.calls: List[str] = []
    self.requests: List[tuple] = []
    self._failures: Dict[str, int] = {}
    self._ids = itertools.count(1001)
    self._clock = itertools.count(1)
    self._lock = threading.Lock()
    self._server = None

  def fail_next(self, rpc: str) -> None:
    """Answers the next call of `rpc` with an internal error, changing
    nothing (a crash or an outage at that step)."""
    self._failures[rpc] = self._failures.get(rpc, 0) + 1

  # --- Server ---------------------------------------------------------------

  def start(self) -> 'VertexModelsStandin':
    self._server = loopback.LoopbackServer(self._app)
    self._server.start()
    return self

  def stop(self) -> None:
    self._server.stop()

  @property
  def url(self) -> str:
    """The api_endpoint to point the clients at."""
    return self._server.url

  @Request.application
  def _app(self, request: Request) -> Response:
    try:
      rpc, params = _ROUTES.bind_to_environ(request.environ).match()
    except routing.exceptions.HTTPException as error:
      return loopback.json_response({'error': {'code': error.code, 'status': 'NOT_FOUND',
                              'message': f'no route {request.path}'}},
                   error.code)
    body = request.get_json(silent=True) or {}
    with self._lock:
      self.calls.append(rpc)
      self.requests.append((rpc, params, dict(request.args), body))
      try:
        if self._failures.get(rpc):
          self._failures[rpc] -= 1
          raise ApiError(500, 'INTERNAL', f'{rpc} failed (injected).')
        return loopback.json_response(getattr(self, '_' + rpc)(params, request.args, body))
      except ApiError as error:
        return loopback.json_response({'error': {'code': error.code, 'status': error.status,
                                'message': error.message}}, error.code)

  # --- Helpers --------------------------------------------------------------

  def _now(self) -> str:
    """A creation time: one second later at each call, from 2026-01-01."""
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    moment = start + datetime.timedelta(seconds=next(self._clock))
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')

  def _location(self) -> str:
    return f'projects/{PROJECT_NUMBER}/locations/{self.region}'

  def _version(self, ref: str) -> Dict[str, Any]:
    model_id, _, version = ref.partition('@')
    versions = self.models.get(model_id)
    if not versions:
      raise ApiError(404, 'NOT_FOUND', f'Model {model_id} does not exist.')
    for candidate in versions:
      if (candidate['versionId'] == version or version in
          candidate['versionAliases'] or (not version and 'default' in
                                          candidate['versionAliases'])):
        return candidate
    raise ApiError(404, 'NOT_FOUND', f'Model version {ref} does not exist.')

  def _endpoint(self, endpoint_id: str) -> Dict[str, Any]:
    if endpoint_id not in self.endpoints:
      raise ApiError(404, 'NOT_FOUND', f'Endpoint {endpoint_id} not found.')
    return self.endpoints[endpoint_id]

  @staticmethod
  def _operation(kind: str, response: Dict[str, Any]) -> Dict[str, Any]:
    return {'name': 'operations/1', 'done': True,
            'response': {'@type': _TYPE + kind, **response}}

  # --- Models ---------------------------------------------------------------

  def _UploadModel(self, params, args, body):  # pylint: disable=invalid-name
    del params, args
    model = dict(body['model'])
    parent = body.get('parentModel')
    if parent:
      model_id = parent.rsplit('/', 1)[-1]
      versions = self.models.get(model_id)
      if not versions:
        raise ApiError(404, 'NOT_FOUND', f'Parent model {parent} not found.')
    else:
      model_id = body.get('modelId') or str(next(self._ids))
      if model_id in self.models:
        raise ApiError(409, 'ALREADY_EXISTS', f'Model {model_id} exists.')
      versions = self.models[model_id] = []
    version_id = str(len(versions) + 1)
    model.update(name=f'{self._location()}/models/{model_id}',
                 versionId=version_id, versionCreateTime=self._now(),
                 versionAliases=[] if versions else ['default'])
    model.setdefault('labels', {})
    versions.append(model)
    return self._operation('UploadModelResponse', {
        'model': model['name'], 'modelVersionId': version_id})

  def _GetModel(self, params, args, body):  # pylint: disable=invalid-name
    del args, body
    return self._version(params['model'])

  def _ListModelVersions(self, params, args, body):  # pylint: disable=invalid-name
    del body
    self._version(params['model'])
    versions = self.models[params['model']]
    return {'models': [v for v in versions
                       if _matches(v, args.get('filter', ''))]}

  def _MergeVersionAliases(self, params, args, body):  # pylint: disable=invalid-name
    del args
    version = self._version(params['model'])
    if '@' not in params['model']:
      raise ApiError(400, 'INVALID_ARGUMENT', 'Name a version: model@id.')
    for alias in body['versionAliases']:
      if alias.startswith('-'):
        if alias[1:] in version['versionAliases']:
          version['versionAliases'].remove(alias[1:])
        continue
      for other in self.models[params['model'].split('@')[0]]:
        if alias in other['versionAliases']:
          other['versionAliases'].remove(alias)
      version['versionAliases'].append(alias)
    return version

  # --- Endpoints ------------------------------------------------------------

  def _ListEndpoints(self, params, args, body):  # pylint: disable=invalid-name
    del params, body
    return {'endpoints': [e for e in self.endpoints.values()
                          if _matches(e, args.get('filter', ''))]}

  def _CreateEndpoint(self, params, args, body):  # pylint: disable=invalid-name
    del params, args
    endpoint_id = str(next(self._ids))
    endpoint = dict(body, name=f'{self._location()}/endpoints/{endpoint_id}',
                    createTime=self._now(), deployedModels=[],
                    trafficSplit={})
    self.endpoints[endpoint_id] = endpoint
    return self._operation('Endpoint', endpoint)

  def _GetEndpoint(self, params, args, body):  # pylint: disable=invalid-name
    del args, body
    return self._endpoint(params['endpoint'])

  def _UpdateEndpoint(self, params, args, body):  # pylint: disable=invalid-name
    endpoint = self._endpoint(params['endpoint'])
    paths = [_camel(p) for p in args.get('updateMask', '').split(',') if p]
    if not paths:
      raise ApiError(400, 'INVALID_ARGUMENT', 'update_mask is required.')
    for path in paths:
      if path == 'trafficSplit':
        _check_split(body.get(path, {}), endpoint)
      endpoint[path] = body.get(path, {})
    return endpoint

  def _DeployModel(self, params, args, body):  # pylint: disable=invalid-name
    del args
    endpoint = self._endpoint(params['endpoint'])
    deployed = dict(body['deployedModel'])
    version = self._version(deployed['model'].rsplit('/', 1)[-1])
    model_id = deployed['model'].rsplit('/', 1)[-1].split('@')[0]
    deployed.update(id=str(next(self._ids)), createTime=self._now(),
                    model=f'{self._location()}/models/{model_id}',
                    modelVersionId=version['versionId'])
    split = dict(body.get('trafficSplit') or endpoint['trafficSplit'])
    if '0' in split:
      split[deployed['id']] = split.pop('0')
    endpoint['deployedModels'].append(deployed)
    try:
      _check_split(split, endpoint)
    except ApiError:
      endpoint['deployedModels'].remove(deployed)
      raise
    endpoint['trafficSplit'] = {k: v for k, v in split.items() if v}
    return self._operation('DeployModelResponse', {'deployedModel': deployed})

  def _UndeployModel(self, params, args, body):  # pylint: disable=invalid-name
    del args
    endpoint = self._endpoint(params['endpoint'])
    deployed_id = body['deployedModelId']
    if deployed_id not in [d['id'] for d in endpoint['deployedModels']]:
      raise ApiError(404, 'NOT_FOUND', f'No deployed model {deployed_id}.')
    split = dict(body.get('trafficSplit') or endpoint['trafficSplit'])
    if split.get(deployed_id):
      raise ApiError(400, 'FAILED_PRECONDITION',
                     f'Deployed model {deployed_id} has traffic.')
    endpoint['deployedModels'] = [d for d in endpoint['deployedModels']
                                  if d['id'] != deployed_id]
    endpoint['trafficSplit'] = {k: v for k, v in split.items()
                                if k != deployed_id and v}
    return self._operation('UndeployModelResponse', {})

  # --- What tests read ------------------------------------------------------

  def deployed_versions(self) -> List[str]:
    """The version ids deployed on every endpoint, in deployment order."""
    return [d['modelVersionId'] for e in self.endpoints.values()
            for d in e['deployedModels']]

  def serving_version(self) -> Optional[str]:
    """The version id that takes all traffic of the one endpoint."""
    endpoint, = self.endpoints.values()
    full = [k for k, v in endpoint['trafficSplit'].items() if v == 100]
    return next((d['modelVersionId'] for d in endpoint['deployedModels']
                 if d['id'] in full), None)

  def alias_holder(self, model_id: str, alias: str) -> Optional[str]:
    """The version id that has `alias`."""
    return next((v['versionId'] for v in self.models.get(model_id, [])
                 if alias in v['versionAliases']), None)


def _camel(path: str) -> str:
  head, *rest = path.split('_')
  return head + ''.join(word.title() for word in rest)


def _matches(resource: Dict[str, Any], text: str) -> bool:
  """Whether `resource` passes a filter of `key="value"` terms (AND)."""
  if not text:
    return True
  terms = _FILTER.findall(text)
  if not terms:
    raise ApiError(400, 'INVALID_ARGUMENT', f'Unsupported filter {text!r}.')
  for key, value in terms:
    found = (resource.get('labels', {}).get(key[len('labels.'):])
             if key.startswith('labels.') else resource.get('displayName'))
    if found != value:
      return False
  return True


def _check_split(split: Dict[str, int], endpoint: Dict[str, Any]) -> None:
  deployed = {d['id'] for d in endpoint['deployedModels']}
  unknown = set(split) - deployed
  if unknown:
    raise ApiError(400, 'INVALID_ARGUMENT',
                   f'Traffic split names models not deployed: {unknown}.')
  if deployed and sum(split.values()) != 100:
    raise ApiError(400, 'INVALID_ARGUMENT',
                   f'Traffic split {split} does not sum to 100.')
