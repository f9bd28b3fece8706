"""pipeline/run_summary.py: why a model was not blessed, in words."""
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.proto import metrics_for_slice_pb2
from tensorflow_model_analysis.proto import validation_result_pb2

from pipeline import run_summary


def _failure(value, is_diff, lower=None, allowed_drop=None):
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
  assert run_summary._describe_failure(_failure(0.8275, False, lower=0.85)) == (
      'binary_accuracy 0.8275 is below the threshold 0.85')


def test_behind_the_baseline_names_both_values_and_the_allowed_drop():
  text = run_summary._describe_failure(
      _failure(-0.03, True, allowed_drop=0.01), {'binary_accuracy': 0.9})
  assert text == ('binary_accuracy 0.8700 is 0.0300 below the baseline '
                  "model's 0.9000 (allowed drop: 0.0100)")
