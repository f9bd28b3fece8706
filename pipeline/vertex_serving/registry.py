"""The Vertex AI model and its versions (Model Registry calls).

One Model, with the id `ServingTarget.model_id`, holds every pushed version;
the first push creates it, later pushes upload versions into it
(`parent_model`). Versions are numbered 1, 2, 3, ... by Vertex AI.
"""
from typing import List, Optional

from google.api_core import exceptions
from google.cloud import aiplatform_v1 as vertex

from pipeline.vertex_serving import provenance as provenance_lib
from pipeline.vertex_serving.api import OPERATION_TIMEOUT_S, Api
from pipeline.vertex_serving.target import ServingTarget


def find_model(api: Api, target: ServingTarget) -> Optional[vertex.Model]:
  """The model (its default version), or None before the first push."""
  try:
    return api.models.get_model(name=target.model_name)
  except exceptions.NotFound:
    return None


def find_version(api: Api, target: ServingTarget,
                 digest: str) -> Optional[vertex.Model]:
  """The version uploaded from the model with `digest`, if there is one."""
  found = api.models.list_model_versions(
      request=vertex.ListModelVersionsRequest(
          name=target.model_name,
          filter=f'labels.{provenance_lib.DIGEST_LABEL}="{digest}"'))
  return next(iter(found), None)


def versions(api: Api, target: ServingTarget) -> List[vertex.Model]:
  """Every version of the model, oldest first."""
  found = api.models.list_model_versions(
      request=vertex.ListModelVersionsRequest(name=target.model_name))
  return sorted(found, key=lambda version: int(version.version_id))


def upload(api: Api, target: ServingTarget, artifact_uri: str,
           provenance: provenance_lib.Provenance,
           first: bool) -> vertex.Model:
  """Uploads the SavedModel at `artifact_uri` as a new version.

  Args:
    api: the clients.
    target: the model to add the version to.
    artifact_uri: the SavedModel's folder on Cloud Storage.
    provenance: what the version's labels and description record.
    first: create the model (with this as version 1) instead of adding a
      version to it.

  Returns:
    The new version (name, version id, labels).
  """
  model = vertex.Model(
      display_name=target.model_id,
      description=f'Models of pipeline {target.pipeline_name}.',
      version_description=provenance.description(),
      artifact_uri=artifact_uri,
      container_spec=vertex.ModelContainerSpec(image_uri=target.serving_image),
      labels=provenance.labels())
  request = vertex.UploadModelRequest(parent=target.location, model=model)
  if first:
    request.model_id = target.model_id
  else:
    request.parent_model = target.model_name
  uploaded = api.models.upload_model(request=request).result(
      timeout=OPERATION_TIMEOUT_S)
  model.name = target.model_name
  model.version_id = uploaded.model_version_id
  return model


def move_alias(api: Api, target: ServingTarget,
               version: vertex.Model) -> None:
  """Gives `version` the alias `target.alias`; Vertex AI takes it from the
  version that had it."""
  if target.alias in version.version_aliases:
    return
  api.models.merge_version_aliases(
      name=target.version_name(version.version_id),
      version_aliases=[target.alias])
