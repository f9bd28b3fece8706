"""Beam's DirectRunner in the step's own process, without its Prism attempt.

For every pipeline it is given, Beam's DirectRunner (2.74) first offers the
pipeline to its Prism runner, a Go program that it looks for in a local cache
and otherwise downloads from GitHub; only when that fails does it run the
pipeline in this process (the FnApiRunner, or the bundle-based runner for
what that does not support). A pod of Kubeflow Pipelines or Vertex AI starts
with an empty cache, so a Beam step on the DirectRunner would download Prism
in every run where the cluster can reach GitHub, and run on it, and fall back
where it cannot: two different runners for one pipeline. This runner is
Beam's DirectRunner marked the way Beam's interactive runner marks it, which
makes it skip Prism and choose between its in-process runners as it always
did. Local runs use the same runner (local/run/direct_runner.py).

It is Beam's own class, not a subclass: Beam's `Pipeline.run` recognises its
DirectRunner by the class name `SwitchingDirectRunner` and then, for a batch
pipeline, skips a round trip through the runner API (every transform
pickled and unpickled, the pipeline converted to protos and rebuilt from
them, only to check that it can be), since the FnApiRunner converts the
pipeline itself. A subclass under another name paid for that check in every
Beam pipeline: Transform's executor on the bundled data took 2.2 s with
it, 1.4 s without (alternating runs; docs/performance.md).

Beam arguments name it by its dotted name, `beam_runner.IN_PROCESS_RUNNER`
(Beam imports it when a step builds its pipeline, so the image's start-up
hook imports no Beam): the in-container choice of
pipeline/kfp_runtime/beam_runner.py, and pipeline/cloud_settings.py's
arguments when USE_DATAFLOW is off.
"""
from typing import Any, Sequence

from apache_beam.options import pipeline_options
from apache_beam.runners.direct import direct_runner

from pipeline.kfp_runtime import beam_runner

# --runner values (lower case) that run a pipeline in this process; None: no
# --runner, Beam's default, the DirectRunner.
_IN_PROCESS = frozenset((None, 'direct', 'directrunner',
                         'switchingdirectrunner', 'bundlebaseddirectrunner',
                         beam_runner.IN_PROCESS_RUNNER.lower()))


def InProcessDirectRunner(  # pylint: disable=invalid-name
) -> direct_runner.SwitchingDirectRunner:
  """Beam's DirectRunner, in this process, never trying Prism.

  A function under the name that Beam arguments give as --runner (Beam
  calls what the dotted name names), returning Beam's own class.
  """
  runner = direct_runner.SwitchingDirectRunner()
  # Beam's own switch (its interactive runner sets it): no Prism.
  runner.is_interactive()
  return runner


def runs_in_process(beam_pipeline_args: Sequence[Any]) -> bool:
  """Whether these Beam arguments run a pipeline in this process (no
  --runner, Beam's DirectRunner of either kind, or this one): what the
  columnar ExampleGen and Evaluator need for their in-memory paths."""
  runner = pipeline_options.PipelineOptions(
      [str(arg) for arg in beam_pipeline_args or ()]).view_as(
          pipeline_options.StandardOptions).runner
  return (runner.lower() if runner else None) in _IN_PROCESS
