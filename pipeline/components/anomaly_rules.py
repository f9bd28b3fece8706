"""What counts as a blocking anomaly, and how the gate says so.

The pure part of the anomaly gate (pipeline/components/anomaly_gate.py):
parsing the ALLOWED_ANOMALIES setting, turning TFDV's Anomalies protos into
plain records, choosing the ones that stop the run, and the one-line message.
It imports no TFX, so pipeline/configs.py can check the setting cheaply.
"""
import dataclasses
from typing import Dict, List, Sequence, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2

# Anomalies that are not about one column are reported under this name.
DATASET = '(dataset)'
SEVERITIES = ('WARNING', 'ERROR')
# TFDV's long descriptions can list thousands of values; the message keeps
# this much of each (the anomalies file has them all).
LONG_DESCRIPTION_CHARS = 200


@dataclasses.dataclass(frozen=True)
class Anomaly:
  split: str
  column: str
  kind: str  # the AnomalyInfo.Type name, e.g. ENUM_TYPE_UNEXPECTED_STRING_VALUES
  severity: str  # WARNING or ERROR (TFDV's UNKNOWN counts as ERROR)
  short: str  # TFDV's short description
  long: str  # TFDV's description
  path: str  # the anomalies file

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


def describe(anomalies: Sequence[Anomaly]) -> str:
  """One line: each column's anomalies in words, then the files to read."""
  by_text: Dict[Tuple[str, str], List[str]] = {}
  for anomaly in anomalies:
    by_text.setdefault((anomaly.in_words(), anomaly.kind),
                       []).append(anomaly.split)
  columns = sorted({a.column for a in anomalies})
  # The type name is what ALLOWED_ANOMALIES takes.
  parts = [f'{text} [{kind} in {", ".join(splits)}]'
           for (text, kind), splits in by_text.items()]
  files = sorted({a.path for a in anomalies})
  return (f'the data does not match the schema in {len(columns)} column(s): '
          + '; '.join(parts) + f'. Anomalies file(s): {", ".join(files)}. '
          'Fix the data, approve a new schema, or allow the anomaly with '
          'ALLOWED_ANOMALIES (docs/data_quality.md).')


def from_proto(anomalies: anomalies_pb2.Anomalies, split: str,
               path: str) -> List[Anomaly]:
  """Every anomaly reason in one split's Anomalies proto."""
  infos: Dict[str, anomalies_pb2.AnomalyInfo] = dict(anomalies.anomaly_info)
  if anomalies.HasField('dataset_anomaly_info'):
    infos[DATASET] = anomalies.dataset_anomaly_info
  found = []
  for column, info in sorted(infos.items()):
    reasons = list(info.reason) or [anomalies_pb2.AnomalyInfo.Reason(
        short_description=info.short_description,
        description=info.description)]
    for reason in reasons:
      found.append(Anomaly(
          split=split, column=column,
          kind=anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
          severity=_severity_name(info.severity),
          short=reason.short_description, long=reason.description,
          path=path))
  return found
