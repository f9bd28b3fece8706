"""Google Cloud locations and job arguments derived from pipeline/configs.py.

The cloud runners need more than the settings themselves: bucket paths, the
pipeline image, Dataflow and Vertex AI arguments. `from_settings` derives them
in one place and stops with a ConfigError naming the setting when a required
one is missing. Nothing here calls a cloud API or runs a command.
"""
import dataclasses
from typing import Any, Dict, List, Optional

from pipeline.errors import ConfigError
from pipeline.kfp_runtime import beam_runner


@dataclasses.dataclass(frozen=True)
class CloudSettings:
  """What a cloud target of the pipeline runs with.

  Bucket layout:
  gs://<bucket>/input/data for the CSV files, gs://<bucket>/output/<pipeline>
  for artifacts, gs://<bucket>/serving_model/<pipeline> for pushed models,
  gs://<bucket>/tmp and gs://<bucket>/staging for Dataflow.
  """
  project: str
  region: str
  bucket: str
  pipeline_name: str
  repository: str
  image_tag: str
  use_dataflow: bool
  dataflow_machine_type: str
  dataflow_max_workers: int
  dataflow_min_input_bytes: int
  use_vertex_ai: bool
  vertex_training_machine_type: str
  # The digest `make image` recorded for this tag ('' if none): the image is
  # then named by digest, so a re-pushed tag is never mistaken for the old
  # one (Kubeflow Pipelines' cache keys on the image name).
  image_digest: str = ''

  @property
  def pipeline_root(self) -> str:
    return f'gs://{self.bucket}/output/{self.pipeline_name}'

  @property
  def data_path(self) -> str:
    return f'gs://{self.bucket}/input/data'

  @property
  def serving_model_dir(self) -> str:
    return f'gs://{self.bucket}/serving_model/{self.pipeline_name}'

  @property
  def image_name(self) -> str:
    """The pipeline image in Artifact Registry, without tag (the Dockerfile)."""
    return (f'{self.region}-docker.pkg.dev/{self.project}/{self.repository}/'
            f'{self.pipeline_name}')

  @property
  def tagged_image(self) -> str:
    """The image by tag: what `make image` builds and pushes."""
    return f'{self.image_name}:{self.image_tag}'

  @property
  def image(self) -> str:
    """The image every step runs: by digest when one is recorded."""
    if self.image_digest:
      return f'{self.image_name}@{self.image_digest}'
    return self.tagged_image

  def beam_pipeline_args(self) -> List[str]:
    """Beam arguments: Dataflow when enabled, else Beam's in-process runner
    (pipeline/kfp_runtime/in_process_runner.py).

    With Dataflow, the last argument carries DATAFLOW_MIN_INPUT_BYTES into
    each Beam step, where the image's start-up hook removes it and keeps
    Dataflow or switches to the DirectRunner from the step's input size
    (pipeline/kfp_runtime/beam_runner.py).
    """
    if not self.use_dataflow:
      # Beam's DirectRunner in each step's process, never its Prism runner
      # (which a pod would download from GitHub first). The image named
      # tells TFX its dependencies are in place; with no such argument TFX
      # would build and stage an sdist of itself.
      return [f'--runner={beam_runner.IN_PROCESS_RUNNER}',
              f'--sdk_container_image={self.image}']
    return [
        '--runner=DataflowRunner',
        f'--project={self.project}',
        f'--region={self.region}',
        f'--temp_location=gs://{self.bucket}/tmp',
        f'--staging_location=gs://{self.bucket}/staging',
        # Workers run the pipeline image, so they can import models/ (and
        # TFX does not try to stage an sdist of itself).
        f'--sdk_container_image={self.image}',
        f'--machine_type={self.dataflow_machine_type}',
        f'--max_num_workers={self.dataflow_max_workers}',
        beam_runner.threshold_arg(self.dataflow_min_input_bytes),
    ]

  def ai_platform_training_args(self) -> Optional[Dict[str, Any]]:
    """The Vertex AI CustomJob the Trainer runs in, or None when disabled."""
    if not self.use_vertex_ai:
      return None
    return {
        'project': self.project,
        'job_spec': {
            'worker_pool_specs': [{
                'machine_spec': {
                    'machine_type': self.vertex_training_machine_type
                },
                'replica_count': 1,
                'container_spec': {
                    'image_uri': self.image
                },
            }],
        },
    }


def from_settings(settings: Any, image_tag: str) -> CloudSettings:
  """Collects and checks the cloud settings among `settings`.

  Args:
    settings: the settings of pipeline/configs.py (`configs.load(...)`).
    image_tag: the pipeline image's tag, already resolved
      (PIPELINE_IMAGE_TAG or the git commit).

  Returns:
    The settings of a cloud target.

  Raises:
    ConfigError: a required setting is empty; the message names it.
  """
  required = {
      'GOOGLE_CLOUD_PROJECT': settings.GOOGLE_CLOUD_PROJECT,
      'GCS_BUCKET_NAME': settings.GCS_BUCKET_NAME,
      'ARTIFACT_REGISTRY_REPOSITORY': settings.ARTIFACT_REGISTRY_REPOSITORY,
  }
  for name, value in required.items():
    if not value:
      raise ConfigError(
          f'{name} is not set: the cloud targets need it (set it in '
          'pipeline/configs.py or as an environment variable).')
  if not image_tag:
    raise ConfigError(
        'PIPELINE_IMAGE_TAG is not set and no git commit was found to tag the '
        'pipeline image with: set PIPELINE_IMAGE_TAG to the tag of the image '
        'you built.')
  return CloudSettings(
      project=settings.GOOGLE_CLOUD_PROJECT,
      region=settings.GOOGLE_CLOUD_REGION,
      bucket=settings.GCS_BUCKET_NAME,
      pipeline_name=settings.PIPELINE_NAME,
      repository=settings.ARTIFACT_REGISTRY_REPOSITORY,
      image_tag=image_tag,
      use_dataflow=settings.USE_DATAFLOW,
      dataflow_machine_type=settings.DATAFLOW_MACHINE_TYPE,
      dataflow_max_workers=settings.DATAFLOW_MAX_WORKERS,
      dataflow_min_input_bytes=settings.DATAFLOW_MIN_INPUT_BYTES,
      use_vertex_ai=settings.USE_VERTEX_AI,
      vertex_training_machine_type=settings.VERTEX_TRAINING_MACHINE_TYPE,
  )
