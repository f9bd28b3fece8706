"""Re-runs one component's executor from a finished local run, under cProfile.

    .venv/bin/python bench/profile_component.py Evaluator
    .venv/bin/python bench/profile_component.py Trainer --output-dir tfx_output --top 40
    .venv/bin/python bench/profile_component.py Evaluator \\
        --executor tfx.components.evaluator.executor.Executor   # TFX's own
    .venv/bin/python bench/profile_component.py Transform --as-released
    .venv/bin/python bench/profile_component.py StatisticsGen --cpu  # no cProfile

Takes the component's newest completed execution from the run's metadata
store (bench/recorded_execution.py) and runs the component's executor (the
class the pipeline uses now, or --executor) once in this process on the same
inputs and properties, writing its outputs under a temporary folder (the
run's artifacts are not touched), with Beam's signature and options-view
caches as the local runner applies them
(pipeline/kfp_runtime/beam_caches.py; --as-released: without). Prints
the executor's wall and CPU time (under cProfile) and the functions that
took the most time. One executor in-process measures that
component alone, without the runner, the other components or the start-up;
on a busy machine the profile's proportions are steadier than wall times.
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
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.components.base import base_executor

from bench import recorded_execution
from pipeline.kfp_runtime import beam_caches
from local.run import direct_runner
from local.run import local_pipeline
from local.run import inputs as run_inputs
from pipeline import configs
from pipeline.data_files import schema_file
from pipeline.errors import ConfigError, DataError


def executor_class(checked: run_inputs.RunInputs, component_id: str):
  """The executor class that the pipeline a local run builds from the
  same settings and data gives `component_id`."""
  pipeline = local_pipeline.create_pipeline(checked, None)
  component = next((c for c in pipeline.components if c.id == component_id),
                   None)
  if component is None:
    sys.exit(f'no component {component_id!r} in the pipeline')
  return component.executor_spec.executor_class


def make_executor(cls, scratch: str):
  """An instance of executor class `cls` as the local runner makes it."""
  context = dict(tmp_dir=os.path.join(scratch, 'tmp'), unique_id='profile')
  if issubclass(cls, base_beam_executor.BaseBeamExecutor):
    return cls(base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=local_pipeline.BEAM_PIPELINE_ARGS,
        make_beam_pipeline_fn=direct_runner.direct_pipeline, **context))
  return cls(base_executor.BaseExecutor.Context(**context))


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
  parser.add_argument('--cpu', action='store_true',
                      help='no cProfile: print the wall and CPU seconds '
                      '(user + system) of the executor alone')
  parser.add_argument('--as-released', action='store_true',
                      help="Beam as released, without the local runner's "
                      'signature and options-view caches '
                      '(pipeline/kfp_runtime/beam_caches.py)')
  args = parser.parse_args()

  settings = configs.load_or_exit(os.environ)
  scratch = tempfile.mkdtemp(prefix=f'profile-{args.component_id}-')
  recorded = recorded_execution.newest(
      args.output_dir or settings.LOCAL_OUTPUT_DIR, settings.PIPELINE_NAME,
      args.component_id).redirect_outputs(scratch)
  if args.executor:
    module, name = args.executor.rsplit('.', 1)
    cls = getattr(importlib.import_module(module), name)
  else:
    try:
      checked = run_inputs.check(os.environ)
    except (ConfigError, DataError, schema_file.SchemaFileError) as error:
      sys.exit(f'error: {error}')
    cls = executor_class(checked, args.component_id)
  executor = make_executor(cls, scratch)
  if not args.as_released:
    beam_caches.remember()  # as a local run does

  if args.cpu:
    start, cpu = time.monotonic(), os.times()
    executor.Do(recorded.inputs, recorded.outputs, recorded.exec_properties)
    end = os.times()
    print(f'{args.component_id} executor ({cls.__module__}.{cls.__name__}): '
          f'{time.monotonic() - start:.2f} s wall, '
          f'{end.user - cpu.user + end.system - cpu.system:.2f} s CPU '
          f'(outputs in {scratch})')
    return 0
  profile = cProfile.Profile()
  start, cpu = time.monotonic(), time.process_time()
  profile.runcall(executor.Do, recorded.inputs, recorded.outputs,
                  recorded.exec_properties)
  seconds, cpu = time.monotonic() - start, time.process_time() - cpu
  print(f'{args.component_id} executor ({cls.__module__}.{cls.__name__}): '
        f'{seconds:.2f} s under cProfile, {cpu:.2f} s of CPU (every thread; '
        f'outputs in {scratch})')
  if args.save:
    profile.dump_stats(args.save)
  pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
  return 0


if __name__ == '__main__':
  sys.exit(main())
