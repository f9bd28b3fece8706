"""Push, rollback and status: the serving life cycle on Vertex AI.

`push` makes a blessed model the served version: a new version of the model
(or the one a retried push already made, found by the model's digest),
deployed to the endpoint, given all the traffic once up, given the alias, and
the older deployments removed. `rollback` does the same for the version
before the one serving (or a chosen one), deploying it again when it was
undeployed. `status` says what serves. Every step checks the state first, so
a step retried after a crash finishes the job without repeating what was
done. Missing resources end with `ServingError`, whose message is one line.
"""
import dataclasses
import datetime
from typing import Dict, List, Optional, Tuple

from google.cloud import aiplatform_v1 as vertex

from pipeline.vertex_serving import endpoints
from pipeline.vertex_serving import registry
from pipeline.vertex_serving.api import Api, timestamp
from pipeline.vertex_serving.provenance import Provenance
from pipeline.vertex_serving.target import ServingTarget


class ServingError(Exception):
  """The model or endpoint is not there, or no version can serve."""


@dataclasses.dataclass(frozen=True)
class Served:
  """The version that serves after a push or a rollback.

  Attributes:
    version_id: its version id.
    version_name: its resource name (model@version).
    endpoint: the endpoint's resource name.
    deployed_model_id: its deployment's id on the endpoint.
    uploaded: whether this push uploaded it (False: it was there).
    undeployed: the version ids whose deployments were removed.
  """
  version_id: str
  version_name: str
  endpoint: str
  deployed_model_id: str
  uploaded: bool = False
  undeployed: List[str] = dataclasses.field(default_factory=list)


def push(api: Api, target: ServingTarget, artifact_uri: str,
         provenance: Provenance) -> Served:
  """Serves the SavedModel at `artifact_uri` as a new version of the model.

  Args:
    api: the clients (api.connect).
    target: the model and endpoint.
    artifact_uri: the SavedModel's folder on Cloud Storage.
    provenance: the version's labels; its digest identifies the model.

  Returns:
    What serves now.
  """
  model = registry.find_model(api, target)
  version = (registry.find_version(api, target, provenance.digest)
             if model else None)
  uploaded = version is None
  if uploaded:
    version = registry.upload(api, target, artifact_uri, provenance,
                              first=model is None)
  endpoint = endpoints.find(api, target) or endpoints.create(api, target)
  endpoint = endpoints.log_requests_as_configured(api, target, endpoint)
  return dataclasses.replace(_serve(api, target, endpoint, version),
                             uploaded=uploaded)


def _serve(api: Api, target: ServingTarget, endpoint: vertex.Endpoint,
           version: vertex.Model) -> Served:
  """Deploys `version` if needed, moves traffic and alias to it, and removes
  the deployments beyond `keep_deployed`."""
  deployed = endpoints.deployment_of(endpoint, target, version.version_id)
  if deployed is None:
    endpoint = endpoints.deploy(api, target, endpoint, version.version_id)
    deployed = endpoints.deployment_of(endpoint, target, version.version_id)
    if deployed is None:
      raise ServingError(f'version {version.version_id} of '
                         f'{target.model_id!r} was deployed but is not on '
                         f'endpoint {endpoint.name}')
  endpoint = endpoints.move_traffic(api, endpoint, deployed.id)
  registry.move_alias(api, target, version)
  removed = endpoints.undeploy_older(api, target, endpoint, deployed.id)
  return Served(version_id=version.version_id,
                version_name=target.version_name(version.version_id),
                endpoint=endpoint.name, deployed_model_id=deployed.id,
                undeployed=[d.model_version_id for d in removed])


def _existing(api: Api, target: ServingTarget
              ) -> Tuple[vertex.Endpoint, List[vertex.Model]]:
  """The endpoint and the model's versions; ServingError if either is
  missing."""
  if registry.find_model(api, target) is None:
    raise ServingError(
        f'no Vertex AI model {target.model_id!r} in {target.location}: '
        'nothing has been pushed there yet (VERTEX_MODEL_ID, '
        'GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_REGION)')
  endpoint = endpoints.find(api, target)
  if endpoint is None:
    raise ServingError(
        f'no Vertex AI endpoint named {target.endpoint_name!r} in '
        f'{target.location}: nothing has been deployed there yet '
        '(VERTEX_ENDPOINT_NAME)')
  return endpoint, registry.versions(api, target)


def _serving_version(endpoint: vertex.Endpoint,
                     target: ServingTarget) -> Optional[str]:
  deployed = endpoints.serving(endpoint)
  return endpoints.version_of(deployed, target) if deployed else None


def rollback(api: Api, target: ServingTarget,
             to_version: Optional[str] = None) -> Served:
  """Serves the version before the one serving, or `to_version`.

  Raises:
    ServingError: no model, no endpoint, no earlier version, or no version
      `to_version`.
  """
  endpoint, versions = _existing(api, target)
  ids = [v.version_id for v in versions]
  if to_version is None:
    current = _serving_version(endpoint, target)
    if current is None:
      raise ServingError(f'endpoint {target.endpoint_name!r} serves no '
                         f'version of {target.model_id!r}: name one with --to')
    earlier = [i for i in ids if int(i) < int(current)]
    if not earlier:
      raise ServingError(f'version {current} of {target.model_id!r} is the '
                         'oldest: there is no earlier version to roll back to')
    to_version = earlier[-1]
  if to_version not in ids:
    raise ServingError(f'{target.model_id!r} has no version {to_version}: it '
                       f'has {", ".join(ids)}')
  return _serve(api, target, endpoint, versions[ids.index(to_version)])


@dataclasses.dataclass(frozen=True)
class Status:
  """What the endpoint serves.

  Attributes:
    endpoint: the endpoint's resource name.
    versions: the model's versions, oldest first.
    serving: the serving version, None if none serves.
    since: when it started to serve (UTC), if known.
    deployed: version id -> its share of the traffic (percent), for every
      deployed version of the model.
    alias: the alias that marks the served version.
  """
  endpoint: str
  versions: List[vertex.Model]
  serving: Optional[vertex.Model]
  since: Optional[datetime.datetime]
  deployed: Dict[str, int]
  alias: str

  @property
  def provenance(self) -> Optional[Provenance]:
    """Where the serving version comes from."""
    return Provenance.from_labels(self.serving.labels) if self.serving else None


def status(api: Api, target: ServingTarget) -> Status:
  """What serves now, since when, and what else is deployed.

  Raises:
    ServingError: no model or no endpoint.
  """
  endpoint, versions = _existing(api, target)
  split = dict(endpoint.traffic_split)
  deployed = {}
  for version in versions:
    deployment = endpoints.deployment_of(endpoint, target, version.version_id)
    if deployment is not None:
      deployed[version.version_id] = split.get(deployment.id, 0)
  current = _serving_version(endpoint, target)
  serving = next((v for v in versions if v.version_id == current), None)
  return Status(endpoint=endpoint.name, versions=versions, serving=serving,
                since=_since(endpoint, target, current), deployed=deployed,
                alias=target.alias)


def _since(endpoint: vertex.Endpoint, target: ServingTarget,
           version_id: Optional[str]) -> Optional[datetime.datetime]:
  """The later of the serving deployment's creation and the last traffic
  move (endpoints.move_traffic records it)."""
  if version_id is None:
    return None
  times = [timestamp(
      endpoints.deployment_of(endpoint, target, version_id).create_time)]
  moved = endpoint.labels.get(endpoints.SERVING_SINCE_LABEL, '')
  if moved.isdigit():
    times.append(datetime.datetime.fromtimestamp(int(moved),
                                                 datetime.timezone.utc))
  times = [t for t in times if t]
  return max(times) if times else None
