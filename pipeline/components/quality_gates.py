"""The Evaluator's gates that depend on the data: the trivial model, and the
slices held to the baseline.

The EvalConfig is compiled into the pipeline before any data is read, but
two of the gates need the data (pipeline/eval_config.py, QualityGates):

- Without an absolute threshold, the model must beat the trivial model,
  which always predicts the train split's most frequent label
  (classification) or its mean (regression), by a margin. Its score on the
  eval split is known only once the labels are read.
- With a baseline and slice columns, the model must not fall more than a
  tolerance behind the baseline on any slice with enough eval examples.
  Which slices have enough is known only once the slice columns are read.

Before the evaluation, `plan` reads the label and slice columns of the train
and eval splits, and adds to the EvalConfig what TFMA itself validates: the
gate metric's value threshold on the whole split, and a change threshold per
large slice (a PerSliceMetricThreshold naming the slice's value). Whoever then
evaluates, the columnar executor or TFMA's Beam pipeline, validates and
blesses with TFMA's own code. After it, `Plan.write` records in the
evaluation's folder (GATES_FILE) which gate applied and the gate metric of
the model, the trivial model and the baseline, overall and per slice, which
the run summary and the run report read (`read`).
"""
import collections
import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import pyarrow as pa
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.slicer import slicer_lib
from tfx import types
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx_bsl.coders import example_coder

from pipeline import eval_config as eval_config_lib

# The Evaluator's execution property holding QualityGates.to_json().
PARAMETER = 'quality_gates'
# What `Plan.write` writes into the evaluation's folder.
GATES_FILE = 'quality_gates.json'
# The split the trivial model learns from.
TRAIN_SPLIT = 'train'
_BATCH_SIZE = 8192

Column = Tuple[str, Any]  # (slice column, value); ('', None): the whole split


def slice_name(column: str, value: Any) -> str:
  """'payment_type=Cash'; '' for the whole split."""
  return f'{column}={value}' if column else ''


# --- Reading columns of the examples --------------------------------------------


def _files(examples: Sequence[types.Artifact], splits: Sequence[str]
           ) -> List[str]:
  files = []
  for split in splits:
    for uri in artifact_utils.get_split_uris(list(examples), split):
      files += sorted(fileio.glob(io_utils.all_files_pattern(uri)))
  return files


def _python_values(array) -> List[Any]:
  """One value per example of a list column (None: empty; text decoded)."""
  lengths = array.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
  flat = iter(array.flatten().to_pylist())
  values = []
  for n in lengths:
    value = next(flat) if n else None
    for _ in range(int(n) - 1):
      next(flat)  # a multivalent cell counts by its first value
    values.append(value.decode('utf-8', 'replace')
                  if isinstance(value, bytes) else value)
  return values


# A column's type as decoded by tfx_bsl (Arrow) -> as parsed by TensorFlow.
_PARSED_TYPES = {'int64': (tf.int64, pa.int64()),
                 'float': (tf.float32, pa.float32()),
                 'double': (tf.float32, pa.float32())}
_TEXT = (tf.string, pa.large_binary())


class ColumnDecoder:
  """Decodes a few columns of serialized tf.Examples into an Arrow
  RecordBatch (one list per example, as tfx_bsl's decoder gives them) with
  TensorFlow's parser, which skips the other features: tfx_bsl's decoder
  parses every feature of an example, even with a schema of a few, which in
  a wide table cost most of the Evaluator's time."""

  def __init__(self, types: Dict[str, Tuple[Any, Any]]):
    """`types`: column -> (TensorFlow dtype, Arrow value type)."""
    self._types = dict(sorted(types.items()))
    self._spec = {c: tf.io.VarLenFeature(t[0]) for c, t in types.items()}

  def DecodeBatch(self, serialized: Sequence[bytes]) -> pa.RecordBatch:  # pylint: disable=invalid-name
    parsed = tf.io.parse_example(tf.constant(list(serialized), tf.string),
                                 self._spec)
    arrays = []
    for column, (_, arrow_type) in self._types.items():
      rows = parsed[column].indices.numpy()[:, 0]  # row-major
      offsets = np.zeros(len(serialized) + 1, np.int64)
      np.cumsum(np.bincount(rows, minlength=len(serialized)), out=offsets[1:])
      arrays.append(pa.LargeListArray.from_arrays(
          offsets, pa.array(parsed[column].values.numpy(), arrow_type)))
    return pa.RecordBatch.from_arrays(arrays, list(self._types))


def column_decoder(serialized: Sequence[bytes], columns: Sequence[str]
                   ) -> Optional[ColumnDecoder]:
  """A decoder of `columns` alone, typed as `serialized` (a batch of
  tf.Examples) holds them, or None when one of them is in none of its
  examples.

  The types are learnt from the fewest examples that hold a value of every
  column, not by decoding every column of the batch.
  """
  wanted = set(columns)
  types_: Dict[str, Tuple[Any, Any]] = {}
  count = 1
  while True:
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(
        list(serialized[:count]))
    for index, field in enumerate(batch.schema):
      # Typed by a value (an empty feature's list may be of any kind), or
      # as the whole batch types it.
      values = batch.column(index)
      if field.name in wanted and (count >= len(serialized) or (
          not pa.types.is_null(values.type) and len(values.flatten()))):
        types_.setdefault(field.name, _PARSED_TYPES.get(
            str(field.type.value_type), _TEXT))
    if len(types_) == len(wanted) or count >= len(serialized):
      break
    count = min(len(serialized), count * 64)
  if len(types_) < len(wanted):
    return None
  return ColumnDecoder(types_)


def _held_columns_decoder(serialized: Sequence[bytes], columns: Sequence[str]
                          ) -> ColumnDecoder:
  """A decoder of those of `columns` that `serialized` holds, typed by it."""
  batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(
      list(serialized))
  return ColumnDecoder({
      field.name: _PARSED_TYPES.get(str(field.type.value_type), _TEXT)
      for field in batch.schema if field.name in columns})


def read_columns(examples: Sequence[types.Artifact], splits: Sequence[str],
                 columns: Sequence[str]) -> Dict[str, List[Any]]:
  """Each column's value per example of `splits` (None where absent).

  Only the columns are decoded (`column_decoder`; typed by the first batch,
  which leaves out a column it lacks), so a wide table's splits read
  quickly.
  """
  files = _files(examples, splits)
  found: Dict[str, List[Any]] = {c: [] for c in columns}
  if not files:
    return found
  compression = 'GZIP' if all(f.endswith('.gz') for f in files) else ''
  decoder = None
  for serialized in tf.data.TFRecordDataset(
      files, compression_type=compression).batch(
          _BATCH_SIZE).as_numpy_iterator():
    if decoder is None:
      decoder = (column_decoder(serialized, columns) or
                 _held_columns_decoder(serialized, columns))
    batch = decoder.DecodeBatch(list(serialized))
    for column in columns:
      index = batch.schema.get_field_index(column)
      found[column] += (_python_values(batch.column(index)) if index >= 0
                        else [None] * len(serialized))
  return found


# --- The trivial model -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrivialModel:
  """The model that predicts the same for every example.

  Attributes:
    problem_type: as models/features.py.
    prediction: the train split's most frequent label (classification; the
      smallest of those tied) or its mean (regression).
    train_examples: the labelled examples it was learnt from.
  """
  problem_type: str
  prediction: Any
  train_examples: int

  @classmethod
  def fit(cls, problem_type: str, labels: Sequence[Any]) -> 'TrivialModel':
    known = [v for v in labels if v is not None]
    if not known:
      raise ValueError('no labels to learn the trivial model from')
    if eval_config_lib.higher_is_better(problem_type):
      counts = collections.Counter(known)
      prediction = min(counts, key=lambda v: (-counts[v], str(v)))
    else:
      prediction = float(np.mean(np.asarray(known, np.float64)))
    return cls(problem_type, prediction, len(known))

  def score(self, labels: Sequence[Any]) -> float:
    """The gate metric on `labels`: accuracy or RMSE (NaN: no labels)."""
    known = [v for v in labels if v is not None]
    if not known:
      return math.nan
    if eval_config_lib.higher_is_better(self.problem_type):
      return float(np.mean([v == self.prediction for v in known]))
    errors = np.asarray(known, np.float64) - self.prediction
    return float(np.sqrt(np.mean(errors * errors)))

  def bound(self, score: float, margin: float) -> float:
    """The gate that beats `score` by `margin`: `margin` of the trivial
    model's errors avoided (accuracy), or its RMSE `margin` lower."""
    if eval_config_lib.higher_is_better(self.problem_type):
      return score + margin * (1.0 - score)
    return score * (1.0 - margin)


# --- The plan: the EvalConfig completed from the data -----------------------------


def _gate_metric_config(config: tfma.EvalConfig,
                        gates: eval_config_lib.QualityGates):
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      if metric.class_name == gates.metric.class_name:
        return metric
  raise ValueError(f'the EvalConfig has no {gates.metric.class_name} metric '
                   'to gate on')


def _whole_split_threshold(metric) -> tfma.MetricThreshold:
  """The gate metric's threshold on the whole split (added if absent)."""
  for per_slice in metric.per_slice_thresholds:
    if list(per_slice.slicing_specs) == [tfma.SlicingSpec()]:
      return per_slice.threshold
  added = metric.per_slice_thresholds.add()
  added.slicing_specs.add()
  return added.threshold


def _addressable(value: Any) -> bool:
  """Whether a PerSliceMetricThreshold can name the slice of `value`: TFMA
  matches a slice to a threshold's value (text) after reading both as
  numbers where they parse as one ('1e-05' does not)."""
  to_type = slicer_lib._to_type  # pylint: disable=protected-access
  return to_type(str(value)) == to_type(value)


@dataclasses.dataclass
class Plan:
  """The gates settled for one evaluation.

  Attributes:
    gates: the pipeline's QualityGates.
    eval_config: the EvalConfig with the data's thresholds added.
    trivial: the trivial model.
    trivial_scores: slice name ('' for the whole split) -> the trivial
      model's gate metric.
    examples: slice name -> eval examples.
    bound: the gate metric's bar on the whole split (None: none).
    held_slices: the slices held to the baseline.
  """
  gates: eval_config_lib.QualityGates
  eval_config: tfma.EvalConfig
  trivial: TrivialModel
  trivial_scores: Dict[str, float]
  examples: Dict[str, int]
  bound: Optional[float]
  held_slices: List[str]

  @property
  def gate(self) -> str:
    """'trivial model', 'absolute threshold' or 'none'."""
    if self.gates.trivial_margin is not None:
      return 'trivial model'
    return 'absolute threshold' if self.bound is not None else 'none'

  def write(self, evaluation_uri: str) -> None:
    """Records the gates and the gate metric of the model, the trivial model
    and the baseline per slice (GATES_FILE in the evaluation's folder)."""
    metric = self.gates.metric.key
    values: Dict[str, Dict[str, float]] = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
      name = slice_name(*next(iter(_slice_items(per_slice.slice_key)),
                              ('', None)))
      for kv in per_slice.metric_keys_and_values:
        if kv.key.name == metric and not kv.key.is_diff:
          model = ('baseline' if kv.key.model_name == 'baseline'
                   else 'model')
          values.setdefault(name, {})[model] = kv.value.double_value.value
    rows = [{'slice': name, 'examples': count,
             'model': values.get(name, {}).get('model'),
             'trivial': self.trivial_scores.get(name),
             'baseline': values.get(name, {}).get('baseline')}
            for name, count in self.examples.items()]
    report = {
        'metric': metric, 'label': self.gates.metric.label,
        'higher_is_better': eval_config_lib.higher_is_better(
            self.gates.problem_type),
        'gate': self.gate, 'bound': self.bound,
        'trivial_margin': self.gates.trivial_margin,
        'trivial_model': {'prediction': self.trivial.prediction,
                          'train_examples': self.trivial.train_examples},
        'slice_tolerance': self.gates.slice_tolerance,
        'slice_min_examples': self.gates.slice_min_examples,
        'held_slices': self.held_slices, 'rows': rows}
    io_utils.write_string_file(os.path.join(evaluation_uri, GATES_FILE),
                               json.dumps(report, indent=1, default=str))


def _slice_items(slice_key) -> List[Tuple[str, Any]]:
  """A metrics record's slice key as (column, value) pairs."""
  items = []
  for single in slice_key.single_slice_keys:
    kind = single.WhichOneof('kind')
    value = getattr(single, kind)
    items.append((single.column, value.decode('utf-8', 'replace')
                  if isinstance(value, bytes) else value))
  return items


def slice_key_name(slice_key) -> str:
  """A metrics or validation record's slice key as 'column=value' names
  joined by ', '; '' for the whole split."""
  return ', '.join(slice_name(column, value)
                   for column, value in _slice_items(slice_key))


def plan(gates: eval_config_lib.QualityGates, eval_config: tfma.EvalConfig,
         examples: Sequence[types.Artifact], eval_splits: Sequence[str],
         has_baseline: bool) -> Plan:
  """Reads the labels and slice columns and completes `eval_config`.

  Args:
    gates: the Evaluator's quality_gates parameter.
    eval_config: the Evaluator's EvalConfig (not changed).
    examples: the Evaluator's examples.
    eval_splits: the splits it evaluates on.
    has_baseline: whether there is a baseline model (slices are held to it
      only then).

  Returns:
    The plan, with the completed EvalConfig.
  """
  slice_columns = sorted({c for s in eval_config.slicing_specs
                          for c in s.feature_keys if len(s.feature_keys) == 1})
  train_split = TRAIN_SPLIT
  if not _files(examples, [train_split]):
    train_split = eval_splits[0]
    logging.warning('No %r split: the trivial model learns from %r.',
                    TRAIN_SPLIT, train_split)
  trivial = TrivialModel.fit(gates.problem_type, read_columns(
      examples, [train_split], [gates.label_key])[gates.label_key])
  columns = read_columns(examples, eval_splits,
                         [gates.label_key] + slice_columns)
  labels = columns[gates.label_key]
  scores = {'': trivial.score(labels)}
  counts = {'': len(labels)}
  large: Dict[str, List[Any]] = {}
  for column in slice_columns:
    by_value: Dict[Any, List[Any]] = {}
    for value, label in zip(columns[column], labels):
      if value is not None:
        by_value.setdefault(value, []).append(label)
    for value in sorted(by_value, key=str):
      name = slice_name(column, value)
      scores[name] = trivial.score(by_value[value])
      counts[name] = len(by_value[value])
      if len(by_value[value]) >= gates.slice_min_examples:
        if _addressable(value):
          large.setdefault(column, []).append(value)
        else:
          logging.warning('Slice %s is not held to the baseline: TFMA '
                          'cannot name the value %r in a threshold.', name,
                          value)

  config = tfma.EvalConfig()
  config.CopyFrom(eval_config)
  metric = _gate_metric_config(config, gates)
  whole = _whole_split_threshold(metric)
  if gates.trivial_margin is not None:
    whole.value_threshold.CopyFrom(eval_config_lib.value_threshold(
        gates.problem_type, trivial.bound(scores[''], gates.trivial_margin)))
  bounds = whole.value_threshold
  bound = (bounds.lower_bound.value if bounds.HasField('lower_bound') else
           bounds.upper_bound.value if bounds.HasField('upper_bound') else
           None)
  held = []
  if has_baseline and large:
    per_slice = metric.per_slice_thresholds.add()
    per_slice.threshold.change_threshold.CopyFrom(
        eval_config_lib.change_threshold(gates.problem_type,
                                         gates.slice_tolerance))
    for column, values in large.items():
      for value in values:
        per_slice.slicing_specs.add().feature_values[column] = str(value)
        held.append(slice_name(column, value))
  logging.info('Quality gate: %s (%s %s); trivial model %r scores %.6g; '
               'slices held to the baseline: %s.',
               'the trivial model' if gates.trivial_margin is not None else
               'the absolute threshold', gates.metric.key, bound,
               trivial.prediction, scores[''], ', '.join(held) or 'none')
  return Plan(gates, config, trivial, scores, counts, bound, held)


def read(evaluation_uri: str) -> Optional[Dict[str, Any]]:
  """What `Plan.write` recorded for an evaluation (None: nothing, as for an
  evaluation without quality gates)."""
  path = os.path.join(evaluation_uri, GATES_FILE)
  if not fileio.exists(path):
    return None
  with fileio.open(path) as f:
    return json.loads(f.read())
