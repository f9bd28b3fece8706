"""The record of accepted spans, kept under the pipeline root.

With span folders (pipeline/data_files/spans.py) each run ingests one span.
The spans of earlier runs matter twice: the drift check compares the new
span with the previous span that passed the checks, and Transform and the
Trainer read the newest TRAIN_WINDOW_SPANS spans that passed them. Which
spans passed is kept here, as one small JSON file per span:

    <pipeline root>/accepted_spans/span-<n>.json
    {"span": 3, "examples": "<uri>", "statistics": "<uri>",
     "splits": ["train", "eval"]}

The anomaly gate writes a span's file when the span passes
(pipeline/components/anomaly_gate.py); the drift check
(span_drift_validator.py) and the training window (training_window.py) read
them. A refused span gets no file, so it never becomes a reference or enters
a window; a span ingested again after its files changed and passing again
replaces its file, so the newest version of each span counts.

Files through TFX's file API (TensorFlow's): a local folder and a gs://
bucket alike, so the local runner, Kubeflow Pipelines and Vertex AI read the
same record. No ML Metadata query is involved: TFX 1.16 compiles resolvers
that return more than one artifact for neither orchestrator.
"""
import dataclasses
import json
import os
import re
from typing import List, Optional, Sequence

from tfx.dsl.io import fileio

from pipeline.errors import DataError

RECORD_FOLDER = 'accepted_spans'
_FILE = re.compile(r'span-(\d+)\.json')


def record_dir(pipeline_root: str) -> str:
  """Where a pipeline's record lives: a folder under its pipeline root."""
  return os.path.join(pipeline_root, RECORD_FOLDER)


@dataclasses.dataclass(frozen=True)
class AcceptedSpan:
  """One span that passed the checks.

  Attributes:
    span: the span number.
    examples_uri: its Examples artifact (ExampleGen's output).
    statistics_uri: its ExampleStatistics artifact (StatisticsGen's).
    splits: the split names of both, e.g. ['train', 'eval'].
  """
  span: int
  examples_uri: str
  statistics_uri: str
  splits: Sequence[str]

  def to_json(self) -> str:
    return json.dumps({'span': self.span, 'examples': self.examples_uri,
                       'statistics': self.statistics_uri,
                       'splits': list(self.splits)}, indent=1)


def _path(folder: str, span: int) -> str:
  return os.path.join(folder, f'span-{span}.json')


def accept(folder: str, accepted: AcceptedSpan) -> str:
  """Records `accepted` in `folder` (replacing the span's earlier file);
  returns the file's path. Written whole, then moved into place, so a reader
  never sees half a file."""
  fileio.makedirs(folder)
  path = _path(folder, accepted.span)
  partial = path + '.partial'
  with fileio.open(partial, 'w') as out:
    out.write(accepted.to_json())
  fileio.rename(partial, path, overwrite=True)
  return path


def _read(path: str) -> AcceptedSpan:
  with fileio.open(path, 'r') as record:
    text = record.read()
  try:
    fields = json.loads(text)
    return AcceptedSpan(int(fields['span']), fields['examples'],
                        fields['statistics'], list(fields['splits']))
  except (ValueError, KeyError, TypeError) as error:
    raise DataError(
        f'{path}: not a record of an accepted span ({error}); delete the file '
        'and run again to ingest that span anew') from None


def accepted_spans(folder: str) -> List[AcceptedSpan]:
  """Every accepted span recorded in `folder`, oldest span first."""
  if not fileio.exists(folder):
    return []
  names = sorted((int(found.group(1)), name) for name in fileio.listdir(folder)
                 for found in [_FILE.fullmatch(name.rstrip('/'))] if found)
  return [_read(os.path.join(folder, name)) for _, name in names]


def previous(folder: str, span: int) -> Optional[AcceptedSpan]:
  """The newest accepted span below `span`: the drift check's reference."""
  earlier = [a for a in accepted_spans(folder) if a.span < span]
  return earlier[-1] if earlier else None


def window(folder: str, newest: AcceptedSpan,
           num_spans: int) -> List[AcceptedSpan]:
  """`newest` and the accepted spans below it, `num_spans` in all at most,
  oldest first: the training window."""
  earlier = [a for a in accepted_spans(folder) if a.span < newest.span]
  kept = earlier[-(num_spans - 1):] if num_spans > 1 else []
  return kept + [newest]
