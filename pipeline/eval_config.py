"""The Evaluator's configuration: which metrics, and when a model is blessed.

One table, `METRICS`, names for each problem type (models/features.py) the
gate metric, which decides the blessing, and the extra metrics reported with
it: the class the Evaluator computes, the key it reports the value under and
the label the end-of-run summary prints. `create_eval_config` builds the
EvalConfig from it; local/run_summary.py, local/report/run_report.py, the runner's
summary and the benchmarks read metric names from it.
"""
import dataclasses
import json
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import tensorflow_model_analysis as tfma

from models import features
from models import signatures as model_outputs


@dataclasses.dataclass(frozen=True)
class Metric:
  """One metric the Evaluator computes and reports.

  Attributes:
    class_name: the TFMA or Keras metric class (tfma.MetricConfig.class_name).
    key: the name the Evaluator reports the value under (the metric's
      default name, e.g. 'binary_accuracy' for BinaryAccuracy).
    label: how the end-of-run summary names it.
  """
  class_name: str
  key: str
  label: str


@dataclasses.dataclass(frozen=True)
class ProblemMetrics:
  """The metrics of one problem type.

  Attributes:
    gate: the metric with the thresholds that decide the blessing (the
      accuracy of a classification, the RMSE of a regression).
    extras: reported alongside the gate, never gating.
  """
  gate: Metric
  extras: Tuple[Metric, ...] = ()


# Reported for every problem type: the number of eval examples.
EXAMPLE_COUNT = Metric('ExampleCount', 'example_count', 'eval examples')

METRICS: Dict[str, ProblemMetrics] = {
    features.BINARY: ProblemMetrics(
        gate=Metric('BinaryAccuracy', 'binary_accuracy', 'accuracy'),
        extras=(Metric('AUC', 'auc', 'AUC'),
                Metric('Precision', 'precision', 'precision'),
                Metric('Recall', 'recall', 'recall'))),
    features.MULTICLASS: ProblemMetrics(
        gate=Metric('SparseCategoricalAccuracy', 'sparse_categorical_accuracy',
                    'accuracy')),
    features.REGRESSION: ProblemMetrics(
        gate=Metric('RootMeanSquaredError', 'root_mean_squared_error', 'RMSE'),
        extras=(Metric('MeanAbsoluteError', 'mean_absolute_error', 'MAE'),)),
}

# The gate metric's key of every problem type (a run reports one of them).
GATE_KEYS = tuple(metrics.gate.key for metrics in METRICS.values())


def create_eval_config(problem: features.Problem,
                       accuracy_threshold: float,
                       baseline_tolerance: float,
                       rmse_threshold: float = 0.0,
                       slice_columns: Sequence[str] = ()) -> tfma.EvalConfig:
  """What the Evaluator computes and when it blesses a model.

  Classification: blessed when accuracy >= `accuracy_threshold` and, if a
  previously blessed model exists, accuracy >= the baseline's accuracy -
  `baseline_tolerance`. Regression: blessed when the RMSE <= `rmse_threshold`
  and at most `baseline_tolerance` (a fraction) above the baseline's RMSE.
  An absolute threshold of 0 is unset: the gate then has no value threshold
  here, and the Evaluator sets one at run time from the trivial model
  (QualityGates; pipeline/components/quality_gates.py), as it adds the
  per-slice thresholds. The example count and the problem type's extra
  metrics (binary: AUC, precision, recall; regression: MAE) are reported
  alongside; see METRICS.

  Args:
    problem: the problem description (models/features.py).
    accuracy_threshold: the lowest accepted accuracy, 0..1 (classification);
      0: none.
    baseline_tolerance: how far the candidate may fall behind the baseline.
    rmse_threshold: the highest accepted RMSE (regression); 0: none.
    slice_columns: raw columns to report every metric per value of, besides
      the whole eval split (EVAL_SLICE_COLUMNS in pipeline/configs.py).

  Returns:
    The Evaluator's EvalConfig.
  """
  bound = absolute_threshold(problem.problem_type, accuracy_threshold,
                             rmse_threshold)
  gate_threshold = tfma.MetricThreshold(change_threshold=change_threshold(
      problem.problem_type, baseline_tolerance))
  if bound:
    gate_threshold.value_threshold.CopyFrom(
        value_threshold(problem.problem_type, bound))
  return tfma.EvalConfig(
      model_specs=[_model_spec(problem)],
      slicing_specs=_slicing_specs(slice_columns),
      # Only the metrics of the table: the model's own compiled Keras metrics
      # would be reported under clashing names ('auc', 'accuracy').
      options=tfma.Options(include_default_metrics={'value': False}),
      metrics_specs=[_metrics_spec(
          METRICS[problem.problem_type], gate_threshold)])


def absolute_threshold(problem_type: str, accuracy_threshold: float,
                       rmse_threshold: float) -> float:
  """The absolute bar of `problem_type`'s gate metric (0: none): the
  accuracy threshold of a classification, the RMSE threshold of a
  regression."""
  return (rmse_threshold if problem_type == features.REGRESSION
          else accuracy_threshold)


def higher_is_better(problem_type: str) -> bool:
  """Whether a higher gate metric is better (accuracy, not RMSE)."""
  return problem_type != features.REGRESSION


def value_threshold(problem_type: str,
                    bound: float) -> tfma.GenericValueThreshold:
  """The gate metric at least `bound` (accuracy) or at most it (RMSE)."""
  if higher_is_better(problem_type):
    return tfma.GenericValueThreshold(lower_bound={'value': bound})
  return tfma.GenericValueThreshold(upper_bound={'value': bound})


def change_threshold(problem_type: str,
                     tolerance: float) -> tfma.GenericChangeThreshold:
  """The gate metric at most `tolerance` below the baseline's (accuracy,
  absolute) or at most `tolerance`, a fraction of the baseline's value,
  above it (RMSE)."""
  if higher_is_better(problem_type):
    return tfma.GenericChangeThreshold(
        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
        absolute={'value': -tolerance})
  return tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.LOWER_IS_BETTER,
      relative={'value': tolerance})


@dataclasses.dataclass(frozen=True)
class QualityGates:
  """The gates the Evaluator settles at run time, from the data.

  The EvalConfig is fixed when the pipeline is built; what depends on the
  data is not: the trivial model's score (it needs the train split's
  labels) and which slices are large enough to hold to the baseline. The
  Evaluator (pipeline/components/quality_gates.py) reads the labels, adds
  those thresholds to the EvalConfig and lets TFMA validate as always.

  Attributes:
    label_key: the raw label column.
    problem_type: as models/features.py.
    trivial_margin: None when an absolute threshold is the gate; else the
      fraction of the trivial model's errors (its RMSE, for a regression)
      the model must do without (EVAL_TRIVIAL_MARGIN_*).
    slice_tolerance: how far behind the baseline the model may fall on a
      slice (EVAL_SLICE_TOLERANCE; as EVAL_BASELINE_TOLERANCE).
    slice_min_examples: the slices held to the baseline have at least this
      many eval examples (EVAL_SLICE_MIN_EXAMPLES).
  """
  label_key: str
  problem_type: str
  trivial_margin: Optional[float]
  slice_tolerance: float
  slice_min_examples: int

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'QualityGates':
    return cls(**json.loads(text))

  @property
  def metric(self) -> Metric:
    """The gate metric."""
    return METRICS[self.problem_type].gate


def quality_gates(problem: features.Problem, accuracy_threshold: float,
                  rmse_threshold: float, trivial_margins: Mapping[str, float],
                  slice_tolerance: float,
                  slice_min_examples: int) -> QualityGates:
  """The run-time gates for `problem`: the trivial model's, unless an
  absolute threshold is set (see create_eval_config), and the slices'.

  Args:
    problem: the problem description.
    accuracy_threshold, rmse_threshold: as create_eval_config.
    trivial_margins: problem type -> EVAL_TRIVIAL_MARGIN_<TYPE>.
    slice_tolerance: EVAL_SLICE_TOLERANCE.
    slice_min_examples: EVAL_SLICE_MIN_EXAMPLES.

  Returns:
    The Evaluator's quality_gates parameter, as an object.
  """
  absolute = absolute_threshold(problem.problem_type, accuracy_threshold,
                                rmse_threshold)
  return QualityGates(
      label_key=problem.label_key, problem_type=problem.problem_type,
      trivial_margin=None if absolute else float(
          trivial_margins[problem.problem_type]),
      slice_tolerance=float(slice_tolerance),
      slice_min_examples=int(slice_min_examples))


def _model_spec(problem: features.Problem) -> tfma.ModelSpec:
  """Where the Evaluator finds the predictions and the label.

  The predictions come from the model's serialized-example signature: no
  signature name is given, so TFMA calls 'predict' (EXAMPLES_SIGNATURE) when
  the model has one, and 'serving_default' otherwise, which is where models
  saved before 'serving_default' took JSON rows take examples; a baseline of
  either kind is scored like the candidate. That needs the model loaded as a
  plain SavedModel (TF_GENERIC: a Keras model would be called directly). A
  numeric binary or regression label is read from the examples as it is (as
  models saved before the transform signature existed need, when they are the
  baseline); any other label is the transformed one (a class index), read
  through the model's transform signature, so both sides use the same
  classes.

  Args:
    problem: the problem description.

  Returns:
    The spec of the candidate model (TFMA adds the baseline's).
  """
  raw_label = problem.evaluates_raw_label
  return tfma.ModelSpec(
      model_type=tfma.TF_GENERIC,
      prediction_key=(model_outputs.PROBABILITIES if problem.is_classification
                      else model_outputs.PREDICTIONS),
      label_key=problem.label_key if raw_label else problem.label_feature,
      preprocessing_function_names=(
          [] if raw_label else [model_outputs.TRANSFORM_SIGNATURE]))


def _slicing_specs(slice_columns: Sequence[str]) -> List[tfma.SlicingSpec]:
  """The whole eval split, then one slice per value of each column."""
  return [tfma.SlicingSpec()] + [
      tfma.SlicingSpec(feature_keys=[column]) for column in slice_columns]


def _metrics_spec(metrics: ProblemMetrics,
                  gate_threshold: tfma.MetricThreshold) -> tfma.MetricsSpec:
  """The example count, the gate with its threshold, then the extras."""
  # The gate applies to the whole eval split only: a plain `threshold` would
  # also apply to every slice, and small slices would fail it by chance.
  gate = tfma.MetricConfig(
      class_name=metrics.gate.class_name,
      per_slice_thresholds=[tfma.PerSliceMetricThreshold(
          slicing_specs=[tfma.SlicingSpec()], threshold=gate_threshold)])
  return tfma.MetricsSpec(metrics=(
      [tfma.MetricConfig(class_name=EXAMPLE_COUNT.class_name),
       gate] +
      [tfma.MetricConfig(class_name=metric.class_name)
       for metric in metrics.extras]))
