"""Skew and drift of served rows, measured by TFDV's feature comparators.

Skew compares the served rows' statistics with the served model's training
statistics (the schema's `skew_comparator`); drift compares them with the
previous monitoring window's (`drift_comparator`). Each feature's measure
and threshold come from the reviewed schema: TFDV's Jensen-Shannon
divergence for numeric features and L-infinity distance for categorical ones.
A feature with no comparator of the kind compared takes, for skew, its drift
comparator (the reviewed threshold of the same distance), else the defaults
below; only features present in both sets of rows are compared (served rows
may lack the label).
"""
import dataclasses
from typing import Dict, List, Sequence

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from local.schema import schema_comparators

# A feature whose reviewed schema sets no comparator takes the defaults
# `make schema` writes (local/schema/schema_comparators.py, the one place): the
# divergence is taken over quantile histograms, as over the standard
# (equal-width) ones a heavy-tailed column such as trip_miles measures about
# 0.7 between two random samples of the same data.
DEFAULT_JS_DIVERGENCE = schema_comparators.JENSEN_SHANNON_THRESHOLD
DEFAULT_L_INFINITY = schema_comparators.L_INFINITY_THRESHOLD

SKEW = 'skew'
DRIFT = 'drift'
_FIELDS = {SKEW: 'skew_comparator', DRIFT: 'drift_comparator'}
_MEASURES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: 'L-infinity distance',
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
        'Jensen-Shannon divergence',
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
        'normalized absolute difference',
}


@dataclasses.dataclass
class Comparison:
  """One feature's distance between two sets of rows, and its threshold."""
  feature: str
  kind: str  # SKEW or DRIFT
  measure: str  # e.g. 'Jensen-Shannon divergence'
  distance: float
  threshold: float

  @property
  def over(self) -> bool:
    return self.distance > self.threshold

  def describe(self) -> str:
    against = ('the training data' if self.kind == SKEW else
               'the previous window')
    return (f'{self.kind} {self.measure} {self.distance:.3f} against '
            f'{against} is above the threshold {self.threshold:g}')


def default_comparator(feature: schema_pb2.Feature
                      ) -> schema_pb2.FeatureComparator:
  """The default comparator for the feature's type (L-infinity for any
  type that is not a number)."""
  comparator = schema_comparators.default_comparator(feature)
  if comparator is None:
    comparator = schema_pb2.FeatureComparator()
    comparator.infinity_norm.threshold = DEFAULT_L_INFINITY
  return comparator


def comparator(feature: schema_pb2.Feature,
               kind: str) -> schema_pb2.FeatureComparator:
  """The feature's comparator for `kind`: the schema's, else the fallback."""
  for field in (_FIELDS[kind], _FIELDS[DRIFT]):
    if feature.HasField(field):
      return getattr(feature, field)
  return default_comparator(feature)


def comparison_schema(schema: schema_pb2.Schema, kind: str,
                      features: Sequence[str]) -> schema_pb2.Schema:
  """A copy of `schema` with a `kind` comparator on `features`, none else."""
  compared = schema_pb2.Schema()
  compared.CopyFrom(schema)
  wanted = set(features)
  for feature in compared.feature:
    chosen = comparator(feature, kind)
    chosen_copy = schema_pb2.FeatureComparator()
    chosen_copy.CopyFrom(chosen)
    for field in _FIELDS.values():
      feature.ClearField(field)
    if feature.name in wanted:
      getattr(feature, _FIELDS[kind]).CopyFrom(chosen_copy)
  return compared


def feature_names(statistics: statistics_pb2.DatasetFeatureStatisticsList
                 ) -> List[str]:
  return ['.'.join(f.path.step) or f.name
          for f in statistics.datasets[0].features]


def compare(served: statistics_pb2.DatasetFeatureStatisticsList,
            reference: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema, kind: str) -> List[Comparison]:
  """Each common feature's `kind` distance from `reference` to `served`."""
  common = [n for n in feature_names(served)
            if n in set(feature_names(reference))]
  compared = comparison_schema(schema, kind, common)
  if kind == SKEW:
    found = tfdv.validate_statistics(reference, compared,
                                     serving_statistics=served)
  else:
    found = tfdv.validate_statistics(served, compared,
                                     previous_statistics=reference)
  results = []
  for info in found.drift_skew_info:
    measurements = (info.skew_measurements if kind == SKEW else
                    info.drift_measurements)
    for measurement in measurements:
      results.append(Comparison(
          '.'.join(info.path.step), kind,
          _MEASURES.get(measurement.type, 'distance'), measurement.value,
          measurement.threshold))
  return sorted(results, key=lambda c: (not c.over, c.feature))


def by_feature(comparisons: Sequence[Comparison]
              ) -> Dict[str, Dict[str, Comparison]]:
  """feature -> kind -> its comparison."""
  found: Dict[str, Dict[str, Comparison]] = {}
  for item in comparisons:
    found.setdefault(item.feature, {})[item.kind] = item
  return found


def over_threshold(comparisons: Sequence[Comparison]) -> List[str]:
  """One line per feature over a threshold, naming the feature, each
  distance over its threshold (skew first) and the threshold."""
  lines = []
  for feature, kinds in sorted(by_feature(comparisons).items()):
    over = [kinds[kind].describe() for kind in (SKEW, DRIFT)
            if kind in kinds and kinds[kind].over]
    if over:
      lines.append(f'{feature}: ' + '; '.join(over))
  return lines
