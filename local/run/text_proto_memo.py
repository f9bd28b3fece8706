"""A local run parses each large text protocol buffer once.

A local run's components share one process, and several read the same text
file: the schema SchemaGen writes is parsed by ExampleValidator and
Transform (TFX's io_utils), the anomaly gate and the run report (TFDV).
protobuf's text_format.Parse is pure Python, and a schema grows with the
columns: at 1,000 columns it is 234 KB, and each parse took about 0.2 s.

`remember()` puts `parse` in text_format.Parse's place for the rest of the
process. A text of at least MIN_TEXT_BYTES, parsed into an empty message
with no options but the three flags that allow unknown fields, extensions
and field numbers, into a message type it parsed that text into before with
the same flags, gets the message again from its binary form (protobuf's C++
ParseFromString): the fields the text's parse set, and nothing else, as the
empty message held nothing. Anything else is parsed as released (Parse
merges into what a message holds). A text that fails to parse raises as
before and is not kept. At most MAX_TEXTS texts are kept, the latest used.

A step of a cloud run parses each file once in its own container, where
there is nothing to keep: only the local runner calls `remember()`.
"""
import collections
import hashlib
import threading
from typing import Any, Tuple

from google.protobuf import message as message_lib
from google.protobuf import text_format

# Below this size a parse takes a few milliseconds (a 30-column schema is
# about 7 KB).
MIN_TEXT_BYTES = 64 * 1024
MAX_TEXTS = 8
# Parse's options that a kept text is keyed by (TFT reads its metadata with
# allow_unknown_extension=True); any other option is parsed as released.
_FLAGS = frozenset(('allow_unknown_extension', 'allow_field_number',
                    'allow_unknown_field'))

_released = text_format.Parse
_kept: 'collections.OrderedDict[Tuple[Any, tuple, bytes], bytes]' = (
    collections.OrderedDict())
_lock = threading.Lock()


def parse(text, message: message_lib.Message, *args, **kwargs):
  """text_format.Parse(text, message, ...), a large text parsed once."""
  if args or set(kwargs) - _FLAGS or message.ByteSize():
    return _released(text, message, *args, **kwargs)
  data = text if isinstance(text, bytes) else text.encode('utf-8')
  if len(data) < MIN_TEXT_BYTES:
    return _released(text, message, **kwargs)
  key = (message.DESCRIPTOR, tuple(sorted(kwargs.items())),
         hashlib.sha256(data).digest())
  with _lock:
    binary = _kept.get(key)
    if binary is not None:
      _kept.move_to_end(key)
  if binary is not None:
    message.ParseFromString(binary)
    return message
  _released(text, message, **kwargs)
  binary = message.SerializeToString()
  with _lock:
    _kept[key] = binary
    while len(_kept) > MAX_TEXTS:
      _kept.popitem(last=False)
  return message


def remember() -> None:
  """`parse` in text_format.Parse's place in this process; applying it again
  changes nothing."""
  text_format.Parse = parse


def forget() -> None:
  """text_format.Parse as released, and nothing kept."""
  text_format.Parse = _released
  with _lock:
    _kept.clear()
