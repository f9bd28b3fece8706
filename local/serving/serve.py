"""Serves the newest pushed model over TensorFlow Serving's REST API.

    make serve        (python -m local.serving.serve [--port PORT] [--model-base-dir DIR])

One process on 127.0.0.1:SERVE_PORT (8501, TensorFlow Serving's REST port),
with the REST contract of TensorFlow Serving and of a Vertex AI endpoint's
prebuilt TensorFlow container, for the model named PIPELINE_NAME:

    GET  /v1/models/<PIPELINE_NAME>            the served version and its state
    POST /v1/models/<PIPELINE_NAME>:predict    {"instances": [{column: value,
                                                ...}]} -> {"predictions": [...]}
                                               or, columnar, {"inputs":
                                                {column: [value, ...]}}
                                                -> {"outputs": {...}}

Each instance is one raw row, every column the model reads by name (a number,
NaN when missing; text, "" when missing: local/serving/serving_requests.py); the
answer per row is the model's 'serving_default' outputs (probabilities,
class names and the predicted class, or the predicted value). A bad request
gets HTTP 400 and {"error": "..."} naming the instance and the column (a
body nested too deeply to be a request too), a body over
SERVE_MAX_BODY_BYTES gets 413, every answer is JSON, and the server goes on
serving.

The model is the newest version under <LOCAL_OUTPUT_DIR>/serving_model/
<PIPELINE_NAME>/ (--model-base-dir to serve another folder). Like TensorFlow
Serving, the server looks for a newer version on every request and serves it
once it has loaded; a version that fails to load is reported and the one
before goes on serving. No pushed model, a busy port or a bad setting stop
it at start with a one-line error (exit status 1, or 2 for a setting).
"""
import dataclasses
import json
import os
import re
import socket
import sys
import threading
import traceback
from typing import Any, Callable, Dict, List, Optional, Set

if __name__ == '__main__':
  from local.quiet import quiet  # pylint: disable=g-import-not-at-top
  quiet()

import tensorflow as tf  # pylint: disable=g-import-not-at-top
from werkzeug import exceptions  # pylint: disable=g-import-not-at-top
from werkzeug import routing  # pylint: disable=g-import-not-at-top
from werkzeug import serving  # pylint: disable=g-import-not-at-top
from werkzeug import wrappers  # pylint: disable=g-import-not-at-top

from local import output_layout  # pylint: disable=g-import-not-at-top
from local import run_artifacts  # pylint: disable=g-import-not-at-top
from local.serving import serving_requests  # pylint: disable=g-import-not-at-top
from models import signatures  # pylint: disable=g-import-not-at-top
from pipeline import configs  # pylint: disable=g-import-not-at-top

HOST = '127.0.0.1'
SIGNATURE = serving_requests.SIGNATURE
# The message of a check inside the model (models/serving.py), e.g. an
# integer column sent 1.5.
_ASSERTION = re.compile(r'assertion failed: \[(.*?)\]', re.DOTALL)


class ServeError(Exception):
  """No model to serve, or a model that cannot be served: the whole story."""


@dataclasses.dataclass(frozen=True)
class ServedModel:
  """One loaded version of the model."""
  version: int
  path: str
  signature: Any  # the rows signature, a ConcreteFunction
  inputs: Dict[str, tf.TensorSpec]  # its inputs: column -> [batch] spec
  loaded: Any  # the loaded SavedModel, which owns the signature's variables

  def predict(self, columns: Dict[str, Any]) -> Dict[str, Any]:
    """The signature's outputs (numpy) for one array per column."""
    tensors = {name: tf.constant(values, dtype=self.inputs[name].dtype)
               for name, values in columns.items()}
    return {name: tensor.numpy()
            for name, tensor in self.signature(**tensors).items()}


def load_version(path: str) -> ServedModel:
  """Loads the SavedModel version folder `path` (named by its version).

  Raises:
    ServeError: no rows signature (a model pushed before it existed).
  """
  loaded = tf.saved_model.load(path)
  signature = loaded.signatures.get(SIGNATURE)
  inputs = signature.structured_input_signature[1] if signature else {}
  if not inputs or list(inputs) == [signatures.EXAMPLES_INPUT]:
    raise ServeError(f'{path} has no {SIGNATURE!r} signature that takes rows '
                     '(it was pushed before the signature existed): run the '
                     'pipeline again (make run) to push a model that has it')
  return ServedModel(int(os.path.basename(path.rstrip('/'))), path,
                     signature, dict(inputs), loaded)


class ModelWatcher:
  """The newest model version under a serving folder, loaded.

  `current()` looks for a newer version (a directory listing) and loads it
  in the request that finds it; while it loads, and if it fails to load,
  other requests get the version before.
  """

  def __init__(self, serving_dir: str,
               load: Callable[[str], ServedModel] = load_version,
               log: Callable[[str], None] = lambda line: print(
                   line, file=sys.stderr, flush=True)):
    self.serving_dir = serving_dir
    self._load = load
    self._log = log
    self._model: Optional[ServedModel] = None
    self._failed: Set[str] = set()
    self._lock = threading.Lock()

  def current(self) -> Optional[ServedModel]:
    """The newest version that loads (None before any has)."""
    newest = run_artifacts.newest_pushed_model(self.serving_dir)
    if newest is None or newest in self._failed or (
        self._model is not None and newest == self._model.path):
      return self._model
    # One load at a time; meanwhile other requests get the model before.
    if not self._lock.acquire(blocking=self._model is None):
      return self._model
    try:
      if newest not in self._failed and (
          self._model is None or newest != self._model.path):
        self._try_load(newest)
    finally:
      self._lock.release()
    return self._model

  def _try_load(self, path: str) -> None:
    try:
      model = self._load(path)
    except Exception as error:  # pylint: disable=broad-except
      self._failed.add(path)
      line = str(error).splitlines()[0] if str(error) else type(error).__name__
      self._log(f'serve: cannot load {path}: {line}' + (
          f'; still serving version {self._model.version}'
          if self._model else ''))
      return
    self._model = model
    self._log(f'Serving version {model.version} ({path})')


def _json(status: int, value: Any) -> wrappers.Response:
  return wrappers.Response(json.dumps(value), status=status,
                           mimetype='application/json')


def _error(status: int, message: str) -> wrappers.Response:
  return _json(status, {'error': message})


class _ModelName(routing.BaseConverter):
  """A model name in a path: up to the next '/' or ':' (':predict')."""
  regex = '[^/:]+'


class ServingApp:
  """The WSGI application: TensorFlow Serving's REST routes for one model."""

  def __init__(self, watcher: ModelWatcher, model_name: str,
               max_body_bytes: int):
    self.watcher = watcher
    self.model_name = model_name
    self.max_body_bytes = max_body_bytes
    self.url_map = routing.Map(converters={'model': _ModelName}, rules=[
        routing.Rule('/v1/models/<model:name>', endpoint='status',
                     methods=['GET']),
        routing.Rule('/v1/models/<model:name>:predict', endpoint='predict',
                     methods=['POST']),
    ])

  def __call__(self, environ, start_response):
    request = wrappers.Request(environ)
    request.max_content_length = self.max_body_bytes
    return self.dispatch(request)(environ, start_response)

  def dispatch(self, request: wrappers.Request) -> wrappers.Response:
    """The response to one request; never raises."""
    try:
      endpoint, arguments = self.url_map.bind_to_environ(
          request.environ).match()
      if arguments['name'] != self.model_name:
        return _error(404, 'Servable not found for request: '
                      f'Latest({arguments["name"]})')
      model = self.watcher.current()
      if model is None:
        return _error(503, 'no model version has loaded yet')
      if endpoint == 'status':
        return _json(200, self.status(model))
      return self.predict(model, request.get_data())
    except exceptions.RequestEntityTooLarge:
      return _error(413, f'the body is over SERVE_MAX_BODY_BYTES='
                    f'{self.max_body_bytes} bytes: send fewer rows per '
                    'request, or raise SERVE_MAX_BODY_BYTES')
    except exceptions.HTTPException as error:
      return _error(error.code or 500, error.description or error.name)
    except Exception as error:  # pylint: disable=broad-except
      # Answered in JSON like every other error, told in the server's log,
      # and the server goes on.
      traceback.print_exc(file=sys.stderr)
      return _error(500, f'{type(error).__name__}: {error}')

  @staticmethod
  def status(model: ServedModel) -> Dict[str, List[Dict[str, Any]]]:
    """TensorFlow Serving's model status answer."""
    return {'model_version_status': [{
        'version': str(model.version), 'state': 'AVAILABLE',
        'status': {'error_code': 'OK', 'error_message': ''}}]}

  @staticmethod
  def predict(model: ServedModel, body: bytes) -> wrappers.Response:
    try:
      parsed = serving_requests.parse_body(body)
      columns = serving_requests.body_to_columns(parsed, model.inputs)
    except serving_requests.RequestError as error:
      return _error(400, str(error))
    try:
      outputs = model.predict(columns)
    except tf.errors.InvalidArgumentError as error:
      found = _ASSERTION.search(error.message)
      return _error(400, found.group(1) if found else
                    error.message.strip().splitlines()[-1])
    if serving_requests.is_columnar(parsed):
      return _json(200, {'outputs': serving_requests.outputs(outputs)})
    return _json(200, {'predictions': serving_requests.predictions(outputs)})


def _listen(host: str, port: int) -> socket.socket:
  """A listening TCP socket on host:port (port 0: a free one); OSError if the
  port is taken. Bound here rather than by werkzeug, which exits the process
  on a busy port."""
  listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  try:
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(socket.SOMAXCONN)
  except OSError:
    listener.close()
    raise
  return listener


def make_server(serving_dir: str, model_name: str, port: int, *,
                max_body_bytes: int,
                host: str = HOST) -> serving.BaseWSGIServer:
  """A threaded werkzeug server of the newest model under `serving_dir` (not
  started: call serve_forever()). Port 0 picks a free port
  (server.port); a body over `max_body_bytes` (SERVE_MAX_BODY_BYTES) is
  answered 413.

  Raises:
    ServeError: no pushed model, or the newest does not load (the watcher
      has printed why).
    OSError: the port cannot be bound.
  """
  watcher = ModelWatcher(serving_dir)
  if watcher.current() is None:
    raise ServeError(f'no model to serve under {serving_dir}: run the '
                     'pipeline until a model is blessed (make run), or pass '
                     '--model-base-dir')
  with _listen(host, port) as listener:  # the server keeps a duplicate
    return serving.make_server(host, listener.getsockname()[1],
                               ServingApp(watcher, model_name,
                                          max_body_bytes),
                               threaded=True, fd=listener.fileno())


def main(argv: Optional[List[str]] = None) -> int:
  settings = configs.load_or_exit(os.environ)
  parser = run_artifacts.run_argument_parser(
      'python -m local.serving.serve',
      'Serve the newest pushed model over the REST API of TensorFlow Serving '
      'and Vertex AI.', settings)
  parser.add_argument('--port', type=int, default=settings.SERVE_PORT,
                      help='default: SERVE_PORT, %(default)s')
  parser.add_argument('--model-base-dir', help='the folder of numbered model '
                      'versions (default: LOCAL_OUTPUT_DIR/serving_model/'
                      'PIPELINE_NAME/)')
  args = parser.parse_args(argv)
  serving_dir = args.model_base_dir or output_layout.serving_model_dir(
      args.output_dir, args.pipeline_name)
  try:
    server = make_server(serving_dir, args.pipeline_name, args.port,
                         max_body_bytes=settings.SERVE_MAX_BODY_BYTES)
  except ServeError as error:
    print(f'serve: {error}', file=sys.stderr)
    return 1
  except OSError as error:
    print(f'serve: cannot listen on {HOST}:{args.port}: {error.strerror}; '
          'set SERVE_PORT to a free port', file=sys.stderr)
    return 1
  url = f'http://{HOST}:{server.port}/v1/models/{args.pipeline_name}'
  print(f'Serving {serving_dir} at {url} (POST {url}:predict); Ctrl-C stops.',
        file=sys.stderr, flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()
  return 0


if __name__ == '__main__':
  sys.exit(main())
