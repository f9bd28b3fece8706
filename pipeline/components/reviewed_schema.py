"""The reviewed schema: the data's columns, types and domains as a person approved them.

The first run infers a schema with SchemaGen; `python -m local.schema`
(`make schema`) copies it to SCHEMA_PATH (default: the pipeline's own,
schema/<PIPELINE_NAME>/schema.pbtxt) for review. Once that file exists, every
run uses it instead of re-inferring one from the new data, so ExampleValidator
checks new data against what was approved, and the anomaly gate stops the run
when it does not match.

The schema travels inside the pipeline definition, as the text of a parameter
of `ReviewedSchema`, not as a path: the same compiled pipeline then works in a
Kubeflow or Vertex AI container that has no copy of this repository, and
editing the file changes the parameter, so TFX's cache re-runs everything
that depends on the schema. (TFX's ImportSchemaGen takes a path, and its cache
does not notice when the file behind the path changes.)
"""
import os

from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts

from pipeline.data_files.schema_file import parse

# The file name SchemaGen and ImportSchemaGen give the schema in their output.
SCHEMA_FILE_NAME = 'schema.pbtxt'


@component
def ReviewedSchema(  # pylint: disable=invalid-name
    schema_text: Parameter[str],
    schema: OutputArtifact[
        standard_artifacts.Schema],
) -> None:
  """Writes the reviewed schema's text as the pipeline's Schema artifact.

  Args:
    schema_text: the reviewed schema (a Schema text proto).
    schema: where it goes, as SchemaGen's output would.
  """
  parse(schema_text)
  # Object stores need no folder; a local or mounted output folder may not
  # exist yet.
  fileio.makedirs(schema.uri)
  with fileio.open(os.path.join(schema.uri, SCHEMA_FILE_NAME), 'w') as f:
    f.write(schema_text)
