"""The examples Transform and the Trainer read: the newest accepted spans.

With span folders each run's ExampleGen ingests one span; Transform analyses,
and the Trainer trains on, the newest TRAIN_WINDOW_SPANS spans that passed
the anomaly gate, this run's included. `TrainingWindow` runs after the gate
and writes them as one Examples artifact: every split of each span in the
window (pipeline/components/accepted_spans.py), its files copied side by
side, `span-<n>-<file>`. One artifact, because the Kubeflow Pipelines 2.x
and Vertex AI specs TFX 1.16 compiles pass one artifact per input; a copy
within Cloud Storage is done by the service, without downloading.

The artifact records the spans it holds (`spans`, e.g. '1,2'), which the
run summaries read. A run whose window did not move (no new span) takes the
step, and so Transform and the Trainer, from the cache.
"""
import os

from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from pipeline.components import accepted_spans
from pipeline.components.span_statistics_gen import span_of

# The window artifact's custom property: the spans it holds, e.g. '1,2'.
SPANS_PROPERTY = 'spans'
# What TFX's readers look up on an Examples artifact; copied from the span's.
_FORMAT_PROPERTIES = ('payload_format', 'file_format')


def spans_of(examples) -> list:
  """The spans an Examples artifact holds: a window's `spans`, or the one
  span ExampleGen recorded."""
  if examples.has_custom_property(SPANS_PROPERTY):
    text = examples.get_string_custom_property(SPANS_PROPERTY)
    return [int(span) for span in text.split(',') if span]
  return [span_of(examples)]


def copy_window(window: list, splits: list, out_uri: str) -> None:
  """Copies each split of each span in `window` into `out_uri`."""
  for split in splits:
    target = os.path.join(out_uri, f'Split-{split}')
    fileio.makedirs(target)
    for accepted in window:
      source = os.path.join(accepted.examples_uri, f'Split-{split}')
      if not fileio.exists(source):
        continue  # a span written with other splits: nothing of this one
      for name in sorted(fileio.listdir(source)):
        name = name.rstrip('/')
        if not name:
          continue
        fileio.copy(os.path.join(source, name),
                    os.path.join(target, f'span-{accepted.span}-{name}'),
                    overwrite=True)


@component
def TrainingWindow(  # pylint: disable=invalid-name
    examples: InputArtifact[standard_artifacts.Examples],
    checked_schema: InputArtifact[standard_artifacts.Schema],
    window: OutputArtifact[standard_artifacts.Examples],
    accepted_spans_dir: Parameter[str],
    num_spans: Parameter[int] = 1,
) -> None:
  """Writes the newest `num_spans` accepted spans as one Examples artifact.

  Args:
    examples: this run's span (ExampleGen's output), the newest of the
      window.
    checked_schema: the anomaly gate's output: the window is taken only once
      this run's span passed (not read).
    window: the examples of the window's spans.
    accepted_spans_dir: the record of accepted spans (accepted_spans.py).
    num_spans: TRAIN_WINDOW_SPANS.
  """
  del checked_schema  # an ordering input: the gate passed
  splits = artifact_utils.decode_split_names(examples.split_names)
  newest = accepted_spans.AcceptedSpan(span_of(examples), examples.uri, '',
                                       splits)
  spans = accepted_spans.window(accepted_spans_dir, newest, num_spans)
  logging.info('Training window: span(s) %s.',
               ', '.join(str(a.span) for a in spans))
  copy_window(spans, splits, window.uri)
  window.split_names = examples.split_names
  for name in _FORMAT_PROPERTIES:
    if examples.has_custom_property(name):
      window.set_string_custom_property(
          name, examples.get_string_custom_property(name))
  window.set_int_custom_property('span', newest.span)
  window.set_string_custom_property(
      SPANS_PROPERTY, ','.join(str(a.span) for a in spans))
