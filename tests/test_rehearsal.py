"""The compiled Kubeflow spec runs task by task, as Vertex AI and Kubeflow send it.

The spec is compiled once (kubeflow_runner.py, offline), then rehearsed twice
in each shape on a small slice with few training steps and a low accuracy
gate (the mechanics are under test here, not the model). Tasks run in this
process (the rehearsal's in-process mode) to keep the suite fast; the fault
that needs a real process exit runs one cheap task as a subprocess.

Each Kubeflow Pipelines incompatibility is reproduced with the compatibility
module off, on a task whose input the first run produced, and shown fixed
with it on.
"""
import json
import os

import pytest

from pipeline import compiled_spec
from pipeline import executor_input
from pipeline import kfp_compat
from pipeline import rehearsal
from tests.conftest import write_slice

ROWS = 500
COMPILE_SETTINGS = {
    'GOOGLE_CLOUD_PROJECT': 'rehearsal-test',
    'PIPELINE_IMAGE_TAG': 'test',
    'TRAIN_NUM_STEPS': '40',
    'TRAINER_EVAL_NUM_STEPS': '2',
    # Any trained model passes; the second run's must also be no worse than
    # the first's (same data and seed: the same accuracy).
    'EVAL_ACCURACY_THRESHOLD': '0.5',
}
BUCKET = 'rehearsal-test-taxi-tips'
DATA_URI = f'gs://{BUCKET}/input/data'  # CloudSettings.data_path
SCHEMA_TITLE = 'tfx.Schema'


@pytest.fixture(scope='module')
def spec_path(tmp_path_factory):
  return rehearsal.compile_spec(str(tmp_path_factory.mktemp('compiled')),
                                COMPILE_SETTINGS)


@pytest.fixture(scope='module')
def spec(spec_path):
  return compiled_spec.load(spec_path)


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('rehearsal_data'))
  write_slice(folder, rows=ROWS)
  return folder


def _rehearse(spec_path, small_data, tmp_path_factory, shape):
  work_dir = str(tmp_path_factory.mktemp(f'rehearsal_{shape}'))
  launcher = rehearsal.Launcher(mode=rehearsal.IN_PROCESS, compat=True)
  try:
    results = rehearsal.rehearse(spec_path, shape, work_dir, small_data,
                                 DATA_URI, runs=2, launcher=launcher)
  finally:
    kfp_compat.uninstall()  # in-process: leave TFX as other tests expect it
  return work_dir, results


@pytest.fixture(scope='module')
def vertex_runs(spec_path, small_data, tmp_path_factory):
  return _rehearse(spec_path, small_data, tmp_path_factory,
                   executor_input.VERTEX)


@pytest.fixture(scope='module')
def kfp_runs(spec_path, small_data, tmp_path_factory):
  return _rehearse(spec_path, small_data, tmp_path_factory,
                   executor_input.KFP)


@pytest.fixture(params=executor_input.SHAPES)
def runs(request):
  return request.getfixturevalue(f'{request.param}_runs')


def _only(artifacts):
  assert len(artifacts) == 1, artifacts
  return artifacts[0]['metadata']


def test_the_spec_is_read_in_dependency_order(spec):
  tasks = compiled_spec.tasks(spec)
  position = {task.name: index for index, task in enumerate(tasks)}
  assert set(position) == set(spec['root']['dag']['tasks'])
  for task in tasks:
    for dependency in task.dependencies:
      assert position[dependency] < position[task.name]
  assert all(task.container.command[:2] == ['python', '-m'] for task in tasks)


@pytest.mark.slow
def test_every_task_runs_and_a_model_is_pushed(runs, spec):
  work_dir, (first, second) = runs
  for result in (first, second):
    assert set(result.tasks) == set(spec['root']['dag']['tasks'])
  blessing = _only(rehearsal.outputs_of_type(first, rehearsal.BLESSING))
  assert blessing['blessed'] == 1.0
  assert 'baseline_model_id' not in blessing  # nothing pushed before
  pushed = _only(rehearsal.outputs_of_type(first, rehearsal.PUSHED_MODEL))
  assert pushed['pushed'] == 1.0
  destination = pushed['pushed_destination']
  assert destination.startswith(os.path.join(work_dir, 'gcs', BUCKET,
                                             'serving_model'))
  assert os.path.isfile(os.path.join(destination, 'saved_model.pb'))


@pytest.mark.slow
def test_the_second_run_compares_with_the_first_runs_pushed_model(runs):
  _, (first, second) = runs
  first_push = _only(rehearsal.outputs_of_type(
      first, rehearsal.PUSHED_MODEL))['pushed_destination']
  (evaluator,) = [task for task in second.tasks.values()
                  if task.outputs_of_type(rehearsal.BLESSING)]
  baseline_input = evaluator.executor_input['inputs']['artifacts'][
      'baseline_model']['artifacts'][0]
  # The baseline step copied the first run's push...
  producer = [task for task in second.tasks.values()
              if any(artifact['uri'] == baseline_input['uri']
                     for artifact in task.outputs.values())]
  assert len(producer) == 1
  assert producer[0].written['model']['metadata']['pushed_model'] == (
      first_push)
  # ...and the Evaluator compared the new model with it and blessed it.
  blessing = _only(rehearsal.outputs_of_type(second, rehearsal.BLESSING))
  assert blessing['baseline_model_id'] == baseline_input['name']
  assert blessing['blessed'] == 1.0
  second_push = _only(rehearsal.outputs_of_type(second,
                                                rehearsal.PUSHED_MODEL))
  assert second_push['pushed_destination'] != first_push


@pytest.mark.slow
def test_only_vertex_runs_the_example_gen_driver(spec, vertex_runs,
                                                 kfp_runs):
  hooked = {task.name for task in compiled_spec.tasks(spec)
            if task.container.pre_cache_check}
  assert hooked  # ExampleGen's driver, as lifecycle.preCacheCheck
  for result in vertex_runs[1]:
    assert {name for name, task in result.tasks.items()
            if task.ran_pre_cache_check} == hooked
  for result in kfp_runs[1]:
    assert not any(task.ran_pre_cache_check for task in result.tasks.values())


@pytest.mark.slow
def test_the_kfp_shape_is_what_the_kubeflow_driver_sends(kfp_runs):
  work_dir, (first, _) = kfp_runs
  inputs = [artifact for task in first.tasks.values()
            for listed in task.executor_input['inputs']['artifacts'].values()
            for artifact in listed['artifacts']]
  assert inputs
  for artifact in inputs:
    assert artifact['type'] == {'instanceSchema': ''}
    assert artifact['name'].isdigit()  # the ML Metadata id
    assert artifact['metadata']['display_name']
    assert json.loads(artifact['metadata']['store_session_info'])
  for task in first.tasks.values():
    output_file = task.executor_input['outputs']['outputFile']
    assert output_file.startswith(os.path.join(work_dir, 'pods'))
    assert output_file.endswith('tmp/kfp_outputs/output_metadata.json')


def _schema_gen(spec):
  """The task with input artifacts whose only output is a Schema: cheap, no
  Beam (the anomaly gate, which reads the anomalies and the schema; with a
  reviewed schema, SchemaGen itself reads no artifact)."""
  (task,) = [task for task in compiled_spec.tasks(spec)
             if task.artifacts and
             [executor_input.type_title(d['artifactType'])
              for d in task.output_definitions.values()] == [SCHEMA_TITLE]]
  return task


def _rerun_schema_gen(spec, runs, tmp_path, shape_name, launcher,
                      input_types=executor_input.EMPTY_SCHEMA):
  """Runs the schema task again on the first run's upstream outputs."""
  work_dir, (first, _) = runs
  task = _schema_gen(spec)
  inputs = {key: first.tasks[source.producer_task].outputs[source.output_key]
            for key, source in task.artifacts.items()}
  pipeline_root = rehearsal.localize(compiled_spec.pipeline_root(spec),
                                     str(tmp_path / 'gcs'))
  shape = executor_input.create(shape_name, spec['pipelineInfo']['name'],
                                pipeline_root, str(tmp_path / 'pods'),
                                input_types)
  launcher.log_dir = str(tmp_path / 'logs')
  result = rehearsal.run_task(task, shape, launcher,
                              os.path.join(work_dir, 'gcs'), inputs,
                              'schema')
  (schema,) = result.outputs_of_type(SCHEMA_TITLE).values()
  return result, schema


@pytest.fixture
def without_compat():
  yield rehearsal.Launcher(mode=rehearsal.IN_PROCESS, compat=False)
  kfp_compat.uninstall()


@pytest.fixture
def with_compat():
  yield rehearsal.Launcher(mode=rehearsal.IN_PROCESS, compat=True)
  kfp_compat.uninstall()


# What TFX 1.16's entrypoint raises for each input type the driver may send.
INPUT_TYPE_FAILURES = {
    executor_input.EMPTY_SCHEMA: "'NoneType' object has no attribute 'get'",
    executor_input.UNTYPED: 'UnboundLocalError',
    executor_input.SYSTEM_TITLE: 'system.',
}


@pytest.mark.slow
@pytest.mark.parametrize('input_types', executor_input.KFP_INPUT_TYPES)
def test_kfp_input_types_fail_without_the_fix(spec, kfp_runs, tmp_path,
                                              without_compat, input_types):
  with pytest.raises(rehearsal.TaskFailed) as failure:
    _rerun_schema_gen(spec, kfp_runs, tmp_path, executor_input.KFP,
                      without_compat, input_types)
  assert INPUT_TYPE_FAILURES[input_types] in failure.value.reason


@pytest.mark.slow
@pytest.mark.parametrize('input_types', executor_input.KFP_INPUT_TYPES)
def test_kfp_input_types_pass_with_the_fix(spec, kfp_runs, tmp_path,
                                           with_compat, input_types):
  result, schema = _rerun_schema_gen(spec, kfp_runs, tmp_path,
                                     executor_input.KFP, with_compat,
                                     input_types)
  assert os.path.isfile(os.path.join(schema['uri'], 'schema.pbtxt'))
  sent = result.executor_input['inputs']['artifacts']
  # What was sent names no TFX class: the fix restored the types.
  for listed in sent.values():
    title = executor_input.type_title(listed['artifacts'][0].get('type', {}))
    assert title == '' or title.startswith('system.')


@pytest.mark.slow
def test_vertex_inputs_need_no_fix(spec, vertex_runs, tmp_path,
                                   without_compat):
  _, schema = _rerun_schema_gen(spec, vertex_runs, tmp_path,
                                executor_input.VERTEX, without_compat)
  assert os.path.isfile(os.path.join(schema['uri'], 'schema.pbtxt'))


@pytest.mark.slow
def test_shutdown_crash_fails_the_task_without_the_fix(spec, vertex_runs,
                                                       tmp_path):
  # Vertex's typed inputs need no other fix: only the process exit is tested.
  launcher = rehearsal.Launcher(mode=rehearsal.SUBPROCESS, compat=False,
                                faults=True)
  with pytest.raises(rehearsal.TaskFailed) as failure:
    _rerun_schema_gen(spec, vertex_runs, tmp_path, executor_input.VERTEX,
                      launcher)
  assert 'exit status -6' in failure.value.reason  # SIGABRT
  assert 'pure virtual method called' in failure.value.log
  # The task had done its work and written its output; the exit lost it.
  written = [name for _, _, names in os.walk(tmp_path / 'gcs')
             for name in names if name == 'executor_output.json']
  assert written == ['executor_output.json']


@pytest.mark.slow
def test_shutdown_crash_is_fixed_by_the_image_start_up_hook(spec, kfp_runs,
                                                            tmp_path):
  launcher = rehearsal.Launcher(mode=rehearsal.SUBPROCESS, compat=True,
                                faults=True)
  _, schema = _rerun_schema_gen(spec, kfp_runs, tmp_path, executor_input.KFP,
                                launcher)
  assert os.path.isfile(os.path.join(schema['uri'], 'schema.pbtxt'))


def test_tasks_start_like_the_pipeline_image():
  """The rehearsal's task processes get the image's PYTHONPATH, in order."""
  with open(os.path.join(rehearsal.REPO_ROOT, 'Dockerfile')) as dockerfile:
    (line,) = [line for line in dockerfile
               if line.startswith('ENV PYTHONPATH=')]
  image_path = line.split('=', 1)[1].split('$')[0].rstrip(':\n').split(':')
  workdir = '/pipeline'  # the Dockerfile's WORKDIR, where the repo lands
  expected = [rehearsal.REPO_ROOT + entry[len(workdir):]
              for entry in image_path]
  env = rehearsal.Launcher(compat=True).environment()
  assert env['PYTHONPATH'].split(os.pathsep) == expected
  without = rehearsal.Launcher(compat=False).environment()
  assert without['PYTHONPATH'].split(os.pathsep) == [rehearsal.REPO_ROOT]


def test_dataflow_arguments_become_the_direct_runner():
  args = ['--runner=DataflowRunner', '--project=p', '--region=r',
          '--temp_location=gs://b/tmp', '--sdk_container_image=image',
          '--max_num_workers=4', '--direct_num_workers=2', '--foo=gs://b/x']
  assert rehearsal.direct_runner_args(args) == [
      '--runner=DirectRunner', '--direct_num_workers=2', '--foo=gs://b/x']


def test_gs_paths_map_into_the_local_bucket_folder():
  assert rehearsal.localize({'a': ['gs://b/x', 3], 'b': 'no path'},
                            '/work/gcs/') == {
                                'a': ['/work/gcs/b/x', 3], 'b': 'no path'}


def test_a_metadata_query_step_cannot_run_outside_vertex():
  resolver_spec = {
      'root': {'dag': {'tasks': {'R': {'componentRef': {'name': 'R'}}}}},
      'components': {'R': {'executorLabel': 'R_executor'}},
      'deploymentSpec': {'executors': {'R_executor': {'resolver': {}}}},
  }
  with pytest.raises(compiled_spec.SpecError, match='only container'):
    compiled_spec.tasks(resolver_spec)
