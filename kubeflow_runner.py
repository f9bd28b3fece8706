"""Compiles the pipeline for Google Cloud, offline and without credentials.

    GOOGLE_CLOUD_PROJECT=my-project make compile
    # or: .venv/bin/python kubeflow_runner.py --target=all

Two targets from `pipeline.build`, the builder every runner uses (see
docs/kubeflow.md); this file adds only what differs by runtime (a
`pipeline.Runtime`, the image, the compiler):

- vertex: a PipelineJob JSON for Vertex AI Pipelines. With no arguments this
  file compiles only this target, which is what `tfx pipeline
  compile|create|update --engine=vertex --pipeline_path=kubeflow_runner.py`
  expects.
- kubeflow: a pipeline spec YAML for Kubeflow Pipelines 2.x on GKE, uploaded
  with `tfx pipeline create|update --engine=kubeflow` (deploy/tfx_cli.py).
  It holds container steps only: the Evaluator's baseline comes from the
  serving folder, not from a Resolver.

Both use the cloud settings of pipeline/configs.py: the bucket layout, the
pipeline image built from the Dockerfile (by the digest `make image` recorded
for its tag, when there is one: deploy/pipeline_image.py), Dataflow and
Vertex AI.
"""
import argparse
import json
import os
import sys
from typing import List, Optional

# Before TensorFlow loads: keep its start-up notices out of the output.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
import yaml  # pylint: disable=g-import-not-at-top

from pipeline import cloud_settings  # pylint: disable=g-import-not-at-top
from pipeline import configs  # pylint: disable=g-import-not-at-top
from pipeline.errors import ConfigError, DataError  # pylint: disable=g-import-not-at-top
from pipeline import component_ids  # pylint: disable=g-import-not-at-top
from deploy import pipeline_image  # pylint: disable=g-import-not-at-top
from pipeline import problem_spec  # pylint: disable=g-import-not-at-top
from pipeline.kfp_runtime import run_lease  # pylint: disable=g-import-not-at-top
from pipeline import pipeline as pipeline_factory  # pylint: disable=g-import-not-at-top
from pipeline.data_files import schema_file  # pylint: disable=g-import-not-at-top
from pipeline.data_files import spans as span_layout  # pylint: disable=g-import-not-at-top
from pipeline.vertex_serving import target as vertex_target  # pylint: disable=g-import-not-at-top

VERTEX = 'vertex'
KUBEFLOW = 'kubeflow'
TARGETS = (VERTEX, KUBEFLOW)


def output_dir(settings: configs.Settings) -> str:
  """Where `make compile` writes the compiled pipelines (git-ignored)."""
  return os.path.join(settings.LOCAL_OUTPUT_DIR, 'compiled')


def filename(pipeline_name: str, target: str) -> str:
  """The file a target is written to under the output folder."""
  return f'{pipeline_name}.{target}.' + ('json' if target == VERTEX else 'yaml')


def create_pipeline(settings: configs.Settings,
                    cloud: cloud_settings.CloudSettings,
                    target: str) -> tfx.dsl.Pipeline:
  """The pipeline of pipeline/pipeline.py, configured for `target`.

  Args:
    settings: the settings of pipeline/configs.py.
    cloud: the checked cloud settings derived from them.
    target: VERTEX or KUBEFLOW.

  Returns:
    The pipeline to compile.
  """
  kubeflow = target == KUBEFLOW
  # The layout of the local DATA_PATH, which `make infra` uploads as it is.
  spans = span_layout.list_spans(settings.DATA_PATH)
  return pipeline_factory.build(
      settings,
      pipeline_factory.Runtime(
          pipeline_root=cloud.pipeline_root,
          data_path=cloud.data_path,
          serving_model_dir=cloud.serving_model_dir,
          beam_pipeline_args=cloud.beam_pipeline_args(),
          vertex_ai=pipeline_factory.VertexAI(
              region=cloud.region,
              training_args=cloud.ai_platform_training_args(),
              # Both targets write the serving folder (the Kubeflow target's
              # baseline step reads it) and then serve on Vertex AI.
              serving=(vertex_target.from_settings(settings)
                       if settings.VERTEX_SERVING else None)),
          # Kubeflow: the baseline is the last pushed model in the serving
          # folder; Vertex: the Resolver finds it in ML Metadata.
          baseline_from_serving_dir=kubeflow),
      # Checked against the local DATA_PATH, the folder that `make infra`
      # uploads to the bucket's input/data.
      problem=problem_spec.from_settings(
          settings, span_layout.ingested_folder(settings.DATA_PATH,
                                                spans)).problem,
      # The reviewed schema goes into the compiled spec itself, so the
      # containers need no copy of the repository.
      reviewed_schema_text=schema_file.read_text(settings.SCHEMA_PATH),
      spans=spans)


def _runner(cloud: cloud_settings.CloudSettings, out_dir: str,
            filename: str) -> tfx.orchestration.experimental.KubeflowV2DagRunner:
  return tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=cloud.image,
          # The schema the KFP 2.x SDK and backend use; Vertex accepts it too.
          use_pipeline_spec_2_1=True),
      output_dir=out_dir,
      output_filename=filename)


def compile_vertex(settings: configs.Settings,
                   cloud: cloud_settings.CloudSettings, out_dir: str) -> str:
  """Writes the Vertex AI Pipelines PipelineJob JSON; returns its path."""
  name = filename(settings.PIPELINE_NAME, VERTEX)
  job = _runner(cloud, out_dir, name).run(
      create_pipeline(settings, cloud, VERTEX), write_out=False)
  _add_run_lease(job['pipelineSpec'], settings, cloud)
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, name)
  with open(path, 'w') as job_file:
    json.dump(job, job_file, sort_keys=True)
  return path


def _add_run_lease(spec, settings: configs.Settings,
                   cloud: cloud_settings.CloudSettings) -> None:
  """One run at a time: every step holds the lease in the pipeline root."""
  run_lease.add_to_spec(spec, cloud.pipeline_root, settings.CONCURRENT_RUNS,
                        settings.RUN_LEASE_TTL_MINUTES)


def compile_kubeflow(settings: configs.Settings,
                     cloud: cloud_settings.CloudSettings, out_dir: str) -> str:
  """Writes the Kubeflow Pipelines 2.x pipeline spec YAML; returns its path."""
  name = filename(settings.PIPELINE_NAME, KUBEFLOW)
  job = _runner(cloud, out_dir, name).run(
      create_pipeline(settings, cloud, KUBEFLOW), write_out=False)
  spec = job['pipelineSpec']
  # A bare spec has no PipelineJob runtimeConfig: the root goes in the spec.
  spec['defaultPipelineRoot'] = cloud.pipeline_root
  # The baseline step's only input is a constant, so a cached result would
  # hide every later push: it runs every time.
  spec['root']['dag']['tasks'][component_ids.PUSHED_MODEL_BASELINE].pop(
      'cachingOptions', None)
  if span_layout.list_spans(settings.DATA_PATH):
    # Kubeflow Pipelines runs no preCacheCheck, so ExampleGen's cache key
    # cannot see a new span in the bucket: it reads the bucket every run.
    spec['root']['dag']['tasks'][component_ids.EXAMPLE_GEN].pop(
        'cachingOptions', None)
  _add_run_lease(spec, settings, cloud)
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, name)
  with open(path, 'w') as spec_file:
    spec_file.write(f'# PIPELINE DEFINITION\n# Name: {settings.PIPELINE_NAME}\n'
                    f'# Compiled by kubeflow_runner.py for Kubeflow Pipelines '
                    f'2.x from TFX {tfx.__version__}.\n')
    yaml.safe_dump(spec, spec_file, sort_keys=True)
  return path


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--target', choices=TARGETS + ('all',), default=VERTEX,
                      help='what to compile (default: vertex, as the tfx CLI '
                      'expects)')
  parser.add_argument('--output_dir',
                      help='where to write the files (default: '
                      'LOCAL_OUTPUT_DIR/compiled)')
  args = parser.parse_args(argv)
  absl_logging.set_verbosity(absl_logging.WARNING)

  try:
    settings = configs.load(os.environ)
    # By digest once `make image` has recorded one for this tag.
    cloud = pipeline_image.resolve(settings)
    schema_file.read_text(settings.SCHEMA_PATH)  # a bad file stops here
  except (ConfigError, schema_file.SchemaFileError) as error:
    return configs.config_error_status(error)
  out_dir = args.output_dir or output_dir(settings)
  print(f'Pipeline image: {cloud.image}')
  targets = TARGETS if args.target == 'all' else (args.target,)
  try:
    if VERTEX in targets:
      path = compile_vertex(settings, cloud, out_dir)
      print(f'Vertex AI Pipelines (PipelineJob JSON): {path}')
    if KUBEFLOW in targets:
      path = compile_kubeflow(settings, cloud, out_dir)
      print(f'Kubeflow Pipelines 2.x (pipeline spec YAML): {path}')
  except ConfigError as error:
    return configs.config_error_status(error)
  except DataError as error:
    # A data problem is the data's, not the settings' (as local_runner.py).
    print(f'data error: {error}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
