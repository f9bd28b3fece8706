"""pipeline/pipeline.py: the assembled DAG, without running it."""
import json

import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from models import features
from pipeline.components import atomic_push
from pipeline import code_version
from pipeline import pipeline as factory
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
      train_steps=123,
      eval_steps=7,
      batch_size=32,
      seed=5,
      problem=_PROBLEM,
      eval_accuracy_threshold=0.81,
      eval_baseline_tolerance=0.02)
  args.update(overrides)
  return factory.create_pipeline(**args)


@pytest.fixture
def components(tmp_path):
  return {c.id: c for c in _create(tmp_path).components}


def test_all_components_with_stable_ids(tmp_path):
  pipeline = _create(tmp_path)
  ids = [c.id for c in pipeline.components]
  assert sorted(ids) == sorted(factory.COMPONENT_IDS)
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
      'Trainer': ['AnomalyGate', 'Transform'],
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


def test_binary_text_or_unsampled_label_is_read_transformed():
  for kind in ('text', ''):
    problem = features.Problem(label_key='answer',
                               problem_type=features.BINARY, label_kind=kind)
    spec = factory.create_eval_config(problem, 0.8, 0.05).model_specs[0]
    assert spec.label_key == 'answer_xf'
    assert spec.preprocessing_function_names == ['transform_features']


def _metrics(config):
  return {m.class_name: m for m in config.metrics_specs[0].metrics}


def _whole_split_threshold(metric):
  """The metric's threshold, checked to apply to the whole split only."""
  assert not metric.HasField('threshold')
  per_slice, = metric.per_slice_thresholds
  assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()]
  return per_slice.threshold


def test_multiclass_gate_is_sparse_categorical_accuracy():
  problem = features.Problem(label_key='species',
                             problem_type=features.MULTICLASS)
  config = factory.create_eval_config(problem, 0.8, 0.05)
  metrics = _metrics(config)
  assert set(metrics) == {'ExampleCount', 'SparseCategoricalAccuracy'}
  gate = _whole_split_threshold(metrics['SparseCategoricalAccuracy'])
  assert gate.value_threshold.lower_bound.value == 0.8
  assert gate.change_threshold.absolute.value == -0.05
  # Class names: the class index as the model sees it, through the model's
  # transform signature.
  assert config.model_specs[0].label_key == 'species_xf'
  assert config.model_specs[0].preprocessing_function_names == [
      'transform_features']
  assert config.model_specs[0].prediction_key == 'probabilities'


def test_regression_gate_is_an_rmse_bound_and_a_relative_change():
  problem = features.Problem(label_key='progression',
                             problem_type=features.REGRESSION)
  config = factory.create_eval_config(problem, 0.8, 0.05, rmse_threshold=70)
  metrics = _metrics(config)
  assert set(metrics) == {'ExampleCount', 'RootMeanSquaredError',
                          'MeanAbsoluteError'}
  gate = _whole_split_threshold(metrics['RootMeanSquaredError'])
  assert gate.value_threshold.upper_bound.value == 70
  assert gate.change_threshold.relative.value == 0.05
  assert gate.change_threshold.direction == (
      tfma.MetricDirection.LOWER_IS_BETTER)
  assert config.model_specs[0].prediction_key == 'predictions'
  assert config.model_specs[0].label_key == 'progression'  # in its units
  with pytest.raises(ValueError, match='rmse_threshold'):
    factory.create_eval_config(problem, 0.8, 0.05)


def test_run_summary_metric_names_are_the_ones_tfma_reports():
  # local/run_summary.py and local_runner.py read metrics by these names.
  for problem_type in features.PROBLEM_TYPES:
    problem = features.Problem(label_key='y', problem_type=problem_type)
    config = factory.create_eval_config(problem, 0.8, 0.05, 1.0)
    names = {key.name for key, _, _ in
             metric_specs.keys_and_metrics_from_specs(
                 config, config.metrics_specs)}
    expected = {factory.GATE_METRIC[problem_type],
                factory.EXAMPLE_COUNT_METRIC}
    expected |= {name for _, name in factory.EXTRA_METRICS[problem_type]}
    assert expected <= names, (problem_type, names)


def test_problem_reaches_transform_and_trainer(components):
  for component in ('Transform', 'Trainer'):
    custom = json.loads(components[component].exec_properties['custom_config'])
    assert features.Problem.from_config(custom) == _PROBLEM


def test_code_fingerprints_follow_the_source(tmp_path, monkeypatch):
  package = tmp_path / 'fingerprint_pkg'
  package.mkdir()
  (package / '__init__.py').write_text('')
  (package / 'a.py').write_text('X = 1\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  before = code_version.source_fingerprint(['fingerprint_pkg.a'])
  assert before == code_version.source_fingerprint(['fingerprint_pkg.a'])
  (package / 'a.py').write_text('X = 2\n')
  assert code_version.source_fingerprint(['fingerprint_pkg.a']) != before
  with pytest.raises(ValueError, match='no_such_module'):
    code_version.source_fingerprint(['no_such_module'])


def test_transform_and_trainer_carry_their_own_code_version(components):
  transform = json.loads(components['Transform'].exec_properties[
      'custom_config'])['code_version']
  trainer = json.loads(components['Trainer'].exec_properties[
      'custom_config'])['code_version']
  assert transform == code_version.source_fingerprint(
      factory.PREPROCESSING_MODULES)
  assert trainer == code_version.source_fingerprint(factory.TRAINING_MODULES)
  assert transform != trainer


def test_evaluator_slices_by_the_given_columns(tmp_path):
  pipeline = _create(tmp_path, eval_slice_columns=('payment_type', 'company'))
  evaluator, = [c for c in pipeline.components if c.id == 'Evaluator']
  config = json.loads(evaluator.exec_properties['eval_config'])
  assert config['slicing_specs'] == [
      {}, {'feature_keys': ['payment_type']}, {'feature_keys': ['company']}]
  problem = features.Problem(label_key='big_tipper',
                             problem_type=features.BINARY)
  assert [list(spec.feature_keys) for spec in factory.create_eval_config(
      problem, 0.8, 0.01).slicing_specs] == [[]]


def test_reviewed_schema_replaces_inference_under_the_same_id(tmp_path):
  with open(helpers.REVIEWED_SCHEMA) as schema_file:
    text = schema_file.read()
  components = {c.id: c for c in _create(
      tmp_path, reviewed_schema_text=text).components}
  schema_step = components[factory.SCHEMA_GEN]
  assert schema_step.exec_properties['schema_text'] == text
  assert not schema_step.upstream_nodes  # nothing inferred from the data
  assert sorted(n.id for n in components['ExampleValidator'].upstream_nodes
               ) == ['SchemaGen', 'StatisticsGen']


def test_the_anomaly_gate_feeds_transform_and_trainer(tmp_path):
  components = {c.id: c for c in _create(
      tmp_path, allowed_anomalies='company', anomaly_min_severity='WARNING'
  ).components}
  gate = components[factory.ANOMALY_GATE]
  assert gate.exec_properties['allowed_anomalies'] == 'company'
  assert gate.exec_properties['min_severity'] == 'WARNING'
  checked = gate.outputs['checked_schema']
  assert components['Transform'].inputs['schema'] is checked
  assert components['Trainer'].inputs['schema'] is checked


def test_the_pusher_pushes_atomically(components):
  assert (components['Pusher'].executor_spec.executor_class is
          atomic_push.AtomicPushExecutor)
