"""The official Vertex AI clients the serving code calls.

`connect` builds google-cloud-aiplatform's model and endpoint service clients
(the v1 API, REST transport) for a `ServingTarget`: on the region's API with
the environment's credentials, or, when the target's `api_endpoint` is an
http:// address (a stand-in on this machine, as in the tests), on that
address with anonymous credentials, as Google's own emulators are called.
The clients are built when asked for, never at import time; the Pusher
imports this module only when it has a model to serve.
"""
import datetime
from typing import Any, NamedTuple, Optional

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1

from pipeline.vertex_serving.target import ServingTarget

# How long a long-running operation (upload, deployment) may take before the
# step fails; deploying a model takes minutes.
OPERATION_TIMEOUT_S = 3600


class Api(NamedTuple):
  """The two Vertex AI services serving needs."""
  models: aiplatform_v1.ModelServiceClient
  endpoints: aiplatform_v1.EndpointServiceClient


def timestamp(value: Any) -> Optional[datetime.datetime]:
  """A timestamp field as a datetime in UTC; None when unset.

  The clients give a message's own timestamps as datetimes, but those of
  messages inside a list field (an endpoint's deployed models, a list
  call's items) as protobuf Timestamps; both read the same here.
  """
  if not value:
    return None
  if isinstance(value, datetime.datetime):
    return value
  if not (value.seconds or value.nanos):
    return None
  return value.ToDatetime(tzinfo=datetime.timezone.utc)


def is_stand_in(api_endpoint: str) -> bool:
  """Whether `api_endpoint` is a plain-HTTP stand-in rather than Google's API."""
  return api_endpoint.startswith('http://')


def connect(target: ServingTarget) -> Api:
  """The clients for `target`'s API (see the module docstring)."""
  options = ClientOptions(api_endpoint=target.api_host)
  credentials = (AnonymousCredentials() if is_stand_in(target.api_host)
                 else None)
  return Api(
      models=aiplatform_v1.ModelServiceClient(
          credentials=credentials, transport='rest', client_options=options),
      endpoints=aiplatform_v1.EndpointServiceClient(
          credentials=credentials, transport='rest', client_options=options))
