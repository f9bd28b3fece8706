"""local/run/direct_runner.py and pipeline/kfp_runtime/in_process_runner.py:
local runs' Beam pipelines, and the image's Beam steps that do not go to
Dataflow, run in their own process on Beam's DirectRunner without trying
Prism first."""
import os

import apache_beam as beam
from apache_beam.runners.direct import direct_runner as beam_direct_runner
from apache_beam.runners.portability import prism_runner
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to
import pytest
from tfx.dsl.components.base import base_beam_executor
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import executable_spec_pb2
from tfx.utils import dependency_utils

from local.run import direct_runner
from pipeline.kfp_runtime import beam_runner
from pipeline.kfp_runtime import in_process_runner


@pytest.fixture
def prism_attempts(monkeypatch):
  """The pipelines Beam hands to its Prism runner; Prism itself is not run
  (it would download its binary), so Beam falls back as it does offline."""
  attempts = []

  def refuse(self, pipeline, options):
    attempts.append(pipeline)
    raise RuntimeError('Prism is not available here')

  monkeypatch.setattr(prism_runner.PrismRunner, 'run_pipeline', refuse)
  return attempts


@pytest.fixture
def rebuilt(monkeypatch):
  """The runners of the pipelines that Beam rebuilds from their runner-API
  protos before running them (its check that a pipeline survives the round
  trip)."""
  runners = []
  rebuild = beam.Pipeline.from_runner_api

  def spy(proto, runner, options, **kwargs):
    runners.append(runner)
    return rebuild(proto, runner, options, **kwargs)

  monkeypatch.setattr(beam.Pipeline, 'from_runner_api', staticmethod(spy))
  return runners


def _squares(pipeline: beam.Pipeline) -> None:
  with pipeline as p:
    squares = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * x)
    assert_that(squares, equal_to([1, 4, 9]))


def test_beam_as_released_tries_prism_first(prism_attempts):
  _squares(beam.Pipeline())
  assert len(prism_attempts) == 1


def test_the_local_pipeline_runs_in_process_without_trying_prism(
    prism_attempts):
  pipeline = direct_runner.direct_pipeline()
  # The options TFX gives a local run's components: Beam's defaults.
  assert pipeline.options.get_all_options() == (
      beam.Pipeline(argv=[]).options.get_all_options())
  _squares(pipeline)
  assert not prism_attempts


class _RecordsItsRunner(base_beam_executor.BaseBeamExecutor):
  """Runs a small Beam pipeline and writes which runner ran it."""

  def Do(self, input_dict, output_dict, exec_properties):
    pipeline = self._make_beam_pipeline()
    _squares(pipeline)
    with open(exec_properties['record'], 'w') as f:
      f.write(type(pipeline.runner).__name__)


def _run_with_operator(tmp_path, beam_pipeline_args=()) -> str:
  spec = executable_spec_pb2.BeamExecutableSpec()
  spec.python_executor_spec.class_path = (
      f'{__name__}.{_RecordsItsRunner.__name__}')
  spec.beam_pipeline_args_placeholders.extend(
      _placeholder(arg) for arg in beam_pipeline_args)
  record = str(tmp_path / 'runner.txt')
  operator = direct_runner.LocalBeamOperator(spec)
  operator.run_executor(data_types.ExecutionInfo(
      input_dict={}, output_dict={}, exec_properties={'record': record},
      tmp_dir=str(tmp_path / 'tmp'),
      execution_output_uri=str(tmp_path / 'executor_output.pb')))
  with open(record) as f:
    return f.read()


def _placeholder(value: str):
  # pylint: disable=g-import-not-at-top
  from tfx.proto.orchestration import placeholder_pb2
  expression = placeholder_pb2.PlaceholderExpression()
  expression.value.string_value = value
  return expression


def test_the_operator_gives_executors_the_direct_pipeline(tmp_path,
                                                          prism_attempts):
  assert _run_with_operator(tmp_path) == 'SwitchingDirectRunner'
  assert not prism_attempts


def test_the_operator_leaves_explicit_beam_arguments_to_tfx(tmp_path,
                                                            prism_attempts):
  # A --runner and a dependency flag (so TFX does not build a TFX sdist).
  args = ['--runner=BundleBasedDirectRunner',
          f'--requirements_file={os.devnull}']
  assert _run_with_operator(tmp_path, args) == 'BundleBasedDirectRunner'
  assert not prism_attempts


# The image's Beam steps: the arguments a step runs with when USE_DATAFLOW is
# off, and a step's in-container choice below DATAFLOW_MIN_INPUT_BYTES.
_IMAGE = 'europe-west3-docker.pkg.dev/p/r/taxi:abc1234'
_IN_CONTAINER = [f'--runner={beam_runner.IN_PROCESS_RUNNER}',
                 f'--sdk_container_image={_IMAGE}', '--project=p']


def test_a_step_in_its_container_runs_in_process_without_trying_prism(
    prism_attempts):
  # As TFX's Beam executors build their pipeline from the step's arguments.
  pipeline = beam.Pipeline(argv=_IN_CONTAINER)
  assert pipeline.runner.__class__ is beam_direct_runner.SwitchingDirectRunner
  _squares(pipeline)
  assert not prism_attempts
  # The image named: TFX builds and stages no sdist of itself.
  assert dependency_utils.make_beam_dependency_flags(
      list(_IN_CONTAINER)) == _IN_CONTAINER


def test_in_process_pipelines_skip_the_runner_api_round_trip(
    rebuilt, prism_attempts):
  # Beam skips it for its own DirectRunner in batch: the FnApiRunner
  # converts the pipeline to protos anyway.
  _squares(direct_runner.direct_pipeline())
  _squares(beam.Pipeline(argv=_IN_CONTAINER))
  assert not rebuilt
  assert not prism_attempts

  # Beam knows its DirectRunner by the class name: the same runner under
  # another name (this module's runner was a subclass) pays for the trip.
  class Renamed(beam_direct_runner.SwitchingDirectRunner):
    pass

  renamed = Renamed()
  renamed.is_interactive()
  _squares(beam.Pipeline(runner=renamed))
  assert rebuilt == [renamed]
  assert not prism_attempts


def test_the_executors_in_process_paths_see_every_in_process_runner():
  assert in_process_runner.runs_in_process(_IN_CONTAINER)
  for args in ([], ['--runner=DirectRunner'], ['--runner', 'direct'],
               ['--runner=BundleBasedDirectRunner']):
    assert in_process_runner.runs_in_process(args), args
  for args in (['--runner=DataflowRunner'], ['--runner=PrismRunner']):
    assert not in_process_runner.runs_in_process(args), args
