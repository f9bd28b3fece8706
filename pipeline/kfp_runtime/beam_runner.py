"""Dataflow where it pays: each Beam step chooses its runner from its input.

With USE_DATAFLOW on, the compiled specs give every Beam component (ExampleGen,
StatisticsGen, Transform, the Evaluator) Dataflow's arguments. A Dataflow job
spends minutes starting and stopping its workers before and after it reads a
byte, while Beam's DirectRunner inside the step's own container takes seconds
on a small input (docs/kubeflow.md#dataflow-where-it-pays has the figures).
So the decision is made where the input is known, at run time, in the step:

- the compiled spec carries the threshold among the Beam arguments, as
  `--dataflow_min_input_bytes=<DATAFLOW_MIN_INPUT_BYTES>` (`threshold_arg`,
  added by pipeline/cloud_settings.py next to `--runner=DataflowRunner`),
  so one list holds all of a step's Beam configuration and both
  orchestrators get it the same way;
- the image's start-up hook (pipeline/kfp_runtime/kfp_compat.py) calls
  `choose_in_argv` on TFX's executor entrypoint's arguments before TFX parses
  them: TFX passes every argument it does not know to the executor as its
  Beam arguments (`kubeflow_v2_run_executor._parse_flags`);
- the step's input is the size of the files under its input artifacts and,
  for a file-based ExampleGen, of the files its input config selects under
  input_base, with the span (and version) resolved as ExampleGen's driver
  resolves them. Read through TFX's fileio, so gs:// and local paths alike;
  counting stops once the threshold is reached;
- below the threshold the step runs on Beam's DirectRunner in its
  container, in the step's process (never Prism: in_process_runner.py);
  Dataflow's worker and job options are dropped, the generic ones (project,
  temp_location, experiments, ...) kept; at or above it, on Dataflow as
  compiled. The marker itself is always removed before Beam sees the list;
- the step logs its choice in one line (`Choice.describe`), and the
  outputs it writes record it (`record_on`: the custom properties
  `beam_runner` and `beam_input_bytes`, which both orchestrators keep in
  their metadata and show with the artifact).

Without the marker (USE_DATAFLOW off, or a spec compiled by an older
checkout) or without `--runner=DataflowRunner`, the arguments are left as
they are. Steps that run no Beam pipeline (the compiler gives every step the
Beam arguments) only lose the marker.
"""
import dataclasses
import functools
import logging
import os
import re
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

from pipeline.kfp_runtime import entrypoint_args

# INFO, whatever the root logger's level: the step's log says its choice.
_log = logging.getLogger(__name__)
_log.setLevel(logging.INFO)

THRESHOLD_FLAG = '--dataflow_min_input_bytes'
SETTING = 'DATAFLOW_MIN_INPUT_BYTES'
INVOCATION_FLAG = entrypoint_args.INVOCATION_FLAG
DATAFLOW = 'DataflowRunner'
DIRECT = 'DirectRunner'
# The DirectRunner a step below the threshold gets: Beam's, in this process,
# without its Prism attempt (pipeline/kfp_runtime/in_process_runner.py; the
# dotted name, so this start-up module does not import Beam).
IN_PROCESS_RUNNER = (
    'pipeline.kfp_runtime.in_process_runner.InProcessDirectRunner')
# Custom properties of the step's output artifacts that record the choice.
RUNNER_PROPERTY = 'beam_runner'
INPUT_BYTES_PROPERTY = 'beam_input_bytes'

# Options that only mean something to a Dataflow job: its workers (Beam's
# WorkerOptions), its service and its staging. Everything else is kept on the
# DirectRunner. sdk_container_image is kept on purpose: it names the image
# this step already runs in, which tells TFX its dependencies are in place
# (without one, TFX builds and stages an sdist of itself); the DirectRunner
# runs in this process and starts no container.
DATAFLOW_ONLY_OPTIONS = frozenset((
    'region', 'staging_location', 'job_name', 'dataflow_endpoint',
    'service_account_email', 'dataflow_service_options', 'dataflow_kms_key',
    'flexrs_goal', 'enable_streaming_engine', 'update', 'labels',
    'template_location', 'transform_name_mapping',
    'num_workers', 'max_num_workers', 'autoscaling_algorithm', 'machine_type',
    'worker_machine_type', 'disk_size_gb', 'disk_type', 'worker_disk_type',
    'worker_region', 'worker_zone', 'zone', 'network', 'subnetwork',
    'use_public_ips', 'no_use_public_ips', 'min_cpu_platform',
    'number_of_worker_harness_threads', 'max_cache_memory_usage_mb',
    'dataflow_worker_jar', 'worker_harness_container_image',
    'sdk_harness_container_image_overrides',
))


def threshold_arg(min_input_bytes: int) -> str:
  """The Beam argument that carries DATAFLOW_MIN_INPUT_BYTES into a step."""
  return f'{THRESHOLD_FLAG}={int(min_input_bytes)}'


def _option(arg: str) -> Optional[Tuple[str, Optional[str]]]:
  """(name, value) of a `--name[=value]` argument; None for anything else."""
  match = re.fullmatch(r'--([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?', arg,
                       flags=re.DOTALL)
  return (match.group(1), match.group(2)) if match else None


def _without_threshold(args: Sequence[str]) -> List[str]:
  return [arg for arg in args if not arg.startswith(THRESHOLD_FLAG + '=')]


def size_text(size: float) -> str:
  """1.4 MB, 256 MB, 3.2 GB: decimal units, as storage bills them."""
  for unit in ('B', 'kB', 'MB', 'GB', 'TB'):
    if abs(size) < 1000 or unit == 'TB':
      return (f'{size:.0f} {unit}' if unit == 'B' or size >= 100 else
              f'{size:.1f} {unit}')
    size /= 1000
  raise AssertionError('unreachable')


@dataclasses.dataclass(frozen=True)
class Choice:
  """A step's runner and why."""
  component: str
  runner: str  # DIRECT or DATAFLOW
  input_bytes: Optional[int]  # None: could not be measured
  threshold: int
  # Counting stopped at the threshold: the input is at least input_bytes.
  at_least: bool = False
  error: str = ''

  def describe(self) -> str:
    """The line the step logs."""
    where = ('DirectRunner in the container' if self.runner == DIRECT else
             'DataflowRunner')
    limit = f'{SETTING} {size_text(self.threshold)}'
    if self.input_bytes is None:
      return (f'Beam runner for {self.component}: {where} (input size '
              f'unknown: {self.error}; kept as compiled, {limit})')
    size = size_text(self.input_bytes)
    if self.runner == DIRECT:
      return (f'Beam runner for {self.component}: {where} (inputs {size} < '
              f'{limit})')
    return (f'Beam runner for {self.component}: {where} (inputs '
            f'{"at least " if self.at_least else ""}{size} >= {limit})')


def decide(beam_args: Sequence[str], input_bytes: Optional[int],
           component: str, at_least: bool = False,
           error: str = '') -> Tuple[List[str], Optional[Choice]]:
  """The Beam arguments a step runs with, and the choice made.

  Args:
    beam_args: the step's Beam arguments as compiled.
    input_bytes: the step's input size; None when it could not be measured
      (the step then runs as compiled).
    component: the step's name, for the log line.
    at_least: the size counting stopped early (see `input_size`).
    error: why the size is unknown.

  Returns:
    (arguments, choice); choice is None where no decision was compiled in
    (no threshold marker, or a runner other than Dataflow's).
  """
  threshold, runner = None, None
  for arg in beam_args:
    option = _option(arg)
    if option and option[0] == THRESHOLD_FLAG[2:]:
      threshold = int(option[1])
    elif option and option[0] == 'runner':
      runner = option[1]
  kept = _without_threshold(beam_args)
  if threshold is None or runner != DATAFLOW:
    return kept, None
  if input_bytes is None or input_bytes >= threshold:
    return kept, Choice(component, DATAFLOW, input_bytes, threshold,
                        at_least, error)
  direct = []
  for arg in kept:
    option = _option(arg)
    name = option[0] if option else None
    if name == 'runner':
      direct.append(f'--runner={IN_PROCESS_RUNNER}')
    elif name not in DATAFLOW_ONLY_OPTIONS:
      direct.append(arg)
  return direct, Choice(component, DIRECT, input_bytes, threshold)


def _file_size(path: str) -> int:
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  stat = fileio.stat(path)
  length = getattr(stat, 'length', None)
  return int(length if length is not None else stat.st_size)


def _files_under(uri: str) -> Iterable[str]:
  """Every file under `uri` (a file itself, or a folder at any depth)."""
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  if not fileio.exists(uri):
    return
  if not fileio.isdir(uri):
    yield uri
    return
  for folder, _, files in fileio.walk(uri):
    folder = folder.decode() if isinstance(folder, bytes) else folder
    for name in files:
      name = name.decode() if isinstance(name, bytes) else name
      yield os.path.join(folder, name)


def _example_gen_files(parameters: Dict[str, Any]) -> Iterable[str]:
  """The files a file-based ExampleGen reads: its input config's split
  patterns under input_base, `{SPAN}` and `{VERSION}` resolved to what
  ExampleGen's driver picks (the newest) unless a driver already did."""
  # pylint: disable=g-import-not-at-top
  from tfx.components.example_gen import utils as example_gen_utils
  from tfx.dsl.io import fileio
  from tfx.proto import example_gen_pb2
  from tfx.utils import proto_utils
  # pylint: enable=g-import-not-at-top
  input_base = parameters['input_base']
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(parameters['input_config'], input_config)
  if any('{SPAN}' in split.pattern or '{VERSION}' in split.pattern or
         '{YYYY}' in split.pattern for split in input_config.splits):
    # Rewrites each split's pattern to the span it chose.
    example_gen_utils.calculate_splits_fingerprint_span_and_version(
        input_base, input_config.splits)
  seen = set()
  for split in input_config.splits:
    for path in sorted(fileio.glob(os.path.join(input_base, split.pattern))):
      if path not in seen:
        seen.add(path)
        yield from _files_under(path)


def _parameters(executor_input: Any) -> Dict[str, Any]:
  """The step's execution parameters, the driver's output over the spec's."""
  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  from tfx.dsl.io import fileio
  # pylint: enable=g-import-not-at-top
  values = {key: json_format.MessageToDict(value)
            for key, value in executor_input.inputs.parameter_values.items()}
  for key, value in executor_input.inputs.parameters.items():
    values.setdefault(key, getattr(value, value.WhichOneof('value'))
                      if value.WhichOneof('value') else None)
  output_file = executor_input.outputs.output_file
  if output_file and fileio.exists(output_file):
    # ExampleGen's driver (Vertex AI's preCacheCheck) wrote the span it
    # resolved here; TFX's executor entrypoint reads it the same way.
    driver_output = pipeline_spec_pb2.ExecutorOutput()
    with fileio.open(output_file, 'rb') as output:
      json_format.Parse(output.read(), driver_output,
                        ignore_unknown_fields=True)
    values.update({key: json_format.MessageToDict(value) for key, value in
                   driver_output.parameter_values.items()})
  return values


def input_size(executor_input: Any,
               stop_at: Optional[int] = None) -> Tuple[int, bool]:
  """The bytes a step reads: its input artifacts' files and, for a
  file-based ExampleGen, the files its input config selects.

  Args:
    executor_input: the step's ExecutorInput (kfp pipeline_spec proto).
    stop_at: stop counting once the total reaches this.

  Returns:
    (bytes, whether counting stopped early).
  """
  def files():
    for artifact_list in executor_input.inputs.artifacts.values():
      for artifact in artifact_list.artifacts:
        if artifact.uri:
          yield from _files_under(artifact.uri)
    parameters = _parameters(executor_input)
    if 'input_base' in parameters and 'input_config' in parameters:
      yield from _example_gen_files(parameters)

  total = 0
  for path in files():
    total += _file_size(path)
    if stop_at is not None and total >= stop_at:
      return total, True
  return total, False


def _executor_input(argv: Sequence[str]) -> Any:
  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  # pylint: enable=g-import-not-at-top
  serialized = entrypoint_args.flag_value(argv, INVOCATION_FLAG)
  if serialized is None:
    raise ValueError(f'no {INVOCATION_FLAG} among the arguments')
  executor_input = pipeline_spec_pb2.ExecutorInput()
  json_format.Parse(serialized, executor_input, ignore_unknown_fields=True)
  return executor_input


def component_name(executor_input: Any, argv: Sequence[str]) -> str:
  """The step's name: its task folder in its output URIs (Vertex AI:
  `.../<task>_<id>/<output>`, Kubeflow Pipelines: `.../<task>/<output>` or
  `.../<task>/<execution id>/<output>`), else its executor's class."""
  for artifact_list in executor_input.outputs.artifacts.values():
    for artifact in artifact_list.artifacts:
      for part in reversed(artifact.uri.rstrip('/').split('/')[:-1]):
        if part and not re.fullmatch(r'-?[0-9]+', part):
          return re.sub(r'_-?[0-9]+$', '', part)
  for index, arg in enumerate(argv):
    if arg == '--executor_class_path' and index + 1 < len(argv):
      return argv[index + 1]
  return 'this step'


def runs_beam(argv: Sequence[str]) -> bool:
  """Whether the executor the arguments name (`--executor_class_path`) is a
  Beam executor (TFX's BaseBeamExecutor), which alone reads Beam arguments;
  False when it cannot be imported (TFX's entrypoint then says why)."""
  # pylint: disable=g-import-not-at-top
  from tfx.dsl.components.base import base_beam_executor
  from tfx.utils import import_utils
  # pylint: enable=g-import-not-at-top
  for index, arg in enumerate(argv):
    if arg == '--executor_class_path' and index + 1 < len(argv):
      try:
        executor_class = import_utils.import_class_by_path(argv[index + 1])
      except Exception:  # pylint: disable=broad-except
        return False
      return issubclass(executor_class, base_beam_executor.BaseBeamExecutor)
  return False


# The choice of this process's step, for the custom properties of its outputs.
_choice: Optional[Choice] = None


def choose_in_argv(argv: List[str]) -> Optional[Choice]:
  """Rewrites the Beam arguments in TFX's executor entrypoint's `argv` (in
  place) as `decide` chooses, from the step's measured input, and keeps the
  choice for `record_on`. Returns it (None: nothing to decide); `announce`
  logs it.
  """
  global _choice
  _choice = None
  if not any(arg.startswith(THRESHOLD_FLAG) for arg in argv):
    return None
  if not runs_beam(argv):
    # The compiler gives every step the pipeline's Beam arguments; a step
    # that runs no Beam pipeline has nothing to choose.
    argv[:] = _without_threshold(argv)
    return None
  threshold = next(int(_option(arg)[1]) for arg in argv
                   if arg.startswith(THRESHOLD_FLAG + '='))
  try:
    executor_input = _executor_input(argv)
    component = component_name(executor_input, argv)
  except Exception as error:  # pylint: disable=broad-except
    executor_input, component = None, 'this step'
    measured, at_least, why = None, False, f'{type(error).__name__}: {error}'
  if executor_input is not None:
    try:
      measured, at_least = input_size(executor_input, stop_at=threshold)
      why = ''
    except Exception as error:  # pylint: disable=broad-except
      measured, at_least, why = None, False, f'{type(error).__name__}: {error}'
  rewritten, choice = decide(argv, measured, component, at_least, why)
  argv[:] = rewritten
  _choice = choice
  return choice


def announce(choice: Choice) -> None:
  """Logs the step's choice in one line (a warning when its input could
  not be measured)."""
  (_log.warning if choice.input_bytes is None else _log.info)(
      choice.describe())


def announcing(main: Callable[..., Any], choice: Choice) -> Callable[..., Any]:
  """`main` (what absl's app.run runs) logging `choice` first: only then
  has absl installed the handler that writes the step's log."""
  @functools.wraps(main)
  def main_after_announcing(*args, **kwargs):
    announce(choice)
    return main(*args, **kwargs)
  return main_after_announcing


def record_on(output_dict: Dict[str, List[Any]]) -> None:
  """Records this step's choice on its output artifacts (TFX Artifacts)."""
  if _choice is None:
    return
  for artifacts in output_dict.values():
    for artifact in artifacts:
      artifact.set_string_custom_property(RUNNER_PROPERTY, _choice.runner)
      if _choice.input_bytes is not None:
        artifact.set_int_custom_property(INPUT_BYTES_PROPERTY,
                                         _choice.input_bytes)


def recorded(component: str, metadata: Dict[str, Any]) -> Optional[str]:
  """The choice an output artifact's metadata (its ExecutorOutput JSON)
  records, as a line like the step's log line; None if it records none."""
  runner = metadata.get(RUNNER_PROPERTY)
  if runner not in (DIRECT, DATAFLOW):
    return None
  where = ('DirectRunner in the container' if runner == DIRECT else
           'DataflowRunner')
  size = metadata.get(INPUT_BYTES_PROPERTY)
  return (f'Beam runner for {component}: {where}' +
          (f' (inputs {size_text(float(size))})' if size is not None else ''))
