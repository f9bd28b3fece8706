"""Where and how blessed models are served on Vertex AI (`ServingTarget`).

The settings of pipeline/configs.py's "Serving on Vertex AI" block, in one
frozen value that travels inside the compiled pipeline (the Pusher's
`custom_config`) and that `python -m deploy.serving` builds the same way.
"""
import dataclasses
from typing import Any, Dict

from pipeline.errors import ConfigError

# The Vertex AI API of a region: https://{region}-aiplatform.googleapis.com.
_REGIONAL_API = '{region}-aiplatform.googleapis.com'


@dataclasses.dataclass(frozen=True)
class ServingTarget:
  """One Vertex AI model and the endpoint that serves it.

  Attributes:
    project: the Google Cloud project.
    region: the Vertex AI region of the model and the endpoint.
    pipeline_name: the pipeline whose models these are (a label of each
      version).
    model_id: the Vertex AI model's id; every push is a version of it.
    endpoint_name: the endpoint's display name (created on the first push).
    serving_image: the prediction image Vertex AI serves the model with.
    machine_type: the machine of each serving node.
    alias: the version alias that marks the served version.
    keep_deployed: how many previously served versions stay deployed,
      without traffic, after a push or a rollback.
    request_log_table: 'bq://project.dataset.table' the endpoint logs
      requests and responses to; empty: no logging.
    request_log_sampling: the share of requests logged.
    api_endpoint: the Vertex AI API's address; empty: the region's. An
      http:// address is a local stand-in (see api.py).
    min_replicas: serving nodes each deployment keeps running.
    max_replicas: serving nodes each deployment may scale to.
  """
  project: str
  region: str
  pipeline_name: str
  model_id: str
  endpoint_name: str
  serving_image: str
  machine_type: str = 'n1-standard-2'
  alias: str = 'production'
  keep_deployed: int = 0
  request_log_table: str = ''
  request_log_sampling: float = 1.0
  api_endpoint: str = ''
  min_replicas: int = 1
  max_replicas: int = 1

  @property
  def location(self) -> str:
    """The parent of the model and the endpoint."""
    return f'projects/{self.project}/locations/{self.region}'

  @property
  def model_name(self) -> str:
    """The model's resource name."""
    return f'{self.location}/models/{self.model_id}'

  @property
  def api_host(self) -> str:
    """The address the clients call."""
    return self.api_endpoint or _REGIONAL_API.format(region=self.region)

  def version_name(self, version_id: str) -> str:
    """The resource name of one version of the model."""
    return f'{self.model_name}@{version_id}'

  def to_config(self) -> Dict[str, Any]:
    """A JSON-ready dict (the compiled pipeline carries it)."""
    return dataclasses.asdict(self)

  @classmethod
  def from_config(cls, config: Dict[str, Any]) -> 'ServingTarget':
    """The target `to_config` described."""
    return cls(**config)


def bigquery_uri(table: str, project: str) -> str:
  """'dataset.table' (in `project`) or 'project.dataset.table' as the
  'bq://project.dataset.table' Vertex AI logs to; '' stays ''."""
  if not table:
    return ''
  table = table[len('bq://'):] if table.startswith('bq://') else table
  return 'bq://' + (table if table.count('.') == 2 else f'{project}.{table}')


def from_settings(settings: Any) -> ServingTarget:
  """The serving target the settings of pipeline/configs.py describe.

  Args:
    settings: `configs.load(...)`.

  Returns:
    The target.

  Raises:
    ConfigError: GOOGLE_CLOUD_PROJECT is empty.
  """
  if not settings.GOOGLE_CLOUD_PROJECT:
    raise ConfigError(
        'GOOGLE_CLOUD_PROJECT is not set: serving on Vertex AI needs it (set '
        'it in pipeline/configs.py or as an environment variable).')
  return ServingTarget(
      project=settings.GOOGLE_CLOUD_PROJECT,
      region=settings.GOOGLE_CLOUD_REGION,
      pipeline_name=settings.PIPELINE_NAME,
      model_id=settings.VERTEX_MODEL_ID,
      endpoint_name=settings.VERTEX_ENDPOINT_NAME,
      serving_image=settings.VERTEX_SERVING_IMAGE,
      machine_type=settings.VERTEX_SERVING_MACHINE_TYPE,
      alias=settings.VERTEX_PRODUCTION_ALIAS,
      keep_deployed=settings.VERTEX_KEEP_DEPLOYED,
      request_log_table=bigquery_uri(settings.VERTEX_REQUEST_LOG_TABLE,
                                     settings.GOOGLE_CLOUD_PROJECT),
      request_log_sampling=settings.VERTEX_REQUEST_LOG_SAMPLING,
      api_endpoint=settings.VERTEX_API_ENDPOINT)
