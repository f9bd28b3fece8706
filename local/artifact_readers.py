"""Reads a run's artifacts into plain Python values for the report and notebooks.

Statistics (TFDV), schema, anomalies, the Trainer's TensorBoard scalars, the
Evaluator's metrics per model and slice with their thresholds, and a
SavedModel's signatures. Nothing here knows metric or column names: it
iterates over whatever the artifacts hold, so other models and metrics work
unchanged.
"""
import collections
import dataclasses
import glob
import math
import os
import re
from typing import Dict, List, Optional, Tuple

import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from tensorflow_data_validation.utils import anomalies_util
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tensorflow_model_analysis.metrics import metric_specs
from tensorflow_model_analysis.writers import eval_config_writer

OVERALL = 'Overall'  # the slice name of the whole eval split


# --- Data statistics ----------------------------------------------------------


@dataclasses.dataclass
class FeatureStats:
  """One feature of one split, as StatisticsGen described it."""
  name: str
  kind: str  # INT, FLOAT, STRING, BYTES, STRUCT
  count: int  # examples with a value
  missing: int  # examples without one
  numbers: Dict[str, float]  # mean, std_dev, min, median, max, zeros
  histogram: List[Tuple[float, float, float]]  # (low, high, count) buckets
  top_values: List[Tuple[str, float]]  # (value, count), most frequent first
  unique: Optional[int]  # distinct values of a string feature

  @property
  def missing_share(self) -> float:
    total = self.count + self.missing
    return self.missing / total if total else 0.0


def feature_statistics(path: str) -> List[FeatureStats]:
  """The features in a FeatureStats.pb file, in its order."""
  stats_list = tfdv.load_stats_binary(path)
  if not stats_list.datasets:
    raise ValueError(f'{path} holds no statistics')
  dataset = stats_list.datasets[0]
  return [_feature(feature, dataset.num_examples)
          for feature in dataset.features]


def _feature(feature: statistics_pb2.FeatureNameStatistics,
             num_examples: int) -> FeatureStats:
  name = '.'.join(feature.path.step) or feature.name
  kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
  stats_field = feature.WhichOneof('stats')
  common = getattr(feature, stats_field).common_stats if stats_field else None
  count = int(common.num_non_missing) if common else 0
  missing = int(common.num_missing) if common else max(num_examples - count, 0)
  numbers, histogram, top_values, unique = {}, [], [], None
  if stats_field == 'num_stats':
    num = feature.num_stats
    numbers = {'mean': num.mean, 'std_dev': num.std_dev, 'min': num.min,
               'median': num.median, 'max': num.max,
               'zeros': float(num.num_zeros)}
    for candidate in num.histograms:
      if candidate.type == statistics_pb2.Histogram.STANDARD:
        histogram = [(b.low_value, b.high_value, b.sample_count)
                     for b in candidate.buckets]
        break
  elif stats_field == 'string_stats':
    strings = feature.string_stats
    unique = int(strings.unique)
    top_values = [(v.value, v.frequency) for v in strings.top_values]
    if not top_values:
      top_values = [(b.label, b.sample_count)
                    for b in strings.rank_histogram.buckets]
  return FeatureStats(name, kind, count, missing, numbers, histogram,
                      top_values, unique)


def load_schema(path: str) -> schema_pb2.Schema:
  return tfdv.load_schema_text(path)


@dataclasses.dataclass
class SchemaFeature:
  name: str
  kind: str
  presence: str  # 'required' or 'optional (>= 90 %)'
  shape_or_valency: str
  domain: str


def schema_features(schema: schema_pb2.Schema) -> List[SchemaFeature]:
  """The schema's features in words, one row each."""
  domains = {d.name: d for d in schema.string_domain}
  rows = []
  for feature in schema.feature:
    kind = schema_pb2.FeatureType.Name(feature.type)
    min_fraction = (feature.presence.min_fraction
                    if feature.presence.HasField('min_fraction') else 0.0)
    presence = ('required' if min_fraction >= 1.0 else
                f'optional (in at least {min_fraction:.0%} of examples)'
                if min_fraction else 'optional')
    if feature.HasField('shape'):
      shape = 'shape [' + ', '.join(str(d.size) for d in feature.shape.dim) + ']'
    elif feature.HasField('value_count'):
      shape = (f'{feature.value_count.min}..{feature.value_count.max} values')
    else:
      shape = ''
    domain = ''
    if feature.HasField('domain') and feature.domain in domains:
      values = list(domains[feature.domain].value)
      domain = f'{len(values)} values: ' + ', '.join(values[:8]) + (
          ', ...' if len(values) > 8 else '')
    elif feature.HasField('string_domain'):
      values = list(feature.string_domain.value)
      domain = f'{len(values)} values: ' + ', '.join(values[:8])
    elif feature.HasField('int_domain'):
      bounds = feature.int_domain
      domain = (f'integers {bounds.min if bounds.HasField("min") else ""}..'
                f'{bounds.max if bounds.HasField("max") else ""}')
    elif feature.HasField('float_domain'):
      bounds = feature.float_domain
      domain = (f'numbers {bounds.min if bounds.HasField("min") else ""}..'
                f'{bounds.max if bounds.HasField("max") else ""}')
    rows.append(SchemaFeature(feature.name, kind, presence, shape, domain))
  return rows


@dataclasses.dataclass
class Anomaly:
  feature: str  # '' for a data-set-wide anomaly
  severity: str
  short: str
  description: str


def anomalies(path: str) -> List[Anomaly]:
  """The anomalies recorded in a SchemaDiff.pb file (empty: none)."""
  found = anomalies_util.load_anomalies_binary(path)
  rows = []
  for name, info in sorted(found.anomaly_info.items()):
    rows.append(_anomaly(name, info))
  if found.HasField('dataset_anomaly_info'):
    rows.append(_anomaly('', found.dataset_anomaly_info))
  return rows


def _anomaly(name: str, info: anomalies_pb2.AnomalyInfo) -> Anomaly:
  severity = anomalies_pb2.AnomalyInfo.Severity.Name(info.severity)
  short = info.short_description or '; '.join(
      r.short_description for r in info.reason)
  description = info.description or '; '.join(
      r.description for r in info.reason)
  return Anomaly(name, severity, short, description)


# --- Training curves ----------------------------------------------------------


def training_scalars(log_dir: str) -> Dict[str, Dict[str, List[Tuple[float,
                                                                     float]]]]:
  """metric -> series name -> [(step, value)] from TensorBoard event files.

  Keras writes, per sub-folder (train, validation), `batch_<metric>` every
  few steps, `epoch_<metric>` per epoch and, for validation,
  `evaluation_<metric>_vs_iterations` at the training step. Batch and
  iteration series share the step axis; epoch series are kept only for a
  metric that has neither (their x is the epoch).
  """
  raw: Dict[Tuple[str, str, str], Dict[float, float]] = (
      collections.defaultdict(dict))
  for path in sorted(glob.glob(os.path.join(log_dir, '**', 'events.out.*'),
                               recursive=True)):
    run = os.path.relpath(os.path.dirname(path), log_dir)
    run = '' if run == '.' else run
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        number = _scalar(value)
        if number is None:
          continue
        kind, metric = _split_tag(value.tag)
        raw[(metric, run, kind)][float(event.step)] = number
  curves: Dict[str, Dict[str, List[Tuple[float, float]]]] = {}
  for (metric, run, kind), points in sorted(raw.items()):
    if kind == 'epoch' and any(
        m == metric and k != 'epoch' for m, _, k in raw):
      continue
    name = ' '.join(part for part in (run, 'per epoch' if kind == 'epoch'
                                      else '') if part) or metric
    curves.setdefault(metric, {})[name] = sorted(points.items())
  return curves


def _scalar(value) -> Optional[float]:
  if value.HasField('simple_value'):
    return float(value.simple_value)
  if (value.HasField('tensor') and
      value.metadata.plugin_data.plugin_name in ('scalars', '')):
    array = tf.make_ndarray(value.tensor)
    if array.size == 1 and array.dtype.kind in 'fiu':
      number = float(array.reshape(()))
      return None if math.isnan(number) else number
  return None


def _split_tag(tag: str) -> Tuple[str, str]:
  """('batch'|'epoch'|'iteration'|'', metric name) of a Keras summary tag."""
  match = re.fullmatch(r'evaluation_(.+)_vs_iterations', tag)
  if match:
    return 'iteration', match.group(1)
  for prefix in ('batch_', 'epoch_'):
    if tag.startswith(prefix):
      return prefix[:-1], tag[len(prefix):]
  return '', tag


# --- Evaluation ---------------------------------------------------------------


@dataclasses.dataclass
class SliceMetrics:
  """The metrics of one slice: model name -> metric name -> value."""
  column: str  # '' for the overall slice
  value: str
  by_model: Dict[str, Dict[str, float]]
  diffs: Dict[str, float]  # candidate minus baseline, where TFMA computed it

  @property
  def name(self) -> str:
    return f'{self.column} = {self.value}' if self.column else OVERALL


def slice_metrics(evaluation_uri: str) -> List[SliceMetrics]:
  """Every slice TFMA stored (overall first), with every scalar metric."""
  slices = []
  for stored in tfma.load_metrics(evaluation_uri):
    keys = stored.slice_key.single_slice_keys
    column = ', '.join(k.column for k in keys)
    value = ', '.join(_slice_value(k) for k in keys)
    by_model: Dict[str, Dict[str, float]] = {}
    diffs: Dict[str, float] = {}
    for kv in stored.metric_keys_and_values:
      number = _metric_number(kv.value)
      if number is None:
        continue
      name = kv.key.name + (f' (class {kv.key.sub_key.class_id.value})'
                            if kv.key.sub_key.HasField('class_id') else '')
      if kv.key.is_diff:
        diffs[name] = number
      else:
        by_model.setdefault(kv.key.model_name or 'candidate', {})[name] = number
    slices.append(SliceMetrics(column, value, by_model, diffs))
  slices.sort(key=lambda s: (s.column != '', s.column, _sort_key(s.value)))
  return slices


def _slice_value(key) -> str:
  field = key.WhichOneof('kind')
  value = getattr(key, field) if field else ''
  return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(
      value)


def _sort_key(value: str):
  try:
    return (0, float(value), '')
  except ValueError:
    return (1, 0.0, value)


def _metric_number(value) -> Optional[float]:
  if value.HasField('double_value'):
    return value.double_value.value
  if value.HasField('bounded_value'):
    return value.bounded_value.value.value
  return None


@dataclasses.dataclass
class Threshold:
  metric: str
  lower: Optional[float] = None  # the value must be at least this
  upper: Optional[float] = None  # ... at most this
  change: Optional[str] = None  # allowed change against the baseline, words

  def describe(self) -> str:
    parts = []
    if self.lower is not None:
      parts.append(f'>= {self.lower:g}')
    if self.upper is not None:
      parts.append(f'<= {self.upper:g}')
    if self.change:
      parts.append(self.change)
    return '; '.join(parts)


def thresholds(evaluation_uri: str) -> Dict[str, Threshold]:
  """metric name -> its thresholds, as the Evaluator's config set them."""
  eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
  if eval_config is None:
    return {}
  found: Dict[str, Threshold] = {}
  specs = metric_specs.metric_thresholds_from_metrics_specs(
      eval_config.metrics_specs, eval_config)
  for key, entries in specs.items():
    entry = found.setdefault(key.name, Threshold(key.name))
    for spec, threshold in entries:
      if spec is not None and spec != tfma.SlicingSpec():
        continue  # a slice's (quality_gates.py): the whole split's only
      if isinstance(threshold, tfma.GenericValueThreshold):
        if threshold.HasField('lower_bound'):
          entry.lower = threshold.lower_bound.value
        if threshold.HasField('upper_bound'):
          entry.upper = threshold.upper_bound.value
      elif isinstance(threshold, tfma.GenericChangeThreshold):
        higher = threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
        words = []
        if threshold.HasField('absolute'):
          words.append(f'{abs(threshold.absolute.value):g}')
        if threshold.HasField('relative'):
          words.append(f'{abs(threshold.relative.value):.0%}')
        entry.change = (f'at most {" and ".join(words)} '
                        f'{"below" if higher else "above"} the baseline')
  return found


def slicing_columns(evaluation_uri: str) -> List[str]:
  """The feature columns the Evaluator sliced by (from its stored config)."""
  eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
  if eval_config is None:
    return []
  return [', '.join(spec.feature_keys) for spec in eval_config.slicing_specs
          if spec.feature_keys]


# --- Serving signature --------------------------------------------------------


@dataclasses.dataclass
class TensorInfo:
  name: str
  dtype: str
  shape: str


@dataclasses.dataclass
class Signature:
  name: str
  inputs: List[TensorInfo]
  outputs: List[TensorInfo]


def signatures(saved_model_dir: str) -> List[Signature]:
  """The SavedModel's signatures (read from saved_model.pb, not loaded)."""
  saved = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(saved_model_dir, 'saved_model.pb'),
                         'rb') as f:
    saved.ParseFromString(f.read())
  found = []
  for meta_graph in saved.meta_graphs[:1]:
    for name, signature in sorted(meta_graph.signature_def.items()):
      if name.startswith('__'):
        continue  # internal initialisation signatures
      found.append(Signature(name, _tensors(signature.inputs),
                             _tensors(signature.outputs)))
  return found


def _tensors(tensor_map) -> List[TensorInfo]:
  rows = []
  for name, info in sorted(tensor_map.items()):
    dtype = tf.dtypes.as_dtype(info.dtype).name
    if info.tensor_shape.unknown_rank:
      shape = 'unknown'
    else:
      shape = '[' + ', '.join('None' if d.size < 0 else str(d.size)
                              for d in info.tensor_shape.dim) + ']'
    rows.append(TensorInfo(name, dtype, shape))
  return rows
