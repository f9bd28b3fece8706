"""The training statistics of a served model, found through ML Metadata.

The served model is a folder the Pusher wrote (`serving_model/<name>/<n>/`).
Its PushedModel artifact records that folder as `pushed_destination`; the
lineage from there runs Pusher <- Model <- Trainer <- the Examples ExampleGen
wrote, and StatisticsGen's statistics of those Examples
are what the model was trained on. With several Examples (a window of spans)
the newest one's statistics are taken. Reads the store only.
"""
import os
from typing import Iterable, List, Set

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

TRAIN_SPLIT = 'train'
STATISTICS_FILE = 'FeatureStats.pb'
_PUSHED_MODEL = 'PushedModel'
_MODEL = 'Model'
_EXAMPLES = 'Examples'
_STATISTICS = 'ExampleStatistics'
# How many executions upstream of the model the search looks (Trainer,
# Transform, ExampleGen and a resolver or two).
_MAX_DEPTH = 6

_INPUTS = (metadata_store_pb2.Event.INPUT,
           metadata_store_pb2.Event.DECLARED_INPUT)
_OUTPUTS = (metadata_store_pb2.Event.OUTPUT,
            metadata_store_pb2.Event.DECLARED_OUTPUT)


class LineageError(LookupError):
  """The store does not lead from the served model to its statistics."""


def _same_folder(a: str, b: str) -> bool:
  if '://' in a or '://' in b:
    return a.rstrip('/') == b.rstrip('/')
  return os.path.realpath(a) == os.path.realpath(b)


def _artifacts_of_type(store: metadata_store.MetadataStore,
                       ids: Iterable[int], type_name: str) -> List:
  artifacts = store.get_artifacts_by_id(list(ids))
  types = {t.id: t.name for t in store.get_artifact_types_by_id(
      list({a.type_id for a in artifacts}))}
  return [a for a in artifacts if types.get(a.type_id) == type_name]


def _neighbours(store: metadata_store.MetadataStore, artifact_ids: Set[int],
                artifact_kinds, execution_kinds) -> Set[int]:
  """Artifacts one execution away: through executions that have
  `artifact_kinds` events on `artifact_ids`, their `execution_kinds` events."""
  if not artifact_ids:
    return set()
  executions = {e.execution_id for e in store.get_events_by_artifact_ids(
      list(artifact_ids)) if e.type in artifact_kinds}
  if not executions:
    return set()
  return {e.artifact_id for e in store.get_events_by_execution_ids(
      list(executions)) if e.type in execution_kinds}


def pushed_models(store: metadata_store.MetadataStore,
                  served_dir: str) -> List[int]:
  """The ids of the Model artifacts pushed to `served_dir`."""
  pushed = [a.id for a in store.get_artifacts_by_type(_PUSHED_MODEL)
            if _same_folder(a.custom_properties['pushed_destination']
                            .string_value, served_dir)]
  upstream = _neighbours(store, set(pushed), _OUTPUTS, _INPUTS)
  return [a.id for a in _artifacts_of_type(store, upstream, _MODEL)]


def training_examples(store: metadata_store.MetadataStore,
                      model_ids: Iterable[int]) -> List:
  """The Examples artifacts upstream of the models, oldest first."""
  seen: Set[int] = set(model_ids)
  frontier = set(seen)
  for _ in range(_MAX_DEPTH):
    frontier = _neighbours(store, frontier, _OUTPUTS, _INPUTS) - seen
    if not frontier:
      break
    seen |= frontier
  return sorted(_artifacts_of_type(store, seen, _EXAMPLES), key=lambda a: a.id)


def statistics_uri(connection_config: metadata_store_pb2.ConnectionConfig,
                   served_dir: str) -> str:
  """The StatisticsGen output the model pushed to `served_dir` trained on.

  Raises:
    LineageError: no push to that folder, or no statistics upstream of it.
  """
  store = metadata_store.MetadataStore(connection_config)
  models = pushed_models(store, served_dir)
  if not models:
    raise LineageError(f'the metadata store records no push to {served_dir}')
  for examples in reversed(training_examples(store, models)):
    downstream = _neighbours(store, {examples.id}, _INPUTS, _OUTPUTS)
    statistics = _artifacts_of_type(store, downstream, _STATISTICS)
    if statistics:
      return max(statistics, key=lambda a: a.id).uri
  raise LineageError(f'no statistics of the examples the model {served_dir} '
                     'was trained on in the metadata store')


def train_split_file(statistics_folder: str) -> str:
  """The training split's FeatureStats.pb in a StatisticsGen output."""
  return os.path.join(statistics_folder, f'Split-{TRAIN_SPLIT}',
                      STATISTICS_FILE)
