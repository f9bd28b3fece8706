"""Copies the newest schema of a local run into the repository for review.

    make schema        # or: .venv/bin/python -m local.schema

Takes the newest Schema artifact written by the SchemaGen step of the
pipeline's local metadata store (LOCAL_OUTPUT_DIR, PIPELINE_NAME) and writes
it to SCHEMA_PATH, by default the pipeline's own reviewed schema
schema/<PIPELINE_NAME>/schema.pbtxt, where the next run finds it. Review it
(types, domains, presence), tighten or relax it by hand, and commit it: from
then on every run of the pipeline checks new data against it. The export
marks LABEL_KEY as the label (TFDV's environments: not in SERVING), so a
run with another LABEL_KEY is told that the schema no longer fits. A pipeline
without a reviewed schema infers one on every run; to infer a fresh one for a
pipeline that has one, switch it off for a run: `SCHEMA_PATH= make run`, then
`make schema`. The drift comparators of the schema it replaces are kept, and
new columns get the default ones (local/schema/schema_comparators.py).
"""
import argparse
import os
import sys
from typing import List, Optional

from google.protobuf import text_format
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata as tfx_metadata
from tfx.utils import io_utils

from local import output_layout
from local import run_artifacts
from local.schema import schema_comparators
from pipeline import configs
from pipeline import component_ids
from pipeline import problem_spec
from pipeline.data_files import schema_file
from pipeline.components import reviewed_schema



def newest_schema_uri(metadata_path: str, pipeline_name: str) -> Optional[str]:
  """The folder of the newest schema the SchemaGen step wrote, if any."""
  if not os.path.exists(metadata_path):
    return None
  store = metadata_store.MetadataStore(
      tfx_metadata.sqlite_metadata_connection_config(metadata_path))
  node = store.get_context_by_type_and_name(
      'node', f'{pipeline_name}.{component_ids.SCHEMA_GEN}')
  if node is None:
    return None
  schemas = {a.id: a for a in store.get_artifacts_by_context(node.id)
             if a.type == 'Schema'}
  # The data's own schema, not the one it was checked against (the served
  # model's: pipeline/components/fitted_schema_gen.py).
  own = {e.artifact_id for e in store.get_events_by_artifact_ids(list(schemas))
         if e.type == metadata_store_pb2.Event.OUTPUT and e.path.steps and
         e.path.steps[0].key == 'schema'}
  schemas = [a for a in schemas.values() if a.id in own]
  if not schemas:
    return None
  return max(schemas, key=lambda a: (a.create_time_since_epoch, a.id)).uri


def _feature_changes(old_text: Optional[str], new_text: str) -> List[str]:
  new = {f.name: f for f in reviewed_schema.parse(new_text).feature}
  if old_text is None:
    return [f'{len(new)} columns']
  old = {f.name: f for f in reviewed_schema.parse(old_text).feature}
  changes = [f'+{n}' for n in sorted(set(new) - set(old))]
  changes += [f'-{n}' for n in sorted(set(old) - set(new))]
  changes += [f'~{n}' for n in sorted(set(old) & set(new))
              if old[n] != new[n]]
  return changes or ['no change']


def _with_label_marked(text: str, label_key: str) -> str:
  """The schema text with LABEL_KEY marked as its label (so a later run with
  another LABEL_KEY is told the schema no longer fits); unchanged when it is
  marked already."""
  schema = reviewed_schema.parse(text)
  if not schema_file.mark_label(schema, label_key):
    return text
  return text_format.MessageToString(schema)


def with_comparators(new_text: str, old_text: Optional[str],
                     settings: configs.Settings) -> str:
  """The exported text: `new_text` with the old schema's drift comparators
  (schema_comparators.carry_over); unchanged when it already has them, as
  after a run on the reviewed schema itself."""
  new = reviewed_schema.parse(new_text)
  old = None if old_text is None else reviewed_schema.parse(old_text)
  uncompared = problem_spec.unread_columns(settings)
  merged = schema_comparators.carry_over(new, old, uncompared)
  if merged == new:
    return new_text
  return text_format.MessageToString(merged)


def main(argv: Optional[List[str]] = None) -> int:
  settings = configs.load_or_exit(os.environ)
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  # SCHEMA_PATH empty switched the reviewed schema off for a run: the export
  # still goes where the pipeline's next run finds it.
  parser.add_argument('--output', default=settings.SCHEMA_PATH or
                      schema_file.pipeline_schema_path(settings.PIPELINE_NAME),
                      help='where to write the schema (default: SCHEMA_PATH)')
  args = parser.parse_args(argv)
  metadata_path = output_layout.metadata_path(settings.LOCAL_OUTPUT_DIR,
                                              settings.PIPELINE_NAME)
  uri = newest_schema_uri(metadata_path, settings.PIPELINE_NAME)
  if uri is None:
    print(f'error: no schema in {metadata_path}: run the pipeline first '
          '(make run)', file=sys.stderr)
    return 1
  text = _with_label_marked(
      io_utils.read_string_file(io_utils.get_only_uri_in_dir(uri)),
      settings.LABEL_KEY)
  old = (open(args.output, encoding='utf-8').read()
         if os.path.exists(args.output) else None)
  text = with_comparators(text, old, settings)
  changes = _feature_changes(old, text)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, 'w', encoding='utf-8') as f:
    f.write(text)
  print(f'Wrote {args.output} from {uri} ({", ".join(changes)}). Review it, '
        'then commit it: later runs check new data against it.')
  return 0
