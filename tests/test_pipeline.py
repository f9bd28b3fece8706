"""pipeline/pipeline.py: the assembled DAG, without running it."""
import json
import subprocess
import sys

import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tfx import components as tfx_components
from tfx.types import standard_artifacts

from models import features
from pipeline.components import atomic_push
from pipeline.components import columnar_evaluator
from pipeline import code_fingerprint
from pipeline import component_ids
from pipeline import configs
from pipeline import eval_config
from pipeline import pipeline as pipeline_factory
from tests import helpers


_PROBLEM = features.Problem(label_key='big_tipper',
                            problem_type=features.BINARY,
                            drop_columns=['tips'],
                            categorical_columns=['trip_start_hour'],
                            label_kind='integer')


def _create(tmp_path, **overrides):
  args = dict(
      pipeline_name='structure-test',
      pipeline_root=str(tmp_path / 'root'),
      data_path=str(tmp_path / 'data'),
      serving_model_dir=str(tmp_path / 'serving'),
      problem=_PROBLEM,
      training=pipeline_factory.Training(steps=123, eval_steps=7, batch_size=32,
                                seed=5),
      evaluation=pipeline_factory.Evaluation(accuracy_threshold=0.81,
                                    baseline_tolerance=0.02))
  args.update(overrides)
  return pipeline_factory.create_pipeline(**args)


@pytest.fixture
def components(tmp_path):
  return {c.id: c for c in _create(tmp_path).components}


def test_all_components_with_stable_ids(tmp_path):
  pipeline = _create(tmp_path)
  ids = [c.id for c in pipeline.components]
  assert sorted(ids) == sorted(component_ids.COMPONENT_IDS)
  assert len(set(ids)) == len(ids) == 10
  assert pipeline.enable_cache


def test_dependencies(components):
  upstream = {cid: sorted(n.id for n in c.upstream_nodes)
              for cid, c in components.items()}
  assert upstream == {
      'CsvExampleGen': [],
      'StatisticsGen': ['CsvExampleGen'],
      'SchemaGen': ['StatisticsGen'],
      'ExampleValidator': ['SchemaGen', 'StatisticsGen'],
      'AnomalyGate': ['ExampleValidator', 'SchemaGen'],
      'Transform': ['AnomalyGate', 'CsvExampleGen'],
      'Trainer': ['AnomalyGate', 'CsvExampleGen', 'Transform'],
      'LatestBlessedModelResolver': [],
      'Evaluator': ['CsvExampleGen', 'LatestBlessedModelResolver', 'Trainer'],
      'Pusher': ['Evaluator', 'Trainer'],
  }


def test_settings_reach_the_components(components):
  trainer = components['Trainer'].exec_properties
  assert json.loads(trainer['train_args'])['num_steps'] == 123
  assert json.loads(trainer['eval_args'])['num_steps'] == 7
  custom = json.loads(trainer['custom_config'])
  assert (custom['batch_size'], custom['seed']) == (32, 5)
  assert trainer['run_fn'] == 'models.model.run_fn'
  transform = components['Transform'].exec_properties
  assert transform['preprocessing_fn'] == (
      'models.preprocessing.preprocessing_fn')
  # Transform writes the graph only; the Trainer transforms raw examples.
  assert 'transformed_examples' not in components['Transform'].outputs
  assert (components['Trainer'].inputs['examples'] is
          components['CsvExampleGen'].outputs['examples'])
  pusher = json.loads(components['Pusher'].exec_properties['push_destination'])
  assert pusher['filesystem']['base_directory'].endswith('serving')


def test_evaluator_gate_uses_threshold_and_baseline_tolerance(components):
  config = json.loads(components['Evaluator'].exec_properties['eval_config'])
  spec = config['model_specs'][0]
  # A 0/1 label is read from the examples as it is: no transform signature
  # needed, so models saved before it existed still serve as baselines.
  assert spec['label_key'] == 'big_tipper'
  assert 'preprocessing_function_names' not in spec
  assert spec['prediction_key'] == 'probabilities'
  metrics = {m['class_name']: m for m in config['metrics_specs'][0]['metrics']}
  assert {'BinaryAccuracy', 'AUC', 'Precision', 'Recall'} <= set(metrics)
  gate, = metrics['BinaryAccuracy']['per_slice_thresholds']
  assert gate['slicing_specs'] == [{}]  # the whole eval split only
  threshold = gate['threshold']
  assert threshold['value_threshold']['lower_bound'] == 0.81
  assert threshold['change_threshold']['absolute'] == -0.02
  assert threshold['change_threshold']['direction'] == 'HIGHER_IS_BETTER'


def test_problem_reaches_transform_and_trainer(components):
  for component in ('Transform', 'Trainer'):
    custom = json.loads(components[component].exec_properties['custom_config'])
    assert features.Problem.from_config(custom) == _PROBLEM


def test_transform_and_trainer_carry_their_own_code_version(components):
  transform = json.loads(components['Transform'].exec_properties[
      'custom_config'])['code_version']
  trainer = json.loads(components['Trainer'].exec_properties[
      'custom_config'])['code_version']
  # The project modules each dotted path's module imports, found from the
  # sources: a helper module the model imports counts without being listed.
  assert transform == code_fingerprint.import_closure_fingerprint(
      pipeline_factory.PREPROCESSING_FN.rpartition('.')[0])
  assert trainer == code_fingerprint.import_closure_fingerprint(
      pipeline_factory.RUN_FN.rpartition('.')[0])
  assert transform != trainer


def test_evaluator_slices_by_the_given_columns(tmp_path):
  pipeline = _create(tmp_path, evaluation=pipeline_factory.Evaluation(
      accuracy_threshold=0.8, baseline_tolerance=0.01,
      slice_columns=('payment_type', 'company')))
  evaluator, = [c for c in pipeline.components if c.id == 'Evaluator']
  config = json.loads(evaluator.exec_properties['eval_config'])
  assert config['slicing_specs'] == [
      {}, {'feature_keys': ['payment_type']}, {'feature_keys': ['company']}]


def test_evaluator_has_the_evaluation_settings(tmp_path):
  evaluation = pipeline_factory.Evaluation(accuracy_threshold=0.7,
                                  baseline_tolerance=0.03, rmse_threshold=9.5,
                                  slice_columns=('company',))
  for problem_type in features.PROBLEM_TYPES:
    problem = features.Problem('y', problem_type)
    evaluator = {c.id: c for c in _create(
        tmp_path, problem=problem, evaluation=evaluation).components}[
            component_ids.EVALUATOR]
    config = json_format.Parse(evaluator.exec_properties['eval_config'],
                               tfma.EvalConfig())
    assert config == eval_config.create_eval_config(problem, 0.7, 0.03, 9.5,
                                                    ('company',))


@pytest.mark.parametrize('problem_type', features.PROBLEM_TYPES)
def test_without_an_absolute_threshold_the_trivial_model_gates(
    tmp_path, problem_type):
  problem = features.Problem('y', problem_type)
  evaluation = pipeline_factory.Evaluation(
      accuracy_threshold=0.0, baseline_tolerance=0.01,
      trivial_margins={t: 0.1 + 0.01 * i
                       for i, t in enumerate(features.PROBLEM_TYPES)},
      slice_tolerance=0.07, slice_min_examples=123)
  evaluator = {c.id: c for c in _create(
      tmp_path, problem=problem, evaluation=evaluation).components}[
          component_ids.EVALUATOR]
  gates = eval_config.QualityGates.from_json(
      evaluator.exec_properties['quality_gates'])
  assert gates == eval_config.QualityGates(
      label_key='y', problem_type=problem_type,
      trivial_margin=evaluation.trivial_margins[problem_type],
      slice_tolerance=0.07, slice_min_examples=123)


def test_reviewed_schema_replaces_inference_under_the_same_id(tmp_path):
  with open(helpers.REVIEWED_SCHEMA) as schema_file:
    text = schema_file.read()
  components = {c.id: c for c in _create(
      tmp_path, data_gates=pipeline_factory.DataGates(
          reviewed_schema_text=text)).components}
  schema_step = components[component_ids.SCHEMA_GEN]
  assert schema_step.exec_properties['schema_text'] == text
  assert not schema_step.upstream_nodes  # nothing inferred from the data
  assert sorted(n.id for n in components['ExampleValidator'].upstream_nodes
               ) == ['SchemaGen', 'StatisticsGen']


def test_the_anomaly_gate_feeds_transform_and_trainer(tmp_path):
  components = {c.id: c for c in _create(
      tmp_path, data_gates=pipeline_factory.DataGates(
          allowed_anomalies='company', min_severity='WARNING')).components}
  gate = components[component_ids.ANOMALY_GATE]
  assert gate.exec_properties['allowed_anomalies'] == 'company'
  assert gate.exec_properties['min_severity'] == 'WARNING'
  # Transform reads the checked schema without its presence-only columns;
  # the Trainer saves the whole of it with the model.
  assert (components['Transform'].inputs['schema'] is
          gate.outputs['transform_schema'])
  assert components['Trainer'].inputs['schema'] is gate.outputs[
      'checked_schema']


def test_without_a_reviewed_schema_data_is_checked_against_the_served_models(
    components, tmp_path):
  schema_step = components[component_ids.SCHEMA_GEN]
  # The served model's schema, from the Pusher's folder (a parameter: the
  # step's cache key stays the data's statistics).
  assert schema_step.exec_properties['serving_model_dir'] == str(
      tmp_path / 'serving')  # where the Pusher pushes (_create)
  assert components['ExampleValidator'].inputs['schema'] is (
      schema_step.outputs['reference_schema'])
  assert components['AnomalyGate'].inputs['schema'] is (
      schema_step.outputs['schema'])
  # DROP_COLUMNS are checked for presence only; the label is not compared
  # for drift.
  assert schema_step.exec_properties['presence_only'] == 'tips'
  assert schema_step.exec_properties['label'] == 'big_tipper'
  assert schema_step.exec_properties['min_domain_mass'] == 0.99


def test_the_pusher_pushes_atomically(components):
  assert (components['Pusher'].executor_spec.executor_class is
          atomic_push.AtomicPushExecutor)


def test_the_evaluator_scores_in_columns(components):
  # TFX's Evaluator component, with the columnar executor (which hands the
  # work to TFMA's Beam pipeline where it does not cover it).
  evaluator = components['Evaluator']
  assert isinstance(evaluator, tfx_components.Evaluator)
  assert (evaluator.executor_spec.executor_class is
          columnar_evaluator.Executor)


def test_incomplete_vertex_ai_settings_are_refused_at_once():
  with pytest.raises(ValueError, match='VertexAI.region'):
    pipeline_factory.VertexAI(training_args={'project': 'p'})


def test_vertex_ai_without_args_changes_nothing(tmp_path):
  local = {c.id: type(c) for c in _create(tmp_path).components}
  with_region = {c.id: type(c) for c in _create(
      tmp_path, vertex_ai=pipeline_factory.VertexAI(region='europe-west3')).components}
  assert with_region == local


def test_component_ids_load_without_tfx():
  # local_runner.py reads them before TensorFlow loads (its checks stay fast).
  code = ('import sys\n'
          'import pipeline.component_ids\n'
          'print(sorted({m.split(".")[0] for m in sys.modules} & '
          '{"tfx", "tensorflow", "tensorflow_model_analysis"}))')
  loaded = subprocess.run([sys.executable, '-c', code], check=True,
                          capture_output=True, text=True,
                          cwd=helpers.REPO).stdout.strip()
  assert loaded == '[]'


def test_settings_reach_the_factory_field_by_field():
  # Distinct values, so a crossed wire between two fields shows.
  settings = configs.load({
      'TRAIN_NUM_STEPS': '11', 'TRAINER_EVAL_NUM_STEPS': '12',
      'TRAIN_BATCH_SIZE': '13', 'RANDOM_SEED': '14',
      'EVAL_ACCURACY_THRESHOLD': '0.61', 'EVAL_BASELINE_TOLERANCE': '0.02',
      'EVAL_RMSE_THRESHOLD': '3.5', 'EVAL_SLICE_COLUMNS': 'a,b',
      'EVAL_TRIVIAL_MARGIN_BINARY': '0.11',
      'EVAL_TRIVIAL_MARGIN_MULTICLASS': '0.12',
      'EVAL_TRIVIAL_MARGIN_REGRESSION': '0.13',
      'EVAL_SLICE_TOLERANCE': '0.06', 'EVAL_SLICE_MIN_EXAMPLES': '77',
      'ALLOWED_ANOMALIES': 'company', 'ANOMALY_MIN_SEVERITY': 'WARNING',
      'DRIFT_ACTION': 'warn', 'TRAIN_WINDOW_SPANS': '4',
      'MAX_MISSING_LABEL_FRACTION': '0.2'})
  assert pipeline_factory.Training.from_settings(settings) == pipeline_factory.Training(
      steps=11, eval_steps=12, batch_size=13, seed=14)
  assert pipeline_factory.Evaluation.from_settings(settings) == pipeline_factory.Evaluation(
      accuracy_threshold=0.61, baseline_tolerance=0.02, rmse_threshold=3.5,
      slice_columns=('a', 'b'),
      trivial_margins={features.BINARY: 0.11, features.MULTICLASS: 0.12,
                       features.REGRESSION: 0.13},
      slice_tolerance=0.06, slice_min_examples=77)
  assert pipeline_factory.DataGates.from_settings(settings, 'schema text') == (
      pipeline_factory.DataGates(reviewed_schema_text='schema text',
                        allowed_anomalies='company', min_severity='WARNING',
                        drift_action='warn', max_missing_label_fraction=0.2))
  assert pipeline_factory.Spans.from_settings(settings, [1, 2]) == pipeline_factory.Spans(
      enabled=True, train_window=4)
  assert pipeline_factory.Spans.from_settings(settings, []) == (
      pipeline_factory.Spans(enabled=False, train_window=4))


def _input_pattern(example_gen) -> str:
  return json.loads(example_gen.exec_properties['input_config'])[
      'splits'][0]['pattern']


def test_span_folders_read_the_newest_span_and_a_window_of_checked_spans(
    tmp_path):
  pipeline = _create(tmp_path, spans=pipeline_factory.Spans(
      enabled=True, train_window=3))
  components = {c.id: c for c in pipeline.components}
  assert sorted(c.id for c in pipeline.components) == sorted(
      component_ids.of_pipeline(spans=True))
  assert _input_pattern(components['CsvExampleGen']) == 'span-{SPAN}/*.csv*'
  assert type(components['StatisticsGen']).__name__ == 'SpanStatisticsGen'
  record = str(tmp_path / 'root' / 'accepted_spans')
  validator = components['ExampleValidator']
  assert type(validator).__name__ == 'SpanDriftValidator'
  assert validator.exec_properties['accepted_spans_dir'] == record
  gate = components['AnomalyGate']
  # The gate records the span it passed; the window reads that record.
  assert {'examples', 'statistics'} <= set(gate.inputs)
  assert gate.exec_properties['accepted_spans_dir'] == record
  assert gate.exec_properties['drift_action'] == 'stop'
  window = components['TrainingWindow']
  assert window.exec_properties == {'accepted_spans_dir': record,
                                    'num_spans': 3}
  assert (window.inputs['examples'] is
          components['CsvExampleGen'].outputs['examples'])
  assert window.inputs['checked_schema'] is gate.outputs['checked_schema']
  # Transform and the Trainer read the same window of raw examples.
  for reader in ('Transform', 'Trainer'):
    assert components[reader].inputs['examples'] is window.outputs['window']
  # The Evaluator judges the newest span: ExampleGen's own output.
  assert (components['Evaluator'].inputs['examples'] is
          components['CsvExampleGen'].outputs['examples'])


def test_a_plain_folder_has_no_window_and_no_drift_check(tmp_path):
  components = {c.id: c for c in _create(tmp_path).components}
  assert 'TrainingWindow' not in components
  # The validator checks presence-only columns too; no drift check.
  assert not components['ExampleValidator'].exec_properties.get(
      'accepted_spans_dir')
  assert 'examples' not in components['AnomalyGate'].inputs
  for reader in ('Transform', 'Trainer'):
    assert (components[reader].inputs['examples'] is
            components['CsvExampleGen'].outputs['examples'])
