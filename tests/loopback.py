"""Stand-ins of Google and Kubeflow APIs served on 127.0.0.1 for the tests.

Each stand-in (kfp_standin.py, vertex_standin_models.py,
vertex_standin_schedules.py, bigquery_standin.py) is a WSGI application, a
werkzeug route table, that the official client under test reaches over HTTP.
`serve` runs one on a free loopback port in a thread of the test process,
without an access log and for a bounded time (should a test hang);
`json_response` is the answer they all give.
"""
import contextlib
import json
import threading
from typing import Any, Callable, Iterator

from werkzeug import serving
from werkzeug.wrappers import Response

_LIFETIME_S = 300


class _QuietHandler(serving.WSGIRequestHandler):
  """Logs nothing: the tests read what the stand-ins recorded."""

  def log(self, type, message, *args):  # pylint: disable=redefined-builtin
    del type, message, args


def json_response(answer: Any, status: int = 200) -> Response:
  """`answer` as a JSON body with HTTP `status`."""
  return Response(json.dumps(answer), status=status,
                  content_type='application/json')


class LoopbackServer:
  """A WSGI application on a free port of 127.0.0.1, in a daemon thread."""

  def __init__(self, application: Callable):
    self._server = serving.make_server('127.0.0.1', 0, application,
                                       threaded=True,
                                       request_handler=_QuietHandler)
    self._timer = threading.Timer(_LIFETIME_S, self._server.shutdown)
    self._timer.daemon = True

  @property
  def url(self) -> str:
    return f'http://127.0.0.1:{self._server.server_port}'

  def start(self) -> str:
    """Starts serving; returns the URL."""
    threading.Thread(target=self._server.serve_forever,
                     kwargs={'poll_interval': 0.05}, daemon=True).start()
    self._timer.start()
    return self.url

  def stop(self) -> None:
    self._timer.cancel()
    self._server.shutdown()
    self._server.server_close()


@contextlib.contextmanager
def serve(application: Callable) -> Iterator[str]:
  """Serves `application` on 127.0.0.1 while the block runs; yields its
  URL."""
  server = LoopbackServer(application)
  try:
    yield server.start()
  finally:
    server.stop()
