"""The Vertex AI Workbench instance that drives the pipeline (WORKBENCH=true).

A JupyterLab VM in the project's zone and network, created through the
Notebooks API v2, where notebooks/kubeflow_quickstart.ipynb walks the cloud
path: set up, compile, upload and run on Kubeflow Pipelines, watch the run
and the served model. It runs as its own service account, which may do that
and nothing more:

- see the cluster (`container.clusterViewer`, enough for
  `gcloud container clusters get-credentials`), and inside it only forward a
  port to Kubeflow Pipelines (a Kubernetes Role in the `kubeflow` namespace);
- run Vertex AI pipeline jobs and read the served model (`aiplatform.user`),
  the jobs running as the pipeline's account (`iam.serviceAccountUser` on
  that account only);
- read the pipeline's outputs in its bucket (`storage.objectViewer`).

It uploads nothing to the bucket and builds no image: `make image` and
`make infra` stay with an account that may.
"""
import json
import os
import tempfile
import uuid
from typing import List

from googleapiclient import errors as http_errors

from deploy.infra import errors, iam, kfp_install
from deploy.infra.context import (ABSENT, CREATED, DELETED, PRESENT, UPDATED,
                                  Cloud, Target, Workbench)

_ROLE = 'roles/notebooks.admin'
# Project-level roles of the instance's account.
PROJECT_ROLES = (
    # `gcloud container clusters get-credentials` for the port-forward to
    # Kubeflow Pipelines; what it may do inside is the Role below.
    'roles/container.clusterViewer',
    # Vertex AI Pipelines runs (`tfx run create --engine=vertex`), and the
    # serving status (`make serving-status`).
    'roles/aiplatform.user',
)
# Read the pipeline's outputs, in its bucket only.
BUCKET_ROLE = 'roles/storage.objectViewer'
# Vertex AI jobs it starts run as the pipeline's account (on that one only).
ACT_AS_ROLE = iam.SELF_ROLE
# Kubernetes: what `kubectl port-forward svc/ml-pipeline-ui` needs.
KFP_ACCESS = 'workbench-kfp-access'
KFP_ACCESS_RULES = [
    {'apiGroups': [''], 'resources': ['services'], 'verbs': ['get']},
    {'apiGroups': [''], 'resources': ['pods'], 'verbs': ['get', 'list']},
    {'apiGroups': [''], 'resources': ['pods/portforward'],
     'verbs': ['get', 'create']},
]
_CREATE_TIMEOUT_S = 30 * 60
_POLL_S = 15
_CREATE_ATTEMPTS = 4
# Answers after which a create is sent again, with the same request id.
_RETRIED = (429, 500, 502, 503, 504)


def _workbench(target: Target) -> Workbench:
  if target.workbench is None:
    raise errors.InfraError('WORKBENCH is off: set WORKBENCH=true.')
  return target.workbench


def account_email(target: Target) -> str:
  return target.account_email(_workbench(target).service_account_id)


def location(target: Target) -> str:
  return f'projects/{target.project}/locations/{target.zone}'


def instance_name(target: Target) -> str:
  return f'{location(target)}/instances/{_workbench(target).instance}'


def instance_body(target: Target) -> dict:
  """The instances.create request body."""
  workbench = _workbench(target)
  return {
      'gceSetup': {
          'machineType': workbench.machine_type,
          'serviceAccounts': [{'email': account_email(target)}],
          'networkInterfaces': [{
              'network': f'projects/{target.project}/global/networks/'
                         f'{target.network}',
          }],
          'metadata': {
              'idle-timeout-seconds': str(workbench.idle_shutdown_minutes * 60),
          },
          'shieldedInstanceConfig': {'enableSecureBoot': True,
                                     'enableVtpm': True,
                                     'enableIntegrityMonitoring': True},
      },
      'labels': {'pipeline': target.pipeline_name[:63]},
  }


def console_link(target: Target) -> str:
  return ('https://console.cloud.google.com/vertex-ai/workbench/instances'
          f'?project={target.project}')


def _instances(cloud: Cloud):
  return cloud.api('notebooks').projects().locations().instances()


def read_instance(cloud: Cloud):
  """The instance resource, or None if it does not exist."""
  return cloud.get(_instances(cloud).get(name=instance_name(cloud.target)),
                   f'read Workbench instance {_workbench(cloud.target).instance}',
                   _ROLE)


def _wait(cloud: Cloud, operation: dict, what: str, action: str) -> None:
  operations = cloud.api('notebooks').projects().locations().operations()
  cloud.wait_operation(operation,
                       lambda op: operations.get(name=op['name']),
                       what, action, _ROLE, timeout_s=_CREATE_TIMEOUT_S,
                       interval_s=_POLL_S)


class Account:
  """Creates the instance's service account and grants it its roles."""
  name = 'workbench service account'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'service account {account_email(target)} for the Workbench '
            'instance: ' + ', '.join(PROJECT_ROLES) + ' on the project; '
            f'{BUCKET_ROLE} on gs://{target.bucket}; {ACT_AS_ROLE} on '
            f'{target.service_account_id}']

  def apply(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    account_id = _workbench(target).service_account_id
    iam.ensure_account(cloud, account_id, {
        'displayName': f'{target.pipeline_name} Workbench',
        'description': 'Runs the Workbench instance that uploads and runs '
                       'the pipeline (pipeline/gcp_infrastructure.py)',
    })
    member = f'serviceAccount:{account_email(target)}'
    iam.ensure_policy(cloud, f'project {target.project}',
                      *iam.project_policy(cloud),
                      [(role, member) for role in PROJECT_ROLES])
    iam.ensure_policy(cloud, f'gs://{target.bucket}', *iam.bucket_policy(cloud),
                      [(BUCKET_ROLE, member)])
    iam.ensure_policy(cloud, target.service_account_id,
                      *iam.pipeline_account_policy(cloud, target),
                      [(ACT_AS_ROLE, member)])


class Instance:
  """Creates the Workbench instance unless it exists; never a second one.

  The instance id is its name, so a create can only make that one instance;
  a create answered with a server error is sent again with the same request
  id, which the API answers with the first request's operation.
  """
  name = 'workbench'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    workbench = _workbench(target)
    return [f'Vertex AI Workbench instance {workbench.instance} in '
            f'{target.zone} on network {target.network}: '
            f'{workbench.machine_type}, running as '
            f'{workbench.service_account_id}, idle shutdown after '
            f'{workbench.idle_shutdown_minutes} minutes; takes about 5 '
            'minutes']

  def apply(self) -> dict:
    cloud, target = self.cloud, self.cloud.target
    what = f'Workbench instance {_workbench(target).instance}'
    instance = read_instance(cloud)
    status = PRESENT
    if instance is None:
      status = self._create(what)
      instance = read_instance(cloud) or {}
    if instance.get('state') == 'DELETING':
      raise errors.InfraError(
          f'The {what} is being deleted; run the command again when it is '
          'gone.')
    cloud.report(what, status)
    state = instance.get('state', 'unknown')
    cloud.out(f'  state {state}; open JupyterLab from {console_link(target)}'
              + (f' or https://{instance["proxyUri"]}'
                 if instance.get('proxyUri') else ''))
    if state == 'STOPPED':
      cloud.out('  (stopped by idle shutdown: start it there; it keeps its '
                'files)')
    return instance

  def _create(self, what: str) -> str:
    cloud, target = self.cloud, self.cloud.target
    request = _instances(cloud).create(
        parent=location(target), instanceId=_workbench(target).instance,
        requestId=str(uuid.uuid4()), body=instance_body(target))
    for attempt in range(_CREATE_ATTEMPTS):
      try:
        operation = cloud.call(request, f'create {what}', _ROLE,
                               passthrough=(409,) + _RETRIED)
        break
      except http_errors.HttpError as exc:
        if errors.is_status(exc, 409):  # Created meanwhile, or by a retry.
          return PRESENT
        if attempt + 1 == _CREATE_ATTEMPTS:
          raise errors.from_http_error(exc, f'create {what}', target.project,
                                       _ROLE) from None
        cloud.out(f'  ... the Notebooks API answered HTTP {exc.resp.status}; '
                  'sending the same create again')
        cloud.sleep(10)
    cloud.out(f'  creating {what}; this takes about 5 minutes')
    _wait(cloud, operation, f'creating {what}', f'create {what}')
    return CREATED


class KfpAccess:
  """Lets the instance's account port-forward to Kubeflow Pipelines."""
  name = 'workbench access to kubeflow pipelines'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'Kubernetes Role and RoleBinding {KFP_ACCESS} in namespace '
            f'{kfp_install.NAMESPACE}: {account_email(target)} may '
            'port-forward to Kubeflow Pipelines']

  def apply(self) -> None:
    cloud = self.cloud
    kubectl = kfp_install.cluster_kubectl(cloud)
    email = account_email(cloud.target)
    what = f'{kfp_install.NAMESPACE}/{KFP_ACCESS} for {email}'
    found = kubectl.run(['get', 'rolebinding', KFP_ACCESS, '-n',
                         kfp_install.NAMESPACE, '-o',
                         'jsonpath={.subjects[0].name}'], check=False)
    if found.code == 0 and found.out == email:
      cloud.report(what, PRESENT)
      return
    with tempfile.TemporaryDirectory(prefix='workbench-rbac-') as folder:
      path = os.path.join(folder, 'access.json')
      with open(path, 'w') as f:
        json.dump(access_manifest(email), f)
      kubectl.run(['apply', '-f', path])
    cloud.report(what, UPDATED if found.code == 0 else CREATED)


def access_manifest(email: str) -> dict:
  """The Role and RoleBinding that let `email` port-forward to KFP."""
  metadata = {'name': KFP_ACCESS, 'namespace': kfp_install.NAMESPACE}
  return {'apiVersion': 'v1', 'kind': 'List', 'items': [
      {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'Role',
       'metadata': metadata, 'rules': KFP_ACCESS_RULES},
      {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'RoleBinding',
       'metadata': metadata,
       'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role',
                   'name': KFP_ACCESS},
       # GKE names a Google service account's Kubernetes user by its email.
       'subjects': [{'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'User',
                     'name': email}]},
  ]}


class DeleteInstance:
  """Deletes the Workbench instance, with its disks."""
  name = 'delete workbench'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'DELETE Vertex AI Workbench instance '
            f'{_workbench(target).instance} in {target.zone}, with its disks '
            '(files not pushed elsewhere are lost)']

  def apply(self) -> None:
    cloud, target = self.cloud, self.cloud.target
    what = f'Workbench instance {_workbench(target).instance}'
    instance = read_instance(cloud)
    if instance is None:
      cloud.report(what, ABSENT)
      return
    if instance.get('state') == 'DELETING':  # An earlier --destroy is at it.
      cloud.wait(f'deleting {what}', lambda: read_instance(cloud) or {},
                 lambda found: not found, timeout_s=_CREATE_TIMEOUT_S,
                 interval_s=_POLL_S,
                 describe=lambda found: found.get('state', ''))
    else:
      operation = cloud.call(
          _instances(cloud).delete(name=instance_name(target),
                                   requestId=str(uuid.uuid4())),
          f'delete {what}', _ROLE)
      _wait(cloud, operation, f'deleting {what}', f'delete {what}')
    cloud.report(what, DELETED)


def next_steps(target: Target) -> List[str]:
  """What to do with the instance once the command is done."""
  return [
      f'Vertex AI Workbench instance {_workbench(target).instance} is ready. '
      f'Open JupyterLab from {console_link(target)};',
      '  in its terminal, `git clone` this repository, then open '
      'notebooks/kubeflow_quickstart.ipynb (docs/cloud_setup.md, section 7).',
  ]
