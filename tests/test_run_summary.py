"""local/run_summary.py: why a model was not blessed, in words, per problem
type."""
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.proto import metrics_for_slice_pb2
from tensorflow_model_analysis.proto import validation_result_pb2

from models import features
from pipeline import eval_config
from pipeline.eval_config import create_eval_config
from local import run_summary


def _failure(problem_type, value, is_diff):
  """A failure of the gate metric of create_eval_config for `problem_type`."""
  problem = features.Problem(label_key='y', problem_type=problem_type)
  config = create_eval_config(problem, 0.85, 0.05, rmse_threshold=70)
  gate_metric = eval_config.METRICS[problem_type].gate
  gate, = [m for m in config.metrics_specs[0].metrics
           if m.class_name == gate_metric.class_name]
  failure = validation_result_pb2.ValidationFailure()
  failure.metric_key.name = gate_metric.key
  failure.metric_key.is_diff = is_diff
  failure.metric_value.double_value.value = value
  failure.metric_threshold.CopyFrom(gate.per_slice_thresholds[0].threshold)
  return failure


def test_classification_failures_in_words():
  assert run_summary._describe_failure(
      _failure(features.BINARY, 0.8123, False)) == (
          'binary_accuracy 0.8123 is below the threshold 0.85')
  assert run_summary._describe_failure(
      _failure(features.MULTICLASS, -0.07, True)) == (
          "sparse_categorical_accuracy is 0.0700 below the baseline model's "
          '(allowed: 0.0500)')


def test_regression_failures_in_words():
  assert run_summary._describe_failure(
      _failure(features.REGRESSION, 81.234, False)) == (
          'root_mean_squared_error 81.23 is above the limit 70.0')
  assert run_summary._describe_failure(
      _failure(features.REGRESSION, 6.5, True)) == (
          "root_mean_squared_error is 6.5 above the baseline model's "
          '(allowed: 5% of it)')


def _accuracy_failure(value, is_diff, lower=None, allowed_drop=None):
  failure = validation_result_pb2.ValidationFailure(
      metric_key=metrics_for_slice_pb2.MetricKey(name='binary_accuracy',
                                                 is_diff=is_diff),
      metric_value=metrics_for_slice_pb2.MetricValue())
  failure.metric_value.double_value.value = value
  threshold = config_pb2.MetricThreshold()
  if lower is not None:
    threshold.value_threshold.lower_bound.value = lower
  if allowed_drop is not None:
    threshold.change_threshold.absolute.value = -allowed_drop
  failure.metric_threshold.CopyFrom(threshold)
  return failure


def test_below_the_threshold_names_metric_value_and_threshold():
  assert run_summary._describe_failure(_accuracy_failure(0.8275, False, lower=0.85)) == (
      'binary_accuracy 0.8275 is below the threshold 0.85')


def test_behind_the_baseline_names_both_values_and_the_allowed_drop():
  text = run_summary._describe_failure(
      _accuracy_failure(-0.03, True, allowed_drop=0.01), {'binary_accuracy': 0.9})
  assert text == ('binary_accuracy 0.8700 is 0.0300 below the baseline '
                  "model's 0.9000 (allowed drop: 0.0100)")
