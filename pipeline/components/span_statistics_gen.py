"""StatisticsGen whose statistics carry their span.

TFX 1.16's ExampleGen records the span it ingested as a custom property of
its Examples artifact; StatisticsGen copies the examples' `span` property to
the statistics, which is therefore always 0. This StatisticsGen copies the
span ExampleGen recorded, so the drift check between spans can tell which
statistics belong to which span (pipeline/components/accepted_spans.py).
Everything else is StatisticsGen's, with its columnar executor
(pipeline/components/columnar_statistics_gen.py).
"""
from typing import Any, Dict, List

from tfx import types
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from pipeline.components import columnar_statistics_gen

SPAN = 'span'  # ExampleGen's custom property (tfx.components.example_gen.utils)


def span_of(artifact: types.Artifact) -> int:
  """The artifact's span: ExampleGen's custom property where it has one
  (an int, or a string in older releases), else the `span` property."""
  if artifact.has_custom_property(SPAN):
    value = artifact.get_custom_property(SPAN)
    return int(value)
  return artifact.span


class Executor(columnar_statistics_gen.Executor):
  """StatisticsGen's executor; the statistics get the examples' span."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    super().Do(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.EXAMPLES_KEY])
    statistics = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.STATISTICS_KEY])
    statistics.span = span_of(examples)


class SpanStatisticsGen(columnar_statistics_gen.StatisticsGen):
  """StatisticsGen (same inputs and outputs) recording the span."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
