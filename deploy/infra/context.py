"""What every step shares: the names to create, API clients and progress output.

Clients are built on first use, so a dry run (which only calls `plan`) never
looks for credentials or sends a request. Tests pass their own clients: an
`http` object such as googleapiclient's HttpMockSequence, a storage.Client
pointed at an emulator and a fake kubectl.
"""
import dataclasses
import os
import time
from typing import Callable, List, Optional, Tuple

from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from googleapiclient import discovery
from googleapiclient import errors as http_errors

from deploy.infra import errors
from deploy.infra.kubectl import Kubectl

CREATED = 'created'
ENABLED = 'enabled'
GRANTED = 'granted'
PRESENT = 'already present'
UPDATED = 'updated'
DELETED = 'deleted'
ABSENT = 'already absent'

SCOPES = ('https://www.googleapis.com/auth/cloud-platform',)
_DISCOVERY_DIR = os.path.join(os.path.dirname(__file__), 'discovery')
# Short name -> shipped discovery document (see discovery/README.md).
DOCUMENTS = {
    'compute': 'compute.v1.json',
    'container': 'container.v1.json',
    'serviceusage': 'serviceusage.v1.json',
    'iam': 'iam.v1.json',
    'cloudresourcemanager': 'cloudresourcemanager.v1.json',
    'artifactregistry': 'artifactregistry.v1.json',
    'notebooks': 'notebooks.v2.json',
}


@dataclasses.dataclass(frozen=True)
class Workbench:
  """The Vertex AI Workbench instance, when the settings ask for one."""
  instance: str
  machine_type: str
  idle_shutdown_minutes: int
  service_account_id: str


@dataclasses.dataclass(frozen=True)
class Target:
  """The names and sizes of everything the command creates."""
  project: str
  region: str
  zone: str
  pipeline_name: str
  bucket: str
  network: str
  repository: str
  service_account_id: str
  cluster: str
  machine_type: str
  node_count: int
  kfp_version: str
  data_dir: str
  models_dir: str
  workbench: Optional[Workbench] = None  # None: WORKBENCH is off

  @property
  def service_account_email(self) -> str:
    return self.account_email(self.service_account_id)

  def account_email(self, account_id: str) -> str:
    """The email of the project's service account `account_id`."""
    return f'{account_id}@{self.project}.iam.gserviceaccount.com'

  @property
  def workload_pool(self) -> str:
    return f'{self.project}.svc.id.goog'

  @property
  def repository_name(self) -> str:
    return (f'projects/{self.project}/locations/{self.region}/repositories/'
            f'{self.repository}')

  @property
  def cluster_name(self) -> str:
    return f'projects/{self.project}/locations/{self.zone}/clusters/{self.cluster}'


def load_credentials():
  """Returns Application Default Credentials for the cloud-platform scope.

  Raises:
    InfraError: no credentials are set up.
  """
  import google.auth  # pylint: disable=g-import-not-at-top
  try:
    credentials, _ = google.auth.default(scopes=SCOPES)
  except auth_exceptions.DefaultCredentialsError:
    raise errors.no_credentials() from None
  return credentials


def build_api(name: str, credentials=None, http=None):
  """Builds a googleapiclient resource from the shipped discovery document.

  Args:
    name: a key of DOCUMENTS, e.g. 'compute'.
    credentials: google.auth credentials (real runs).
    http: an httplib2-like object instead of credentials (tests).

  Returns:
    The API's top-level resource object.
  """
  with open(os.path.join(_DISCOVERY_DIR, DOCUMENTS[name])) as f:
    document = f.read()
  return discovery.build_from_document(document, http=http,
                                       credentials=credentials)


class Clients:
  """Builds each API client once, on first use."""

  def __init__(self,
               project: str,
               http=None,
               storage_client=None,
               kubectl=None,
               credentials_factory: Callable[[], object] = load_credentials):
    """Creates the factory; nothing is built or looked up yet.

    Args:
      project: the Google Cloud project id.
      http: if set, every googleapiclient client sends through it (tests).
      storage_client: a ready google.cloud.storage.Client (tests).
      kubectl: a ready kubectl runner (tests).
      credentials_factory: returns credentials when first needed.
    """
    self._project = project
    self._http = http
    self._storage = storage_client
    self._kubectl = kubectl
    self._credentials_factory = credentials_factory
    self._credentials = None
    self._apis = {}

  def credentials(self):
    if self._credentials is None:
      self._credentials = self._credentials_factory()
    return self._credentials

  def api(self, name: str):
    if name not in self._apis:
      if self._http is not None:
        self._apis[name] = build_api(name, http=self._http)
      else:
        self._apis[name] = build_api(name, credentials=self.credentials())
    return self._apis[name]

  def storage(self):
    if self._storage is None:
      from google.cloud import storage  # pylint: disable=g-import-not-at-top
      self._storage = storage.Client(project=self._project,
                                     credentials=self.credentials())
    return self._storage

  def kubectl(self):
    if self._kubectl is None:
      self._kubectl = Kubectl()
    return self._kubectl

  def close(self) -> None:
    """Deletes kubectl's temporary kubeconfig, if one was written."""
    if hasattr(self._kubectl, 'close'):
      self._kubectl.close()


class Cloud:
  """The target, its clients, and a record of what each step did."""

  def __init__(self,
               target: Target,
               clients: Clients,
               out: Callable[[str], None] = print,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic):
    self.target = target
    self.clients = clients
    self.out = out
    self.sleep = sleep
    self.clock = clock
    self.results: List[Tuple[str, str]] = []

  def api(self, name: str):
    return self.clients.api(name)

  def report(self, what: str, status: str) -> str:
    """Prints and records that `what` is now `status`; returns `status`."""
    self.results.append((what, status))
    self.out(f'  {what}: {status}')
    return status

  def call(self, request, action: str, role: Optional[str] = None,
           passthrough: Tuple[int, ...] = ()) -> dict:
    """Sends a googleapiclient request; failures become InfraError.

    Args:
      request: an HttpRequest from a client method.
      action: what the request does, for the error message.
      role: the IAM role that allows it, named on a permission error.
      passthrough: HTTP statuses the caller handles itself (e.g. 409).

    Returns:
      The response body.

    Raises:
      InfraError: the request failed.
      googleapiclient.errors.HttpError: the status is in `passthrough`.
    """
    try:
      return request.execute()
    except http_errors.HttpError as exc:
      if any(errors.is_status(exc, code) for code in passthrough):
        raise
      raise errors.from_http_error(exc, action, self.target.project,
                                   role) from None
    except auth_exceptions.RefreshError as exc:
      raise errors.expired_credentials(exc) from None

  def get(self, request, action: str, role: Optional[str] = None):
    """Like `call`, but returns None when the resource does not exist (404)."""
    try:
      return self.call(request, action, role, passthrough=(404,))
    except http_errors.HttpError:
      return None

  def storage_call(self, function, action: str, role: Optional[str] = None):
    """Runs `function()` (a google-cloud-storage call), translating errors."""
    try:
      return function()
    except api_exceptions.GoogleAPICallError as exc:
      raise errors.from_api_core(exc, action, self.target.project,
                                 role) from None
    except auth_exceptions.RefreshError as exc:
      raise errors.expired_credentials(exc) from None

  def wait(self,
           what: str,
           poll: Callable[[], dict],
           done: Callable[[dict], bool],
           timeout_s: float = 1800,
           interval_s: float = 10,
           describe: Callable[[dict], str] = lambda op: '') -> dict:
    """Polls `poll()` until `done(result)`, printing a progress line each time.

    Args:
      what: what is being waited for, e.g. 'creating cluster taxi-tips-cluster'.
      poll: fetches the current state (an operation).
      done: whether that state is final.
      timeout_s: give up after this many seconds.
      interval_s: seconds between polls.
      describe: extra words for the progress line.

    Returns:
      The final state.

    Raises:
      InfraError: still not done after `timeout_s`.
    """
    start = self.clock()
    while True:
      state = poll()
      if done(state):
        return state
      elapsed = self.clock() - start
      if elapsed > timeout_s:
        raise errors.InfraError(
            f'Gave up {what} after {elapsed:.0f} s; it may still finish: run '
            'the command again later to pick it up.')
      extra = describe(state)
      self.out(f'  ... {what}: {int(elapsed) // 60}m{int(elapsed) % 60:02d}s'
               + (f' ({extra})' if extra else ''))
      self.sleep(interval_s)

  def wait_operation(self,
                     operation: dict,
                     fetch: Callable[[dict], object],
                     what: str,
                     action: str,
                     role: Optional[str] = None,
                     timeout_s: float = 600,
                     interval_s: float = 5) -> dict:
    """Waits for a long-running operation of any of the APIs used here.

    Handles google.longrunning operations (`done`, `error`: Service Usage,
    Artifact Registry) and Compute / GKE ones (`status` 'DONE', `error`).

    Args:
      operation: the operation a create or delete call returned.
      fetch: returns the request that reads the operation again.
      what: progress wording, e.g. 'creating cluster x'.
      action: what the operation does, for the error message.
      role: the IAM role needed to read the operation.
      timeout_s: give up after this many seconds.
      interval_s: seconds between polls.

    Returns:
      The finished operation.

    Raises:
      InfraError: the operation failed or timed out.
    """

    def done(op: dict) -> bool:
      return bool(op.get('done')) or op.get('status') == 'DONE'

    state = {'op': operation}

    def poll() -> dict:
      if not done(state['op']):
        state['op'] = self.call(fetch(state['op']), f'check: {action}', role)
      return state['op']

    final = self.wait(what, poll, done, timeout_s, interval_s,
                      describe=lambda op: op.get('status', ''))
    if final.get('error'):
      raise errors.from_operation_error(final['error'], action,
                                        self.target.project)
    return final
