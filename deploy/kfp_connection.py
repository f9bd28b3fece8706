"""The connection of `tfx --engine=kubeflow` to a Kubeflow Pipelines 2.x API.

`connect` builds a `kfp.Client` (API v2beta1) and authenticates as it does:
`--iap_client_id` (or KF_PIPELINES_IAP_OAUTH2_CLIENT_ID) for an endpoint
behind Identity-Aware Proxy, a bearer token from KF_PIPELINES_TOKEN, nothing
for a port-forward or, with no endpoint, from a pod inside the cluster.
KF_PIPELINES_ENDPOINT is the default endpoint. `one_line_errors` turns what
the API or the network answers into a `KfpCliError`: one line, exit status 1.
"""
import contextlib
import json
import os
from typing import Iterator, Optional
import urllib.error
import urllib.request
import warnings

import click

TOKEN_ENV = 'KF_PIPELINES_TOKEN'
ENDPOINT_ENV = 'KF_PIPELINES_ENDPOINT'
# kfp.Client's namespace when none is chosen: it then asks the cluster.
DEFAULT_NAMESPACE = 'kubeflow'
_MAX_MESSAGE = 300


class KfpCliError(click.ClickException):
  """A failure the CLI reports as one line (`Error: ...`), exit status 1."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):

  def redirect_request(self, *args, **kwargs):  # pylint: disable=unused-argument
    return None  # An IAP login redirect still proves the endpoint is up.


def check_reachable(endpoint: str, timeout: float = 10.0) -> None:
  """Fails fast when nothing answers HTTP at `endpoint`.

  kfp.Client would otherwise retry its health check for about half a minute.

  Args:
    endpoint: the Kubeflow Pipelines URL.
    timeout: seconds to wait for an answer.

  Raises:
    KfpCliError: the connection failed (any HTTP answer counts as reachable).
  """
  url = endpoint if endpoint.startswith('http') else 'https://' + endpoint
  opener = urllib.request.build_opener(_NoRedirect)
  try:
    opener.open(url.rstrip('/') + '/apis/v2beta1/healthz', timeout=timeout)
  except urllib.error.HTTPError:
    return
  except (urllib.error.URLError, OSError, ValueError) as error:
    reason = getattr(error, 'reason', error)
    raise KfpCliError(f'cannot reach Kubeflow Pipelines at {endpoint}: '
                      f'{reason}') from None


def namespace_filter(namespace: Optional[str]) -> Optional[str]:
  """The namespace to pass to list/create calls: None for the default."""
  return None if namespace in (None, '', DEFAULT_NAMESPACE) else namespace


def connect(endpoint: Optional[str], iap_client_id: Optional[str],
            namespace: Optional[str]):
  """A kfp.Client for the endpoint, credentials and namespace given.

  Args:
    endpoint: the Kubeflow Pipelines URL; empty: $KF_PIPELINES_ENDPOINT, else
      the cluster the process runs in.
    iap_client_id: OAuth client id of an Identity-Aware Proxy, or empty.
    namespace: the namespace of a multi-user deployment, or 'kubeflow'.

  Returns:
    The connected kfp.Client.

  Raises:
    KfpCliError: nothing answers at the endpoint.
  """
  endpoint = endpoint or os.environ.get(ENDPOINT_ENV)
  if endpoint:
    check_reachable(endpoint)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', FutureWarning)
    import kfp  # pylint: disable=g-import-not-at-top
    with one_line_errors():
      return kfp.Client(host=endpoint, client_id=iap_client_id or None,
                        existing_token=os.environ.get(TOKEN_ENV) or None,
                        namespace=namespace or DEFAULT_NAMESPACE)


def _answer_text(body: Optional[str]) -> str:
  """The message of an API error answer, on one line."""
  text = (body or '').strip()
  try:
    answer = json.loads(text)
  except ValueError:
    answer = None
  if isinstance(answer, dict):
    text = str(answer.get('message') or answer.get('error') or text)
  text = ' '.join(text.split())
  return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + '...'


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
  """Turns API refusals and lost connections into a `KfpCliError`."""
  import kfp_server_api  # pylint: disable=g-import-not-at-top
  import urllib3  # pylint: disable=g-import-not-at-top
  try:
    yield
  except kfp_server_api.ApiException as error:
    raise KfpCliError(
        f'Kubeflow Pipelines refused the request: HTTP {error.status} '
        f'{error.reason} {_answer_text(error.body)}'.strip()) from None
  except urllib3.exceptions.HTTPError as error:
    raise KfpCliError('lost the connection to Kubeflow Pipelines: '
                      f'{" ".join(str(error).split())}') from None
  except TimeoutError as error:
    raise KfpCliError(f'Kubeflow Pipelines did not answer: {error}') from None
