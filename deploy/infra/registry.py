"""The Artifact Registry Docker repository for the pipeline image."""
from typing import List

from googleapiclient import errors as http_errors

from deploy.infra.context import CREATED, PRESENT, Cloud, Target

_ROLE = 'roles/artifactregistry.admin'


class Repository:
  """Creates the Docker repository in the pipeline's region if missing."""
  name = 'artifact registry'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'Artifact Registry Docker repository {target.repository} in '
            f'{target.region} ({image_host(target)})']

  def apply(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    locations = cloud.api('artifactregistry').projects().locations()
    repositories = locations.repositories()
    what = f'Artifact Registry repository {target.repository}'
    if cloud.get(repositories.get(name=target.repository_name),
                 f'read {what}', _ROLE):
      cloud.report(what, PRESENT)
      return
    request = repositories.create(
        parent=f'projects/{target.project}/locations/{target.region}',
        repositoryId=target.repository,
        body={'format': 'DOCKER',
              'description': f'Images of the {target.pipeline_name} pipeline',
              'labels': {'pipeline': target.pipeline_name[:63]}})
    try:
      operation = cloud.call(request, f'create {what}', _ROLE,
                             passthrough=(409,))
    except http_errors.HttpError:
      cloud.report(what, PRESENT)
      return
    cloud.wait_operation(
        operation, lambda op: locations.operations().get(name=op['name']),
        f'creating {what}', f'create {what}', _ROLE)
    cloud.report(what, CREATED)


def image_host(target: Target) -> str:
  """Returns the registry path images are pushed to, without the image name."""
  return f'{target.region}-docker.pkg.dev/{target.project}/{target.repository}'
