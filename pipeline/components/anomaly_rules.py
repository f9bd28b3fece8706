"""What counts as a blocking anomaly, and how the gate says so.

The pure part of the anomaly gate (pipeline/components/anomaly_gate.py):
parsing the ALLOWED_ANOMALIES setting, turning TFDV's Anomalies protos into
plain records, choosing the ones that stop the run, and the one-line message.
Drift from the previous span (a drift comparator's distance above its
threshold) is told apart from a mismatch with the schema: DRIFT_ACTION decides
whether it stops the run or only warns, and its message names each column
with its distance. It imports no TFX, so pipeline/configs.py can check the
settings cheaply.
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2

# Anomalies that are not about one column are reported under this name.
DATASET = '(dataset)'
SEVERITIES = ('WARNING', 'ERROR')
# TFDV's long descriptions can list thousands of values; the message keeps
# this much of each (the anomalies file has them all).
LONG_DESCRIPTION_CHARS = 200
# What the gate does on drift between spans (DRIFT_ACTION).
STOP, WARN = 'stop', 'warn'
DRIFT_ACTIONS = (STOP, WARN)
# Custom property of ExampleValidator's anomalies artifact: the span the new
# span was compared with for drift (pipeline/components/span_drift_validator.py).
BASELINE_SPAN_PROPERTY = 'drift_baseline_span'
# The anomaly types of the schema's drift comparators, and the distance each
# measures.
DRIFT_KINDS = {
    'COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH': 'Jensen-Shannon divergence',
    'COMPARATOR_L_INFTY_HIGH': 'L-infinity distance',
}
_MEASUREMENT_KINDS = {
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
        'COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH',
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY:
        'COMPARATOR_L_INFTY_HIGH',
}


@dataclasses.dataclass(frozen=True)
class Anomaly:
  split: str
  column: str
  kind: str  # the AnomalyInfo.Type name, e.g. ENUM_TYPE_UNEXPECTED_STRING_VALUES
  severity: str  # WARNING or ERROR (TFDV's UNKNOWN counts as ERROR)
  short: str  # TFDV's short description
  long: str  # TFDV's description
  path: str  # the anomalies file
  distance: Optional[float] = None  # drift only: the measured distance
  threshold: Optional[float] = None  # drift only: the comparator's threshold

  @property
  def is_drift(self) -> bool:
    """Whether this is a drift comparator's distance above its threshold."""
    return self.kind in DRIFT_KINDS

  def drift_in_words(self) -> str:
    """'column: Jensen-Shannon divergence 0.52 > 0.1'."""
    if self.distance is None:
      return f'{self.column}: {self.short or DRIFT_KINDS[self.kind]}'
    return (f'{self.column}: {DRIFT_KINDS[self.kind]} {self.distance:.3g} > '
            f'{self.threshold:.3g}')

  def in_words(self) -> str:
    """'column: short description (long description, cut short)'."""
    text = self.short or self.kind
    if self.long and self.long != self.short:
      long = self.long
      if len(long) > LONG_DESCRIPTION_CHARS:  # e.g. every unexpected value
        long = long[:LONG_DESCRIPTION_CHARS].rsplit(' ', 1)[0] + ' ...'
      text += f' ({long})'
    return f'{self.column}: {text}'


def parse_allow_list(text: str) -> List[Tuple[str, str]]:
  """'col, col:TYPE, *:TYPE' -> [(column or '*', type or '*')].

  Raises:
    ValueError: an entry names an anomaly type TFDV does not have.
  """
  allowed = []
  for entry in (e.strip() for e in text.split(',')):
    if not entry:
      continue
    column, _, kind = entry.partition(':')
    kind = kind.strip() or '*'
    if kind != '*' and kind not in anomalies_pb2.AnomalyInfo.Type.keys():
      raise ValueError(
          f'{entry!r} names no anomaly type; use column, column:TYPE or '
          '*:TYPE with a TYPE such as ENUM_TYPE_UNEXPECTED_STRING_VALUES')
    allowed.append((column.strip() or '*', kind))
  return allowed


def _severity_name(severity: int) -> str:
  if severity == anomalies_pb2.AnomalyInfo.WARNING:
    return 'WARNING'
  return 'ERROR'  # ERROR, and UNKNOWN counts as the worst


def blocking(anomalies: Sequence[Anomaly], allowed: Sequence[Tuple[str, str]],
             min_severity: str) -> List[Anomaly]:
  """The anomalies that stop the run: severe enough and not allowed."""
  rank = SEVERITIES.index(min_severity)
  return [a for a in anomalies
          if SEVERITIES.index(a.severity) >= rank and not any(
              column in ('*', a.column) and kind in ('*', a.kind)
              for column, kind in allowed)]


def split_drift(anomalies: Sequence[Anomaly], drift_action: str
                ) -> Tuple[List[Anomaly], List[Anomaly]]:
  """(anomalies for the gate to judge, drift to warn about) under
  DRIFT_ACTION: with 'warn' drift only warns, with 'stop' it is judged like
  any anomaly."""
  if drift_action == WARN:
    return ([a for a in anomalies if not a.is_drift],
            [a for a in anomalies if a.is_drift])
  return list(anomalies), []


def describe_drift(drift: Sequence[Anomaly],
                   baseline_span: Optional[int]) -> str:
  """'... drifted from span 2 in 1 column(s): fare: Jensen-Shannon ...'."""
  by_column: Dict[str, List[Anomaly]] = {}
  for anomaly in drift:
    by_column.setdefault(anomaly.column, []).append(anomaly)
  parts = []
  for column, found in sorted(by_column.items()):
    worst = max(found, key=lambda a: a.distance or 0.0)
    splits = ', '.join(sorted({a.split for a in found}))
    parts.append(f'{worst.drift_in_words()} [{worst.kind} in {splits}]')
  since = ('the previous span' if baseline_span is None else
           f'span {baseline_span}')
  return (f'the new span drifted from {since} in {len(by_column)} '
          f'column(s): ' + '; '.join(parts))


def describe(anomalies: Sequence[Anomaly],
             baseline_span: Optional[int] = None) -> str:
  """One line: each column's anomalies (or drift) in words, the files to
  read, and what to do."""
  mismatches = [a for a in anomalies if not a.is_drift]
  drift = [a for a in anomalies if a.is_drift]
  found = []
  if mismatches:
    found.append(describe_mismatches(mismatches))
  if drift:
    found.append(describe_drift(drift, baseline_span))
  files = sorted({a.path for a in anomalies})
  advice = []
  if mismatches:
    advice.append('Fix the data, approve a new schema, or allow the anomaly '
                  'with ALLOWED_ANOMALIES (docs/data_quality.md).')
  if drift:
    advice.append("Check the new span; if the change is real, raise the "
                  "column's drift_comparator threshold in the reviewed "
                  'schema, or set DRIFT_ACTION=warn '
                  '(docs/continuous_training.md).')
  return ('; and '.join(found) + f'. Anomalies file(s): {", ".join(files)}. '
          + ' '.join(advice))


def describe_mismatches(anomalies: Sequence[Anomaly]) -> str:
  """Each column's anomalies in words with their types and splits."""
  by_text: Dict[Tuple[str, str], List[str]] = {}
  for anomaly in anomalies:
    by_text.setdefault((anomaly.in_words(), anomaly.kind),
                       []).append(anomaly.split)
  columns = sorted({a.column for a in anomalies})
  # The type name is what ALLOWED_ANOMALIES takes.
  parts = [f'{text} [{kind} in {", ".join(splits)}]'
           for (text, kind), splits in by_text.items()]
  return (f'the data does not match the schema in {len(columns)} column(s): '
          + '; '.join(parts))


def from_proto(anomalies: anomalies_pb2.Anomalies, split: str,
               path: str) -> List[Anomaly]:
  """Every anomaly reason in one split's Anomalies proto."""
  infos: Dict[str, anomalies_pb2.AnomalyInfo] = dict(anomalies.anomaly_info)
  if anomalies.HasField('dataset_anomaly_info'):
    infos[DATASET] = anomalies.dataset_anomaly_info
  distances = _drift_distances(anomalies)
  found = []
  for column, info in sorted(infos.items()):
    reasons = list(info.reason) or [anomalies_pb2.AnomalyInfo.Reason(
        short_description=info.short_description,
        description=info.description)]
    for reason in reasons:
      kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
      distance, threshold = distances.get((column, kind), (None, None))
      found.append(Anomaly(
          split=split, column=column, kind=kind,
          severity=_severity_name(info.severity),
          short=reason.short_description, long=reason.description,
          path=path, distance=distance, threshold=threshold))
  return found


def _drift_distances(anomalies: anomalies_pb2.Anomalies
                     ) -> Dict[Tuple[str, str], Tuple[float, float]]:
  """(column, anomaly type) -> (distance, threshold) of each drift
  measurement above its threshold."""
  distances = {}
  for info in anomalies.drift_skew_info:
    column = '.'.join(info.path.step)
    for measurement in info.drift_measurements:
      kind = _MEASUREMENT_KINDS.get(measurement.type)
      if kind and measurement.value > measurement.threshold:
        distances[(column, kind)] = (measurement.value, measurement.threshold)
  return distances
