"""The pipeline's own service account, with the fewest roles that work.

Not the Compute Engine default account, which holds Editor on the whole
project: one dedicated account is the identity of the pipeline's pods (through Workload Identity), its Dataflow
workers and Vertex AI jobs, and the cluster's nodes; it holds only the roles
below, the storage and image roles on this bucket and repository only.
"""
from typing import Callable, List, Tuple

from google.api_core import exceptions as api_exceptions
from googleapiclient import errors as http_errors

from deploy.infra import errors
from deploy.infra.context import CREATED, GRANTED, PRESENT, Cloud, Target

# Project-level roles of the pipeline service account.
PROJECT_ROLES = (
    # Dataflow VMs run as this account: lease work items, report progress.
    'roles/dataflow.worker',
    # Pipeline pods launch and watch Dataflow jobs (dataflow.worker cannot).
    'roles/dataflow.developer',
    # Pipeline pods run Vertex AI training, prediction and pipeline jobs.
    'roles/aiplatform.user',
    # GKE nodes run as this account: write node logs and metrics.
    'roles/container.defaultNodeServiceAccount',
)
# Read the pipeline's input and write its artifacts, in this bucket only.
BUCKET_ROLE = 'roles/storage.objectAdmin'
# Nodes and Dataflow workers pull the pipeline image, from this repository only.
REPOSITORY_ROLE = 'roles/artifactregistry.reader'
# Jobs the pipeline launches on Dataflow and Vertex AI run as this same account.
SELF_ROLE = 'roles/iam.serviceAccountUser'
# Dataflow's service agent manages the worker VMs; Google grants this when the
# API is enabled, and it is granted again here in case it was removed.
DATAFLOW_AGENT_ROLE = 'roles/dataflow.serviceAgent'
# The KFP pods' Kubernetes account acts as the pipeline account.
WORKLOAD_IDENTITY_ROLE = 'roles/iam.workloadIdentityUser'
# Kubernetes service account that KFP 2.x runs pipeline pods as.
KFP_NAMESPACE = 'kubeflow'
KFP_RUNNER_KSA = 'pipeline-runner'

_SA_ROLE = 'roles/iam.serviceAccountAdmin'
_PROJECT_IAM_ROLE = 'roles/resourcemanager.projectIamAdmin'
_RETRIES = 12  # New accounts take up to a minute to be usable in policies.

Binding = Tuple[str, str]  # (role, member)


class _Retryable(Exception):
  """A policy write that may succeed later; carries the InfraError to raise."""

  def __init__(self, error: errors.InfraError):
    super().__init__(str(error))
    self.error = error


def add_bindings(bindings: list, wanted: List[Binding]) -> List[Binding]:
  """Adds each wanted (role, member) to an IAM policy's bindings if missing.

  Conditional bindings are left alone and never count as a match.

  Args:
    bindings: the policy's `bindings` list (members as a list or a set).
    wanted: the (role, member) pairs that must be present.

  Returns:
    The pairs that were added.
  """
  added = []
  for role, member in wanted:
    plain = [b for b in bindings
             if b.get('role') == role and not b.get('condition')]
    if any(member in b.get('members', ()) for b in plain):
      continue
    if plain:
      members = plain[0].setdefault('members', [])
      if isinstance(members, set):
        members.add(member)
      else:
        members.append(member)
    else:
      bindings.append({'role': role, 'members': [member]})
    added.append((role, member))
  return added


def _sa_member(target: Target) -> str:
  return f'serviceAccount:{target.service_account_email}'


def _sa_resource(target: Target) -> str:
  return account_resource(target, target.service_account_id)


def account_resource(target: Target, account_id: str) -> str:
  """The IAM API's name of the project's service account `account_id`."""
  return (f'projects/{target.project}/serviceAccounts/'
          f'{target.account_email(account_id)}')


def ensure_policy(cloud: Cloud, label: str, read: Callable[[], list],
                  write: Callable[[], None], wanted: List[Binding]) -> None:
  """Reads a policy, adds what is missing, writes it back only if it changed.

  Retries while a just-created service account is not yet known to IAM
  (HTTP 400) or another writer changed the policy meanwhile (HTTP 409).

  Args:
    cloud: the shared context.
    label: the resource, for progress lines, e.g. 'project my-project'.
    read: reads the policy and returns its bindings list.
    write: writes the policy whose bindings `read` returned.
    wanted: (role, member) pairs.
  """
  for attempt in range(_RETRIES):
    added = add_bindings(read(), wanted)
    if not added:
      break
    try:
      write()
      break
    except _Retryable as exc:
      if attempt + 1 == _RETRIES:
        raise exc.error from None
      cloud.out(f'  ... waiting for IAM to accept the change on {label}')
      cloud.sleep(5)
  for role, member in wanted:
    who = member.split(':', 1)[1].split('@')[0]
    cloud.report(f'{role} for {who} on {label}',
                 GRANTED if (role, member) in added else PRESENT)


def googleapi_policy(cloud: Cloud, label: str, resource, name: str,
                     role: str, **read_args):
  """read/write functions for APIs with getIamPolicy and setIamPolicy."""
  state = {}

  def read() -> list:
    state['policy'] = cloud.call(resource.getIamPolicy(resource=name,
                                                       **read_args),
                                 f'read the IAM policy of {label}', role)
    return state['policy'].setdefault('bindings', [])

  def write() -> None:
    policy = state['policy']
    if any(b.get('condition') for b in policy['bindings']):
      policy['version'] = 3
    try:
      cloud.call(resource.setIamPolicy(resource=name, body={'policy': policy}),
                 f'grant roles on {label}', role, passthrough=(400, 409))
    except http_errors.HttpError as exc:
      raise _Retryable(errors.from_http_error(
          exc, f'grant roles on {label}', cloud.target.project, role)) from None

  return read, write


def bucket_policy(cloud: Cloud):
  """read/write functions for the IAM policy of the pipeline's bucket."""
  target = cloud.target
  bucket = cloud.clients.storage().bucket(target.bucket)
  label = f'gs://{target.bucket}'
  state = {}

  def read() -> list:
    state['policy'] = cloud.storage_call(
        lambda: bucket.get_iam_policy(requested_policy_version=3),
        f'read the IAM policy of {label}', 'roles/storage.admin')
    return state['policy'].bindings

  def write() -> None:
    action, role = f'grant roles on {label}', 'roles/storage.admin'
    try:
      bucket.set_iam_policy(state['policy'])
    except (api_exceptions.BadRequest, api_exceptions.Conflict,
            api_exceptions.PreconditionFailed) as exc:
      raise _Retryable(errors.from_api_core(exc, action, target.project,
                                            role)) from None
    except api_exceptions.GoogleAPICallError as exc:
      raise errors.from_api_core(exc, action, target.project,
                                 role) from None

  return read, write


class ServiceAccount:
  """Creates the pipeline service account if missing."""
  name = 'service account'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'service account {target.service_account_email}']

  def apply(self) -> None:
    target = self.cloud.target
    ensure_account(self.cloud, target.service_account_id, {
        'displayName': f'{target.pipeline_name} pipeline',
        'description': 'Runs the pipeline pods, Dataflow workers '
                       'and GKE nodes (pipeline/gcp_infrastructure.py)',
    })


def ensure_account(cloud: Cloud, account_id: str, details: dict) -> None:
  """Creates the project's service account `account_id` unless it exists.

  Args:
    cloud: the shared context.
    account_id: the account's id (before the @).
    details: its `displayName` and `description`.
  """
  target = cloud.target
  accounts = cloud.api('iam').projects().serviceAccounts()
  what = f'service account {target.account_email(account_id)}'
  if cloud.get(accounts.get(name=account_resource(target, account_id)),
               f'read {what}', _SA_ROLE):
    cloud.report(what, PRESENT)
    return
  body = {'accountId': account_id, 'serviceAccount': details}
  try:
    cloud.call(accounts.create(name=f'projects/{target.project}', body=body),
               f'create {what}', _SA_ROLE, passthrough=(409,))
  except http_errors.HttpError:
    cloud.report(what, PRESENT)
    return
  cloud.report(what, CREATED)


class Roles:
  """Grants the pipeline account its roles, and Dataflow's agent its role."""
  name = 'roles'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    who = target.service_account_id
    return [f'grant {who}: ' + ', '.join(PROJECT_ROLES) + ' on the project; '
            f'{BUCKET_ROLE} on gs://{target.bucket}; {REPOSITORY_ROLE} on '
            f'repository {target.repository}; {SELF_ROLE} on itself',
            f'grant the Dataflow service agent {DATAFLOW_AGENT_ROLE}']

  def apply(self) -> None:
    self._project()
    self._bucket()
    self._repository()
    self._self()

  def _project(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    projects = cloud.api('cloudresourcemanager').projects()
    number = cloud.call(projects.get(projectId=target.project),
                        'read the project', 'roles/browser')['projectNumber']
    agent = (f'serviceAccount:service-{number}@'
             'dataflow-service-producer-prod.iam.gserviceaccount.com')
    wanted = [(role, _sa_member(target)) for role in PROJECT_ROLES]
    wanted.append((DATAFLOW_AGENT_ROLE, agent))
    ensure_policy(cloud, f'project {target.project}', *project_policy(cloud),
                  wanted)

  def _bucket(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    label = f'gs://{target.bucket}'
    ensure_policy(cloud, label, *bucket_policy(cloud),
                  [(BUCKET_ROLE, _sa_member(target))])

  def _repository(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    repositories = (cloud.api('artifactregistry').projects().locations()
                    .repositories())
    label = f'repository {target.repository}'
    read, write = googleapi_policy(cloud, label, repositories,
                                   target.repository_name,
                                   'roles/artifactregistry.admin')
    ensure_policy(cloud, label, read, write,
                  [(REPOSITORY_ROLE, _sa_member(target))])

  def _self(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    ensure_policy(cloud, target.service_account_id,
                  *pipeline_account_policy(cloud, target),
                  [(SELF_ROLE, _sa_member(target))])


def pipeline_account_policy(cloud: Cloud, target: Target):
  """read/write functions for the IAM policy of the pipeline's account."""
  accounts = cloud.api('iam').projects().serviceAccounts()
  return googleapi_policy(cloud, f'service account {target.service_account_id}',
                          accounts, _sa_resource(target), _SA_ROLE)


def project_policy(cloud: Cloud):
  """read/write functions for the IAM policy of the project."""
  project = cloud.target.project
  return googleapi_policy(
      cloud, f'project {project}', cloud.api('cloudresourcemanager').projects(),
      project, _PROJECT_IAM_ROLE,
      body={'options': {'requestedPolicyVersion': 3}})


def workload_identity_member(target: Target) -> str:
  return (f'serviceAccount:{target.workload_pool}'
          f'[{KFP_NAMESPACE}/{KFP_RUNNER_KSA}]')


class WorkloadIdentity:
  """Lets KFP's `pipeline-runner` Kubernetes account act as the pipeline account.

  Runs after the cluster exists: the project's workload identity pool is
  created with the first cluster that enables Workload Identity.
  """
  name = 'workload identity'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'grant {WORKLOAD_IDENTITY_ROLE} on {target.service_account_id} '
            f'to {KFP_NAMESPACE}/{KFP_RUNNER_KSA} (Workload Identity)']

  def apply(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    ensure_policy(cloud, target.service_account_id,
                  *pipeline_account_policy(cloud, target),
                  [(WORKLOAD_IDENTITY_ROLE, workload_identity_member(target))])
