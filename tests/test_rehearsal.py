"""The compiled Kubeflow spec runs task by task, as Vertex AI and Kubeflow send it.

The spec is compiled once (kubeflow_runner.py, offline), then rehearsed twice
in each shape on a small slice with few training steps and a low accuracy
gate (the mechanics are under test here, not the model). Tasks run in this
process (the rehearsal's in-process mode) to keep the suite fast; the fault
that needs a real process exit runs one cheap task as a subprocess.

Each Kubeflow Pipelines incompatibility is reproduced with the compatibility
module off, on a task whose input the first run produced, and shown fixed
with it on: the input types and the shutdown crash by running the task, the
directory markers and the model layout by copying its output as the
Kubeflow launcher would (rehearsal/launcher_download.py).
"""
import csv
import gzip
import json
import logging
import os

import pytest

from rehearsal import compiled_spec
from pipeline.kfp_runtime import beam_runner
from pipeline.kfp_runtime import directory_markers
from rehearsal import executor_input
from rehearsal import gcs_standin
from pipeline.kfp_runtime import kfp_compat
from rehearsal import launcher_download
from rehearsal import rehearse as rehearsal
from models import signatures
from pipeline import component_ids
from pipeline import configs
from pipeline.components import columnar_csv_example_gen
from pipeline.components import fitted_schema_gen
from tests import helpers

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
EXAMPLES_TITLE = 'tfx.Examples'
MODEL_TITLE = 'tfx.Model'
BEAM_STEPS = (component_ids.EXAMPLE_GEN, component_ids.STATISTICS_GEN,
              component_ids.TRANSFORM, component_ids.EVALUATOR)


@pytest.fixture(scope='module')
def spec_path(tmp_path_factory):
  return rehearsal.compile_spec(str(tmp_path_factory.mktemp('compiled')),
                                COMPILE_SETTINGS)


@pytest.fixture(scope='module')
def spec(spec_path):
  return compiled_spec.load(spec_path)


# The slice as it may arrive in Cloud Storage: gzipped, with a few rows
# whose label is empty (ExampleGen leaves them out, up to
# MAX_MISSING_LABEL_FRACTION, and counts them).
UNLABELLED_ROWS = 10


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('rehearsal_data'))
  header, rows = helpers.bundled_rows(ROWS)
  label = header.index(configs.load({}).LABEL_KEY)
  for row in rows[::ROWS // UNLABELLED_ROWS]:
    row[label] = ''
  plain = helpers.write_csv(folder, header, rows)
  with open(plain, 'rb') as f, gzip.open(plain + '.gz', 'wb') as out:
    out.write(f.read())
  os.remove(plain)
  return folder


# The log messages of each rehearsal's tasks (absl's logger, INFO and up),
# by the rehearsal's work folder.
_LOGS = {}


class _Messages(logging.Handler):

  def __init__(self):
    super().__init__(logging.INFO)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


def _rehearse(spec_path, small_data, tmp_path_factory, shape):
  work_dir = str(tmp_path_factory.mktemp(f'rehearsal_{shape}'))
  launcher = rehearsal.Launcher(mode=rehearsal.IN_PROCESS, compat=True)
  absl_logger, messages = logging.getLogger('absl'), _Messages()
  level = absl_logger.level
  absl_logger.addHandler(messages)
  absl_logger.setLevel(logging.INFO)
  try:
    results = rehearsal.rehearse(spec_path, shape, work_dir, small_data,
                                 DATA_URI, runs=2, launcher=launcher)
  finally:
    kfp_compat.uninstall()  # in-process: leave TFX as other tests expect it
    absl_logger.removeHandler(messages)
    absl_logger.setLevel(level)
  _LOGS[work_dir] = messages.messages
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
def test_the_small_data_runs_every_beam_step_in_its_container(runs):
  # Compiled with USE_DATAFLOW on: each Beam step chose at run time.
  _, (first, second) = runs
  for result in (first, second):
    chosen = rehearsal.beam_runners(result)
    assert [line.split(':')[0] for line in chosen] == [
        f'Beam runner for {name}' for name in result.tasks
        if name in BEAM_STEPS]
    assert all(': DirectRunner in the container (inputs ' in line
               for line in chosen), chosen
    assert {f'Run {result.number}: {line}' for line in chosen} <= set(
        rehearsal.describe(result))


@pytest.mark.slow
def test_transform_analyses_the_small_data_without_a_beam_pipeline(runs):
  # The step's runner runs in its container, so Transform computes its
  # analysis there without one (pipeline/components/in_process_transform.py),
  # in each of the two runs.
  work_dir, _ = runs
  messages = _LOGS[work_dir]
  assert sum(message == 'Transform analysed 1 dataset(s) in this process.'
             for message in messages) == 2
  assert not [message for message in messages
              if message.startswith("Transform runs TFT's Beam pipeline")]


@pytest.mark.slow
def test_example_gen_reads_the_gzipped_file_and_counts_rows_without_a_label(
    runs):
  _, (first, _) = runs
  examples = _only(rehearsal.outputs_of_type(first, EXAMPLES_TITLE))
  assert (examples[columnar_csv_example_gen.ROWS_PROPERTY],
          examples[columnar_csv_example_gen.ROWS_WITHOUT_LABEL_PROPERTY]) == (
              ROWS, UNLABELLED_ROWS)


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


@pytest.mark.slow
def test_without_a_reviewed_schema_runs_check_the_pushed_models_schema(
    small_data, tmp_path_factory):
  """The compiled spec of a pipeline without a reviewed schema: the first
  run pushes a model with its data's schema; a second run whose
  payment_type has 30 % made-up values stops at the anomaly gate, the
  served model untouched; the same data as the first passes, checked
  against the pushed model's schema."""
  spec_path = rehearsal.compile_spec(
      str(tmp_path_factory.mktemp('compiled_unreviewed')),
      {**COMPILE_SETTINGS, 'SCHEMA_PATH': ''})
  work_dir = str(tmp_path_factory.mktemp('rehearsal_unreviewed'))
  with gzip.open(helpers.csv_path(small_data) + '.gz', 'rt',
                 newline='') as gzipped:  # the fixture's data, gzipped
    header, *rows = list(csv.reader(gzipped))
  column = header.index('payment_type')
  for i, row in enumerate(rows[:int(len(rows) * 0.3)]):
    row[column] = f'Made-up {i % 50}'
  unseen = str(tmp_path_factory.mktemp('unseen'))
  helpers.write_csv(unseen, header, rows)

  def rehearse(data):
    (result,) = rehearsal.rehearse(
        spec_path, executor_input.KFP, work_dir, data, DATA_URI, runs=1,
        launcher=rehearsal.Launcher(mode=rehearsal.IN_PROCESS, compat=True))
    return result

  try:
    first = rehearse(small_data)
    pushed = _only(rehearsal.outputs_of_type(
        first, rehearsal.PUSHED_MODEL))['pushed_destination']
    assert os.path.isfile(os.path.join(pushed, signatures.SCHEMA_IN_MODEL))
    served = helpers.tree_digest(os.path.dirname(pushed))
    with pytest.raises(rehearsal.TaskFailed, match='AnomalyGate: .*'
                       'payment_type: Unexpected string values'):
      rehearse(unseen)
    assert helpers.tree_digest(os.path.dirname(pushed)) == served
    second = rehearse(small_data)
  finally:
    kfp_compat.uninstall()
  reference = second.tasks['SchemaGen'].written['reference_schema']
  assert reference['metadata'][fitted_schema_gen.REFERENCE_PROPERTY] == pushed


def _schema_gen(spec):
  """The task with input artifacts whose only outputs are Schemas: cheap, no
  Beam (the anomaly gate, which reads the anomalies and the schema, and
  writes the checked schema and Transform's copy of it; with a reviewed
  schema, SchemaGen itself reads no artifact)."""
  (task,) = [task for task in compiled_spec.tasks(spec)
             if task.artifacts and
             {executor_input.type_title(d['artifactType'])
              for d in task.output_definitions.values()} == {SCHEMA_TITLE}]
  return task


def _baseline_step(spec):
  """The task with no input artifact whose only output is a Model: the
  Kubeflow target's copy of the newest pushed model (no training)."""
  (task,) = [task for task in compiled_spec.tasks(spec)
             if not task.artifacts and
             [executor_input.type_title(d['artifactType'])
              for d in task.output_definitions.values()] == [MODEL_TITLE]]
  return task


def _rerun_schema_gen(spec, runs, tmp_path, shape_name, launcher,
                      input_types=executor_input.EMPTY_SCHEMA):
  """Runs the schema task again on the first run's upstream outputs."""
  return _rerun(_schema_gen(spec), SCHEMA_TITLE, spec, runs, tmp_path,
                shape_name, launcher, input_types, output_key='checked_schema')


def _rerun(task, output_title, spec, runs, tmp_path, shape_name, launcher,
           input_types=executor_input.EMPTY_SCHEMA, output_key=None):
  """Runs `task` again on the first run's upstream outputs and bucket, its
  outputs under `tmp_path`; returns its result and its `output_title`
  output (the one named `output_key` where it has several)."""
  work_dir, (first, _) = runs
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
                              task.name)
  outputs = result.outputs_of_type(output_title)
  if output_key is not None:
    return result, outputs[output_key]
  (output,) = outputs.values()
  return result, output


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
                                faults=True, gcs_dir=str(tmp_path / 'gcs'))
  with pytest.raises(rehearsal.TaskFailed) as failure:
    _rerun_schema_gen(spec, vertex_runs, tmp_path, executor_input.VERTEX,
                      launcher)
  assert 'exit status -6' in failure.value.reason  # SIGABRT
  assert 'pure virtual method called' in failure.value.log
  # The task had done its work and written its output; the exit lost it.
  written = [os.path.join(folder, name)
             for folder, _, names in os.walk(tmp_path / 'gcs')
             for name in names if name == 'executor_output.json']
  assert len(written) == 1
  # A task process's directories get Cloud Storage's markers too (the
  # checked schema's and Transform's copy's).
  schemas = [folder for folder, _, names in os.walk(tmp_path / 'gcs')
             if 'schema.pbtxt' in names]
  assert len(schemas) == 2
  assert all(gcs_standin.has_marker(schema) for schema in schemas)


@pytest.mark.slow
def test_shutdown_crash_is_fixed_by_the_image_start_up_hook(spec, kfp_runs,
                                                            tmp_path):
  launcher = rehearsal.Launcher(mode=rehearsal.SUBPROCESS, compat=True,
                                faults=True, gcs_dir=str(tmp_path / 'gcs'))
  result, schema = _rerun_schema_gen(spec, kfp_runs, tmp_path,
                                     executor_input.KFP, launcher)
  assert os.path.isfile(os.path.join(schema['uri'], 'schema.pbtxt'))
  assert result.downloaded == len(result.executor_input['inputs'][
      'artifacts'])
  # ...and the image's start-up hook removed the marker of its output.
  assert not gcs_standin.has_marker(schema['uri'])


def _download(artifact, tmp_path):
  """The Kubeflow launcher's copy of `artifact` into a pod under tmp_path."""
  return launcher_download.download_input(
      'input', artifact['uri'], str(tmp_path / 'gcs'), str(tmp_path / 'pod'))


def _pod_copy(artifact, tmp_path):
  relative = os.path.relpath(artifact['uri'], tmp_path / 'gcs')
  return os.path.join(tmp_path, 'pod', 'gcs', relative)


def _markers_under(uri, gcs_dir):
  return [key for key, size in gcs_standin.list_objects(
      *_bucket_and_prefix(uri, gcs_dir))
          if directory_markers.is_marker(key, size)]


@pytest.mark.slow
def test_directory_markers_fail_the_kubeflow_copy_without_the_fix(
    spec, vertex_runs, tmp_path, without_compat):
  without_compat.gcs_dir = str(tmp_path / 'gcs')  # the bucket's markers
  _, schema = _rerun_schema_gen(spec, vertex_runs, tmp_path,
                                executor_input.VERTEX, without_compat)
  # TFX made the artifact's directory through TensorFlow: it has a marker.
  assert gcs_standin.has_marker(schema['uri'])
  with pytest.raises(launcher_download.DownloadFailed) as failure:
    _download(schema, tmp_path)
  local = _pod_copy(schema, tmp_path)
  assert str(failure.value).endswith(f'mkdir {local}: not a directory')


@pytest.mark.slow
def test_directory_markers_are_removed_by_the_image_fix(
    spec, vertex_runs, tmp_path, with_compat):
  with_compat.gcs_dir = str(tmp_path / 'gcs')
  _, schema = _rerun_schema_gen(spec, vertex_runs, tmp_path,
                                executor_input.VERTEX, with_compat)
  assert not gcs_standin.has_marker(schema['uri'])
  _download(schema, tmp_path)
  assert os.path.isfile(os.path.join(_pod_copy(schema, tmp_path),
                                     'schema.pbtxt'))


def _rerun_baseline_step(spec, vertex_runs, tmp_path, launcher):
  """The baseline step's Model, copied again from the first run's push into
  a bucket that gets TensorFlow's markers (Vertex inputs: no other fix)."""
  launcher.gcs_dir = str(tmp_path / 'gcs')
  _, model = _rerun(_baseline_step(spec), MODEL_TITLE, spec, vertex_runs,
                    tmp_path, executor_input.VERTEX, launcher)
  return model


@pytest.mark.slow
def test_the_model_layout_fails_the_kubeflow_copy_without_the_fix(
    spec, vertex_runs, tmp_path, without_compat):
  model = _rerun_baseline_step(spec, vertex_runs, tmp_path, without_compat)
  uri = model['uri']
  assert _markers_under(uri, str(tmp_path / 'gcs'))[:2] == [
      os.path.relpath(uri, tmp_path / 'gcs' / BUCKET) + suffix
      for suffix in ('/', '/Format-Serving/')]
  # Removing the artifact's own marker is not enough: the SavedModel's
  # folders inside TFX's layout have theirs.
  os.removexattr(uri, gcs_standin.MARKER_ATTRIBUTE)
  with pytest.raises(launcher_download.DownloadFailed) as failure:
    _download(model, tmp_path)
  serving = os.path.join(_pod_copy(model, tmp_path), 'Format-Serving')
  assert str(failure.value).endswith(f'mkdir {serving}: not a directory')


@pytest.mark.slow
def test_the_fix_keeps_the_model_layout_and_the_copy_works(
    spec, vertex_runs, tmp_path, with_compat):
  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils
  # pylint: enable=g-import-not-at-top
  model = _rerun_baseline_step(spec, vertex_runs, tmp_path, with_compat)
  serving = path_utils.serving_model_path(model['uri'])
  assert serving == os.path.join(model['uri'], 'Format-Serving')
  assert os.path.isfile(os.path.join(serving, 'saved_model.pb'))
  _download(model, tmp_path)
  copied = os.path.join(_pod_copy(model, tmp_path), 'Format-Serving')
  assert os.path.isfile(os.path.join(copied, 'saved_model.pb'))
  assert os.listdir(os.path.join(copied, 'variables'))


@pytest.mark.slow
def test_kubeflow_runs_copy_every_input_and_leave_no_blocking_marker(
    kfp_runs):
  work_dir, results = kfp_runs
  gcs_dir = os.path.join(work_dir, 'gcs')
  for result in results:
    for task in result.tasks.values():
      assert task.downloaded == len(task.executor_input['inputs'][
          'artifacts'])
      for artifact in task.outputs.values():
        objects = dict(gcs_standin.list_objects(
            *_bucket_and_prefix(artifact['uri'], gcs_dir)))
        assert directory_markers.removable_markers(objects) == []
  # TensorFlow did leave markers in the bucket: above the artifacts (the
  # task folders), none of which the launcher copies.
  assert any(gcs_standin.has_marker(folder) for folder, _, _ in
             os.walk(os.path.join(gcs_dir, BUCKET)))


def _bucket_and_prefix(uri, gcs_dir):
  bucket, _, key = os.path.relpath(uri, gcs_dir).partition(os.sep)
  return os.path.join(gcs_dir, bucket), key + '/'


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
  for name in (gcs_standin.GCS_DIR_ENV, rehearsal.SHUTDOWN_CRASH_ENV):
    assert name not in env


def test_the_rehearsal_hook_comes_first_and_only_where_asked():
  bucket = rehearsal.Launcher(compat=True, gcs_dir='/b').environment()
  assert bucket['PYTHONPATH'].split(os.pathsep)[0] == rehearsal.KFP_FAULTS_DIR
  assert bucket[gcs_standin.GCS_DIR_ENV] == '/b'
  assert rehearsal.SHUTDOWN_CRASH_ENV not in bucket
  crash = rehearsal.Launcher(compat=True, faults=True).environment()
  assert crash['PYTHONPATH'].split(os.pathsep)[0] == rehearsal.KFP_FAULTS_DIR
  assert crash[rehearsal.SHUTDOWN_CRASH_ENV] == '1'
  assert gcs_standin.GCS_DIR_ENV not in crash


def test_without_the_image_hook_dataflow_arguments_become_the_direct_runner():
  args = ['--runner=DataflowRunner', '--project=p', '--region=r',
          '--temp_location=gs://b/tmp', '--sdk_container_image=image',
          '--max_num_workers=4', '--direct_num_workers=2', '--foo=gs://b/x',
          '--dataflow_min_input_bytes=1000']
  assert rehearsal.direct_runner_args(args) == [
      f'--runner={beam_runner.IN_PROCESS_RUNNER}', '--project=p',
      '--temp_location=gs://b/tmp',
      '--sdk_container_image=image', '--direct_num_workers=2',
      '--foo=gs://b/x']


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


def test_span_folders_are_staged_in_the_bucket_as_they_are(tmp_path):
  data = tmp_path / 'data'
  for span in (1, 2):
    (data / f'span-{span}').mkdir(parents=True)
    (data / f'span-{span}' / 'trips.csv').write_text(f'a,b\n{span},2\n')
  (data / 'README.md').write_text('about the data\n')
  (data / '.hidden').write_text('')
  gcs_dir = str(tmp_path / 'gcs')
  rehearsal.stage_data(str(data), DATA_URI, gcs_dir)
  objects = dict(gcs_standin.list_objects(os.path.join(gcs_dir, BUCKET),
                                          'input/data/'))
  assert sorted(objects) == ['input/data/README.md',
                             'input/data/span-1/trips.csv',
                             'input/data/span-2/trips.csv']
  # Staged again with a new span: the bucket holds what the folder holds.
  (data / 'span-3').mkdir()
  (data / 'span-3' / 'trips.csv').write_text('a,b\n3,2\n')
  rehearsal.stage_data(str(data), DATA_URI, gcs_dir)
  assert 'input/data/span-3/trips.csv' in dict(gcs_standin.list_objects(
      os.path.join(gcs_dir, BUCKET), 'input/data/'))


def test_the_summary_names_the_spans_the_trainer_trained_on():
  def task(name, inputs, outputs):
    return rehearsal.TaskResult(name, 0.0, {}, {}, {
        'inputs': {'artifacts': inputs},
        'outputs': {'artifacts': {
            key: {'artifacts': [{'type': {'schemaTitle': title}}]}
            for key, title in outputs.items()}}})
  window = {'examples': {'artifacts': [{'metadata': {'spans': '1,2'}}]}}
  span = {'examples': {'artifacts': [{'metadata': {'span': 2.0}}]}}
  result = rehearsal.RunResult(2, 1.0, {
      'Evaluator': task('Evaluator', span, {'blessing': 'tfx.ModelBlessing'}),
      'Trainer': task('Trainer', window, {'model': 'tfx.Model'}),
  })
  assert rehearsal.trained_spans(result) == [1, 2]
  assert rehearsal.describe(result)[0] == 'Run 2: spans trained on: 1, 2'


def test_keep_bucket_keeps_the_stand_in_bucket_only(tmp_path):
  shape_dir = tmp_path / 'vertex'
  pushed = shape_dir / 'gcs' / BUCKET / 'serving_model' / 'taxi-tips' / '1'
  pushed.mkdir(parents=True)
  (pushed / 'saved_model.pb').write_bytes(b'model')
  (shape_dir / 'logs').mkdir()
  (shape_dir / 'logs' / 'run1-01-CsvExampleGen.log').write_text('old\n')
  assert rehearsal.prepare_shape_dir(str(shape_dir), keep_bucket=True)
  assert os.listdir(shape_dir) == ['gcs']
  assert (pushed / 'saved_model.pb').read_bytes() == b'model'
  assert not rehearsal.prepare_shape_dir(str(shape_dir), keep_bucket=False)
  assert os.listdir(shape_dir) == []
  assert not rehearsal.prepare_shape_dir(str(tmp_path / 'none'), True)
