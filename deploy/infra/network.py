"""The VPC network for the cluster and Dataflow workers, and its firewall rules.

GKE adds the rules each cluster needs (node to node, pod to pod, control
plane to nodes) itself when it creates the cluster. What a network created
through the API lacks, unlike the console's `default`, is a rule letting VMs
of the network talk to each other; Dataflow also needs its workers (network
tag `dataflow`) to reach each other on TCP 12345-12346 for shuffles.
"""
from typing import List

from googleapiclient import errors as http_errors

from deploy.infra.context import CREATED, PRESENT, Cloud, Target

_ROLE = 'roles/compute.networkAdmin'
_FIREWALL_ROLE = 'roles/compute.securityAdmin'
# Every subnet range of an automatic-mode network lies in this block.
AUTO_MODE_RANGE = '10.128.0.0/9'


def network_body(name: str) -> dict:
  return {
      'name': name,
      'autoCreateSubnetworks': True,
      'routingConfig': {'routingMode': 'REGIONAL'},
      'description': 'Created by pipeline/gcp_infrastructure.py',
  }


def firewall_bodies(project: str, network: str) -> List[dict]:
  """The firewall rules the command makes sure exist on `network`."""
  link = f'projects/{project}/global/networks/{network}'
  return [
      {
          'name': f'{network}-allow-internal',
          'network': link,
          'direction': 'INGRESS',
          'priority': 65534,
          'sourceRanges': [AUTO_MODE_RANGE],
          'allowed': [{'IPProtocol': 'tcp', 'ports': ['0-65535']},
                      {'IPProtocol': 'udp', 'ports': ['0-65535']},
                      {'IPProtocol': 'icmp'}],
          'description': 'VMs of the network reach each other (GKE nodes, '
                         'Dataflow workers).',
      },
      {
          'name': f'{network}-allow-dataflow',
          'network': link,
          'direction': 'INGRESS',
          'priority': 1000,
          'sourceTags': ['dataflow'],
          'targetTags': ['dataflow'],
          'allowed': [{'IPProtocol': 'tcp', 'ports': ['12345-12346']}],
          'description': 'Dataflow workers exchange shuffle data.',
      },
  ]


def _wait(cloud: Cloud, operation: dict, what: str, action: str, role: str):
  operations = cloud.api('compute').globalOperations()
  cloud.wait_operation(
      operation,
      lambda op: operations.get(project=cloud.target.project,
                                operation=op['name']),
      what, action, role, timeout_s=300, interval_s=3)


def _insert(cloud: Cloud, request, what: str, action: str, role: str) -> str:
  """Inserts a resource; 409 (created meanwhile) counts as already present."""
  try:
    operation = cloud.call(request, action, role, passthrough=(409,))
  except http_errors.HttpError:
    return PRESENT
  _wait(cloud, operation, what, action, role)
  return CREATED


class Network:
  """Reuses the VPC network if it exists, else creates it in automatic mode."""
  name = 'network'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'VPC network {target.network} (automatic subnet mode; reused if '
            'it exists)']

  def apply(self) -> None:
    cloud, name = self.cloud, self.cloud.target.network
    networks = cloud.api('compute').networks()
    found = cloud.get(networks.get(project=cloud.target.project,
                                   network=name),
                      f'read VPC network {name}', _ROLE)
    if found is None:
      status = _insert(cloud,
                       networks.insert(project=cloud.target.project,
                                       body=network_body(name)),
                       f'creating network {name}',
                       f'create VPC network {name}', _ROLE)
    else:
      status = PRESENT
      if not found.get('autoCreateSubnetworks'):
        cloud.out(f'  note: network {name} is in custom subnet mode; it needs '
                  f'a subnet in {cloud.target.region} for the cluster.')
    cloud.report(f'VPC network {name}', status)


class Firewalls:
  """Adds the firewall rules in `firewall_bodies` that are missing."""
  name = 'firewall rules'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return ['firewall rules ' + ', '.join(
        body['name'] for body in firewall_bodies(target.project,
                                                 target.network))]

  def apply(self) -> None:
    cloud = self.cloud
    firewalls = cloud.api('compute').firewalls()
    for body in firewall_bodies(cloud.target.project, cloud.target.network):
      rule = body['name']
      if cloud.get(firewalls.get(project=cloud.target.project, firewall=rule),
                   f'read firewall rule {rule}', _FIREWALL_ROLE):
        status = PRESENT
      else:
        status = _insert(cloud,
                         firewalls.insert(project=cloud.target.project,
                                          body=body),
                         f'creating firewall rule {rule}',
                         f'create firewall rule {rule}', _FIREWALL_ROLE)
      cloud.report(f'firewall rule {rule}', status)
