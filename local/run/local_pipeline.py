"""The pipeline as a local run builds and runs it.

pipeline/pipeline.py's factory with this machine's paths
(local/output_layout.py), the SQLite metadata store and Beam's DirectRunner
in this process (local/run/direct_runner.py), run component by component as
TFX's LocalDagRunner runs them, under the run id the runner chose.
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
  """Runs the pipeline under the run id this process chose (and holds the
  output folder's lock for), so its summary and report find its own run.

  The loop of TFX's LocalDagRunner (`run_with_ir`: one Launcher per node, in
  topological order, with the same log lines, which local/run/progress.py
  reads), with one difference: the Launcher gets local/run/direct_runner.py's
  subclass of TFX's Beam operator, which LocalDagRunner has no argument for.
  """
  # pylint: disable=g-import-not-at-top
  # Not `tfx.v1`, which also imports the Vertex AI SDK (pipeline/pipeline.py).
  from absl import logging
  from tfx.dsl.compiler import compiler
  from tfx.dsl.compiler import constants
  from tfx.orchestration import metadata
  from tfx.orchestration.local import runner_utils
  from tfx.orchestration.portable import launcher
  from tfx.orchestration.portable import runtime_parameter_utils
  from tfx.utils import telemetry_utils
  from local.run import direct_runner
  # pylint: enable=g-import-not-at-top
  ir = compiler.Compiler().compile(pipeline)
  runtime_parameter_utils.substitute_runtime_parameter(
      ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
  deployment = runner_utils.extract_local_deployment_config(ir)
  connection = getattr(
      deployment.metadata_connection_config,
      deployment.metadata_connection_config.WhichOneof('connection_config'))
  with telemetry_utils.scoped_labels(
      {telemetry_utils.LABEL_TFX_RUNNER: 'local'}):
    for node in ir.nodes:
      pipeline_node = node.pipeline_node
      node_id = pipeline_node.node_info.id
      if pipeline_node.execution_options.HasField('skip'):
        logging.info('Skipping component %s.', node_id)
        continue
      component_launcher = launcher.Launcher(
          pipeline_node=pipeline_node,
          mlmd_connection=metadata.Metadata(connection),
          pipeline_info=ir.pipeline_info,
          pipeline_runtime_spec=ir.runtime_spec,
          executor_spec=runner_utils.extract_executor_spec(deployment,
                                                           node_id),
          custom_driver_spec=runner_utils.extract_custom_driver_spec(
              deployment, node_id),
          custom_executor_operators=direct_runner.EXECUTOR_OPERATORS)
      logging.info('Component %s is running.', node_id)
      component_launcher.launch()
      logging.info('Component %s is finished.', node_id)
