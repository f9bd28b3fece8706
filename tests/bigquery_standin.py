"""A stand-in BigQuery API on 127.0.0.1, for the monitor's bq:// input.

It answers the one call google-cloud-bigquery's `query_and_wait` makes for a
short query, jobs.query (POST /bigquery/v2/projects/<project>/queries), with
the rows of a request-response log table it holds, and records each request
so a test can assert the query text and its parameters. The client is pointed
at it through `client_options={'api_endpoint': url}` with anonymous
credentials; nothing leaves the machine.
"""
from typing import Dict, List

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from local.monitor import served_rows
from tests import loopback


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
    return loopback.json_response({
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
      response = getattr(error, 'get_response', lambda: loopback.json_response(
          {'error': {'code': 500, 'message': str(error)}}, 500))()
    return response(environ, start_response)
