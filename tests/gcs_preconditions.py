"""Cloud Storage's generation preconditions, added to the tests' emulator.

gcp-storage-emulator ignores `ifGenerationMatch`. Cloud Storage applies it to
an upload and a delete: 0 means "only if no live object has this name", a
generation means "only if the live object has this generation", and a
request whose condition fails changes nothing and gets HTTP 412
(conditionNotMet). `enforcing()` wraps the emulator's upload and delete
handlers with that check for its duration. The emulator's HTTP server handles
one request at a time, so the check and the write it guards are atomic, as
Cloud Storage's are.
"""
import contextlib
from http import HTTPStatus
from typing import Iterator, Optional

from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def _object_name(request) -> Optional[str]:
  if 'object_id' in request.params:
    return request.params['object_id']
  if 'name' in request.query:
    return request.query['name'][0]
  data = request.data
  if isinstance(data, dict) and isinstance(data.get('meta'), dict):
    return data['meta'].get('name')
  return None


def _condition_met(request, storage) -> bool:
  wanted = request.query.get('ifGenerationMatch')
  if not wanted:
    return True
  name = _object_name(request)
  try:
    live = storage.get_file_obj(request.params['bucket_name'], name)
  except NotFound:
    live = None
  if wanted[0] == '0':
    return live is None
  return live is not None and str(live['generation']) == wanted[0]


def _guarded(handler):
  def guarded(request, response, storage, *args, **kwargs):
    if not _condition_met(request, storage):
      response.status = HTTPStatus.PRECONDITION_FAILED
      response.json({'error': {
          'code': 412, 'message': 'At least one of the pre-conditions you '
          'specified did not hold.',
          'errors': [{'reason': 'conditionNotMet'}]}})
      return None
    return handler(request, response, storage, *args, **kwargs)
  guarded.unguarded = handler
  return guarded


@contextlib.contextmanager
def enforcing() -> Iterator[None]:
  """Within: the emulator's uploads and deletes honour ifGenerationMatch."""
  wrapped = []
  for _, handlers in emulator_server.HANDLERS:
    for method, handler in list(handlers.items()):
      if handler in (objects.insert, objects.delete):
        handlers[method] = _guarded(handler)
        wrapped.append((handlers, method, handler))
  original_insert = objects.insert
  objects.insert = _guarded(original_insert)  # the server's upload fallback
  try:
    yield
  finally:
    objects.insert = original_insert
    for handlers, method, handler in wrapped:
      handlers[method] = handler

