"""Copies the newest schema of a local run into the repository for review.

    make schema        # or: .venv/bin/python -m local.schema_export

Takes the newest Schema artifact written by the SchemaGen step of the local
metadata store (LOCAL_OUTPUT_DIR) and writes it to SCHEMA_PATH (default
schema/schema.pbtxt). Review it (types, domains, presence), tighten or relax
it by hand, and commit it: from then on every run checks new data against it.
To infer a fresh schema from new data first, run with the reviewed schema
switched off: `SCHEMA_PATH= make run`, then `make schema`. The drift
comparators of the schema it replaces are kept, and new columns get the
default ones (local/schema_comparators.py).
"""
import argparse
import os
import sys
from typing import List, Optional

from google.protobuf import text_format
from ml_metadata import metadata_store
from tfx.orchestration import metadata as tfx_metadata
from tfx.utils import io_utils

from local import output_layout
from local import run_artifacts
from local import schema_comparators
from pipeline import configs
from pipeline import component_ids
from pipeline.components import reviewed_schema

# Where the export goes when SCHEMA_PATH is empty (reviewed schema switched off).
DEFAULT_SCHEMA_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'schema',
    'schema.pbtxt')


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
  schemas = [a for a in store.get_artifacts_by_context(node.id)
             if a.type == 'Schema']
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


def with_comparators(new_text: str, old_text: Optional[str],
                     settings: configs.Settings) -> str:
  """The exported text: `new_text` with the old schema's drift comparators
  (schema_comparators.carry_over); unchanged when it already has them, as
  after a run on the reviewed schema itself."""
  new = reviewed_schema.parse(new_text)
  old = None if old_text is None else reviewed_schema.parse(old_text)
  uncompared = [settings.LABEL_KEY, *(
      c.strip() for c in settings.DROP_COLUMNS.split(',') if c.strip())]
  merged = schema_comparators.carry_over(new, old, uncompared)
  if merged == new:
    return new_text
  return text_format.MessageToString(merged)


def main(argv: Optional[List[str]] = None) -> int:
  settings = configs.load_or_exit(os.environ)
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--output', default=settings.SCHEMA_PATH or
                      DEFAULT_SCHEMA_PATH, help='where to write the schema')
  args = parser.parse_args(argv)
  metadata_path = output_layout.metadata_path(settings.LOCAL_OUTPUT_DIR,
                                              settings.PIPELINE_NAME)
  uri = newest_schema_uri(metadata_path, settings.PIPELINE_NAME)
  if uri is None:
    print(f'error: no schema in {metadata_path}: run the pipeline first '
          '(make run)', file=sys.stderr)
    return 1
  text = io_utils.read_string_file(io_utils.get_only_uri_in_dir(uri))
  old = (open(args.output, encoding='utf-8').read()
         if os.path.exists(args.output) else None)
  text = with_comparators(text, old, settings)
  changes = _feature_changes(old, text)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, 'w', encoding='utf-8') as schema_file:
    schema_file.write(text)
  print(f'Wrote {args.output} from {uri} ({", ".join(changes)}). Review it, '
        'then commit it: later runs check new data against it.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
