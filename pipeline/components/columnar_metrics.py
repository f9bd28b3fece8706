"""TFMA's metrics computed over whole columns of labels and predictions.

TFMA computes a metric with a Beam combiner that takes one example at a
time; on Beam's local runner the per-example Python (unbatching, slicing,
each combiner's `add_input`) is most of the Evaluator's time. For the
combiners the pipeline's binary metrics need (the example count, confusion
matrices at fixed thresholds and the calibration histogram that AUC reads),
this module fills the combiner's accumulator from numpy columns in one pass
and then hands it to TFMA's own code: the combiner's `extract_output`, the
derived metrics (accuracy, AUC, precision, recall), the baseline diffs and
the validation against the thresholds. So the numbers are TFMA's, up to the
order of floating-point sums.

`computations` says whether an EvalConfig is covered (it raises
`Unsupported` otherwise) and `sliced_metrics` computes every slice's
metrics.
"""
import copy
import dataclasses
from typing import Any, Dict, Iterator, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.contrib.aggregates import binary_confusion_matrices as bcm
from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator as tfma_evaluator
from tensorflow_model_analysis.metrics import binary_confusion_matrices
from tensorflow_model_analysis.metrics import calibration_histogram
from tensorflow_model_analysis.metrics import example_count
from tensorflow_model_analysis.metrics import metric_specs
from tensorflow_model_analysis.metrics import metric_types

SliceKey = Tuple[Tuple[str, Any], ...]  # TFMA's: () is the whole split


class Unsupported(Exception):
  """The configuration needs TFMA's own evaluator; the message says why."""


@dataclasses.dataclass
class Columns:
  """One value per eval example.

  Attributes:
    labels: model name -> float labels (each model reads its own label).
    predictions: model name -> float predictions.
    slice_values: column -> the column's value per example (None: none).
  """
  labels: Dict[str, np.ndarray]
  predictions: Dict[str, np.ndarray]
  slice_values: Dict[str, List[Any]]


def computations(eval_config: tfma.EvalConfig
                 ) -> 'tfma_evaluator.MetricComputations':
  """TFMA's computations for `eval_config`, if this module covers them.

  Args:
    eval_config: the EvalConfig after TFMA's defaults (model names set).

  Returns:
    The computations, separated into combiner-based and derived ones.

  Raises:
    Unsupported: a metric, option or slice this module does not compute.
  """
  options = eval_config.options
  if (eval_config.cross_slicing_specs or
      options.compute_confidence_intervals.value or
      options.min_slice_size.value > 1 or
      any(spec.query_key or spec.example_weights.weighted
          for spec in eval_config.metrics_specs) or
      any(spec.example_weight_key or spec.example_weight_keys
          for spec in eval_config.model_specs)):
    raise Unsupported('cross slices, confidence intervals, minimum slice '
                      'sizes, queries or example weights')
  for spec in eval_config.slicing_specs:
    if spec.feature_values or spec.slice_keys_sql:
      raise Unsupported('slices by feature values or SQL')
  separated = tfma_evaluator._filter_and_separate_computations(  # pylint: disable=protected-access
      metric_specs.to_computations(eval_config.metrics_specs,
                                   eval_config=eval_config))
  if separated.cross_slice_computations or separated.ci_derived_computations:
    raise Unsupported('cross-slice or confidence-interval metrics')
  for computation in separated.non_derived_computations:
    _check_combiner(computation)
  return separated


def _check_combiner(computation) -> None:
  """Raises Unsupported unless `computation` is one this module fills."""
  for preprocessor in computation.preprocessors or []:
    if (type(preprocessor) is not  # pylint: disable=unidiomatic-typecheck
        metric_types.StandardMetricInputsPreprocessor):
      raise Unsupported(f'preprocessor {type(preprocessor).__name__}')
  combiner = computation.combiner
  if any(key.output_name or key.sub_key or key.aggregation_type
         for key in computation.keys):
    raise Unsupported('multi-output models, sub keys or aggregation')
  if isinstance(combiner, example_count._ExampleCountCombiner):  # pylint: disable=protected-access
    if combiner._example_weighted:  # pylint: disable=protected-access
      raise Unsupported('weighted example count')
  elif isinstance(combiner,
                  binary_confusion_matrices._BinaryConfusionMatrixCombiner):  # pylint: disable=protected-access
    if (combiner._example_id_key or combiner._aggregation_type or  # pylint: disable=protected-access
        combiner._class_weights or combiner._example_weighted):  # pylint: disable=protected-access
      raise Unsupported('confusion matrices with examples or weights')
  elif isinstance(combiner,
                  calibration_histogram._CalibrationHistogramCombiner):  # pylint: disable=protected-access
    if (combiner._aggregation_type or combiner._class_weights or  # pylint: disable=protected-access
        combiner._example_weighted or  # pylint: disable=protected-access
        not combiner._prediction_based_bucketing):  # pylint: disable=protected-access
      raise Unsupported('a weighted or label-bucketed histogram')
  else:
    raise Unsupported(f'metric combiner {type(combiner).__name__}')


# --- Accumulators from columns --------------------------------------------------


def _split_fractional(labels: np.ndarray, fractional: bool
                      ) -> Tuple[np.ndarray, np.ndarray]:
  """(weight as a positive, weight as a negative) of each example.

  With fractional labels TFMA splits an example of label l into a positive
  of weight l and a negative of weight 1 - l.
  """
  if fractional:
    if labels.size and (labels.min() < 0 or labels.max() > 1):
      raise Unsupported('fractional labels outside [0, 1]')
    return labels, 1.0 - labels
  raise Unsupported('non-fractional labels')


def _confusion_accumulator(combiner, labels: np.ndarray,
                           predictions: np.ndarray):
  """A _BinaryConfusionMatrixCombiner's accumulator over the columns."""
  matrices = combiner._binary_confusion_matrices  # pylint: disable=protected-access
  positive, negative = _split_fractional(
      labels, matrices._enable_fractional_labels)  # pylint: disable=protected-access
  accumulator = {}
  for threshold in matrices._thresholds:  # pylint: disable=protected-access
    above = predictions > threshold
    accumulator[threshold] = bcm._ThresholdEntry(  # pylint: disable=protected-access
        bcm.Matrix(tp=float(positive[above].sum()),
                   tn=float(negative[~above].sum()),
                   fp=float(negative[above].sum()),
                   fn=float(positive[~above].sum())),
        tp_examples=[], tn_examples=[], fp_examples=[], fn_examples=[])
  return accumulator


def _histogram_accumulator(combiner, labels: np.ndarray,
                           predictions: np.ndarray):
  """A _CalibrationHistogramCombiner's accumulator over the columns."""
  # pylint: disable=protected-access
  num_buckets = combiner._num_buckets
  index = (predictions - combiner._left) / combiner._range * num_buckets + 1
  # pylint: enable=protected-access
  buckets = np.clip(index, 0, num_buckets + 1).astype(np.int64)
  if not combiner._fractional_labels:  # pylint: disable=protected-access
    raise Unsupported('non-fractional labels')
  _split_fractional(labels, True)
  size = num_buckets + 2
  weighted_labels = np.bincount(buckets, weights=labels, minlength=size)
  weighted_predictions = np.bincount(buckets, weights=predictions,
                                     minlength=size)
  examples = np.bincount(buckets, minlength=size)
  return {int(b): calibration_histogram.Bucket(
      int(b), float(weighted_labels[b]), float(weighted_predictions[b]),
      float(examples[b])) for b in np.flatnonzero(examples)}


def _combiner_output(computation, columns: Columns,
                     rows: np.ndarray) -> Dict[Any, Any]:
  """What TFMA's combiner of `computation` outputs for the `rows`."""
  combiner = computation.combiner
  model = computation.keys[0].model_name
  if isinstance(combiner, example_count._ExampleCountCombiner):  # pylint: disable=protected-access
    return combiner.extract_output(float(rows.size))
  labels = columns.labels[model][rows]
  predictions = columns.predictions[model][rows]
  if isinstance(combiner,
                binary_confusion_matrices._BinaryConfusionMatrixCombiner):  # pylint: disable=protected-access
    return combiner.extract_output(
        _confusion_accumulator(combiner, labels, predictions))
  return combiner.extract_output(
      _histogram_accumulator(combiner, labels, predictions))


# --- Slices ---------------------------------------------------------------------


def slice_rows(slicing_specs: Sequence[tfma.SlicingSpec],
               slice_values: Mapping[str, Sequence[Any]],
               num_rows: int) -> Iterator[Tuple[SliceKey, np.ndarray]]:
  """Each slice's key (as TFMA builds it) and row indices, per spec.

  A spec without feature keys is the whole split; one with feature keys has
  a slice per combination of the columns' values; an example without a
  value in a column is in none of that spec's slices.
  """
  seen = set()
  for spec in slicing_specs:
    columns = sorted(spec.feature_keys)
    groups: Dict[SliceKey, List[int]] = {}
    if not columns:
      groups[()] = list(range(num_rows))
    else:
      for row, values in enumerate(zip(*(slice_values[c] for c in columns))):
        if any(v is None for v in values):
          continue
        groups.setdefault(tuple(zip(columns, values)), []).append(row)
    for key, rows in groups.items():
      key = tuple(sorted(key))
      if key not in seen:
        seen.add(key)
        yield key, np.asarray(rows, dtype=np.int64)


# --- Metrics per slice ----------------------------------------------------------


def _with_diffs(metrics: Dict[Any, Any],
                baseline_model_name: str) -> Dict[Any, Any]:
  """`metrics` plus the candidate-minus-baseline diffs, as TFMA adds them."""
  result = copy.copy(metrics)
  for key, value in metrics.items():
    if key.is_diff or tfma_evaluator._is_private_metrics(key):  # pylint: disable=protected-access
      continue
    base = key.make_baseline_key(baseline_model_name)
    if key.model_name != baseline_model_name and base in metrics:
      if tfma_evaluator._is_metric_diffable(value):  # pylint: disable=protected-access
        result[key.make_diff_key()] = value - metrics[base]
  return result


def slice_metrics(separated, columns: Columns, rows: np.ndarray,
                  baseline_model_name: str) -> Dict[Any, Any]:
  """Every public metric, plot and diff of one slice (TFMA's MetricsDict)."""
  metrics: Dict[Any, Any] = {}
  for computation in separated.non_derived_computations:
    metrics.update(_combiner_output(computation, columns, rows))
  for computation in separated.derived_computations:
    metrics.update(computation.result(metrics))
  if baseline_model_name:
    metrics = _with_diffs(metrics, baseline_model_name)
  return {k: v for k, v in metrics.items()
          if not tfma_evaluator._is_private_metrics(k)}  # pylint: disable=protected-access


def sliced_metrics(eval_config: tfma.EvalConfig, separated, columns: Columns
                   ) -> List[Tuple[SliceKey, Dict[Any, Any]]]:
  """(slice key, metrics) of every slice of `eval_config`'s slicing specs."""
  baseline = tfma.utils.get_baseline_model_spec(eval_config)
  num_rows = len(next(iter(columns.predictions.values())))
  specs = list(eval_config.slicing_specs) or [tfma.SlicingSpec()]
  return [(key, slice_metrics(separated, columns, rows,
                              baseline.name if baseline else ''))
          for key, rows in slice_rows(specs, columns.slice_values, num_rows)]


def split_by_kind(metrics: Dict[Any, Any]) -> Tuple[Dict, Dict, Dict]:
  """(metrics, plots, attributions) of one slice, as TFMA writes them."""
  kinds = ({}, {}, {})
  for key, value in metrics.items():
    if isinstance(key, metric_types.PlotKey):
      kinds[1][key] = value
    elif isinstance(key, metric_types.AttributionsKey):
      kinds[2][key] = value
    else:
      kinds[0][key] = value
  return kinds

