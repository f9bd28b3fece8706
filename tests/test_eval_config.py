"""pipeline/eval_config.py: the Evaluator's configuration, built from the
one metric table."""
import os

import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from tensorflow_model_analysis.metrics import metric_specs

from models import features
from pipeline import eval_config
from pipeline.eval_config import create_eval_config

_GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'testdata', 'eval_config')

# Case name (the golden file's) -> the problem and the slice columns; every
# case uses the same thresholds (_THRESHOLDS).
_CASES = {
    'binary_integer_label': (
        features.Problem('big_tipper', features.BINARY, label_kind='integer'),
        ('payment_type', 'company')),
    'binary_text_label': (
        features.Problem('answer', features.BINARY, label_kind='text'), ()),
    'multiclass': (features.Problem('species', features.MULTICLASS), ('a',)),
    'regression': (
        features.Problem('progression', features.REGRESSION,
                         label_kind='float'), ('sex',)),
}
_THRESHOLDS = dict(accuracy_threshold=0.81, baseline_tolerance=0.02,
                   rmse_threshold=70.0)


def _config(problem_type: str) -> tfma.EvalConfig:
  return create_eval_config(features.Problem('y', problem_type),
                            **_THRESHOLDS)


@pytest.mark.parametrize('case', sorted(_CASES))
def test_eval_config_is_the_reviewed_one(case):
  problem, slice_columns = _CASES[case]
  with open(os.path.join(_GOLDEN, f'{case}.pbtxt')) as golden:
    expected = text_format.Parse(golden.read(), tfma.EvalConfig())
  config = create_eval_config(problem, slice_columns=slice_columns,
                              **_THRESHOLDS)
  assert (text_format.MessageToString(config) ==
          text_format.MessageToString(expected))


def test_every_problem_type_has_a_case():
  assert {problem.problem_type for problem, _ in _CASES.values()} == set(
      features.PROBLEM_TYPES) == set(eval_config.METRICS)


@pytest.mark.parametrize('problem_type', features.PROBLEM_TYPES)
def test_table_keys_are_the_ones_tfma_reports_for_its_classes(problem_type):
  # local/run_summary.py, local/report/run_report.py and local_runner.py read
  # metrics by these keys.
  config = _config(problem_type)
  reported = {key.name: metric_config.class_name
              for key, metric_config, _ in
              metric_specs.keys_and_metrics_from_specs(
                  config, config.metrics_specs)}
  metrics = eval_config.METRICS[problem_type]
  table = (eval_config.EXAMPLE_COUNT, metrics.gate) + metrics.extras
  assert reported == {metric.key: metric.class_name for metric in table}


@pytest.mark.parametrize('problem_type', features.PROBLEM_TYPES)
def test_only_the_table_gate_has_a_threshold(problem_type):
  config = _config(problem_type)
  gated = [metric.class_name for metric in config.metrics_specs[0].metrics
           if metric.per_slice_thresholds or metric.HasField('threshold')]
  assert gated == [eval_config.METRICS[problem_type].gate.class_name]


def test_binary_text_or_unsampled_label_is_read_transformed():
  for kind in ('text', ''):
    problem = features.Problem(label_key='answer',
                               problem_type=features.BINARY, label_kind=kind)
    spec = create_eval_config(problem, 0.8, 0.05).model_specs[0]
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
  config = create_eval_config(problem, 0.8, 0.05)
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
  config = create_eval_config(problem, 0.8, 0.05, rmse_threshold=70)
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
  # Without an RMSE threshold, the Evaluator sets the bar from the trivial
  # model at run time (pipeline/components/quality_gates.py).
  unset = _whole_split_threshold(_metrics(create_eval_config(
      problem, 0.8, 0.05))['RootMeanSquaredError'])
  assert not unset.HasField('value_threshold')
  assert unset.change_threshold == gate.change_threshold


_MARGINS = {features.BINARY: 0.1, features.MULTICLASS: 0.2,
            features.REGRESSION: 0.05}


@pytest.mark.parametrize('problem_type', features.PROBLEM_TYPES)
def test_the_trivial_model_gates_unless_an_absolute_threshold_is_set(
    problem_type):
  problem = features.Problem('y', problem_type)
  unset = eval_config.quality_gates(problem, 0.0, 0.0, _MARGINS, 0.04, 300)
  assert unset.trivial_margin == _MARGINS[problem_type]
  assert (unset.slice_tolerance, unset.slice_min_examples) == (0.04, 300)
  assert eval_config.QualityGates.from_json(unset.to_json()) == unset
  # The absolute threshold of the problem type's gate metric only.
  absolute = (dict(rmse_threshold=9.0) if problem_type == features.REGRESSION
              else dict(accuracy_threshold=0.8))
  other = (dict(accuracy_threshold=0.8) if problem_type == features.REGRESSION
           else dict(rmse_threshold=9.0))
  args = dict(accuracy_threshold=0.0, rmse_threshold=0.0,
              trivial_margins=_MARGINS, slice_tolerance=0.04,
              slice_min_examples=300)
  assert eval_config.quality_gates(
      problem, **{**args, **absolute}).trivial_margin is None
  assert eval_config.quality_gates(
      problem, **{**args, **other}).trivial_margin == _MARGINS[problem_type]
