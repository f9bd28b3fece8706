"""The pipeline as a local run builds and runs it.

pipeline/pipeline.py's factory with this machine's paths
(local/output_layout.py), the SQLite metadata store and Beam's DirectRunner,
run by TFX's LocalDagRunner under the run id the runner chose.
local_runner.py runs it; bench/profile_component.py builds the same pipeline
to find a component's executor.
"""
from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import pipeline as tfx_pipeline

from local import output_layout
from local.run import inputs as run_inputs
from pipeline import pipeline as pipeline_factory

# Beam's defaults: the DirectRunner, in memory, one worker. (Any non-empty
# argument list makes every Beam component build an sdist of TFX first, to
# ship to remote workers, which costs seconds and is useless locally.)
BEAM_PIPELINE_ARGS: List[str] = []


def create_pipeline(
    checked: run_inputs.RunInputs,
    connection: Optional[metadata_store_pb2.ConnectionConfig]
) -> tfx_pipeline.Pipeline:
  """The factory's pipeline with this machine's paths and store.

  Args:
    checked: the settings and what the checks before the run found
      (local/run/inputs.py): the problem, the reviewed schema, the spans.
    connection: the metadata store; None for a pipeline that is only
      inspected, not run.
  """
  settings = checked.settings
  layout = output_layout.PipelineLayout.of(settings.LOCAL_OUTPUT_DIR,
                                           settings.PIPELINE_NAME)
  return pipeline_factory.build(
      settings,
      pipeline_factory.Runtime(
          pipeline_root=layout.pipeline_root,
          data_path=settings.DATA_PATH,
          serving_model_dir=layout.serving_model_dir,
          metadata_connection_config=connection,
          beam_pipeline_args=BEAM_PIPELINE_ARGS),
      problem=checked.resolved.problem,
      reviewed_schema_text=checked.schema_text,
      spans=checked.spans)


def run(pipeline: tfx_pipeline.Pipeline, run_id: str) -> None:
  """LocalDagRunner's run, under the run id this process chose (and holds
  the output folder's lock for), so its summary and report find its own
  run."""
  # pylint: disable=g-import-not-at-top
  # Not `tfx.v1`, which also imports the Vertex AI SDK (pipeline/pipeline.py).
  from tfx.dsl.compiler import compiler
  from tfx.dsl.compiler import constants
  from tfx.orchestration.local.local_dag_runner import LocalDagRunner
  from tfx.orchestration.portable import runtime_parameter_utils
  # pylint: enable=g-import-not-at-top
  ir = compiler.Compiler().compile(pipeline)
  runtime_parameter_utils.substitute_runtime_parameter(
      ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
  LocalDagRunner().run_with_ir(ir)
