"""The GKE Standard cluster that runs Kubeflow Pipelines, and its teardown."""
import json
from typing import List

from googleapiclient import errors as http_errors

from deploy.infra import errors
from deploy.infra.context import (ABSENT, CREATED, DELETED, PRESENT, Cloud,
                                  Target)

_ROLE = 'roles/container.admin'
_CREATE_TIMEOUT_S = 45 * 60
_POLL_S = 15


def cluster_body(target: Target) -> dict:
  """The clusters.create request body."""
  return {'cluster': {
      'name': target.cluster,
      'network': target.network,
      'resourceLabels': {'pipeline': target.pipeline_name[:63]},
      'releaseChannel': {'channel': 'REGULAR'},
      'ipAllocationPolicy': {'useIpAliases': True},
      'workloadIdentityConfig': {'workloadPool': target.workload_pool},
      'nodePools': [{
          'name': 'default-pool',
          'initialNodeCount': target.node_count,
          'management': {'autoRepair': True, 'autoUpgrade': True},
          'config': {
              'machineType': target.machine_type,
              'diskSizeGb': 100,
              'serviceAccount': target.service_account_email,
              'oauthScopes': ['https://www.googleapis.com/auth/cloud-platform'],
              # Pods see their Workload Identity, never the node's account.
              'workloadMetadataConfig': {'mode': 'GKE_METADATA'},
              'shieldedInstanceConfig': {'enableSecureBoot': True},
          },
      }],
  }}


def kubeconfig(cluster: dict, token: str) -> str:
  """A kubeconfig (JSON, which kubectl reads as YAML) for one cluster.

  Args:
    cluster: the cluster resource from clusters.get.
    token: an OAuth access token of the caller.

  Returns:
    The file's contents. It holds a short-lived token: keep it private.
  """
  name = cluster['name']
  return json.dumps({
      'apiVersion': 'v1',
      'kind': 'Config',
      'clusters': [{'name': name, 'cluster': {
          'server': f'https://{cluster["endpoint"]}',
          'certificate-authority-data':
              cluster['masterAuth']['clusterCaCertificate'],
      }}],
      'users': [{'name': name, 'user': {'token': token}}],
      'contexts': [{'name': name,
                    'context': {'cluster': name, 'user': name}}],
      'current-context': name,
  }, indent=1)


def get_credentials_command(target: Target) -> str:
  return (f'gcloud container clusters get-credentials {target.cluster} '
          f'--zone {target.zone} --project {target.project}')


def _operation_waiter(cloud: Cloud):
  operations = cloud.api('container').projects().locations().operations()
  target = cloud.target

  def fetch(op: dict):
    return operations.get(name=f'projects/{target.project}/locations/'
                          f'{target.zone}/operations/{op["name"]}')

  return fetch


def read_cluster(cloud: Cloud):
  """Returns the cluster resource, or None if it does not exist."""
  clusters = cloud.api('container').projects().locations().clusters()
  return cloud.get(clusters.get(name=cloud.target.cluster_name),
                   f'read cluster {cloud.target.cluster}', _ROLE)


class Cluster:
  """Creates the cluster, or waits for an existing one to be running."""
  name = 'cluster'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'GKE Standard cluster {target.cluster} in {target.zone} on '
            f'network {target.network}: {target.node_count} x '
            f'{target.machine_type} nodes running as '
            f'{target.service_account_id}, Workload Identity '
            f'({target.workload_pool}); takes 5-10 minutes']

  def apply(self) -> dict:
    cloud, target = self.cloud, self.cloud.target
    what = f'cluster {target.cluster}'
    cluster = read_cluster(cloud)
    status = PRESENT
    if cluster is None:
      clusters = cloud.api('container').projects().locations().clusters()
      try:
        operation = cloud.call(
            clusters.create(
                parent=f'projects/{target.project}/locations/{target.zone}',
                body=cluster_body(target)),
            f'create {what}', _ROLE, passthrough=(409,))
        cloud.out(f'  creating {what}; this takes 5-10 minutes')
        cloud.wait_operation(operation, _operation_waiter(cloud),
                             f'creating {what}', f'create {what}', _ROLE,
                             timeout_s=_CREATE_TIMEOUT_S, interval_s=_POLL_S)
        status = CREATED
      except http_errors.HttpError:  # 409: another run is creating it.
        pass
      cluster = read_cluster(cloud)
    cluster = self._until_running(cluster)
    if not cluster.get('workloadIdentityConfig', {}).get('workloadPool'):
      cloud.out(f'  note: {what} has Workload Identity off; turn it on: '
                f'gcloud container clusters update {target.cluster} --zone '
                f'{target.zone} --workload-pool={target.workload_pool}')
    cloud.report(what, status)
    return cluster

  def _until_running(self, cluster: dict) -> dict:
    cloud = self.cloud
    what = f'cluster {cloud.target.cluster}'
    if cluster['status'] in ('STOPPING', 'ERROR'):
      raise errors.InfraError(
          f'The {what} is {cluster["status"]} '
          f'({cluster.get("statusMessage", "")}); run --destroy, then this '
          'command again.')
    if cluster['status'] == 'RUNNING':
      return cluster
    return cloud.wait(f'waiting for {what}', lambda: read_cluster(cloud),
                      lambda c: c['status'] == 'RUNNING',
                      timeout_s=_CREATE_TIMEOUT_S, interval_s=_POLL_S,
                      describe=lambda c: c['status'])


class DeleteCluster:
  """Deletes the cluster (and its nodes) to stop their costs."""
  name = 'delete cluster'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'DELETE GKE cluster {target.cluster} in {target.zone}, with '
            'Kubeflow Pipelines and its run history']

  def apply(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    what = f'cluster {target.cluster}'
    cluster = read_cluster(cloud)
    if cluster is None:
      cloud.report(what, ABSENT)
      return
    if cluster['status'] == 'STOPPING':  # An earlier --destroy is at it.
      cloud.wait(f'deleting {what}', lambda: read_cluster(cloud) or {},
                 lambda c: not c, timeout_s=_CREATE_TIMEOUT_S,
                 interval_s=_POLL_S, describe=lambda c: c.get('status', ''))
    else:
      clusters = cloud.api('container').projects().locations().clusters()
      operation = cloud.call(clusters.delete(name=target.cluster_name),
                             f'delete {what}', _ROLE)
      cloud.wait_operation(operation, _operation_waiter(cloud),
                           f'deleting {what}', f'delete {what}', _ROLE,
                           timeout_s=_CREATE_TIMEOUT_S, interval_s=_POLL_S)
    cloud.report(what, DELETED)


def access_token(credentials) -> str:
  """Refreshes `credentials` if needed and returns the access token."""
  from google.auth.transport import requests as auth_requests  # pylint: disable=g-import-not-at-top
  if not credentials.valid:
    credentials.refresh(auth_requests.Request())
  return credentials.token
