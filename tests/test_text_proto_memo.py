"""local/run/text_proto_memo.py: a large text proto parsed again is the same
message, from what the first parse kept; everything else is parsed as
released."""
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2

from local.run import text_proto_memo


@pytest.fixture(autouse=True)
def memo():
  text_proto_memo.remember()
  yield
  text_proto_memo.forget()
  assert text_format.Parse is text_proto_memo._released  # pylint: disable=protected-access


def _schema(columns: int, domain: str = 'x') -> schema_pb2.Schema:
  schema = schema_pb2.Schema(default_environment=['TRAINING'])
  for i in range(columns):
    feature = schema.feature.add(name=f'sensor_{i:04d}', type=schema_pb2.FLOAT)
    feature.presence.min_fraction = 1.0
    feature.float_domain.min = -i
    feature.not_in_environment.append('SERVING')
  schema.string_domain.add(name=domain, value=['a', 'b'])
  return schema


def _text(schema) -> str:
  text = text_format.MessageToString(schema)
  assert len(text) >= text_proto_memo.MIN_TEXT_BYTES
  return text


def _parsed_as_released(text, message_type=schema_pb2.Schema):
  message = message_type()
  text_proto_memo._released(text, message)  # pylint: disable=protected-access
  return message


def _count_released_parses(monkeypatch) -> list:
  calls = []
  released = text_proto_memo._released  # pylint: disable=protected-access

  def counting(text, message, *args, **kwargs):
    calls.append(len(text))
    return released(text, message, *args, **kwargs)

  monkeypatch.setattr(text_proto_memo, '_released', counting)
  return calls


def test_a_text_parsed_again_is_the_same_message_without_parsing_it(
    monkeypatch):
  text = _text(_schema(500))
  expected = _parsed_as_released(text)
  calls = _count_released_parses(monkeypatch)
  first = text_format.Parse(text, schema_pb2.Schema())
  second = schema_pb2.Schema()
  assert text_format.Parse(text.encode('utf-8'), second) is second
  assert first == expected and second == expected
  assert len(calls) == 1
  second.feature[0].name = 'changed'  # each caller has its own message
  assert text_format.Parse(text, schema_pb2.Schema()) == expected
  assert len(calls) == 1
  # TFT's metadata reads allow unknown extensions: a text of their own.
  for _ in range(2):
    assert text_format.Parse(text, schema_pb2.Schema(),
                             allow_unknown_extension=True) == expected
  assert len(calls) == 2


def test_a_message_that_holds_fields_gets_the_text_merged_in_as_released(
    monkeypatch):
  text = _text(_schema(500))
  text_format.Parse(text, schema_pb2.Schema())  # kept
  calls = _count_released_parses(monkeypatch)
  held = schema_pb2.Schema()
  held.feature.add(name='old')
  expected = schema_pb2.Schema()
  expected.CopyFrom(held)
  text_proto_memo._released(text, expected)  # pylint: disable=protected-access
  assert text_format.Parse(text, held) == expected
  assert held.feature[0].name == 'old' and len(held.feature) == 501
  assert len(calls) == 2  # the memo's parse and the expected one
  # What it parsed into a message that held fields is not kept.
  assert text_format.Parse(text, schema_pb2.Schema()).feature[0].name == (
      'sensor_0000')


def test_small_texts_options_and_other_types_are_parsed_as_released(
    monkeypatch):
  calls = _count_released_parses(monkeypatch)
  small = text_format.MessageToString(_schema(3))
  for _ in range(2):
    assert text_format.Parse(small, schema_pb2.Schema()) == _schema(3)
  text = _text(_schema(500))
  pool = schema_pb2.Schema.DESCRIPTOR.file.pool
  for _ in range(2):
    text_format.Parse(text, schema_pb2.Schema(), descriptor_pool=pool)
  assert len(calls) == 4
  # Another message type is a text of its own: here one that has no such
  # fields, which fails as it fails without the memo.
  text_format.Parse(text, schema_pb2.Schema())
  with pytest.raises(text_format.ParseError):
    text_format.Parse(text, anomalies_pb2.Anomalies())


def test_a_text_that_fails_to_parse_fails_each_time():
  text = _text(_schema(500)) + '\nnot_a_field: 1\n'
  for _ in range(2):
    with pytest.raises(text_format.ParseError, match='not_a_field'):
      text_format.Parse(text, schema_pb2.Schema())


def test_only_the_latest_texts_are_kept(monkeypatch):
  texts = [_text(_schema(500, domain=f'd{i}'))
           for i in range(text_proto_memo.MAX_TEXTS + 1)]
  calls = _count_released_parses(monkeypatch)
  for text in texts:
    text_format.Parse(text, schema_pb2.Schema())
  assert len(text_proto_memo._kept) == text_proto_memo.MAX_TEXTS  # pylint: disable=protected-access
  text_format.Parse(texts[-1], schema_pb2.Schema())  # kept
  text_format.Parse(texts[0], schema_pb2.Schema())  # the oldest, dropped
  assert len(calls) == len(texts) + 1


def test_remembering_twice_changes_nothing():
  text_proto_memo.remember()
  assert text_format.Parse is text_proto_memo.parse
