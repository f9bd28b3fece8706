"""Reading the reviewed schema file (SCHEMA_PATH), without TensorFlow or TFX.

Each pipeline has its own reviewed schema (`pipeline_schema_path`), the
default of SCHEMA_PATH. local_runner.py reads it before anything heavy is
imported, so a bad file or
bad data is reported within a second; pipeline/components/reviewed_schema.py
builds the pipeline step from the same text.
"""
import os
from typing import List, Optional

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline import data_files




def pipeline_schema_path(pipeline_name: str) -> str:
  """Where a pipeline's reviewed schema lives unless SCHEMA_PATH says
  otherwise: schema/<pipeline name>/schema.pbtxt in the repository."""
  return os.path.join(data_files.REPO_ROOT, 'schema', pipeline_name,
                      'schema.pbtxt')


class SchemaFileError(ValueError):
  """The reviewed schema file cannot be read."""


def read_text(path: str) -> Optional[str]:
  """The reviewed schema's text, or None when there is no file at `path`.

  Raises:
    SchemaFileError: the file exists but is not a schema.
  """
  if not path or not os.path.isfile(path):
    return None
  with open(path, encoding='utf-8') as schema_file:
    text = schema_file.read()
  parse(text, path)
  return text


def parse(text: str, path: str = 'the schema') -> schema_pb2.Schema:
  """Parses schema text; a one-line SchemaFileError if it is not a schema."""
  try:
    schema = text_format.Parse(text, schema_pb2.Schema())
  except text_format.ParseError as error:
    raise SchemaFileError(f'{path} is not a valid schema: {error}') from None
  if not schema.feature:
    raise SchemaFileError(f'{path} has no features: export a schema with '
                          '`make schema` after a successful run')
  return schema


# TFDV's environments: the label is the feature the reviewed schema leaves
# out of SERVING (`make schema` marks LABEL_KEY so).
TRAINING, SERVING = 'TRAINING', 'SERVING'


def approved_labels(schema: schema_pb2.Schema) -> List[str]:
  """The label(s) the schema was approved for: features not in SERVING."""
  return [f.name for f in schema.feature if SERVING in f.not_in_environment]


def mark_label(schema: schema_pb2.Schema, label_key: str) -> bool:
  """Marks `label_key` as the label (not in SERVING), as TFX's templates
  do; False when the schema has no such feature or marks it already."""
  features = [f for f in schema.feature if f.name == label_key]
  if not features or SERVING in features[0].not_in_environment:
    return False
  for environment in (TRAINING, SERVING):
    if environment not in schema.default_environment:
      schema.default_environment.append(environment)
  features[0].not_in_environment.append(SERVING)
  return True


def load(path: str) -> Optional[schema_pb2.Schema]:
  """The reviewed schema at `path`, or None when there is none."""
  text = read_text(path)
  return None if text is None else parse(text, path)
