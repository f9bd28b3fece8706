"""kubeflow_runner.py compiles both cloud targets offline, as configured.

The targets are compiled once per module in a subprocess with no credentials
and every network route pointing at a closed port, then parsed with KFP's own
protobuf classes and checked against pipeline/configs.py's cloud settings.
"""
import fnmatch
import importlib
import json
import os
import subprocess
import sys

from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
import yaml
from google.protobuf import json_format
from tfx.dsl.components.base import base_beam_executor

from models import features
from pipeline import component_ids
from pipeline import configs
from pipeline import pipeline as pipeline_factory
from pipeline.components import columnar_csv_example_gen
from tests import helpers

_RUNNER = os.path.join(helpers.REPO, 'kubeflow_runner.py')

PROJECT = 'test-project-123'
BUCKET = f'{PROJECT}-taxi-tips'
IMAGE = (f'europe-west3-docker.pkg.dev/{PROJECT}/tfx-pipelines/taxi-tips:'
         'test-tag')
DATAFLOW_ARGS = [
    '--runner=DataflowRunner',
    f'--project={PROJECT}',
    '--region=europe-west3',
    f'--temp_location=gs://{BUCKET}/tmp',
    f'--staging_location=gs://{BUCKET}/staging',
    f'--sdk_container_image={IMAGE}',
    '--machine_type=n1-standard-4',
    '--max_num_workers=4',
    # DATAFLOW_MIN_INPUT_BYTES, for each step's choice at run time.
    f'--dataflow_min_input_bytes={configs.load({}).DATAFLOW_MIN_INPUT_BYTES}',
]
# Task -> the tasks it waits for, in both targets; BASELINE is the target's
# baseline task.
BASELINE = 'baseline'
DAG = {
    'CsvExampleGen': set(),
    'StatisticsGen': {'CsvExampleGen'},
    # The reviewed schema (schema/taxi-tips/schema.pbtxt) needs no statistics.
    'SchemaGen': set(),
    'ExampleValidator': {'StatisticsGen', 'SchemaGen'},
    'AnomalyGate': {'ExampleValidator', 'SchemaGen'},
    'Transform': {'CsvExampleGen', 'AnomalyGate'},
    # Transform analyses the examples; the Trainer reads them itself.
    'Trainer': {'CsvExampleGen', 'Transform', 'AnomalyGate'},
    'Evaluator': {'CsvExampleGen', 'Trainer', BASELINE},
    'Pusher': {'Trainer', 'Evaluator'},
}
VERTEX_RESOLVER = 'LatestBlessedModelResolver-model-resolver'
VERTEX_BLESSING_RESOLVER = 'LatestBlessedModelResolver-model-blessing-resolver'


def offline_env(**settings):
  """The environment of a compile with no credentials and no network."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(('GOOGLE_', 'GCS_', 'CLOUDSDK_', 'PIPELINE_',
                              'USE_', 'VERTEX_', 'DATAFLOW_'))}
  dead = 'http://127.0.0.1:9'  # the discard port: nothing answers
  env.update({
      'HTTP_PROXY': dead, 'HTTPS_PROXY': dead, 'http_proxy': dead,
      'https_proxy': dead, 'NO_PROXY': '', 'no_proxy': '',
      'GCE_METADATA_HOST': '127.0.0.1:9', 'GCE_METADATA_IP': '127.0.0.1:9',
      'GOOGLE_APPLICATION_CREDENTIALS': '/nonexistent/credentials.json',
      'CLOUDSDK_CONFIG': '/nonexistent/gcloud',
  })
  env.update(settings)
  return env


def _run(args, env, cwd=helpers.REPO):
  return subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=300, check=False)


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  """Runs `kubeflow_runner.py --target=all` once; returns (result, outdir)."""
  output_dir = tmp_path_factory.mktemp('compiled')
  result = _run([sys.executable, _RUNNER, '--target=all',
                 f'--output_dir={output_dir}'],
                offline_env(GOOGLE_CLOUD_PROJECT=PROJECT,
                            PIPELINE_IMAGE_TAG='test-tag'))
  assert result.returncode == 0, result.stderr[-3000:]
  return result, output_dir


@pytest.fixture(scope='module')
def vertex_job(compiled):
  _, output_dir = compiled
  with open(output_dir / 'taxi-tips.vertex.json') as job_file:
    return json_format.ParseDict(json.load(job_file),
                                 pipeline_spec_pb2.PipelineJob())


@pytest.fixture(scope='module')
def vertex_spec(vertex_job):
  return _spec(json_format.MessageToDict(vertex_job.pipeline_spec))


@pytest.fixture(scope='module')
def kubeflow_spec(compiled):
  _, output_dir = compiled
  with open(output_dir / 'taxi-tips.kubeflow.yaml') as spec_file:
    return _spec(yaml.safe_load(spec_file))


def _spec(spec_dict):
  """The PipelineSpec and its deployment config (a Struct in the spec)."""
  spec = json_format.ParseDict(spec_dict, pipeline_spec_pb2.PipelineSpec())
  deployment = json_format.ParseDict(
      spec_dict['deploymentSpec'], pipeline_spec_pb2.PipelineDeploymentConfig())
  return spec, deployment


def _executor(spec, task):
  spec, deployment = spec
  label = spec.components[task].executor_label
  return deployment.executors[label]


def _constant(spec, task, parameter):
  value = spec[0].root.dag.tasks[task].inputs.parameters[parameter]
  return value.runtime_value.constant.string_value


def _container_tasks(spec):
  return [t for t in spec[0].root.dag.tasks
          if _executor(spec, t).WhichOneof('spec') == 'container']


def test_prints_both_paths(compiled):
  result, output_dir = compiled
  assert f'{output_dir}/taxi-tips.vertex.json' in result.stdout
  assert f'{output_dir}/taxi-tips.kubeflow.yaml' in result.stdout
  assert IMAGE in result.stdout


def test_vertex_target_is_a_pipeline_job(vertex_job):
  assert vertex_job.display_name == 'taxi-tips'
  assert vertex_job.runtime_config.gcs_output_directory == (
      f'gs://{BUCKET}/output/taxi-tips')
  assert vertex_job.pipeline_spec['pipelineInfo']['name'] == 'taxi-tips'


def test_kubeflow_target_is_a_bare_spec_with_a_root(kubeflow_spec):
  spec, _ = kubeflow_spec
  assert spec.pipeline_info.name == 'taxi-tips'
  assert spec.default_pipeline_root == f'gs://{BUCKET}/output/taxi-tips'
  assert spec.schema_version == '2.1.0'


def test_kubeflow_dag(kubeflow_spec):
  tasks = kubeflow_spec[0].root.dag.tasks
  expected = {t: {component_ids.PUSHED_MODEL_BASELINE
                  if d == BASELINE else d for d in deps}
              for t, deps in DAG.items()}
  expected[component_ids.PUSHED_MODEL_BASELINE] = set()
  assert {t: set(tasks[t].dependent_tasks) for t in tasks} == expected
  baseline = tasks['Evaluator'].inputs.artifacts['baseline_model']
  assert baseline.task_output_artifact.producer_task == (
      component_ids.PUSHED_MODEL_BASELINE)


def test_vertex_dag_keeps_the_resolver(vertex_spec):
  tasks = vertex_spec[0].root.dag.tasks
  expected = {t: {VERTEX_RESOLVER if d == BASELINE else d for d in deps}
              for t, deps in DAG.items()}
  expected[VERTEX_RESOLVER] = set()
  expected[VERTEX_BLESSING_RESOLVER] = set()
  assert {t: set(tasks[t].dependent_tasks) for t in tasks} == expected
  for resolver in (VERTEX_RESOLVER, VERTEX_BLESSING_RESOLVER):
    assert _executor(vertex_spec, resolver).WhichOneof('spec') == 'resolver'
  baseline = tasks['Evaluator'].inputs.artifacts['baseline_model']
  assert baseline.task_output_artifact.producer_task == VERTEX_RESOLVER


def test_kubeflow_target_has_only_container_executors(kubeflow_spec):
  _, deployment = kubeflow_spec
  kinds = {name: e.WhichOneof('spec')
           for name, e in deployment.executors.items()}
  assert set(kinds.values()) == {'container'}, kinds
  assert len(kinds) == len(DAG) + 1


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_one_image_everywhere(target, request):
  spec = request.getfixturevalue(target)
  tasks = _container_tasks(spec)
  assert {_executor(spec, t).container.image for t in tasks} == {IMAGE}
  # The Vertex AI training job and the Dataflow workers run it too.
  trainer = json.loads(_constant(spec, 'Trainer', 'custom_config'))
  pool, = trainer['ai_platform_training_args']['job_spec']['worker_pool_specs']
  assert pool['container_spec']['image_uri'] == IMAGE


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_the_image_holds_every_executor_and_user_function(target, request):
  # The image ships the locked packages, pipeline/ and models/ only: every
  # dotted path a task runs must resolve there, none in a tool package.
  spec = request.getfixturevalue(target)
  paths = set()
  for task in _container_tasks(spec):
    args = list(_executor(spec, task).container.args)
    if '--executor_class_path' in args:
      paths.add(args[args.index('--executor_class_path') + 1])
  paths |= {_constant(spec, 'Transform', 'preprocessing_fn'),
            _constant(spec, 'Trainer', 'run_fn')}
  assert {p.split('.')[0] for p in paths} == {'tfx', 'pipeline', 'models'}
  assert any(p.startswith('pipeline.components.') for p in paths)
  for path in paths:
    module, name = path.rsplit('.', 1)
    assert hasattr(importlib.import_module(module), name), path


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_dataflow_args_on_every_beam_component(target, request):
  spec = request.getfixturevalue(target)
  beam_tasks = []
  for task in _container_tasks(spec):
    container = _executor(spec, task).container
    args = list(container.args)
    module, name = args[args.index('--executor_class_path') + 1].rsplit('.', 1)
    executor_class = getattr(importlib.import_module(module), name)
    if issubclass(executor_class, base_beam_executor.BaseBeamExecutor):
      beam_tasks.append(task)
      assert args[-len(DATAFLOW_ARGS):] == DATAFLOW_ARGS, task
  assert sorted(beam_tasks) == [
      'CsvExampleGen', 'Evaluator', 'StatisticsGen', 'Transform']
  # CsvExampleGen's driver (which resolves the input span) gets them too.
  driver = _executor(spec, 'CsvExampleGen').container.lifecycle.pre_cache_check
  assert list(driver.args[-len(DATAFLOW_ARGS):]) == DATAFLOW_ARGS


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_trainer_runs_on_vertex_ai(target, request):
  spec = request.getfixturevalue(target)
  args = list(_executor(spec, 'Trainer').container.args)
  assert args[args.index('--executor_class_path') + 1] == (
      'tfx.extensions.google_cloud_ai_platform.trainer.executor.'
      'GenericExecutor')
  config = json.loads(_constant(spec, 'Trainer', 'custom_config'))
  assert config['ai_platform_enable_vertex'] is True
  assert config['ai_platform_vertex_region'] == 'europe-west3'
  training = config['ai_platform_training_args']
  assert training['project'] == PROJECT
  pool, = training['job_spec']['worker_pool_specs']
  assert pool['machine_spec'] == {'machine_type': 'n1-standard-4'}
  # The model code's own settings are still there.
  assert {'batch_size', 'seed', 'code_version'} <= set(config)
  assert _constant(spec, 'Trainer', 'run_fn') == pipeline_factory.RUN_FN


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_both_pushers_write_the_folder_and_serve_on_vertex_ai(target,
                                                             request):
  spec = request.getfixturevalue(target)
  args = list(_executor(spec, 'Pusher').container.args)
  assert args[args.index('--executor_class_path') + 1] == (
      'pipeline.components.vertex_push.Executor')
  destination = json.loads(_constant(spec, 'Pusher', 'push_destination'))
  assert destination == {'filesystem': {
      'base_directory': f'gs://{BUCKET}/serving_model/taxi-tips'}}
  config = json.loads(_constant(spec, 'Pusher', 'custom_config'))
  serving = config['vertex_serving']
  assert (serving['project'], serving['region']) == (PROJECT, 'europe-west3')
  assert (serving['model_id'], serving['endpoint_name'], serving['alias'],
          serving['keep_deployed']) == ('taxi-tips', 'taxi-tips',
                                        'production', 0)
  assert serving['serving_image'] == (
      'europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest')
  assert serving['machine_type'] == 'n1-standard-2'
  assert serving['api_endpoint'] == ''
  # The version is labelled with the Evaluator's metrics.
  evaluation = spec[0].root.dag.tasks['Pusher'].inputs.artifacts[
      'model_evaluation'].task_output_artifact
  assert (evaluation.producer_task, evaluation.output_artifact_key) == (
      'Evaluator', 'evaluation')


def test_kubeflow_pusher_and_baseline_share_the_serving_folder(kubeflow_spec):
  serving_dir = f'gs://{BUCKET}/serving_model/taxi-tips'
  destination = json.loads(_constant(kubeflow_spec, 'Pusher',
                                     'push_destination'))
  assert destination == {'filesystem': {'base_directory': serving_dir}}
  assert _constant(kubeflow_spec, component_ids.PUSHED_MODEL_BASELINE,
                   'serving_model_dir') == serving_dir
  args = list(_executor(kubeflow_spec, 'Evaluator').container.args)
  assert args[args.index('--executor_class_path') + 1] == (
      'pipeline.components.serving_baseline.BaselineOptionalExecutor')


def test_kubeflow_baseline_step_is_never_cached(kubeflow_spec):
  tasks = kubeflow_spec[0].root.dag.tasks
  cached = {t for t in tasks if tasks[t].caching_options.enable_cache}
  assert cached == set(DAG)


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_quality_gate_and_data(target, request):
  spec = request.getfixturevalue(target)
  eval_config = json.loads(_constant(spec, 'Evaluator', 'eval_config'))
  accuracy, = [m for m in eval_config['metrics_specs'][0]['metrics']
               if m['class_name'] == 'BinaryAccuracy']
  gate, = accuracy['per_slice_thresholds']
  assert gate['slicing_specs'] == [{}]  # the whole eval split only
  assert gate['threshold']['value_threshold']['lower_bound'] == 0.85
  assert gate['threshold']['change_threshold'] == {
      'absolute': -0.01, 'direction': 'HIGHER_IS_BETTER'}
  # The default EVAL_SLICE_COLUMNS reach the cloud Evaluator too.
  assert eval_config['slicing_specs'] == [{}] + [
      {'feature_keys': [column]} for column in ('payment_type',)]
  # So do the gates it settles from the data: the bundled data's absolute
  # threshold (no trivial model's bar), the slices' tolerance and size.
  defaults = configs.load({})
  assert json.loads(_constant(spec, 'Evaluator', 'quality_gates')) == {
      'label_key': defaults.LABEL_KEY, 'problem_type': 'binary',
      'trivial_margin': None,
      'slice_tolerance': defaults.EVAL_SLICE_TOLERANCE,
      'slice_min_examples': defaults.EVAL_SLICE_MIN_EXAMPLES}
  assert _constant(spec, 'CsvExampleGen', 'input_base') == (
      f'gs://{BUCKET}/input/data')


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_reviewed_schema_and_anomaly_gate_are_compiled_in(target, request):
  spec = request.getfixturevalue(target)
  with open(helpers.REVIEWED_SCHEMA) as f:
    assert _constant(spec, 'SchemaGen', 'schema_text') == f.read()
  assert _constant(spec, 'AnomalyGate', 'min_severity') == 'ERROR'
  assert _executor(spec, 'AnomalyGate').WhichOneof('spec') == 'container'
  transform_schema = spec[0].root.dag.tasks['Transform'].inputs.artifacts[
      'schema'].task_output_artifact
  assert (transform_schema.producer_task,
          transform_schema.output_artifact_key) == ('AnomalyGate',
                                                    'transform_schema')


@pytest.fixture(scope='module')
def specs_without_schema(tmp_path_factory):
  """Both targets compiled for a pipeline with no reviewed schema."""
  output_dir = tmp_path_factory.mktemp('compiled_without_schema')
  result = _run([sys.executable, _RUNNER, '--target=all',
                 f'--output_dir={output_dir}'],
                offline_env(GOOGLE_CLOUD_PROJECT=PROJECT,
                            PIPELINE_IMAGE_TAG='test-tag', SCHEMA_PATH=''))
  assert result.returncode == 0, result.stderr[-3000:]
  with open(output_dir / 'taxi-tips.vertex.json') as job_file:
    vertex = json_format.ParseDict(json.load(job_file),
                                   pipeline_spec_pb2.PipelineJob())
  with open(output_dir / 'taxi-tips.kubeflow.yaml') as spec_file:
    kubeflow = yaml.safe_load(spec_file)
  return {'vertex': _spec(json_format.MessageToDict(vertex.pipeline_spec)),
          'kubeflow': _spec(kubeflow)}


@pytest.mark.parametrize('target', ['vertex', 'kubeflow'])
def test_without_a_reviewed_schema_the_served_models_schema_is_compiled_in(
    specs_without_schema, target):
  # The schema step infers this data's schema and takes the served model's
  # from the serving folder on Cloud Storage, where both Pushers write, as
  # the one the data is checked against.
  spec = specs_without_schema[target]
  tasks = spec[0].root.dag.tasks
  assert set(tasks['SchemaGen'].dependent_tasks) == {'StatisticsGen'}
  assert _constant(spec, 'SchemaGen', 'serving_model_dir') == (
      f'gs://{BUCKET}/serving_model/taxi-tips')
  validated = tasks['ExampleValidator'].inputs.artifacts['schema']
  assert (validated.task_output_artifact.producer_task,
          validated.task_output_artifact.output_artifact_key) == (
              'SchemaGen', 'reference_schema')
  # The columns the model never reads are checked for presence only.
  problem = features.Problem.from_config(
      json.loads(_constant(spec, 'Trainer', 'custom_config')))
  assert 'tips' in problem.drop_columns
  assert _constant(spec, 'SchemaGen', 'presence_only').split('\n') == (
      problem.drop_columns)
  assert _executor(spec, 'SchemaGen').WhichOneof('spec') == 'container'


@pytest.mark.slow
def test_compile_without_a_project_names_the_setting(tmp_path):
  result = _run([sys.executable, _RUNNER, '--target=all',
                 f'--output_dir={tmp_path}'], offline_env())
  assert result.returncode == 2
  assert 'GOOGLE_CLOUD_PROJECT is not set' in result.stderr
  assert not list(tmp_path.iterdir())


def test_invalid_pipeline_name_stops_compilation(tmp_path):
  result = _run([sys.executable, _RUNNER, f'--output_dir={tmp_path}'],
                offline_env(GOOGLE_CLOUD_PROJECT=PROJECT,
                            PIPELINE_NAME='Taxi_Tips'))
  assert result.returncode != 0
  assert "PIPELINE_NAME='Taxi_Tips' is invalid" in result.stderr


def test_data_it_cannot_read_stops_compilation_as_a_data_error(tmp_path):
  # The compile samples the local DATA_PATH for the problem; a Windows-1252
  # export without CSV_ENCODING is the data's problem, named with the fix.
  os.makedirs(tmp_path / 'data')
  (tmp_path / 'data' / 'data.csv').write_bytes(
      'sted,label\nØrje,1\nÅs,0\n'.encode('cp1252'))
  result = _run([sys.executable, _RUNNER, f'--output_dir={tmp_path / "out"}'],
                offline_env(GOOGLE_CLOUD_PROJECT=PROJECT,
                            DATA_PATH=str(tmp_path / 'data'),
                            LABEL_KEY='label', PROBLEM_TYPE='binary'))
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      f"data error: {tmp_path / 'data' / 'data.csv'}: not UTF-8 text (byte "
      "0xd8): Windows-1252 or Latin-1, as a spreadsheet's plain \"CSV\" "
      "export writes ø and å? Set CSV_ENCODING='cp1252'"), result.stderr
  assert not os.path.exists(tmp_path / 'out')


def test_make_compile_requires_a_project():
  result = _run(['make', '--no-print-directory', 'compile'], offline_env())
  assert result.returncode != 0
  assert 'set GOOGLE_CLOUD_PROJECT' in result.stderr


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_problem_description_travels_inside_the_compiled_pipeline(target,
                                                                  request):
  # The containers have no user environment: Transform and the Trainer read
  # the problem (label, problem type, column roles) from their custom_config.
  spec = request.getfixturevalue(target)
  for task in ('Transform', 'Trainer'):
    config = json.loads(_constant(spec, task, 'custom_config'))
    problem = features.Problem.from_config(config)
    assert problem.label_key == 'big_tipper'  # the taxi default
    assert problem.problem_type == features.BINARY
    assert 'tips' in problem.drop_columns
  # ExampleGen leaves out rows without a label, up to the setting's share,
  # and reads every data file (`*.csv`, `*.csv.gz`, ...) of the folder.
  reading = columnar_csv_example_gen.Reading.from_exec_properties(
      {'custom_config': _constant(spec, 'CsvExampleGen', 'custom_config')})
  assert (reading.label_key, reading.max_missing_label_fraction) == (
      'big_tipper', configs.load({}).MAX_MISSING_LABEL_FRACTION)
  input_config = json.loads(_constant(spec, 'CsvExampleGen', 'input_config'))
  assert fnmatch.filter(['data.csv', 'data.csv.gz', 'notes.md'],
                        input_config['splits'][0]['pattern']) == [
                            'data.csv', 'data.csv.gz']


@pytest.mark.parametrize('target', ['vertex_spec', 'kubeflow_spec'])
def test_every_step_holds_the_run_lease_and_the_last_releases_it(target,
                                                                 request):
  spec = request.getfixturevalue(target)
  root = (request.getfixturevalue('vertex_job').runtime_config
          .gcs_output_directory if target == 'vertex_spec' else
          spec[0].default_pipeline_root)
  assert root.startswith(f'gs://{BUCKET}/')
  seen = {}
  for task in _container_tasks(spec):
    env = {item.name: item.value
           for item in _executor(spec, task).container.env}
    seen[task] = json.loads(env['TFX_RUN_LEASE'])
  assert set(seen) == set(_container_tasks(spec))
  releasing = {task for task, lease in seen.items() if lease['releases']}
  # The Pusher is the one step no other step waits for.
  assert releasing == {'Pusher'}
  for lease in seen.values():
    # Beside the run folders the orchestrator makes under the pipeline root.
    assert lease['root'] == root
    # The settings the spec was compiled with (the defaults).
    assert lease['mode'] == configs.load({}).CONCURRENT_RUNS
    assert lease['ttl_seconds'] == configs.load({}).RUN_LEASE_TTL_MINUTES * 60
