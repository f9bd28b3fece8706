"""Which spans a run ingested and trained on, read back from ML Metadata.

With span folders (pipeline/data_files/spans.py) ExampleGen records the span on its
Examples artifact. The Trainer reads the training window's artifact, which
records the spans it holds (pipeline/components/training_window.py). Used by local_runner.py for the summary, and by the
tests. Reads only.
"""
from typing import List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import component_ids

_INPUT = metadata_store_pb2.Event.INPUT
_OUTPUT = metadata_store_pb2.Event.OUTPUT


def _execution(store: metadata_store.MetadataStore, pipeline_name: str,
               run_id: str, component_id: str
               ) -> Optional[metadata_store_pb2.Execution]:
  """The component's execution in the run (the last one, if retried)."""
  run = store.get_context_by_type_and_name('pipeline_run', run_id)
  node = store.get_context_by_type_and_name(
      'node', f'{pipeline_name}.{component_id}')
  if run is None or node is None:
    return None
  of_node = {e.id for e in store.get_executions_by_context(node.id)}
  found = [e for e in store.get_executions_by_context(run.id)
           if e.id in of_node]
  return max(found, key=lambda e: e.id) if found else None


def _artifacts(store: metadata_store.MetadataStore, execution_id: int,
               event_type: int, key: str
               ) -> List[metadata_store_pb2.Artifact]:
  """The artifacts an execution read (INPUT) or wrote (OUTPUT) under `key`."""
  ids = [e.artifact_id
         for e in store.get_events_by_execution_ids([execution_id])
         if e.type == event_type and e.path.steps and
         e.path.steps[0].key == key]
  return store.get_artifacts_by_id(ids) if ids else []


def _span(artifact: metadata_store_pb2.Artifact) -> int:
  """ExampleGen's span: a custom property (an int; a string in older
  releases)."""
  value = artifact.custom_properties['span']
  return int(value.string_value or value.int_value)


def _spans(artifact: metadata_store_pb2.Artifact) -> List[int]:
  """The spans an Examples artifact holds: the training window's `spans`
  (training_window.SPANS_PROPERTY), else ExampleGen's one span."""
  if 'spans' in artifact.custom_properties:
    return [int(span) for span in
            artifact.custom_properties['spans'].string_value.split(',')
            if span]
  return [_span(artifact)]


def ingested_span(store: metadata_store.MetadataStore, pipeline_name: str,
                  run_id: str) -> Optional[int]:
  """The span ExampleGen ingested in the run, if it ran."""
  execution = _execution(store, pipeline_name, run_id,
                         component_ids.EXAMPLE_GEN)
  if execution is None:
    return None
  examples = _artifacts(store, execution.id, _OUTPUT, 'examples')
  return _span(examples[0]) if examples else None


def trained_spans(store: metadata_store.MetadataStore, pipeline_name: str,
                  run_id: str) -> List[int]:
  """The spans of the examples the run's Trainer read, ascending; [] when
  the Trainer did not run."""
  trainer = _execution(store, pipeline_name, run_id, component_ids.TRAINER)
  if trainer is None:
    return []
  return sorted({span for examples in
                 _artifacts(store, trainer.id, _INPUT, 'examples')
                 for span in _spans(examples)})


def describe(connection: metadata_store_pb2.ConnectionConfig,
             pipeline_name: str, run_id: str, window: int) -> str:
  """The summary's line: 'Span 3 ingested; the model was trained on span(s)
  2, 3 (TRAIN_WINDOW_SPANS=2).'"""
  store = metadata_store.MetadataStore(connection)
  line = f'Span {ingested_span(store, pipeline_name, run_id)} ingested'
  trained = trained_spans(store, pipeline_name, run_id)
  if trained:
    line += (f'; the model was trained on span(s) '
             f'{", ".join(map(str, trained))} (TRAIN_WINDOW_SPANS={window})')
  return line + '.'
