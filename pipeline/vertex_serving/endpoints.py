"""The Vertex AI endpoint: its deployments, traffic and request logging.

One endpoint, found by its display name (`ServingTarget.endpoint_name`) and
created on the first push, serves the model. A version is deployed next to
the one serving, without traffic; only when its deployment is up does the
traffic move to it, in one update that also records when (the endpoint's
`serving_since` label, seconds since 1970). Deployments that no longer serve
are removed, but for the newest `keep_deployed`, so serving nodes do not pile
up. Deployed models name their model with the project's number, not its id,
so they are matched to the target by model id and version.
"""
import time
from typing import Callable, List, Optional

from google.cloud import aiplatform_v1 as vertex
from google.protobuf import field_mask_pb2

from pipeline.vertex_serving.api import OPERATION_TIMEOUT_S, Api, timestamp
from pipeline.vertex_serving.target import ServingTarget

SERVING_SINCE_LABEL = 'serving_since'
_LOGGING_FIELD = 'predict_request_response_logging_config'


def find(api: Api, target: ServingTarget) -> Optional[vertex.Endpoint]:
  """The endpoint, or None before the first push."""
  found = api.endpoints.list_endpoints(
      request=vertex.ListEndpointsRequest(
          parent=target.location,
          filter=f'display_name="{target.endpoint_name}"'))
  return min(found, key=_created, default=None)


def _created(resource) -> float:
  """When an endpoint or deployment was made, in seconds (0 if unknown)."""
  created = timestamp(resource.create_time)
  return created.timestamp() if created else 0.0


def _logging_config(target: ServingTarget
                    ) -> vertex.PredictRequestResponseLoggingConfig:
  if not target.request_log_table:
    return vertex.PredictRequestResponseLoggingConfig()
  return vertex.PredictRequestResponseLoggingConfig(
      enabled=True, sampling_rate=target.request_log_sampling,
      bigquery_destination=vertex.BigQueryDestination(
          output_uri=target.request_log_table))


def create(api: Api, target: ServingTarget) -> vertex.Endpoint:
  """Creates the endpoint, with request logging when the target has a table."""
  endpoint = vertex.Endpoint(
      display_name=target.endpoint_name,
      labels={'pipeline': target.pipeline_name},
      predict_request_response_logging_config=_logging_config(target))
  return api.endpoints.create_endpoint(
      parent=target.location, endpoint=endpoint).result(
          timeout=OPERATION_TIMEOUT_S)


def _logging(config) -> tuple:
  """What a logging config does: off, or (sampling, table)."""
  if not config.enabled:
    return ()
  return (round(config.sampling_rate, 6),
          config.bigquery_destination.output_uri)


def log_requests_as_configured(api: Api, target: ServingTarget,
                               endpoint: vertex.Endpoint) -> vertex.Endpoint:
  """Turns request logging on, off or to another table, where it differs
  from the target's."""
  wanted = _logging_config(target)
  if _logging(endpoint.predict_request_response_logging_config) == _logging(
      wanted):
    return endpoint
  return api.endpoints.update_endpoint(
      endpoint=vertex.Endpoint(name=endpoint.name,
                               display_name=endpoint.display_name,
                               predict_request_response_logging_config=wanted),
      update_mask=field_mask_pb2.FieldMask(paths=[_LOGGING_FIELD]))


def version_of(deployed: vertex.DeployedModel,
               target: ServingTarget) -> Optional[str]:
  """The version a deployment serves, None if not one of the target's."""
  model_id = deployed.model.rsplit('/', 1)[-1].split('@')[0]
  return deployed.model_version_id if model_id == target.model_id else None


def deployment_of(endpoint: vertex.Endpoint, target: ServingTarget,
                  version_id: str) -> Optional[vertex.DeployedModel]:
  """The deployment of one version of the target's model, if any."""
  return next((d for d in endpoint.deployed_models
               if version_of(d, target) == version_id), None)


def serving(endpoint: vertex.Endpoint) -> Optional[vertex.DeployedModel]:
  """The deployment that takes the most traffic (all of it, normally)."""
  split = dict(endpoint.traffic_split)
  deployed = [d for d in endpoint.deployed_models if split.get(d.id, 0) > 0]
  return max(deployed, key=lambda d: split[d.id], default=None)


def deploy(api: Api, target: ServingTarget, endpoint: vertex.Endpoint,
           version_id: str) -> vertex.Endpoint:
  """Deploys one version, without traffic if another one serves; returns
  the endpoint once the deployment is up."""
  split = dict(endpoint.traffic_split)
  split['0'] = 0 if sum(split.values()) else 100  # '0': the new deployment
  api.endpoints.deploy_model(
      endpoint=endpoint.name,
      deployed_model=vertex.DeployedModel(
          model=target.version_name(version_id),
          display_name=f'{target.model_id}-v{version_id}',
          dedicated_resources=vertex.DedicatedResources(
              machine_spec=vertex.MachineSpec(machine_type=target.machine_type),
              min_replica_count=target.min_replicas,
              max_replica_count=target.max_replicas)),
      traffic_split=split).result(timeout=OPERATION_TIMEOUT_S)
  return api.endpoints.get_endpoint(name=endpoint.name)


def move_traffic(api: Api, endpoint: vertex.Endpoint, deployed_model_id: str,
                 clock: Callable[[], float] = time.time) -> vertex.Endpoint:
  """Sends all traffic to one deployment, unless it already has it."""
  if dict(endpoint.traffic_split) == {deployed_model_id: 100}:
    return endpoint
  labels = dict(endpoint.labels)
  labels[SERVING_SINCE_LABEL] = str(int(clock()))
  return api.endpoints.update_endpoint(
      endpoint=vertex.Endpoint(name=endpoint.name,
                               display_name=endpoint.display_name,
                               traffic_split={deployed_model_id: 100},
                               labels=labels),
      update_mask=field_mask_pb2.FieldMask(paths=['traffic_split', 'labels']))


def undeploy_older(api: Api, target: ServingTarget, endpoint: vertex.Endpoint,
                   serving_id: str) -> List[vertex.DeployedModel]:
  """Undeploys what does not serve, but for the newest `keep_deployed`.

  Returns:
    The deployments removed.
  """
  split = dict(endpoint.traffic_split)
  idle = sorted((d for d in endpoint.deployed_models
                 if d.id != serving_id and not split.get(d.id)),
                key=_created, reverse=True)
  removed = idle[target.keep_deployed:]
  for deployed in removed:
    api.endpoints.undeploy_model(
        endpoint=endpoint.name, deployed_model_id=deployed.id).result(
            timeout=OPERATION_TIMEOUT_S)
  return removed
