"""The reviewed schema's drift comparators, kept when `make schema` refreshes it.

SchemaGen infers types, domains and presence, never drift comparators; those
are a person's decision (docs/continuous_training.md). `carry_over` gives a
freshly inferred schema the comparators of the schema it replaces: a column
the old schema had keeps exactly what it had (a comparator, or none); a
column new to it gets the default for its type: Jensen-Shannon divergence
over quantile buckets for numbers, L-infinity distance for strings. The
label and DROP_COLUMNS get none. With no schema to replace, a schema that
already has comparators (one a run took from a reviewed schema) stays as it
is, and an inferred one gets the defaults.
"""
from typing import Iterable, Optional

from tensorflow_metadata.proto.v0 import schema_pb2

# The default thresholds, as schema/schema.pbtxt documents them: random
# 500-row samples of the bundled data stay below 0.23 and 0.07.
JENSEN_SHANNON_THRESHOLD = 0.3
L_INFINITY_THRESHOLD = 0.1


def default_comparator(feature: schema_pb2.Feature
                       ) -> Optional[schema_pb2.FeatureComparator]:
  """The default drift comparator for a column of this type, if any."""
  comparator = schema_pb2.FeatureComparator()
  if feature.type in (schema_pb2.INT, schema_pb2.FLOAT):
    divergence = comparator.jensen_shannon_divergence
    divergence.threshold = JENSEN_SHANNON_THRESHOLD
    divergence.source.type = schema_pb2.HistogramSelection.QUANTILES
  elif feature.type == schema_pb2.BYTES:
    comparator.infinity_norm.threshold = L_INFINITY_THRESHOLD
  else:
    return None
  return comparator


def carry_over(new: schema_pb2.Schema, old: Optional[schema_pb2.Schema],
               uncompared: Iterable[str] = ()) -> schema_pb2.Schema:
  """`new` with the drift and skew comparators of `old` (see module doc).

  Args:
    new: the freshly inferred schema.
    old: the schema it replaces; None when there is none.
    uncompared: columns that get no default comparator (label, dropped).

  Returns:
    A copy of `new` with the comparators.
  """
  merged = schema_pb2.Schema()
  merged.CopyFrom(new)
  if old is None and any(f.HasField('drift_comparator') for f in new.feature):
    return merged  # reviewed already
  previous = {f.name: f for f in old.feature} if old is not None else {}
  skipped = set(uncompared)
  for feature in merged.feature:
    before = previous.get(feature.name)
    for field in ('drift_comparator', 'skew_comparator'):
      if before is not None:
        feature.ClearField(field)
        if before.HasField(field):
          getattr(feature, field).CopyFrom(getattr(before, field))
    if before is None and feature.name not in skipped:
      comparator = default_comparator(feature)
      if comparator is not None and not feature.HasField('drift_comparator'):
        feature.drift_comparator.CopyFrom(comparator)
  return merged
