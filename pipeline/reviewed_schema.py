"""The reviewed schema: the data's columns, types and domains as a person approved them.

The first run infers a schema with SchemaGen; `python -m pipeline.schema_export`
(`make schema`) copies it to SCHEMA_PATH (default schema/schema.pbtxt) for
review. Once that file exists, every run uses it instead of re-inferring one
from the new data, so ExampleValidator checks new data against what was
approved, and the anomaly gate stops the run when it does not match.

The schema travels inside the pipeline definition, as the text of a parameter
of `ReviewedSchema`, not as a path: the same compiled pipeline then works in a
Kubeflow or Vertex AI container that has no copy of this repository, and
editing the file changes the parameter, so TFX's cache re-runs everything
that depends on the schema. (TFX's ImportSchemaGen takes a path, and its cache
does not notice when the file behind the path changes.)
"""
import os
from typing import Optional

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio

# The file name SchemaGen and ImportSchemaGen give the schema in their output.
SCHEMA_FILE_NAME = 'schema.pbtxt'


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


def load(path: str) -> Optional[schema_pb2.Schema]:
  """The reviewed schema at `path`, or None when there is none."""
  text = read_text(path)
  return None if text is None else parse(text, path)


@tfx.dsl.components.component
def ReviewedSchema(  # pylint: disable=invalid-name
    schema_text: tfx.dsl.components.Parameter[str],
    schema: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Schema],
) -> None:
  """Writes the reviewed schema's text as the pipeline's Schema artifact.

  Args:
    schema_text: the reviewed schema (a Schema text proto).
    schema: where it goes, as SchemaGen's output would.
  """
  parse(schema_text)
  with fileio.open(os.path.join(schema.uri, SCHEMA_FILE_NAME), 'w') as f:
    f.write(schema_text)
