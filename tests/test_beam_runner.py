"""Each Beam step of the compiled spec chooses Dataflow or the DirectRunner in
its container from its input size (pipeline/kfp_runtime/beam_runner.py).

The Kubeflow target is compiled as kubeflow_runner.py compiles it, with span
folders and a small DATAFLOW_MIN_INPUT_BYTES, and the choice is made on a
compiled step's own arguments, with the ExecutorInput built as the
orchestrator builds it (rehearsal/executor_input.py) for inputs on either
side of the threshold. One step also runs as in its pod, through the
image's start-up hook, and submits its Dataflow job to stand-ins of the
Dataflow API and Cloud Storage on loopback.
"""
import json
import logging
import os

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from werkzeug.wrappers import Request

import kubeflow_runner
from pipeline import cloud_settings
from pipeline import component_ids
from pipeline import configs
from pipeline.kfp_runtime import beam_runner
from rehearsal import compiled_spec
from rehearsal import executor_input
from rehearsal import rehearse as rehearsal
from tests import helpers
from tests import loopback

PROJECT = 'runner-test-123'
BUCKET = f'{PROJECT}-taxi-tips'
THRESHOLD = 20_000
# Dataflow's own options in the compiled arguments (cloud_settings).
DATAFLOW_ONLY = ('--region=', '--staging_location=', '--machine_type=',
                 '--max_num_workers=')


@pytest.fixture(scope='module')
def spans(tmp_path_factory):
  folder = tmp_path_factory.mktemp('spans')
  helpers.write_slice(str(folder / 'span-1'), rows=300)
  helpers.write_slice(str(folder / 'span-2'), rows=30)
  return str(folder)


@pytest.fixture(scope='module')
def tasks(spans, tmp_path_factory):
  settings = configs.load({
      'GOOGLE_CLOUD_PROJECT': PROJECT, 'PIPELINE_IMAGE_TAG': 'test',
      'DATA_PATH': spans, 'USE_VERTEX_AI': 'false',
      'DATAFLOW_MIN_INPUT_BYTES': str(THRESHOLD)})
  cloud = cloud_settings.from_settings(settings, 'test')
  path = kubeflow_runner.compile_kubeflow(
      settings, cloud, str(tmp_path_factory.mktemp('compiled')))
  return {task.name: task for task in
          compiled_spec.tasks(compiled_spec.load(path))}


def _argv(task, tmp_path, inputs=None):
  """The step's command-line arguments as its container gets them, with the
  bucket at `tmp_path`/gcs."""
  gcs_dir = str(tmp_path / 'gcs')
  shape = executor_input.create(executor_input.VERTEX, 'taxi-tips',
                                rehearsal.localize(f'gs://{BUCKET}/output',
                                                   gcs_dir),
                                str(tmp_path / 'pods'))
  invocation = shape.executor_input(
      task, inputs or {}, rehearsal.localize(task.parameters, gcs_dir))
  return ['kubeflow_v2_run_executor'] + [
      json.dumps(invocation) if arg == '{{$}}' else arg
      for arg in task.container.args]


def _examples(folder, size):
  """An Examples artifact as stored upstream, `size` bytes of files."""
  for split in ('Split-train', 'Split-eval'):
    os.makedirs(os.path.join(folder, split))
    with open(os.path.join(folder, split, 'data_tfrecord-00000-of-00001.gz'),
              'wb') as data:
      data.write(b'x' * (size // 2))
  return {'examples': {'uri': str(folder),
                       'type': {'schemaTitle': 'tfx.Examples'},
                       'metadata': {'split_names': '["train", "eval"]'}}}


def test_only_the_beam_steps_choose(tasks, tmp_path):
  # The compiler gives every step the Beam arguments, threshold included.
  marker = beam_runner.threshold_arg(THRESHOLD)
  assert all(marker in task.container.args for task in tasks.values())
  beam_steps = sorted(name for name, task in tasks.items()
                      if beam_runner.runs_beam(task.container.args))
  assert beam_steps == sorted([component_ids.EXAMPLE_GEN,
                               component_ids.STATISTICS_GEN,
                               component_ids.TRANSFORM,
                               component_ids.EVALUATOR])
  trainer = _argv(tasks[component_ids.TRAINER], tmp_path)
  compiled = list(trainer)
  assert beam_runner.choose_in_argv(trainer) is None
  assert trainer == [arg for arg in compiled if arg != marker]


def test_a_small_input_runs_on_the_direct_runner_in_the_container(
    tasks, tmp_path, caplog):
  task = tasks[component_ids.STATISTICS_GEN]
  argv = _argv(task, tmp_path, _examples(tmp_path / 'examples',
                                         THRESHOLD // 4))
  compiled = list(argv)
  with caplog.at_level(logging.INFO):
    choice = beam_runner.choose_in_argv(argv)
    beam_runner.announce(choice)
  assert choice.runner == beam_runner.DIRECT
  assert choice.input_bytes == THRESHOLD // 4 // 2 * 2
  in_process = f'--runner={beam_runner.IN_PROCESS_RUNNER}'
  assert in_process in argv
  assert not [arg for arg in argv if arg.startswith(DATAFLOW_ONLY)]
  assert not [arg for arg in argv
              if arg.startswith(beam_runner.THRESHOLD_FLAG)]
  # The generic options stay; TFX's own arguments are untouched.
  kept = [arg for arg in compiled if arg.startswith(
      ('--project=', '--temp_location=', '--sdk_container_image='))]
  assert len(kept) == 3 and set(kept) <= set(argv)
  assert argv[:argv.index(in_process)] == compiled[
      :compiled.index('--runner=DataflowRunner')]
  assert (f'Beam runner for {component_ids.STATISTICS_GEN}: DirectRunner in '
          'the container (inputs 5.0 kB < DATAFLOW_MIN_INPUT_BYTES 20.0 kB)'
          in caplog.text)


def test_a_large_input_runs_on_dataflow(tasks, tmp_path, caplog):
  task = tasks[component_ids.STATISTICS_GEN]
  argv = _argv(task, tmp_path, _examples(tmp_path / 'examples',
                                         THRESHOLD * 3))
  compiled = list(argv)
  with caplog.at_level(logging.INFO):
    choice = beam_runner.choose_in_argv(argv)
    beam_runner.announce(choice)
  assert choice.runner == beam_runner.DATAFLOW
  assert choice.input_bytes >= THRESHOLD
  # As compiled, less the threshold, which Beam never sees.
  assert argv == [arg for arg in compiled
                  if arg != beam_runner.threshold_arg(THRESHOLD)]
  assert '--runner=DataflowRunner' in argv
  assert f'Beam runner for {component_ids.STATISTICS_GEN}: DataflowRunner' in (
      caplog.text)
  assert '>= DATAFLOW_MIN_INPUT_BYTES 20.0 kB' in caplog.text


def test_example_gen_counts_the_newest_span_only(tasks, spans, tmp_path):
  task = tasks[component_ids.EXAMPLE_GEN]
  data = tmp_path / 'gcs' / BUCKET / 'input' / 'data'
  newest = os.path.join(spans, 'span-2', helpers.CSV_NAME)
  for span in ('span-1', 'span-2'):
    os.makedirs(data / span)
    os.link(os.path.join(spans, span, helpers.CSV_NAME),
            data / span / helpers.CSV_NAME)
  assert os.path.getsize(newest) < THRESHOLD < os.path.getsize(
      os.path.join(spans, 'span-1', helpers.CSV_NAME))
  argv = _argv(task, tmp_path)
  choice = beam_runner.choose_in_argv(argv)
  assert (choice.runner, choice.input_bytes) == (
      beam_runner.DIRECT, os.path.getsize(newest))

  # A large new span goes to Dataflow.
  os.makedirs(data / 'span-3')
  os.link(os.path.join(spans, 'span-1', helpers.CSV_NAME),
          data / 'span-3' / helpers.CSV_NAME)
  argv = _argv(task, tmp_path)
  assert beam_runner.choose_in_argv(argv).runner == beam_runner.DATAFLOW
  assert '--runner=DataflowRunner' in argv


def test_an_input_it_cannot_measure_keeps_dataflow(tasks, tmp_path, caplog):
  task = tasks[component_ids.STATISTICS_GEN]
  argv = _argv(task, tmp_path)
  # An input artifact the step cannot read: the JSON is not an ExecutorInput.
  argv[argv.index('--json_serialized_invocation_args') + 1] = '{"inputs": 3}'
  with caplog.at_level(logging.WARNING):
    choice = beam_runner.choose_in_argv(argv)
    beam_runner.announce(choice)
  assert choice.runner == beam_runner.DATAFLOW
  assert choice.input_bytes is None
  assert 'input size unknown' in caplog.text
  assert not [arg for arg in argv
              if arg.startswith(beam_runner.THRESHOLD_FLAG)]


def test_without_dataflow_nothing_is_decided(tasks, tmp_path):
  argv = ['kubeflow_v2_run_executor', '--executor_class_path', 'x.Executor',
          '--json_serialized_invocation_args', '{}']
  assert beam_runner.choose_in_argv(argv) is None
  assert argv[-1] == '{}'
  # No Dataflow runner: only the threshold goes.
  args = ['--runner=DirectRunner', beam_runner.threshold_arg(5), '--a=b']
  assert beam_runner.decide(args, 0, 'step') == (
      ['--runner=DirectRunner', '--a=b'], None)


def test_the_choice_is_recorded_on_the_step_outputs(tasks, tmp_path):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  argv = _argv(tasks[component_ids.TRANSFORM], tmp_path,
               _examples(tmp_path / 'examples', 1000))
  beam_runner.choose_in_argv(argv)
  graph = standard_artifacts.TransformGraph()
  beam_runner.record_on({'transform_graph': [graph]})
  metadata = {
      beam_runner.RUNNER_PROPERTY: graph.get_string_custom_property(
          beam_runner.RUNNER_PROPERTY),
      beam_runner.INPUT_BYTES_PROPERTY: graph.get_int_custom_property(
          beam_runner.INPUT_BYTES_PROPERTY)}
  assert beam_runner.recorded(component_ids.TRANSFORM, metadata) == (
      f'Beam runner for {component_ids.TRANSFORM}: DirectRunner in the '
      'container (inputs 1.0 kB)')
  # A step that did not choose records nothing.
  beam_runner.choose_in_argv(['x', '--executor_class_path', 'a.B'])
  model = standard_artifacts.Model()
  beam_runner.record_on({'model': [model]})
  assert beam_runner.RUNNER_PROPERTY not in model.mlmd_artifact.custom_properties


JOB_ID = 'standin-job-1'


class DataflowStandIn:
  """The Dataflow API's jobs.create, jobs.get and messages.list: a job is
  accepted, pending, and done when asked again; every request is recorded."""

  def __init__(self):
    self.requests = []

  @Request.application
  def __call__(self, request):
    self.requests.append((request.method, request.path,
                          request.get_data(as_text=True)))
    job = {'id': JOB_ID, 'projectId': PROJECT, 'type': 'JOB_TYPE_BATCH'}
    if request.method == 'POST' and request.path.endswith('/jobs'):
      return loopback.json_response({**job, 'currentState':
                                     'JOB_STATE_PENDING'})
    if request.path.endswith('/messages'):
      return loopback.json_response({})
    if request.path.endswith(f'/jobs/{JOB_ID}'):
      return loopback.json_response({**job, 'currentState': 'JOB_STATE_DONE'})
    return loopback.json_response({'error': {'code': 404, 'message': 'no'}},
                                  404)


@pytest.fixture
def gcs_bucket(monkeypatch):
  """Cloud Storage's emulator on loopback, with the pipeline's bucket."""
  with helpers.storage_emulator() as host:
    monkeypatch.setenv('STORAGE_EMULATOR_HOST', host)
    monkeypatch.setenv('NO_PROXY', 'localhost,127.0.0.1')
    monkeypatch.setenv('no_proxy', 'localhost,127.0.0.1')
    client = storage.Client(project=PROJECT,
                            credentials=AnonymousCredentials())
    yield client.create_bucket(BUCKET)


@pytest.mark.slow
def test_a_step_above_the_threshold_submits_a_dataflow_job(
    tasks, tmp_path, gcs_bucket):
  task = tasks[component_ids.STATISTICS_GEN]
  shape = executor_input.create(executor_input.VERTEX, 'taxi-tips',
                                str(tmp_path / 'root'), str(tmp_path / 'pods'))
  invocation = shape.executor_input(
      task, _examples(tmp_path / 'examples', THRESHOLD * 3), task.parameters)
  dataflow = DataflowStandIn()
  with loopback.serve(dataflow) as url:
    # The compiled arguments and two of Beam's own options: the stand-in
    # as Dataflow's endpoint (Beam checks a localhost endpoint less), and
    # no credentials.
    argv = [json.dumps(invocation) if arg == '{{$}}' else arg
            for arg in task.container.args] + [
                '--dataflow_endpoint=' + url.replace('127.0.0.1', 'localhost'),
                '--no_auth']
    launcher = rehearsal.Launcher(log_dir=str(tmp_path / 'logs'))
    launcher.run(task.name, task.container.command, argv, 'statistics')

  (create, *polls) = dataflow.requests
  assert create[:2] == ('POST', f'/v1b3/projects/{PROJECT}/locations/'
                        'europe-west3/jobs')
  job = json.loads(create[2])
  (pool,) = job['environment']['workerPools']
  assert pool['machineType'] == 'n1-standard-4'
  assert pool['autoscalingSettings']['maxNumWorkers'] == 4
  image = next(arg.split('=', 1)[1] for arg in task.container.args
               if arg.startswith('--sdk_container_image='))
  assert image in create[2]
  assert ('GET', f'/v1b3/projects/{PROJECT}/locations/europe-west3/jobs/'
          f'{JOB_ID}') in [request[:2] for request in polls]
  # Beam staged the job in the bucket's staging folder.
  assert [blob.name for blob in gcs_bucket.list_blobs(prefix='staging/')]
  # The step logged its choice and recorded it on its output.
  with open(tmp_path / 'logs' / 'statistics.log') as log:
    assert (f'Beam runner for {component_ids.STATISTICS_GEN}: DataflowRunner'
            in log.read())
  with open(invocation['outputs']['outputFile']) as output:
    (statistics,) = json.load(output)['artifacts']['statistics']['artifacts']
  assert statistics['metadata'][beam_runner.RUNNER_PROPERTY] == (
      beam_runner.DATAFLOW)
