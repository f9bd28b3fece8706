"""Enables the Google APIs the pipeline and this command use (Service Usage)."""
from typing import List

from deploy.infra.context import ENABLED, PRESENT, Cloud, Target

# Each API, and who needs it.
SERVICES = (
    'compute.googleapis.com',  # VPC network, firewall rules, GKE nodes.
    'container.googleapis.com',  # The GKE cluster.
    'dataflow.googleapis.com',  # Beam steps of the pipeline on Dataflow.
    'aiplatform.googleapis.com',  # Vertex AI training, serving, pipelines.
    'artifactregistry.googleapis.com',  # The pipeline image.
    'cloudbuild.googleapis.com',  # Builds that image.
    'iam.googleapis.com',  # The pipeline service account.
    'cloudresourcemanager.googleapis.com',  # Project IAM policy.
    'storage.googleapis.com',  # The bucket.
)
# With WORKBENCH=true: the Vertex AI Workbench instance.
WORKBENCH_SERVICES = ('notebooks.googleapis.com',)
# batchEnable takes at most 20 services per call; these are fewer.
_ROLE = 'roles/serviceusage.serviceUsageAdmin'


def services_for(target: Target) -> tuple:
  """The APIs the command and the pipeline need for `target`."""
  return SERVICES + (WORKBENCH_SERVICES if target.workbench else ())


class EnableApis:
  """Enables every API in SERVICES that is not enabled yet."""
  name = 'APIs'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'enable APIs in project {target.project}: ' + ', '.join(
        s.split('.')[0] for s in services_for(target))]

  def apply(self) -> None:
    cloud = self.cloud
    wanted = services_for(cloud.target)
    parent = f'projects/{cloud.target.project}'
    services = cloud.api('serviceusage').services()
    found = cloud.call(
        services.batchGet(parent=parent,
                          names=[f'{parent}/services/{s}' for s in wanted]),
        'check which APIs are enabled', 'roles/serviceusage.serviceUsageViewer')
    enabled = {s['name'].rsplit('/', 1)[-1] for s in found.get('services', [])
               if s.get('state') == 'ENABLED'}
    missing = [s for s in wanted if s not in enabled]
    if missing:
      operation = cloud.call(
          services.batchEnable(parent=parent, body={'serviceIds': missing}),
          'enable APIs ' + ', '.join(missing), _ROLE)
      operations = cloud.api('serviceusage').operations()
      cloud.wait_operation(operation,
                           lambda op: operations.get(name=op['name']),
                           'enabling APIs', 'enable APIs', _ROLE)
    for service in wanted:
      cloud.report(f'API {service}',
                   ENABLED if service in missing else PRESENT)
