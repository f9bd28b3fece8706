"""TFX's Transform, tracing preprocessing_fn once or twice instead of five
times, giving it the numeric matrix's columns as dense inputs
(pipeline/components/dense_numeric_inputs.py), and analysing in this
process where Beam would run here (pipeline/components/in_process_transform.py).

TFX 1.16's Transform executor traces the preprocessing_fn once for each
question it asks before the analysis, and TFT traces it once more for the
analysis itself:

1. which columns the analyzers read (`TransformProcessor.Transform`),
2. the same again (`TransformProcessor._RunBeamImpl`),
3. which columns the transform reads,
4. the analysis graph, for the analyzer-cache keys (`_OptimizeRun`),
5. the analysis that runs (`tft_beam.AnalyzeDataset`).

Each trace is a new TF1 graph with a placeholder and an identity per dense
input and three of each per sparse one (a sometimes-empty column outside
the numeric matrix) before the preprocessing_fn adds its own ops, so on a
wide table the traces were about half of the executor's time and grew with
the number of columns (docs/performance.md, "Wide tables").

Questions 1 to 3 only read the traced graph, and 4 reads it before it clears
the graph's list of analyzers (`analysis_graph_builder.build`), so all four
get one trace: while the executor runs, TFT's tracing function hands back
the graph it traced last for the same preprocessing_fn and input specs as
long as that graph's analyzers are all still listed, and traces anew once
they are not. TFT's Beam analysis (5) therefore gets a graph of its own, as
before. Where the analysis runs in this process, TFX's analysis-cache
question (4) is not asked, and the analysis builds on the inspections'
graph, which nothing has cleared yet: one trace in all (a TF1 trace does
not depend on the temporary folder it is given).

The sharing changes nothing else: the same component (inputs, outputs,
properties), the same analysis, the same transform graph, vocabularies and
metadata as TFX's executor given the same dense inputs
(tests/test_shared_trace_transform.py compares them byte for byte; it also
compares the transformed features with TFX's executor's on sparse inputs,
where the analyzers' float sums may differ in their last digits: TFX's
executor reads batches of the sizes Beam tunes, the project's reads fixed
ones, pipeline/components/transform_batches.py).
"""
import contextlib
from typing import Any, Iterator, Mapping

from absl import logging

from tensorflow_transform import analyzer_nodes
from tensorflow_transform import impl_helper
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec

from pipeline.components import dense_numeric_inputs
from pipeline.components import library_substitution
from pipeline.kfp_runtime import in_process_runner

# The parameters of TFT's tracing function that the sharing below stands in
# for (tensorflow-transform 1.16). A TFT whose function takes others gets no
# sharing, and traces as many times as it always did.
_TRACE_PARAMETERS = ('preprocessing_fn', 'input_specs', 'use_tf_compat_v1',
                     'base_temp_dir')


def _can_share() -> bool:
  """Whether TFT's tracing function is the one the sharing was written for."""
  return library_substitution.takes(impl_helper.trace_preprocessing_function,
                                    _TRACE_PARAMETERS)


def _analyzers(graph) -> tuple:
  """The analyzers' sinks that `graph` lists now."""
  return tuple(graph.get_collection(analyzer_nodes.TENSOR_REPLACEMENTS))


def _same(sinks: tuple, others: tuple) -> bool:
  """Whether both are the same sink objects (by identity: == on graph
  tensors would add ops to the graph)."""
  return len(sinks) == len(others) and all(
      a is b for a, b in zip(sinks, others))


@contextlib.contextmanager
def shared_inspection_trace() -> Iterator[None]:
  """While inside, a TF1 trace of a preprocessing_fn is handed out again to
  the next trace of the same function and specs, as long as no caller has
  cleared its analyzers (which the analysis does), so the inspections share
  one graph and the analysis still gets a fresh one.

  Traces in TF2 mode, of specs that cannot be compared, and of functions
  without analyzers are not shared.
  """
  if not _can_share():
    logging.warning(
        'Transform traces the preprocessing_fn for each of its questions: '
        "this tensorflow-transform's tracing function does not take %s.",
        ', '.join(_TRACE_PARAMETERS))
    yield
    return
  original = impl_helper.trace_preprocessing_function
  last = {}

  def trace(preprocessing_fn, input_specs: Mapping[str, Any],
            use_tf_compat_v1, base_temp_dir=None):
    try:
      key = (preprocessing_fn, tuple(sorted(input_specs.items())))
      hash(key)
    except TypeError:
      key = None
    if not use_tf_compat_v1 or key is None:
      return original(preprocessing_fn, input_specs, use_tf_compat_v1,
                      base_temp_dir)
    if key in last:
      traced, analyzers = last[key]
      if analyzers and _same(_analyzers(traced[0]), analyzers):
        return traced
    traced = original(preprocessing_fn, input_specs, use_tf_compat_v1,
                      base_temp_dir)
    last.clear()
    last[key] = (traced, _analyzers(traced[0]))
    return traced

  with library_substitution.substituted(
      impl_helper, trace_preprocessing_function=trace):
    yield


class Executor(transform_executor.Executor):
  """TFX's Transform executor, its inspections sharing one trace, and the
  numeric matrix's columns given to the project's preprocessing_fn as dense
  inputs where custom_config holds the problem description."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    problem = dense_numeric_inputs.problem_of(exec_properties)
    in_process = in_process_runner.runs_in_process(self._beam_pipeline_args)
    with dense_numeric_inputs.dense_inputs(problem, in_process), (
        shared_inspection_trace()):
      super().Do(input_dict, output_dict, exec_properties)


class Transform(transform_component.Transform):
  """TFX's Transform (same inputs, outputs and properties) with the
  executor above."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
