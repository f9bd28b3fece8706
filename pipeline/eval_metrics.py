"""The Evaluator's metrics per problem type: one table, importable without TFMA.

For each problem type (models/features.py) the table names the gate metric,
which decides the blessing, and the extra metrics reported alongside it. Each
metric has the class the Evaluator computes (pipeline/eval_config.py builds
the EvalConfig from it), the key the Evaluator reports its value under (what
local/run_summary.py and local/run_report.py read back) and the label the
end-of-run summary prints.
"""
import dataclasses
from typing import Dict, Tuple

from models import features


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

BY_PROBLEM_TYPE: Dict[str, ProblemMetrics] = {
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
GATE_KEYS = tuple(metrics.gate.key for metrics in BY_PROBLEM_TYPE.values())
