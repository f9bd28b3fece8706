"""Beam's DirectRunner for local runs, without its attempt to use Prism.

For every Beam pipeline, Beam 2.74's DirectRunner first checks whether its
Prism runner (a Go program) supports the pipeline, looks for Prism's binary
and, where none is cached, tries to download it; only when that fails does it
run the pipeline in this process on the FnApiRunner (or, for what that does
not support, the bundle-based runner). So a local run's Beam components ran
on a runner that depended on the network, and on a machine without one each
Beam pipeline (ExampleGen, StatisticsGen and Transform) paid for the attempt:
about 0.3 s of CPU each (docs/performance.md).

`direct_pipeline` gives the components Beam's own DirectRunner marked the way
Beam's interactive runner marks it (pipeline/kfp_runtime/in_process_runner.py,
which the image's Beam steps use too), which makes it skip Prism and choose
between the FnApiRunner and the bundle-based runner as before; the pipeline's
options are the same (none). `LocalBeamOperator` hands it to the Beam-based
executors of a local run, through TFX's own hook for that
(`BeamExecutorOperator.run_executor`'s `make_beam_pipeline_fn`); with Beam
arguments (another runner) it leaves them to TFX unchanged.
"""
from typing import Any, Dict

import apache_beam as beam
from tfx.orchestration.portable import beam_executor_operator
from tfx.proto.orchestration import executable_spec_pb2

from pipeline.kfp_runtime import in_process_runner


def direct_pipeline() -> beam.Pipeline:
  """A Beam pipeline with default options on the in-process DirectRunner."""
  # The same runner as a Beam step in a container below
  # DATAFLOW_MIN_INPUT_BYTES.
  return beam.Pipeline(runner=in_process_runner.InProcessDirectRunner())


class LocalBeamOperator(beam_executor_operator.BeamExecutorOperator):
  """TFX's operator for Beam-based executors, building their pipelines with
  `direct_pipeline` when no Beam arguments are given."""

  def run_executor(self, execution_info, make_beam_pipeline_fn=None):
    if make_beam_pipeline_fn is None and not self.beam_pipeline_args:
      make_beam_pipeline_fn = direct_pipeline
    return super().run_executor(execution_info, make_beam_pipeline_fn)


# For TFX's Launcher: the executor operator per kind of executor spec.
EXECUTOR_OPERATORS: Dict[Any, Any] = {
    executable_spec_pb2.BeamExecutableSpec: LocalBeamOperator}
