"""Compute, GKE, Service Usage, IAM and Artifact Registry steps of
pipeline/gcp_infrastructure.py, through googleapiclient's HttpMockSequence.

No request leaves the process: every client is built from the shipped
discovery documents and sends through the mock, which fails the test if a
step sends more requests than scripted. kubectl is a fake that records its
commands.
"""
import json
import os
import subprocess
import sys

import pytest
from google.auth import exceptions as auth_exceptions
from googleapiclient.http import HttpMockSequence

from deploy import provision as infra
from deploy.infra import (apis, errors, gke, iam, kfp_install, network,
                          registry)
from deploy.infra.context import (ABSENT, CREATED, DELETED, ENABLED, GRANTED,
                                  PRESENT, UPDATED, Clients, Cloud, Target)
from deploy.infra.kubectl import Kubectl, Result
from tests import helpers

PROJECT = 'test-project'
TARGET = Target(project=PROJECT, region='europe-west3', zone='europe-west3-a',
                pipeline_name='taxi-tips', bucket=f'{PROJECT}-taxi-tips',
                network='default', repository='tfx-pipelines',
                service_account_id='taxi-tips-runner',
                cluster='taxi-tips-cluster', machine_type='e2-standard-4',
                node_count=2, kfp_version='2.3.0', data_dir='data',
                models_dir='models')
SA_EMAIL = f'taxi-tips-runner@{PROJECT}.iam.gserviceaccount.com'
SA_MEMBER = f'serviceAccount:{SA_EMAIL}'


def ok(body):
  return ({'status': '200'}, json.dumps(body))


def error(status, message='', reason=None, details=None):
  body = {'error': {'code': status, 'message': message}}
  if reason:
    body['error']['errors'] = [{'reason': reason, 'message': message}]
  if details:
    body['error']['details'] = details
  return ({'status': str(status)}, json.dumps(body))


NOT_FOUND = error(404, 'not found', 'notFound')
CONFLICT = error(409, 'already exists', 'alreadyExists')


class FakeCredentials:
  valid = True
  token = 'access-token'


class FakeKubectl:
  """Answers kubectl commands from a script; records what it was asked."""

  def __init__(self, answers=None):
    self.answers = answers or {}  # first word(s) of a command -> [Result]
    self.commands = []
    self.kubeconfig = None
    self.configured_with = None

  def configure(self, kubeconfig):
    config = json.loads(kubeconfig)
    self.configured_with = (config['current-context'],
                            config['users'][0]['user']['token'])
    self.kubeconfig = '/fake/kubeconfig'

  def run(self, args, check=True):
    self.commands.append(list(args))
    for key, results in self.answers.items():
      if ' '.join(args).startswith(key) and results:
        result = results.pop(0)
        if check and result.code:
          raise errors.InfraError(f'kubectl {args} failed')
        return result
    return Result(0, '', '')


class FakeBucket:
  """The IAM part of a storage Bucket."""

  def __init__(self, bindings=None):
    self.policy = type('Policy', (), {'bindings': bindings or []})()
    self.set_calls = 0

  def get_iam_policy(self, requested_policy_version=None):
    return self.policy

  def set_iam_policy(self, policy):
    self.set_calls += 1
    return policy


class FakeStorage:

  def __init__(self, bucket):
    self._bucket = bucket

  def bucket(self, name):
    assert name == TARGET.bucket
    return self._bucket


def make_cloud(responses, kubectl=None, storage_client=None):
  http = HttpMockSequence(responses)
  clients = Clients(PROJECT, http=http, storage_client=storage_client,
                    kubectl=kubectl,
                    credentials_factory=lambda: FakeCredentials())
  lines = []
  cloud = Cloud(TARGET, clients, out=lines.append, sleep=lambda s: None)
  return cloud, http, lines


def sent(http):
  """(method, url path without query, JSON body) of each request sent."""
  return [(method, uri.split('?')[0], json.loads(body) if body else None)
          for uri, method, body, _ in http.request_sequence]


# --- Service Usage ----------------------------------------------------------

def test_enables_only_missing_apis_and_polls_the_operation():
  enabled = [s for s in apis.SERVICES if s != 'container.googleapis.com'
             and s != 'aiplatform.googleapis.com']
  cloud, http, _ = make_cloud([
      ok({'services': [
          {'name': f'projects/123/services/{s}', 'state': 'ENABLED'}
          for s in enabled] + [
              {'name': 'projects/123/services/container.googleapis.com',
               'state': 'DISABLED'}]}),
      ok({'name': 'operations/abc', 'done': False}),
      ok({'name': 'operations/abc', 'done': True, 'response': {}}),
  ])

  apis.EnableApis(cloud).apply()

  requests = sent(http)
  assert requests[0][:2] == (
      'GET', 'https://serviceusage.googleapis.com/v1/projects/test-project/'
      'services:batchGet')
  assert requests[1] == (
      'POST', 'https://serviceusage.googleapis.com/v1/projects/test-project/'
      'services:batchEnable',
      {'serviceIds': ['container.googleapis.com',
                      'aiplatform.googleapis.com']})
  assert requests[2][:2] == (
      'GET', 'https://serviceusage.googleapis.com/v1/operations/abc')
  results = dict(cloud.results)
  assert results['API container.googleapis.com'] == ENABLED
  assert results['API compute.googleapis.com'] == PRESENT


# --- Compute Engine ---------------------------------------------------------

def test_creates_network_and_firewall_rules_polling_operations():
  cloud, http, lines = make_cloud([
      NOT_FOUND,
      ok({'name': 'op-net', 'status': 'RUNNING'}),
      ok({'name': 'op-net', 'status': 'RUNNING'}),
      ok({'name': 'op-net', 'status': 'DONE'}),
      NOT_FOUND,
      ok({'name': 'op-fw1', 'status': 'DONE'}),
      NOT_FOUND,
      CONFLICT,  # Created by someone else between the get and the insert.
  ])

  network.Network(cloud).apply()
  network.Firewalls(cloud).apply()

  base = 'https://compute.googleapis.com/compute/v1/projects/test-project'
  requests = sent(http)
  assert requests[1] == ('POST', f'{base}/global/networks', {
      'name': 'default', 'autoCreateSubnetworks': True,
      'routingConfig': {'routingMode': 'REGIONAL'},
      'description': 'Created by pipeline/gcp_infrastructure.py'})
  assert requests[2][:2] == ('GET', f'{base}/global/operations/op-net')
  assert requests[5][1] == f'{base}/global/firewalls'
  assert requests[5][2]['name'] == 'default-allow-internal'
  assert requests[5][2]['sourceRanges'] == ['10.128.0.0/9']
  assert requests[7][2]['name'] == 'default-allow-dataflow'
  assert requests[7][2]['allowed'] == [{'IPProtocol': 'tcp',
                                        'ports': ['12345-12346']}]
  assert cloud.results == [
      ('VPC network default', CREATED),
      ('firewall rule default-allow-internal', CREATED),
      ('firewall rule default-allow-dataflow', PRESENT),
  ]
  assert any('creating network default' in line for line in lines)


def test_failed_compute_operation_names_quota():
  cloud, _, _ = make_cloud([
      NOT_FOUND,
      ok({'name': 'op', 'status': 'DONE', 'error': {'errors': [
          {'code': 'QUOTA_EXCEEDED', 'message': "Quota 'NETWORKS' exceeded"}]}}),
  ])
  with pytest.raises(errors.InfraError, match='quota exceeded.*quotas'):
    network.Network(cloud).apply()


# --- Artifact Registry ------------------------------------------------------

def test_repository_created_with_docker_format():
  cloud, http, _ = make_cloud([
      NOT_FOUND,
      ok({'name': 'projects/test-project/locations/europe-west3/operations/o1'}),
      ok({'name': 'projects/test-project/locations/europe-west3/operations/o1',
          'done': True}),
  ])

  registry.Repository(cloud).apply()

  requests = sent(http)
  assert requests[1] == (
      'POST', 'https://artifactregistry.googleapis.com/v1/projects/'
      'test-project/locations/europe-west3/repositories',
      {'format': 'DOCKER', 'description': 'Images of the taxi-tips pipeline',
       'labels': {'pipeline': 'taxi-tips'}})
  assert 'repositoryId=tfx-pipelines' in http.request_sequence[1][0]
  assert cloud.results == [
      ('Artifact Registry repository tfx-pipelines', CREATED)]


def test_repository_conflict_counts_as_present():
  cloud, http, _ = make_cloud([NOT_FOUND, CONFLICT])
  registry.Repository(cloud).apply()
  assert cloud.results == [
      ('Artifact Registry repository tfx-pipelines', PRESENT)]
  assert len(http.request_sequence) == 2


# --- IAM --------------------------------------------------------------------

def test_creates_service_account_and_grants_missing_roles():
  bucket = FakeBucket()
  cloud, http, _ = make_cloud([
      NOT_FOUND,
      ok({'email': SA_EMAIL}),
      ok({'projectId': PROJECT, 'projectNumber': '123'}),
      ok({'etag': 'e1', 'bindings': [
          {'role': 'roles/dataflow.worker', 'members': [SA_MEMBER]},
          {'role': 'roles/owner', 'members': ['user:me@example.com']}]}),
      error(400, f'Service account {SA_EMAIL} does not exist.'),  # New SA.
      ok({'etag': 'e1', 'bindings': [
          {'role': 'roles/dataflow.worker', 'members': [SA_MEMBER]},
          {'role': 'roles/owner', 'members': ['user:me@example.com']}]}),
      ok({}),
      ok({'etag': 'r1'}),
      ok({}),
      ok({'etag': 's1'}),
      ok({}),
  ], storage_client=FakeStorage(bucket))

  iam.ServiceAccount(cloud).apply()
  iam.Roles(cloud).apply()

  requests = sent(http)
  assert requests[1] == (
      'POST', 'https://iam.googleapis.com/v1/projects/test-project/'
      'serviceAccounts',
      {'accountId': 'taxi-tips-runner', 'serviceAccount': {
          'displayName': 'taxi-tips pipeline',
          'description': 'Runs the pipeline pods, Dataflow workers and GKE '
                         'nodes (pipeline/gcp_infrastructure.py)'}})
  project_policy = requests[6][2]['policy']
  assert requests[6][1].endswith('/v1/projects/test-project:setIamPolicy')
  assert project_policy['etag'] == 'e1'
  assert {b['role']: b['members'] for b in project_policy['bindings']} == {
      'roles/dataflow.worker': [SA_MEMBER],
      'roles/owner': ['user:me@example.com'],
      'roles/dataflow.developer': [SA_MEMBER],
      'roles/aiplatform.user': [SA_MEMBER],
      'roles/container.defaultNodeServiceAccount': [SA_MEMBER],
      'roles/dataflow.serviceAgent': [
          'serviceAccount:service-123@dataflow-service-producer-prod.iam.'
          'gserviceaccount.com'],
  }
  assert bucket.policy.bindings == [
      {'role': 'roles/storage.objectAdmin', 'members': [SA_MEMBER]}]
  assert requests[8] == (
      'POST', 'https://artifactregistry.googleapis.com/v1/projects/'
      'test-project/locations/europe-west3/repositories/tfx-pipelines:'
      'setIamPolicy',
      {'policy': {'etag': 'r1', 'bindings': [
          {'role': 'roles/artifactregistry.reader', 'members': [SA_MEMBER]}]}})
  assert requests[10][2] == {'policy': {'etag': 's1', 'bindings': [
      {'role': 'roles/iam.serviceAccountUser', 'members': [SA_MEMBER]}]}}
  results = dict(cloud.results)
  assert results[f'service account {SA_EMAIL}'] == CREATED
  assert results['roles/dataflow.worker for taxi-tips-runner on project '
                 'test-project'] == PRESENT
  assert results['roles/aiplatform.user for taxi-tips-runner on project '
                 'test-project'] == GRANTED


def test_workload_identity_binding_names_the_kfp_runner():
  cloud, http, _ = make_cloud([ok({'etag': 's1'}), ok({})])
  iam.WorkloadIdentity(cloud).apply()
  assert sent(http)[1][2]['policy']['bindings'] == [{
      'role': 'roles/iam.workloadIdentityUser',
      'members': ['serviceAccount:test-project.svc.id.goog'
                  '[kubeflow/pipeline-runner]']}]


def test_add_bindings_leaves_conditional_bindings_alone():
  bindings = [{'role': 'roles/x', 'members': ['user:a'],
               'condition': {'expression': 'true'}}]
  added = iam.add_bindings(bindings, [('roles/x', 'user:a')])
  assert added == [('roles/x', 'user:a')]
  assert bindings[1] == {'role': 'roles/x', 'members': ['user:a']}
  assert iam.add_bindings(bindings, [('roles/x', 'user:a')]) == []


# --- GKE --------------------------------------------------------------------

CLUSTER = {'name': 'taxi-tips-cluster', 'status': 'RUNNING',
           'endpoint': '10.0.0.1',
           'masterAuth': {'clusterCaCertificate': 'Q0E='},
           'workloadIdentityConfig': {'workloadPool': 'test-project.svc.id.goog'}}
CONTAINER = ('https://container.googleapis.com/v1/projects/test-project/'
             'locations/europe-west3-a')


def test_creates_cluster_and_prints_progress():
  cloud, http, lines = make_cloud([
      NOT_FOUND,
      ok({'name': 'op-1', 'status': 'RUNNING'}),
      ok({'name': 'op-1', 'status': 'RUNNING'}),
      ok({'name': 'op-1', 'status': 'DONE'}),
      ok(CLUSTER),
  ])

  gke.Cluster(cloud).apply()

  requests = sent(http)
  assert requests[0][:2] == ('GET', f'{CONTAINER}/clusters/taxi-tips-cluster')
  assert requests[1][:2] == ('POST', f'{CONTAINER}/clusters')
  cluster = requests[1][2]['cluster']
  assert cluster['name'] == 'taxi-tips-cluster'
  assert cluster['network'] == 'default'
  assert cluster['workloadIdentityConfig'] == {
      'workloadPool': 'test-project.svc.id.goog'}
  pool = cluster['nodePools'][0]
  assert pool['initialNodeCount'] == 2
  assert pool['config']['machineType'] == 'e2-standard-4'
  assert pool['config']['serviceAccount'] == SA_EMAIL
  assert pool['config']['workloadMetadataConfig'] == {'mode': 'GKE_METADATA'}
  assert requests[2][:2] == ('GET', f'{CONTAINER}/operations/op-1')
  assert cloud.results == [('cluster taxi-tips-cluster', CREATED)]
  progress = [line for line in lines if 'creating cluster' in line]
  assert len(progress) == 2  # The announcement, one line per unfinished poll.
  assert 'RUNNING' in progress[1]


def test_existing_cluster_is_left_alone():
  cloud, http, _ = make_cloud([ok(CLUSTER)])
  gke.Cluster(cloud).apply()
  assert cloud.results == [('cluster taxi-tips-cluster', PRESENT)]
  assert len(http.request_sequence) == 1


def test_cluster_quota_error_names_the_fix():
  cloud, _, _ = make_cloud([
      NOT_FOUND,
      ok({'name': 'op-1', 'status': 'DONE', 'error': {
          'code': 8, 'message': "Insufficient regional quota: 'CPUS'"}}),
  ])
  with pytest.raises(errors.InfraError) as caught:
    gke.Cluster(cloud).apply()
  assert 'quota exceeded' in str(caught.value)
  assert 'GKE_NODE_COUNT' in str(caught.value)


def test_destroy_deletes_the_cluster_once():
  cloud, http, _ = make_cloud([
      ok(CLUSTER),
      ok({'name': 'op-2', 'status': 'RUNNING'}),
      ok({'name': 'op-2', 'status': 'DONE'}),
  ])
  gke.DeleteCluster(cloud).apply()
  assert sent(http)[1][:2] == (
      'DELETE', f'{CONTAINER}/clusters/taxi-tips-cluster')
  assert cloud.results == [('cluster taxi-tips-cluster', DELETED)]

  cloud, http, _ = make_cloud([NOT_FOUND])
  gke.DeleteCluster(cloud).apply()
  assert cloud.results == [('cluster taxi-tips-cluster', ABSENT)]


def test_kubeconfig_points_at_the_cluster():
  config = json.loads(gke.kubeconfig(CLUSTER, 'tok'))
  assert config['clusters'][0]['cluster'] == {
      'server': 'https://10.0.0.1', 'certificate-authority-data': 'Q0E='}
  assert config['users'][0]['user'] == {'token': 'tok'}


# --- Kubeflow Pipelines -----------------------------------------------------

def _kfp_steps(cloud):
  for step in (kfp_install.KfpInstall, kfp_install.RunnerIdentity,
               kfp_install.DisableCache):
    step(cloud).apply()


def test_installs_kfp_with_kubectl_then_changes_nothing():
  R = Result
  kubectl = FakeKubectl({
      'get configmap': [R(1, '', 'NotFound')],
      'get serviceaccount': [R(0, '', '')],
      'get mutatingwebhookconfiguration': [R(1, '', 'NotFound'),
                                           R(0, 'CREATE', '')],
  })
  cloud, _, lines = make_cloud([ok(CLUSTER)], kubectl=kubectl)

  _kfp_steps(cloud)

  base = 'github.com/kubeflow/pipelines/manifests/kustomize'
  assert kubectl.configured_with == ('taxi-tips-cluster', 'access-token')
  assert kubectl.commands == [
      ['get', 'configmap', 'pipeline-install-config', '-n', 'kubeflow', '-o',
       'jsonpath={.data.appVersion}'],
      ['apply', '-k', f'{base}/cluster-scoped-resources?ref=2.3.0'],
      ['wait', '--for', 'condition=established', '--timeout=60s',
       'crd/applications.app.k8s.io'],
      ['apply', '-k', f'{base}/env/platform-agnostic?ref=2.3.0'],
      ['wait', '--for', 'condition=available', '--timeout=900s', 'deployment',
       '--all', '-n', 'kubeflow'],
      ['get', 'serviceaccount', 'pipeline-runner', '-n', 'kubeflow', '-o',
       r'jsonpath={.metadata.annotations.iam\.gke\.io/gcp-service-account}'],
      ['annotate', 'serviceaccount', 'pipeline-runner', '-n', 'kubeflow',
       f'iam.gke.io/gcp-service-account={SA_EMAIL}', '--overwrite'],
      ['get', 'mutatingwebhookconfiguration', 'cache-webhook-kubeflow', '-o',
       'jsonpath={.webhooks[0].rules[0].operations[0]}'],
      ['get', 'mutatingwebhookconfiguration', 'cache-webhook-kubeflow', '-o',
       'jsonpath={.webhooks[0].rules[0].operations[0]}'],
      ['patch', 'mutatingwebhookconfiguration', 'cache-webhook-kubeflow',
       '--type', 'json', '-p', '[{"op": "replace", "path": '
       '"/webhooks/0/rules/0/operations/0", "value": "DELETE"}]'],
  ]
  assert [status for _, status in cloud.results] == [CREATED, CREATED, UPDATED]

  # Second run: everything is in place; only reads and the readiness wait.
  kubectl.commands.clear()
  kubectl.answers = {
      'get configmap': [R(0, '2.3.0', '')],
      'get serviceaccount': [R(0, SA_EMAIL, '')],
      'get mutatingwebhookconfiguration': [R(0, 'DELETE', '')],
  }
  cloud.results.clear()
  _kfp_steps(cloud)
  assert [c[0] for c in kubectl.commands] == ['get', 'wait', 'get', 'get']
  assert [status for _, status in cloud.results] == [PRESENT] * 3


def test_upgrades_an_older_kfp():
  kubectl = FakeKubectl({'get configmap': [Result(0, '2.0.5', '')]})
  cloud, _, _ = make_cloud([ok(CLUSTER)], kubectl=kubectl)
  kfp_install.KfpInstall(cloud).apply()
  assert cloud.results == [('Kubeflow Pipelines 2.3.0', UPDATED)]


def test_kubectl_uses_a_private_kubeconfig(tmp_path):
  fake = tmp_path / 'kubectl'
  fake.write_text('#!/bin/sh\necho "$@"\n')
  fake.chmod(0o755)
  kubectl = Kubectl(binary=str(fake))
  config = gke.kubeconfig(CLUSTER, 'tok')
  kubectl.configure(config)
  path = kubectl.kubeconfig
  try:
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'
    with open(path) as f:
      assert f.read() == config
    result = kubectl.run(['get', 'pods'])
    assert result == Result(0, f'--kubeconfig {path} get pods', '')
  finally:
    kubectl.close()
  assert not os.path.exists(path)


def test_missing_kubectl_says_how_to_install_it(monkeypatch):
  monkeypatch.setenv('PATH', '/nonexistent')
  with pytest.raises(errors.InfraError, match='kubectl is not installed.*'
                     'gcloud components install kubectl'):
    Kubectl()


# --- The command ------------------------------------------------------------

def _refusing_clients():
  http = HttpMockSequence([])

  def no_credentials():
    raise AssertionError('a dry run must not look for credentials')

  return Clients(PROJECT, http=http, storage_client=object(),
                 kubectl=object(), credentials_factory=no_credentials), http


def test_dry_run_prints_the_plan_and_sends_nothing():
  clients, http = _refusing_clients()
  lines = []
  code = infra.main(['--dry-run', '--project', PROJECT, '--disable-kfp-cache'],
                    clients=clients, out=lines.append)
  assert code == 0
  assert http.request_sequence == []
  text = '\n'.join(lines)
  assert 'dry run: no request is sent' in text
  assert f'gs://{PROJECT}-taxi-tips' in text
  assert 'GKE Standard cluster taxi-tips-cluster in europe-west3-a' in text
  assert 'env/platform-agnostic?ref=2.3.0' in text
  assert 'cache-webhook-kubeflow' in text

  lines.clear()
  assert infra.main(['--dry-run', '--project', PROJECT, '--destroy',
                     '--delete-bucket'], clients=clients,
                    out=lines.append) == 0
  assert http.request_sequence == []
  assert 'DELETE GKE cluster' in lines[1] and 'DELETE bucket' in lines[2]


def test_the_seed_script_and_the_module_print_the_same_plan():
  # `python pipeline/gcp_infrastructure.py` (the documented command)
  # and `python -m pipeline.gcp_infrastructure` run the same steps.
  plans = []
  for command in (['pipeline/gcp_infrastructure.py'],
                  ['-m', 'pipeline.gcp_infrastructure']):
    done = subprocess.run(
        [sys.executable, *command, '--dry-run', '--project', PROJECT],
        cwd=helpers.REPO, capture_output=True, text=True, check=False,
        env={k: v for k, v in os.environ.items()
             if k != 'GOOGLE_CLOUD_PROJECT'})
    assert done.returncode == 0, done.stderr
    plans.append(done.stdout)
  assert plans[0] == plans[1]
  assert plans[0].startswith(f'Plan for project {PROJECT} (dry run')


def test_delete_bucket_needs_destroy():
  with pytest.raises(SystemExit):
    infra.parse_args(['--delete-bucket'])


def test_second_run_reports_everything_present():
  """Everything exists: only reads are sent and nothing is created."""
  policy = lambda bindings: ok({'etag': 'e', 'bindings': bindings})
  project_bindings = [{'role': r, 'members': [SA_MEMBER]}
                      for r in iam.PROJECT_ROLES] + [
                          {'role': iam.DATAFLOW_AGENT_ROLE, 'members': [
                              'serviceAccount:service-123@dataflow-service-'
                              'producer-prod.iam.gserviceaccount.com']}]
  cloud, http, _ = make_cloud([
      ok({'services': [{'name': f'projects/123/services/{s}',
                        'state': 'ENABLED'} for s in apis.SERVICES]}),
      ok({'name': 'default', 'autoCreateSubnetworks': True}),
      ok({'name': 'default-allow-internal'}),
      ok({'name': 'default-allow-dataflow'}),
      ok({'name': TARGET.repository_name}),
      ok({'email': SA_EMAIL}),
      ok({'projectNumber': '123'}),
      policy(project_bindings),
      policy([{'role': iam.REPOSITORY_ROLE, 'members': [SA_MEMBER]}]),
      policy([{'role': iam.SELF_ROLE, 'members': [SA_MEMBER]}]),
      ok(CLUSTER),
      policy([{'role': iam.SELF_ROLE, 'members': [SA_MEMBER]},
              {'role': iam.WORKLOAD_IDENTITY_ROLE,
               'members': [iam.workload_identity_member(TARGET)]}]),
  ], storage_client=FakeStorage(FakeBucket(
      [{'role': iam.BUCKET_ROLE, 'members': {SA_MEMBER}}])))
  steps = [apis.EnableApis, network.Network, network.Firewalls,
           registry.Repository, iam.ServiceAccount, iam.Roles, gke.Cluster,
           iam.WorkloadIdentity]

  for step in steps:
    step(cloud).apply()

  assert {status for _, status in cloud.results} == {PRESENT}
  writes = [(m, u) for m, u, _ in sent(http)
            if m != 'GET' and not u.endswith(':getIamPolicy')]
  assert writes == []
  assert cloud.clients.storage()._bucket.set_calls == 0


# --- Error messages ---------------------------------------------------------

def test_no_credentials_names_the_login_command(monkeypatch, capsys):
  def no_adc(**kwargs):
    raise auth_exceptions.DefaultCredentialsError('none found')

  monkeypatch.setattr('google.auth.default', no_adc)
  http = HttpMockSequence([])
  code = infra.main(['--project', PROJECT],
                    clients=Clients(PROJECT, http=http),
                    out=lambda line: None)
  assert code == 1
  assert 'No Google Cloud credentials found: run `gcloud auth ' \
         'application-default login`' in capsys.readouterr().err
  assert http.request_sequence == []


@pytest.mark.parametrize('response, expected', [
    (error(403, 'Compute Engine API has not been used in project 123 before '
           'or it is disabled.', 'accessNotConfigured', [{
               '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
               'reason': 'SERVICE_DISABLED',
               'metadata': {'service': 'compute.googleapis.com'}}]),
     'the compute.googleapis.com API is not enabled.*gcloud services enable '
     'compute.googleapis.com --project test-project'),
    (error(403, "Required 'compute.networks.get' permission", 'forbidden'),
     'permission denied.*roles/compute.networkAdmin'),
    (error(429, 'Rate Limit Exceeded', 'rateLimitExceeded'),
     'quota exceeded'),
    (error(404, "The resource 'projects/wrong-project' was not found",
           'notFound'),
     None),
])
def test_api_errors_name_the_fix(response, expected):
  cloud, _, _ = make_cloud([response] + ([response] if expected is None
                                         else []))
  if expected is None:  # 404 on a get is "absent"; on the insert, the project.
    with pytest.raises(errors.InfraError, match='project not found.*gcloud '
                       'projects list'):
      network.Network(cloud).apply()
    return
  with pytest.raises(errors.InfraError, match=expected):
    network.Network(cloud).apply()


def test_missing_permission_on_cluster_names_container_admin():
  cloud, _, _ = make_cloud([NOT_FOUND, error(403, 'Permission denied',
                                             'forbidden')])
  with pytest.raises(errors.InfraError, match='roles/container.admin'):
    gke.Cluster(cloud).apply()
