"""A stand-in BigQuery API on 127.0.0.1, for the monitor's bq:// input.

It answers the one call google-cloud-bigquery's `query_and_wait` makes for a
short query, jobs.query (POST /bigquery/v2/projects/<project>/queries), with
the rows of a request-response log table it holds, and records each request
so a test can assert the query text and its parameters. The client is pointed
at it through `client_options={'api_endpoint': url}` with anonymous
credentials; nothing leaves the machine.
"""
import contextlib
import json
import threading
from typing import Dict, Iterator, List

from werkzeug import serving
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from local import served_rows


class BigQueryStandin:
  """One log table: a list of requests, each a list of instance JSON texts."""

  def __init__(self, requests: List[List[str]]):
    self.logged = requests
    self.queries: List[Dict] = []  # the bodies of jobs.query requests
    self._rules = Map([
        Rule('/bigquery/v2/projects/<project>/queries', methods=['POST'],
             endpoint=self.query),
    ])

  def query(self, request: Request, project: str) -> Response:
    body = request.get_json()
    self.queries.append(body)
    rows = [{'f': [{'v': [{'v': text} for text in instances]}]}
            for instances in self.logged]
    return _json({
        'kind': 'bigquery#queryResponse',
        'jobReference': {'projectId': project, 'jobId': 'standin-job',
                         'location': 'EU'},
        'jobComplete': True,
        'schema': {'fields': [{'name': served_rows.PAYLOAD_COLUMN,
                               'type': 'STRING', 'mode': 'REPEATED'}]},
        'rows': rows,
        'totalRows': str(len(rows)),
    })

  def __call__(self, environ, start_response):
    request = Request(environ)
    adapter = self._rules.bind_to_environ(environ)
    try:
      endpoint, values = adapter.match()
      response = endpoint(request, **values)
    except Exception as error:  # pylint: disable=broad-except
      response = getattr(error, 'get_response', lambda: _json(
          {'error': {'code': 500, 'message': str(error)}}, 500))()
    return response(environ, start_response)


def _json(answer, status: int = 200) -> Response:
  return Response(json.dumps(answer), status=status,
                  content_type='application/json')


class _QuietHandler(serving.WSGIRequestHandler):

  def log_request(self, *args, **kwargs):  # keep the test output clean
    pass


@contextlib.contextmanager
def serve(standin: BigQueryStandin) -> Iterator[str]:
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
