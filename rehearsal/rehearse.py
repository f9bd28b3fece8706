"""Runs the compiled Kubeflow spec locally, task by task, as its launcher would.

    make rehearse                               # both shapes, two runs each
    .venv/bin/python -m rehearsal.rehearse --shape=kfp

Compiling is not running: a spec can compile and still fail on the cluster.
This takes the spec file a user uploads (`kubeflow_runner.py
--target=kubeflow`) and runs every task in dependency order with the task's
own command and arguments from the spec's deploymentSpec, in this virtual
environment instead of the pipeline image, each task a process of its own:

- the ExecutorInput (`{{$}}`) is built as Vertex AI Pipelines or as the
  open-source Kubeflow Pipelines driver builds it (`--shape`, see
  rehearsal/executor_input.py), from the upstream tasks' ExecutorOutput files;
- a container's `lifecycle.preCacheCheck` (ExampleGen's driver) runs first
  where the orchestrator runs it (Vertex AI; Kubeflow Pipelines ignores it);
- `gs://` paths map to a local folder (`<work dir>/gcs/<bucket>/...`), where
  the data is staged as `make infra` uploads it to the bucket, and where the
  directories TensorFlow creates get the zero-byte markers it leaves in
  Cloud Storage (rehearsal/gcs_standin.py);
- with `--shape=kfp`, the launcher's copy of each input artifact into the
  pod before the command starts is done as Kubeflow Pipelines 2.3.0 does it
  (rehearsal/launcher_download.py), markers included;
- the spec is compiled with USE_DATAFLOW on, and each Beam task chooses
  its runner from its input size as on the cluster
  (pipeline/kfp_runtime/beam_runner.py, through the start-up hook below):
  the summary names each choice. A task that chooses Dataflow (an input of
  DATAFLOW_MIN_INPUT_BYTES or more) cannot run here and fails at Beam's
  check of its temp_location, which is not gs://; raise the setting to
  rehearse such data. With `--no-compat` the Beam tasks run on the
  DirectRunner;
- the task processes load the pipeline image's start-up hook
  (pipeline/kfp_runtime/startup/sitecustomize.py, hence
  pipeline/kfp_runtime/kfp_compat.py) exactly as the image does; `--no-compat`
  runs without it;
- with `--shape=kfp`, the process crash reported from Kubeflow Pipelines
  clusters is reproduced (rehearsal/kfp_faults/).

The pipeline runs `--runs` times (default 2) into the same bucket, so the
second run's baseline is the model the first one pushed. The data folder
(DATA_PATH) is staged as `make infra` uploads it, span folders included.
`--keep_bucket` reuses the bucket of the previous rehearsal, its record of
accepted spans and its pushed models: add a span folder to DATA_PATH and
rehearse again, as new data lands between scheduled runs. Each run's
summary names the spans its Trainer trained on (`spans trained on: 1, 2`).

Not rehearsed: Google Cloud itself (IAM, quotas, APIs, the image build,
Dataflow workers, Vertex AI training: the spec is compiled with
USE_VERTEX_AI=false) and the orchestrators' own services (caching, retries,
the UI).
"""
import argparse
import contextlib
import dataclasses
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from pipeline.kfp_runtime import beam_runner
from rehearsal import compiled_spec
from rehearsal import executor_input
from rehearsal import gcs_standin
from rehearsal import launcher_download

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The pipeline image's start-up hook (see the Dockerfile's PYTHONPATH).
STARTUP_DIR = os.path.join(REPO_ROOT, 'pipeline', 'kfp_runtime', 'startup')
# What the cluster and its bucket do, reproduced in the task processes: the
# shutdown crash and Cloud Storage's directory markers.
KFP_FAULTS_DIR = os.path.join(REPO_ROOT, 'rehearsal', 'kfp_faults')
SHUTDOWN_CRASH_ENV = 'REHEARSAL_SHUTDOWN_CRASH'  # read by KFP_FAULTS_DIR's hook

SUBPROCESS = 'subprocess'
IN_PROCESS = 'in-process'

# Settings the rehearsal compiles with when the environment has none: no
# cloud call happens, so any well-formed project id does.
COMPILE_DEFAULTS = {
    'GOOGLE_CLOUD_PROJECT': 'rehearsal-project',
    'PIPELINE_IMAGE_TAG': 'rehearsal',
}
# Always: training runs inside the Trainer's task, not as a Vertex AI job.
# Dataflow stays on, so each Beam step chooses its runner as on the cluster.
COMPILE_OVERRIDES = {'USE_VERTEX_AI': 'false', 'USE_DATAFLOW': 'true'}

class TaskFailed(RuntimeError):
  """A task exited non-zero or wrote no ExecutorOutput."""

  def __init__(self, task: str, reason: str, log: str):
    super().__init__(f'{task}: {reason}')
    self.task = task
    self.reason = reason
    self.log = log


@dataclasses.dataclass
class TaskResult:
  name: str
  seconds: float
  # Output key -> the artifact as the orchestrator stored it.
  outputs: Dict[str, Dict[str, Any]]
  # Output key -> the artifact as the task's ExecutorOutput had it.
  written: Dict[str, Dict[str, Any]]
  executor_input: Dict[str, Any]
  # Whether the container's lifecycle.preCacheCheck ran first.
  ran_pre_cache_check: bool = False
  # How many input artifacts the launcher copied into the pod first.
  downloaded: int = 0

  def outputs_of_type(self, title: str) -> Dict[str, Dict[str, Any]]:
    """Output key -> ExecutorOutput artifact, for outputs of type `title`."""
    provisioned = self.executor_input['outputs']['artifacts']
    return {key: self.written.get(key, {}) for key, listed in
            provisioned.items()
            if executor_input.type_title(listed['artifacts'][0]['type']) ==
            title}


@dataclasses.dataclass
class RunResult:
  number: int
  seconds: float
  tasks: Dict[str, TaskResult]


def localize(value: Any, gcs_dir: str) -> Any:
  """`value` with every gs://bucket/path replaced by <gcs_dir>/bucket/path."""
  if isinstance(value, str):
    return value.replace('gs://', gcs_dir.rstrip('/') + '/')
  if isinstance(value, list):
    return [localize(item, gcs_dir) for item in value]
  if isinstance(value, dict):
    return {key: localize(item, gcs_dir) for key, item in value.items()}
  return value


def direct_runner_args(args: Sequence[str]) -> List[str]:
  """`args` as a Beam step runs them on the DirectRunner in its container
  (pipeline/kfp_runtime/beam_runner.py's choice for a small input)."""
  return beam_runner.decide(args, 0, '')[0]


def task_argv(container: compiled_spec.Container, executor_input_json: str,
              gcs_dir: str, image_hook: bool = True) -> List[str]:
  """The container's arguments with `{{$}}` filled in, paths made local.

  With `image_hook`, the Beam arguments stay as compiled: the image's
  start-up hook in the task chooses the runner. Without it (`--no-compat`)
  they become the DirectRunner's here.
  """
  args = [executor_input_json if arg == '{{$}}' else localize(arg, gcs_dir)
          for arg in container.args]
  return args if image_hook else direct_runner_args(args)


def _module_of(command: Sequence[str]) -> str:
  """The module a `python -m <module>` command runs."""
  if len(command) != 3 or command[1] != '-m' or not os.path.basename(
      command[0]).startswith('python'):
    raise compiled_spec.SpecError(
        f'only `python -m <module>` commands can run here, not {command}')
  return command[2]


class Launcher:
  """Runs one task's container command in place of the container."""

  def __init__(self, mode: str = SUBPROCESS, compat: bool = True,
               faults: bool = False, log_dir: Optional[str] = None,
               gcs_dir: Optional[str] = None):
    """A launcher.

    Args:
      mode: SUBPROCESS (each task a process of its own, as in a pod) or
        IN_PROCESS (the entrypoint's module runs as __main__ in this process:
        faster, for tests; the compatibility module is installed directly and
        interpreter shutdown, hence its faults, is not part of the run).
      compat: load the pipeline image's compatibility module.
      faults: reproduce the Kubeflow cluster's process-level faults
        (SUBPROCESS only).
      log_dir: where each task's output goes (SUBPROCESS); None: a new
        temporary folder.
      gcs_dir: the local folder standing in for gs://, where TensorFlow's
        new directories get Cloud Storage's directory markers
        (rehearsal/gcs_standin.py); None: no markers.
    """
    if mode not in (SUBPROCESS, IN_PROCESS):
      raise ValueError(f'unknown mode {mode!r}')
    self.mode = mode
    self.compat = compat
    self.faults = faults
    self.log_dir = log_dir
    self.gcs_dir = gcs_dir

  def environment(self) -> Dict[str, str]:
    """The task process's environment: the image's PYTHONPATH and hooks."""
    env = dict(os.environ)
    for name in (gcs_standin.GCS_DIR_ENV, SHUTDOWN_CRASH_ENV):
      env.pop(name, None)
    path = [REPO_ROOT]
    if self.compat:
      path.insert(0, STARTUP_DIR)
    if self.faults or self.gcs_dir:
      path.insert(0, KFP_FAULTS_DIR)
    if self.faults:
      env[SHUTDOWN_CRASH_ENV] = '1'
    if self.gcs_dir:
      env[gcs_standin.GCS_DIR_ENV] = self.gcs_dir
    env['PYTHONPATH'] = os.pathsep.join(path)
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    return env

  def run(self, task_name: str, command: Sequence[str], argv: List[str],
          log_name: str, env: Optional[Dict[str, str]] = None) -> None:
    """Runs `command argv` with the spec's `env` added to the environment;
    raises TaskFailed on a non-zero exit."""
    module = _module_of(command)
    env = env or {}
    if self.mode == IN_PROCESS:
      saved = {name: os.environ.get(name) for name in env}
      os.environ.update(env)
      try:
        self._run_in_process(task_name, module, argv)
      finally:
        for name, value in saved.items():
          if value is None:
            os.environ.pop(name, None)
          else:
            os.environ[name] = value
      return
    if self.log_dir is None:
      self.log_dir = tempfile.mkdtemp(prefix='rehearsal-logs-')
    os.makedirs(self.log_dir, exist_ok=True)
    log_path = os.path.join(self.log_dir, f'{log_name}.log')
    with open(log_path, 'w') as log_file:
      done = subprocess.run([sys.executable, '-m', module] + argv,
                            cwd=REPO_ROOT, env={**self.environment(), **env},
                            stdout=log_file, stderr=subprocess.STDOUT,
                            check=False)
    if done.returncode != 0:
      with open(log_path) as log_file:
        # The last lines, each cut short (a crash lists every C extension).
        tail = ''.join(line if len(line) <= 300 else line[:300] + ' ...\n'
                       for line in log_file.readlines()[-30:])
      raise TaskFailed(task_name, f'exit status {done.returncode} '
                       f'(log: {log_path})', tail)

  def _run_in_process(self, task_name: str, module: str,
                      argv: List[str]) -> None:
    from pipeline.kfp_runtime import kfp_compat  # pylint: disable=g-import-not-at-top
    if self.compat:
      kfp_compat.install(exit_after_success=False)
    else:
      kfp_compat.uninstall()
    saved_argv = sys.argv
    sys.argv = [module] + argv
    markers = (gcs_standin.emulating(self.gcs_dir) if self.gcs_dir else
               contextlib.nullcontext())
    try:
      with markers:
        runpy.run_module(module, run_name='__main__', alter_sys=True)
    except SystemExit as exit_:
      if exit_.code not in (None, 0):
        raise TaskFailed(task_name, f'exit status {exit_.code}', '') from None
    except Exception as error:  # pylint: disable=broad-except
      raise TaskFailed(task_name, f'{type(error).__name__}: {error}',
                       '') from error
    finally:
      sys.argv = saved_argv


def _read_json(path: str) -> Optional[Dict[str, Any]]:
  if not os.path.exists(path):
    return None
  with open(path) as json_file:
    return json.load(json_file)


def download_inputs(task_name: str, invocation: Dict[str, Any], gcs_dir: str,
                    pod: str) -> int:
  """Copies a task's input artifacts into its pod, as the Kubeflow launcher
  does before the command starts; raises TaskFailed as the launcher fails.

  Returns:
    How many artifacts were copied.
  """
  copied = 0
  for name, listed in sorted(invocation['inputs']['artifacts'].items()):
    artifacts = listed.get('artifacts') or []
    if not artifacts:
      continue
    try:
      launcher_download.download_input(name, artifacts[0]['uri'], gcs_dir,
                                       pod)
    except launcher_download.DownloadFailed as error:
      raise TaskFailed(task_name, str(error), '') from None
    copied += 1
  return copied


def run_task(task: compiled_spec.Task, shape: executor_input.Shape,
             launcher: Launcher, gcs_dir: str,
             inputs: Dict[str, Dict[str, Any]], log_name: str) -> TaskResult:
  """Runs one task as its orchestrator would; returns what it produced.

  Args:
    task: the task.
    shape: how its ExecutorInput is built.
    launcher: how its command runs.
    gcs_dir: the local folder standing in for gs://.
    inputs: input key -> the upstream artifact as `shape` stored it.
    log_name: names the task's log file.

  Raises:
    TaskFailed: the task exited non-zero or wrote no ExecutorOutput.
  """
  started = time.time()
  invocation = shape.executor_input(task, inputs,
                                    localize(task.parameters, gcs_dir))
  invocation_json = json.dumps(invocation)
  output_file = invocation['outputs']['outputFile']
  pod, downloaded = None, 0
  if shape.downloads_inputs:
    pod = executor_input.KfpShape.pod_of(output_file)
    downloaded = download_inputs(task.name, invocation, gcs_dir, pod)
  hook = task.container.pre_cache_check
  ran_hook = bool(hook and shape.runs_pre_cache_check)
  if ran_hook:
    launcher.run(task.name, hook.command,
                 task_argv(hook, invocation_json, gcs_dir, launcher.compat),
                 log_name + '-preCacheCheck')
  launcher.run(task.name, task.container.command,
               task_argv(task.container, invocation_json, gcs_dir,
                         launcher.compat), log_name,
               env=localize(task.container.env, gcs_dir))
  if pod:  # the pod is gone once the task ends; so is its copy
    shutil.rmtree(os.path.join(pod, 'gcs'), ignore_errors=True)
  executor_output = _read_json(output_file)
  if executor_output is None:
    raise TaskFailed(task.name, f'wrote no ExecutorOutput to {output_file}',
                     '')
  written = {key: listed['artifacts'][0] for key, listed in
             executor_output.get('artifacts', {}).items()
             if listed.get('artifacts')}
  outputs = {key: shape.record(listed['artifacts'][0], written.get(key))
             for key, listed in invocation['outputs']['artifacts'].items()}
  return TaskResult(task.name, time.time() - started, outputs, written,
                    invocation, ran_hook, downloaded)


def run_pipeline(spec: Dict[str, Any], shape: executor_input.Shape,
                 launcher: Launcher, gcs_dir: str, number: int = 1,
                 progress: Callable[[str], None] = lambda line: None
                 ) -> RunResult:
  """Runs every task of `spec` once, in dependency order.

  Args:
    spec: the compiled pipeline spec.
    shape: how ExecutorInputs are built (holds this run's ids).
    launcher: how a task's command runs.
    gcs_dir: the local folder standing in for gs://.
    number: the run's number, for the progress lines.
    progress: called with one line per finished task.

  Returns:
    What each task produced.

  Raises:
    TaskFailed: a task failed; later tasks did not run.
  """
  started = time.time()
  tasks = compiled_spec.tasks(spec)
  results: Dict[str, TaskResult] = {}
  for index, task in enumerate(tasks, 1):
    inputs = {key: results[source.producer_task].outputs[source.output_key]
              for key, source in task.artifacts.items()}
    result = run_task(task, shape, launcher, gcs_dir, inputs,
                      f'run{number}-{index:02d}-{task.name}')
    results[task.name] = result
    progress(f'[{index}/{len(tasks)}] {task.name:<28} done '
             f'{result.seconds:8.1f} s')
  return RunResult(number, time.time() - started, results)


def _skipped(folder: str, names: List[str]) -> List[str]:
  """What `make infra`'s upload leaves out (deploy/infra/storage.py
  local_files): hidden files and folders, __pycache__, .pyc files."""
  del folder
  return [name for name in names if name.startswith('.') or
          name == '__pycache__' or name.endswith('.pyc')]


def stage_data(data_dir: str, data_uri: str, gcs_dir: str) -> str:
  """Copies `data_dir` as it is, span folders included, to the local
  stand-in of `data_uri`, as `make infra` uploads it; what was there before
  is replaced, as new data replaces the bucket's between scheduled runs."""
  target = localize(data_uri, gcs_dir)
  if os.path.isdir(target):
    shutil.rmtree(target)
  shutil.copytree(data_dir, target, ignore=_skipped)
  return target


def compile_spec(output_dir: str, overrides: Optional[Dict[str, str]] = None
                 ) -> str:
  """Compiles the Kubeflow target with kubeflow_runner.py; returns the file.

  Runs offline in a subprocess (the settings come from its environment), with
  COMPILE_DEFAULTS where the environment has no value, COMPILE_OVERRIDES, and
  then `overrides`.
  """
  env = dict(os.environ)
  for name, value in COMPILE_DEFAULTS.items():
    if not env.get(name):
      env[name] = value
  env.update(COMPILE_OVERRIDES)
  env.update(overrides or {})
  done = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, 'kubeflow_runner.py'),
       '--target=kubeflow', f'--output_dir={output_dir}'],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
  if done.returncode != 0:
    raise RuntimeError(f'compiling failed:\n{done.stdout}{done.stderr}')
  found = re.search(r'pipeline spec YAML\): (\S+)', done.stdout)
  if not found:
    raise RuntimeError(f'no compiled file in the output:\n{done.stdout}')
  return found.group(1)


def bucket_of(spec: Dict[str, Any]) -> str:
  """The bucket of the spec's pipeline root."""
  root = compiled_spec.pipeline_root(spec)
  match = re.fullmatch(r'gs://([^/]+)(/.*)?', root)
  if not match:
    raise compiled_spec.SpecError(f'the pipeline root {root} is not gs://')
  return match.group(1)


def rehearse(spec_path: str, shape_name: str, work_dir: str, data_dir: str,
             data_uri: str, runs: int = 2, launcher: Optional[Launcher] = None,
             kfp_input_types: str = executor_input.EMPTY_SCHEMA,
             progress: Callable[[str], None] = lambda line: None
             ) -> List[RunResult]:
  """Stages the data and runs the compiled pipeline `runs` times.

  Args:
    spec_path: the compiled pipeline spec.
    shape_name: executor_input.VERTEX or executor_input.KFP.
    work_dir: where everything goes; its gcs/ folder stands in for gs://.
    data_dir: a folder of CSV files, staged to `data_uri`.
    data_uri: where the pipeline reads its data (gs://...).
    runs: how many runs, one after the other, sharing the bucket.
    launcher: how tasks run (default: subprocesses, compatibility module on,
      the Kubeflow faults on for the kfp shape).
    kfp_input_types: how the kfp shape types input artifacts.
    progress: called with one line per finished task and run.

  Returns:
    One RunResult per run.
  """
  spec = compiled_spec.load(spec_path)
  gcs_dir = os.path.join(work_dir, 'gcs')
  if launcher is None:
    launcher = Launcher(faults=shape_name == executor_input.KFP)
  if launcher.log_dir is None:
    launcher.log_dir = os.path.join(work_dir, 'logs')
  launcher.gcs_dir = gcs_dir  # the bucket gets TensorFlow's markers
  stage_data(data_dir, data_uri, gcs_dir)
  pipeline_root = localize(compiled_spec.pipeline_root(spec), gcs_dir)
  pipeline_name = spec['pipelineInfo']['name']
  results = []
  for number in range(1, runs + 1):
    shape = executor_input.create(shape_name, pipeline_name, pipeline_root,
                                  os.path.join(work_dir, 'pods'),
                                  kfp_input_types)
    progress(f'Run {number} of {runs} ({shape_name} shape)')
    result = run_pipeline(spec, shape, launcher, gcs_dir, number, progress)
    progress(f'Run {number} finished in {result.seconds:.0f} s.')
    results.append(result)
  return results


BLESSING = 'tfx.ModelBlessing'
PUSHED_MODEL = 'tfx.PushedModel'
MODEL = 'tfx.Model'
# The training window's record of its spans (pipeline/components/
# training_window.py SPANS_PROPERTY), as the Trainer's input carries it.
SPANS_PROPERTY = 'spans'


def outputs_of_type(result: RunResult, title: str) -> List[Dict[str, Any]]:
  """Every ExecutorOutput artifact of type `title` in a run."""
  return [artifact for task in result.tasks.values()
          for artifact in task.outputs_of_type(title).values()]


def _metadata(artifact: Dict[str, Any]) -> Dict[str, Any]:
  """An input artifact's properties, as either shape sends them."""
  return artifact.get('metadata', {})


def trained_spans(result: RunResult) -> Optional[List[int]]:
  """The spans the run's Trainer trained on, read from its input examples
  (the task that has examples in and a Model out); None without span
  folders or when no Trainer ran."""
  for task in result.tasks.values():
    examples = task.executor_input['inputs']['artifacts'].get('examples')
    if examples and task.outputs_of_type(MODEL):
      spans = _metadata(examples['artifacts'][0]).get(SPANS_PROPERTY)
      if spans is None:
        return None
      return [int(span) for span in str(spans).split(',') if span]
  return None


def beam_runners(result: RunResult) -> List[str]:
  """The runner each Beam task of a run chose, as its outputs record it
  (pipeline/kfp_runtime/beam_runner.py), in the order the tasks ran."""
  chosen = []
  for task in result.tasks.values():
    for artifact in task.written.values():
      line = beam_runner.recorded(task.name, artifact.get('metadata') or {})
      if line:
        chosen.append(line)
        break
  return chosen


def describe(result: RunResult) -> List[str]:
  """A line on each Beam task's runner, the spans trained on, and each
  blessing and push of a run."""
  lines = [f'Run {result.number}: {line}' for line in beam_runners(result)]
  spans = trained_spans(result)
  if spans is not None:
    lines.append(f'Run {result.number}: spans trained on: '
                 f'{", ".join(map(str, spans))}')
  for blessing in outputs_of_type(result, BLESSING):
    metadata = blessing.get('metadata', {})
    baseline = metadata.get('baseline_model_id')
    lines.append(f'Run {result.number}: '
                 f'{"blessed" if metadata.get("blessed") else "not blessed"}'
                 + (f', compared with the baseline {baseline}.' if baseline
                    else ', no baseline.'))
  for pushed in outputs_of_type(result, PUSHED_MODEL):
    metadata = pushed.get('metadata', {})
    lines.append(f'Run {result.number}: ' + (
        f'pushed {metadata.get("pushed_destination")}.'
        if metadata.get('pushed') else 'nothing pushed.'))
  return lines


def _settings_data_uri(compiled: Dict[str, str]) -> str:
  """Where the cloud settings `compiled` with read the pipeline's data.

  Args:
    compiled: the settings the compile subprocess saw, where they differ
      from this process's environment.
  """
  from pipeline import cloud_settings  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  settings = configs.load({**os.environ, **compiled})
  return cloud_settings.from_settings(settings, 'rehearsal').data_path


def prepare_shape_dir(shape_dir: str, keep_bucket: bool) -> bool:
  """Empties a shape's work folder, or with `keep_bucket` keeps its
  stand-in bucket (gcs/: artifacts, accepted spans, pushed models) and
  drops only what belonged to the previous rehearsal's processes (logs,
  pods). Returns whether a bucket was kept."""
  if not os.path.isdir(shape_dir):
    return False
  kept = keep_bucket and os.path.isdir(os.path.join(shape_dir, 'gcs'))
  for name in os.listdir(shape_dir):
    if not (kept and name == 'gcs'):
      shutil.rmtree(os.path.join(shape_dir, name))
  return kept


def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--shape', choices=executor_input.SHAPES + ('all',),
                      default='all', help='whose ExecutorInput to send')
  parser.add_argument('--runs', type=int, default=2)
  parser.add_argument('--work_dir', default=None,
                      help='default: <LOCAL_OUTPUT_DIR>/rehearsal')
  parser.add_argument('--keep_bucket', action='store_true',
                      help='reuse the stand-in bucket of the previous '
                      'rehearsal (its artifacts, accepted spans and pushed '
                      'models), as new spans land between scheduled runs')
  parser.add_argument('--spec', default=None,
                      help='a compiled spec to run (default: compile one)')
  parser.add_argument('--no-compat', dest='compat', action='store_false',
                      help='run without the image\'s compatibility module')
  parser.add_argument('--kfp_input_types',
                      choices=executor_input.KFP_INPUT_TYPES,
                      default=executor_input.EMPTY_SCHEMA,
                      help='how the kfp shape types input artifacts')
  return parser.parse_args(argv)


def _prepare(spec_arg: Optional[str], work_dir: str) -> Tuple[str, str]:
  """The spec to run (compiled unless given) and where its data lies in the
  stand-in bucket. Raises SpecError, RuntimeError or ConfigError."""
  spec_path = spec_arg or compile_spec(os.path.join(work_dir, 'compiled'))
  print(f'Pipeline spec: {spec_path}')
  spec = compiled_spec.load(spec_path)
  compiled_spec.tasks(spec)  # fails early on what cannot run here
  data_uri = _settings_data_uri({
      'GOOGLE_CLOUD_PROJECT': (os.environ.get('GOOGLE_CLOUD_PROJECT') or
                               COMPILE_DEFAULTS['GOOGLE_CLOUD_PROJECT']),
      'GCS_BUCKET_NAME': bucket_of(spec),
      'PIPELINE_NAME': spec['pipelineInfo']['name'],
  })
  return spec_path, data_uri


def main(argv: Optional[List[str]] = None) -> int:
  args = _parse_args(argv)
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  from pipeline.errors import ConfigError  # pylint: disable=g-import-not-at-top
  settings = configs.load_or_exit(os.environ)
  work_dir = args.work_dir or os.path.join(settings.LOCAL_OUTPUT_DIR,
                                           'rehearsal')
  try:
    spec_path, data_uri = _prepare(args.spec, work_dir)
  except (compiled_spec.SpecError, RuntimeError, ConfigError) as error:
    print(f'rehearsal: {error}', file=sys.stderr)
    return 2
  shapes = executor_input.SHAPES if args.shape == 'all' else (args.shape,)
  for shape in shapes:
    shape_dir = os.path.join(work_dir, shape)
    if prepare_shape_dir(shape_dir, args.keep_bucket):
      print(f'Reusing the stand-in bucket {os.path.join(shape_dir, "gcs")} '
            '(--keep_bucket).')
    launcher = Launcher(compat=args.compat, faults=shape == executor_input.KFP)
    try:
      results = rehearse(spec_path, shape, shape_dir, settings.DATA_PATH,
                         data_uri, args.runs, launcher, args.kfp_input_types,
                         progress=print)
    except TaskFailed as failure:
      print(failure.log, file=sys.stderr)
      print(f'FAILED ({shape} shape) in task {failure}', file=sys.stderr)
      return 1
    for result in results:
      for line in describe(result):
        print(line)
  return 0


if __name__ == '__main__':
  sys.exit(main())
