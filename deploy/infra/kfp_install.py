"""Kubeflow Pipelines 2.x standalone on the cluster, installed with kubectl.

Follows the KFP standalone installation guide: the cluster-scoped resources,
a wait for their CRD, then the `env/platform-agnostic` kustomization (KFP
with in-cluster MySQL and MinIO; the `env/dev` variant adds a proxy agent
that needs extra Google Cloud permissions). kubectl (kubectl.py) talks to
the cluster through a private, temporary kubeconfig holding the caller's
access token, so the user's ~/.kube/config is left alone.
"""
from typing import List

from deploy.infra import errors, gke, iam
from deploy.infra.context import CREATED, PRESENT, UPDATED, Cloud, Target

MANIFESTS = 'github.com/kubeflow/pipelines/manifests/kustomize'
NAMESPACE = iam.KFP_NAMESPACE
CACHE_WEBHOOK = f'cache-webhook-{NAMESPACE}'
# KFP's cache webhook mutates pods on CREATE; making it match DELETE instead
# turns caching off (the documented way; CREATE turns it back on).
DISABLE_CACHE_PATCH = ('[{"op": "replace", "path": '
                       '"/webhooks/0/rules/0/operations/0", "value": "DELETE"}]')
_READY_TIMEOUT = '900s'


def install_commands(version: str) -> List[List[str]]:
  """The kubectl commands that install (or upgrade to) KFP `version`."""
  return [
      ['apply', '-k', f'{MANIFESTS}/cluster-scoped-resources?ref={version}'],
      ['wait', '--for', 'condition=established', '--timeout=60s',
       'crd/applications.app.k8s.io'],
      ['apply', '-k', f'{MANIFESTS}/env/platform-agnostic?ref={version}'],
  ]


def wait_ready_command() -> List[str]:
  return ['wait', '--for', 'condition=available', f'--timeout={_READY_TIMEOUT}',
          'deployment', '--all', '-n', NAMESPACE]


def cluster_kubectl(cloud: Cloud):
  """The kubectl runner, pointed at the cluster on first use."""
  kubectl = cloud.clients.kubectl()
  if getattr(kubectl, 'kubeconfig', None) is None:
    cluster = gke.read_cluster(cloud)
    if cluster is None:
      raise errors.InfraError(
          f'Cluster {cloud.target.cluster} does not exist: run without '
          '--skip-cluster first.')
    token = gke.access_token(cloud.clients.credentials())
    kubectl.configure(gke.kubeconfig(cluster, token))
  return kubectl


def installed_version(kubectl) -> str:
  """The KFP version on the cluster ('' if none), from its install config."""
  found = kubectl.run(['get', 'configmap', 'pipeline-install-config', '-n',
                       NAMESPACE, '-o', 'jsonpath={.data.appVersion}'],
                      check=False)
  return found.out if found.code == 0 else ''


class KfpInstall:
  """Installs the pinned KFP version unless it is already there."""
  name = 'kubeflow pipelines'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'Kubeflow Pipelines {target.kfp_version} standalone in namespace '
            f'{NAMESPACE}: kubectl ' + '; kubectl '.join(
                ' '.join(c) for c in install_commands(target.kfp_version))]

  def apply(self) -> None:
    cloud, version = self.cloud, self.cloud.target.kfp_version
    kubectl = cluster_kubectl(cloud)
    found = installed_version(kubectl)
    what = f'Kubeflow Pipelines {version}'
    if found == version:
      status = PRESENT
    else:
      if found:
        cloud.out(f'  upgrading Kubeflow Pipelines {found} to {version}')
      for command in install_commands(version):
        cloud.out(f'  kubectl {" ".join(command)}')
        kubectl.run(command)
      status = UPDATED if found else CREATED
    cloud.out(f'  waiting up to {_READY_TIMEOUT} for the KFP deployments')
    kubectl.run(wait_ready_command())
    cloud.report(what, status)


class RunnerIdentity:
  """Annotates KFP's pipeline-runner account for Workload Identity."""
  name = 'pipeline-runner identity'
  annotation = 'iam.gke.io/gcp-service-account'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'annotate {NAMESPACE}/{iam.KFP_RUNNER_KSA} with '
            f'{RunnerIdentity.annotation}={target.service_account_email}']

  def apply(self) -> None:
    cloud = self.cloud
    kubectl = cluster_kubectl(cloud)
    email = cloud.target.service_account_email
    escaped = self.annotation.replace('.', '\\.')
    current = kubectl.run(['get', 'serviceaccount', iam.KFP_RUNNER_KSA, '-n',
                           NAMESPACE, '-o',
                           f'jsonpath={{.metadata.annotations.{escaped}}}'])
    what = f'{NAMESPACE}/{iam.KFP_RUNNER_KSA} runs as {email}'
    if current.out == email:
      cloud.report(what, PRESENT)
      return
    kubectl.run(['annotate', 'serviceaccount', iam.KFP_RUNNER_KSA, '-n',
                 NAMESPACE, f'{self.annotation}={email}', '--overwrite'])
    cloud.report(what, UPDATED if current.out else CREATED)


class DisableCache:
  """Turns KFP's cache webhook off, so TFX's own cache decides what reruns
  (docs/kubeflow.md)."""
  name = 'kfp cache'

  def __init__(self, cloud: Cloud, attempts: int = 18):
    self.cloud = cloud
    self.attempts = attempts

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'disable the KFP cache webhook: kubectl patch '
            f"mutatingwebhookconfiguration {CACHE_WEBHOOK} --type json -p "
            f"'{DISABLE_CACHE_PATCH}'"]

  def apply(self) -> None:
    cloud = self.cloud
    kubectl = cluster_kubectl(cloud)
    what = f'KFP cache webhook {CACHE_WEBHOOK} off'
    # KFP's cache-deployer creates the webhook shortly after installation.
    for attempt in range(self.attempts):
      found = kubectl.run(['get', 'mutatingwebhookconfiguration',
                           CACHE_WEBHOOK, '-o',
                           'jsonpath={.webhooks[0].rules[0].operations[0]}'],
                          check=False)
      if found.code == 0:
        break
      if attempt + 1 == self.attempts:
        raise errors.InfraError(
            f'The mutating webhook {CACHE_WEBHOOK} never appeared; check the '
            f'cache-deployer pod: kubectl -n {NAMESPACE} get pods')
      cloud.out(f'  ... waiting for {CACHE_WEBHOOK} to be created')
      cloud.sleep(10)
    if found.out == 'DELETE':
      cloud.report(what, PRESENT)
      return
    kubectl.run(['patch', 'mutatingwebhookconfiguration', CACHE_WEBHOOK,
                 '--type', 'json', '-p', DISABLE_CACHE_PATCH])
    cloud.report(what, UPDATED)


def endpoint_lines(target: Target) -> List[str]:
  """How to reach the KFP UI and API once the command is done."""
  return [
      'Kubeflow Pipelines is ready. To open it from this machine:',
      f'  {gke.get_credentials_command(target)}',
      f'  kubectl port-forward -n {NAMESPACE} svc/ml-pipeline-ui 8080:80',
      '  then open http://localhost:8080 (the UI), and deploy with '
      '`tfx pipeline create --engine=kubeflow --endpoint=http://localhost:8080 '
      '--pipeline-path=kubeflow_runner.py`.',
      f'Inside the cluster: http://ml-pipeline-ui.{NAMESPACE}.svc.cluster.local'
      f' (UI) and http://ml-pipeline.{NAMESPACE}.svc.cluster.local:8888 (API).',
  ]
