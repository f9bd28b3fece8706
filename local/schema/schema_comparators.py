"""The reviewed schema's drift comparators, kept when `make schema` refreshes it.

TFDV infers types, domains and presence, never drift comparators; those are
a person's decision (docs/continuous_training.md), for which a run without a
reviewed schema proposes the defaults
(pipeline/components/fitted_schema_gen.py). `carry_over` gives a
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

# One default per type, the same a run without a reviewed schema gives its
# inferred schema.
from pipeline.components.fitted_schema_gen import default_comparator  # pylint: disable=unused-import
from pipeline.components.fitted_schema_gen import JENSEN_SHANNON_THRESHOLD  # pylint: disable=unused-import
from pipeline.components.fitted_schema_gen import L_INFINITY_THRESHOLD  # pylint: disable=unused-import


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
