"""Re-runs one component's executor from a finished local run, under cProfile.

    .venv/bin/python bench/profile_component.py Evaluator
    .venv/bin/python bench/profile_component.py Trainer --output-dir tfx_output --top 40
    .venv/bin/python bench/profile_component.py Evaluator \
        --executor tfx.components.evaluator.executor.Executor   # TFX's own

Finds the component's newest completed execution in the run's metadata
store, rebuilds its input artifacts and execution properties, and runs the
component's executor (the class the pipeline uses now) once in this process,
writing its outputs under a temporary folder (the run's artifacts are not
touched). Prints the executor's wall time and the functions that took the
most time. Profiling one executor in-process measures that component alone,
without the runner, the other components or the start-up; on a busy
machine the profile's proportions are steadier than wall times.
"""
import argparse
import cProfile
import importlib
import os
import pstats
import sys
import tempfile
import time
import warnings

warnings.filterwarnings('ignore', category=FutureWarning)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import data_types_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.components.base import base_executor
from tfx.orchestration.portable.mlmd import event_lib
from tfx.types import artifact_utils
from tfx.types import standard_artifacts  # pylint: disable=unused-import

from local import output_layout
from pipeline import configs

import local_runner  # the pipeline as a local run builds it


def _store(metadata_path: str) -> metadata_store.MetadataStore:
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = 1  # READONLY
  return metadata_store.MetadataStore(config)


def _newest_execution(store, pipeline_name: str, component_id: str):
  context = store.get_context_by_type_and_name(
      'node', f'{pipeline_name}.{component_id}')
  if context is None:
    sys.exit(f'no execution of {component_id} in the metadata store')
  done = [e for e in store.get_executions_by_context(context.id)
          if e.last_known_state == metadata_store_pb2.Execution.COMPLETE]
  if not done:
    sys.exit(f'no completed execution of {component_id}')
  return max(done, key=lambda e: e.id)


def _artifacts(store, execution_id: int, is_valid_event):
  """The execution's input or output artifacts, keyed as the executor
  expects them."""
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if is_valid_event(e)]
  by_id = {a.id: a for a in store.get_artifacts_by_id(
      [e.artifact_id for e in events])}
  types = {t.id: t for t in store.get_artifact_types_by_id(
      list({a.type_id for a in by_id.values()}))}
  artifacts = [artifact_utils.deserialize_artifact(types[a.type_id], a)
               for a in by_id.values()]
  # (One artifact can be two inputs, e.g. the model and the baseline.)
  return event_lib.reconstruct_artifact_multimap(artifacts, events)


def _exec_properties(execution):
  properties = {}
  for mapping in (execution.properties, execution.custom_properties):
    for key, value in mapping.items():
      if not key.startswith('__'):
        properties[key] = data_types_utils.get_metadata_value(value)
  return properties


def _executor(settings, component_id: str, scratch: str,
              executor_path: str = ''):
  """The executor instance the pipeline built from `settings` uses for
  `component_id` (or the class at the dotted `executor_path`)."""
  resolved = local_runner.problem_spec.from_settings(settings)
  schema_text = local_runner.schema_file.read_text(settings.SCHEMA_PATH)
  pipeline = local_runner._create_pipeline(  # pylint: disable=protected-access
      settings, resolved, None, schema_text)
  component = next((c for c in pipeline.components if c.id == component_id),
                   None)
  if component is None:
    sys.exit(f'no component {component_id!r} in the pipeline')
  executor_class = component.executor_spec.executor_class
  if executor_path:
    module, name = executor_path.rsplit('.', 1)
    executor_class = getattr(importlib.import_module(module), name)
  context = dict(tmp_dir=os.path.join(scratch, 'tmp'), unique_id='profile')
  if issubclass(executor_class, base_beam_executor.BaseBeamExecutor):
    return executor_class(base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=local_runner.BEAM_PIPELINE_ARGS, **context))
  return executor_class(base_executor.BaseExecutor.Context(**context))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('component_id')
  parser.add_argument('--output-dir', default=None,
                      help='LOCAL_OUTPUT_DIR of the run (default: settings)')
  parser.add_argument('--executor', default='',
                      help='a dotted executor class to run instead, e.g. '
                      'tfx.components.evaluator.executor.Executor')
  parser.add_argument('--top', type=int, default=30)
  parser.add_argument('--sort', default='cumulative',
                      choices=['cumulative', 'tottime'])
  parser.add_argument('--save', help='write the raw profile to this file')
  args = parser.parse_args()

  settings = configs.load_or_exit(os.environ)
  out = args.output_dir or settings.LOCAL_OUTPUT_DIR
  store = _store(output_layout.metadata_path(out, settings.PIPELINE_NAME))
  execution = _newest_execution(store, settings.PIPELINE_NAME,
                                args.component_id)
  inputs = _artifacts(store, execution.id, event_lib.is_valid_input_event)
  outputs = _artifacts(store, execution.id, event_lib.is_valid_output_event)
  scratch = tempfile.mkdtemp(prefix=f'profile-{args.component_id}-')
  for key, artifacts in outputs.items():
    for i, artifact in enumerate(artifacts):
      artifact.uri = os.path.join(scratch, key, str(i))
      os.makedirs(artifact.uri, exist_ok=True)
  executor = _executor(settings, args.component_id, scratch, args.executor)
  properties = _exec_properties(execution)

  profile = cProfile.Profile()
  start = time.monotonic()
  profile.runcall(executor.Do, inputs, outputs, properties)
  seconds = time.monotonic() - start
  print(f'{args.component_id} executor: {seconds:.2f} s (outputs in '
        f'{scratch})')
  if args.save:
    profile.dump_stats(args.save)
  pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
  return 0


if __name__ == '__main__':
  sys.exit(main())
