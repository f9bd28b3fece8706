"""What a model version carries about its origin, as Vertex AI labels.

Each pushed version is labelled with the pipeline and run that made it, its
evaluation metrics and the digest of its files. The digest is the push's
identity: a retried push looks the version up by it and finishes the job
instead of uploading the model again.

Label keys and values allow lower-case letters, digits, '_' and '-' only, up
to 63 characters: run names are lower-cased with other characters turned
into '_', and a metric's '.' is written '_' (0.8893 -> '0_8893').
"""
import dataclasses
import hashlib
import os
import re
from typing import Dict, Mapping

PIPELINE_LABEL = 'pipeline'
RUN_LABEL = 'pipeline_run'
DIGEST_LABEL = 'model_digest'
_METRIC_PREFIX = 'metric_'
_MAX = 63
_NOT_ALLOWED = re.compile(r'[^a-z0-9_-]')


def label_value(text: str) -> str:
  """`text` as a label value (see the module docstring)."""
  return _NOT_ALLOWED.sub('_', text.lower())[:_MAX]


def _metric_value(value: float) -> str:
  return f'{value:.6g}'.replace('+', '').replace('.', '_')


def _metric_number(value: str) -> float:
  return float(value.replace('_', '.'))


@dataclasses.dataclass(frozen=True)
class Provenance:
  """Where a model version comes from.

  Attributes:
    pipeline: the pipeline's name.
    run: the pipeline run that pushed it.
    digest: the digest of the SavedModel's files (`saved_model_digest`).
    metrics: the Evaluator's overall metrics, by key.
  """
  pipeline: str
  run: str
  digest: str
  metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)

  def labels(self) -> Dict[str, str]:
    """The version's labels."""
    labels = {PIPELINE_LABEL: label_value(self.pipeline),
              RUN_LABEL: label_value(self.run),
              DIGEST_LABEL: self.digest}
    for key, value in sorted(self.metrics.items()):
      labels[label_value(_METRIC_PREFIX + key)] = _metric_value(value)
    return labels

  def description(self) -> str:
    """The version's description, in words."""
    metrics = ', '.join(f'{k} {v:.4g}' for k, v in sorted(self.metrics.items()))
    return (f'Pushed by pipeline {self.pipeline}, run {self.run}'
            + (f'; {metrics}.' if metrics else '.'))

  @classmethod
  def from_labels(cls, labels: Mapping[str, str]) -> 'Provenance':
    """The provenance a version's labels record (as far as labels keep it)."""
    metrics = {}
    for key, value in labels.items():
      if key.startswith(_METRIC_PREFIX):
        try:
          metrics[key[len(_METRIC_PREFIX):]] = _metric_number(value)
        except ValueError:
          continue
    return cls(pipeline=labels.get(PIPELINE_LABEL, ''),
               run=labels.get(RUN_LABEL, ''),
               digest=labels.get(DIGEST_LABEL, ''), metrics=metrics)


def saved_model_digest(model_dir: str) -> str:
  """A digest of every file under `model_dir` (local or gs://), their
  relative paths included: the same model gives the same digest."""
  # TFX's file API reads local and Cloud Storage paths alike; imported here
  # so that `deploy.serving` (which reads labels only) does not load TFX.
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256()
  files = []
  for directory, _, names in fileio.walk(model_dir):
    files.extend(os.path.join(directory, name) for name in names)
  for path in sorted(files):
    digest.update(os.path.relpath(path, model_dir).encode() + b'\0')
    with fileio.open(path, 'rb') as f:
      digest.update(hashlib.sha256(f.read()).digest())
  return digest.hexdigest()[:40]
