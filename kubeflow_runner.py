"""Compiles the pipeline for Google Cloud, offline and without credentials.

    GOOGLE_CLOUD_PROJECT=my-project make compile
    # or: .venv/bin/python kubeflow_runner.py --target=all

Two targets from the same `create_pipeline` (see docs/kubeflow.md):

- vertex: a PipelineJob JSON for Vertex AI Pipelines. With no arguments this
  file compiles only this target, which is what `tfx pipeline
  compile|create|update --engine=vertex --pipeline_path=kubeflow_runner.py`
  expects.
- kubeflow: a pipeline spec YAML for Kubeflow Pipelines 2.x on GKE, uploaded
  with `python -m deploy.kfp_cli`. It holds container steps only: the
  Evaluator's baseline comes from the serving folder, not from a Resolver.

Both use the cloud settings of pipeline/configs.py: the bucket layout, the
pipeline image built from the Dockerfile, Dataflow and Vertex AI.
"""
import argparse
import os
import sys
from typing import List, Optional

# Before TensorFlow loads: keep its start-up notices out of the output.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from pipeline.settings import ConfigError  # pylint: disable=g-import-not-at-top

try:
  from pipeline import configs  # pylint: disable=g-import-not-at-top
except ConfigError as error:
  sys.exit(f'configuration error: {error}')

from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
import yaml  # pylint: disable=g-import-not-at-top

from pipeline import cloud_settings  # pylint: disable=g-import-not-at-top
from pipeline import component_ids  # pylint: disable=g-import-not-at-top
from deploy import pipeline_image  # pylint: disable=g-import-not-at-top
from pipeline import problem_spec  # pylint: disable=g-import-not-at-top
from pipeline import pipeline as pipeline_factory  # pylint: disable=g-import-not-at-top
from pipeline import schema_file  # pylint: disable=g-import-not-at-top

# Where `make compile` writes the compiled pipelines (git-ignored).
OUTPUT_DIR = os.path.join(configs.LOCAL_OUTPUT_DIR, 'compiled')

VERTEX = 'vertex'
KUBEFLOW = 'kubeflow'
TARGETS = (VERTEX, KUBEFLOW)

# The files each target writes under the output folder.
VERTEX_FILENAME = f'{configs.PIPELINE_NAME}.vertex.json'
KUBEFLOW_FILENAME = f'{configs.PIPELINE_NAME}.kubeflow.yaml'

def create_pipeline(settings: cloud_settings.CloudSettings,
                    target: str) -> tfx.dsl.Pipeline:
  """The pipeline of pipeline/pipeline.py, configured for `target`.

  Args:
    settings: the checked cloud settings.
    target: VERTEX or KUBEFLOW.

  Returns:
    The pipeline to compile.
  """
  kubeflow = target == KUBEFLOW
  return pipeline_factory.create_pipeline(
      pipeline_name=configs.PIPELINE_NAME,
      pipeline_root=settings.pipeline_root,
      data_path=settings.data_path,
      serving_model_dir=settings.serving_model_dir,
      # Checked against the local DATA_PATH, the folder that
      # `make infra` uploads to the bucket's input/data.
      problem=problem_spec.from_configs(configs).problem,
      training=pipeline_factory.Training(
          steps=configs.TRAIN_NUM_STEPS,
          eval_steps=configs.TRAINER_EVAL_NUM_STEPS,
          batch_size=configs.TRAIN_BATCH_SIZE,
          seed=configs.RANDOM_SEED),
      evaluation=pipeline_factory.Evaluation(
          accuracy_threshold=configs.EVAL_ACCURACY_THRESHOLD,
          baseline_tolerance=configs.EVAL_BASELINE_TOLERANCE,
          rmse_threshold=configs.EVAL_RMSE_THRESHOLD,
          slice_columns=configs.EVAL_SLICE_COLUMNS),
      data_gates=pipeline_factory.DataGates(
          # The reviewed schema goes into the compiled spec itself, so the
          # containers need no copy of the repository.
          reviewed_schema_text=schema_file.read_text(configs.SCHEMA_PATH),
          allowed_anomalies=configs.ALLOWED_ANOMALIES,
          min_severity=configs.ANOMALY_MIN_SEVERITY),
      vertex_ai=pipeline_factory.VertexAI(
          region=settings.region,
          training_args=settings.ai_platform_training_args(),
          # Kubeflow: the Pusher writes to the serving folder, where the
          # baseline step finds the last pushed model. Vertex: it deploys to
          # an endpoint and the Resolver finds the baseline in ML Metadata.
          serving_args=(None if kubeflow else
                        settings.ai_platform_serving_args()),
          serving_image=settings.vertex_serving_image),
      baseline_from_serving_dir=kubeflow,
      beam_pipeline_args=settings.beam_pipeline_args())


def _runner(settings: cloud_settings.CloudSettings, output_dir: str,
            filename: str) -> tfx.orchestration.experimental.KubeflowV2DagRunner:
  return tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=settings.image,
          # The schema the KFP 2.x SDK and backend use; Vertex accepts it too.
          use_pipeline_spec_2_1=True),
      output_dir=output_dir,
      output_filename=filename)


def compile_vertex(settings: cloud_settings.CloudSettings,
                   output_dir: str) -> str:
  """Writes the Vertex AI Pipelines PipelineJob JSON; returns its path."""
  _runner(settings, output_dir, VERTEX_FILENAME).run(
      create_pipeline(settings, VERTEX))
  return os.path.join(output_dir, VERTEX_FILENAME)


def compile_kubeflow(settings: cloud_settings.CloudSettings,
                     output_dir: str) -> str:
  """Writes the Kubeflow Pipelines 2.x pipeline spec YAML; returns its path."""
  job = _runner(settings, output_dir, KUBEFLOW_FILENAME).run(
      create_pipeline(settings, KUBEFLOW), write_out=False)
  spec = job['pipelineSpec']
  # A bare spec has no PipelineJob runtimeConfig: the root goes in the spec.
  spec['defaultPipelineRoot'] = settings.pipeline_root
  # The baseline step's only input is a constant, so a cached result would
  # hide every later push: it runs every time.
  spec['root']['dag']['tasks'][component_ids.PUSHED_MODEL_BASELINE].pop(
      'cachingOptions', None)
  os.makedirs(output_dir, exist_ok=True)
  path = os.path.join(output_dir, KUBEFLOW_FILENAME)
  with open(path, 'w') as spec_file:
    spec_file.write(f'# PIPELINE DEFINITION\n# Name: {configs.PIPELINE_NAME}\n'
                    f'# Compiled by kubeflow_runner.py for Kubeflow Pipelines '
                    f'2.x from TFX {tfx.__version__}.\n')
    yaml.safe_dump(spec, spec_file, sort_keys=True)
  return path


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--target', choices=TARGETS + ('all',), default=VERTEX,
                      help='what to compile (default: vertex, as the tfx CLI '
                      'expects)')
  parser.add_argument('--output_dir', default=OUTPUT_DIR,
                      help=f'where to write the files (default: {OUTPUT_DIR})')
  args = parser.parse_args(argv)
  absl_logging.set_verbosity(absl_logging.WARNING)

  try:
    settings = cloud_settings.from_configs(
        configs, pipeline_image.image_tag(configs.PIPELINE_IMAGE_TAG))
    schema_file.read_text(configs.SCHEMA_PATH)  # a bad file stops here
  except (ConfigError, schema_file.SchemaFileError) as error:
    print(f'configuration error: {error}', file=sys.stderr)
    return 2
  print(f'Pipeline image: {settings.image}')
  targets = TARGETS if args.target == 'all' else (args.target,)
  try:
    if VERTEX in targets:
      path = compile_vertex(settings, args.output_dir)
      print(f'Vertex AI Pipelines (PipelineJob JSON): {path}')
    if KUBEFLOW in targets:
      path = compile_kubeflow(settings, args.output_dir)
      print(f'Kubeflow Pipelines 2.x (pipeline spec YAML): {path}')
  except ConfigError as error:
    print(f'configuration error: {error}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
