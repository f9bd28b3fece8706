"""The Vertex AI Workbench steps of pipeline/gcp_infrastructure.py
(WORKBENCH=true): their requests to the Notebooks API v2, IAM and kubectl,
through googleapiclient's HttpMockSequence and the shipped discovery
documents, as in test_gcp_infrastructure.py."""
import dataclasses
import json
import os
import subprocess
import sys
from urllib import parse

import pytest

from deploy import provision as infra
from deploy.infra import errors, iam, workbench
from deploy.infra.context import (ABSENT, CREATED, DELETED, GRANTED, PRESENT,
                                  Workbench)
from deploy.infra.kubectl import Result
from tests import helpers
from tests.test_gcp_infrastructure import (NOT_FOUND, PROJECT, SA_MEMBER,
                                           TARGET, CLUSTER, FakeBucket,
                                           FakeKubectl, FakeStorage,
                                           _refusing_clients, error, ok, sent)
from tests import test_gcp_infrastructure as infra_tests

WORKBENCH = Workbench(instance='taxi-tips-workbench',
                      machine_type='e2-standard-8', idle_shutdown_minutes=45,
                      service_account_id='taxi-tips-workbench')
WB_TARGET = dataclasses.replace(TARGET, workbench=WORKBENCH)
WB_EMAIL = f'taxi-tips-workbench@{PROJECT}.iam.gserviceaccount.com'
WB_MEMBER = f'serviceAccount:{WB_EMAIL}'
NOTEBOOKS = (f'https://notebooks.googleapis.com/v2/projects/{PROJECT}/'
             'locations/europe-west3-a')
INSTANCE = {'name': f'projects/{PROJECT}/locations/europe-west3-a/instances/'
                    'taxi-tips-workbench',
            'state': 'ACTIVE', 'proxyUri': 'abc-dot-europe-west3.notebooks.'
                                           'googleusercontent.com'}
OPERATION = f'projects/{PROJECT}/locations/europe-west3-a/operations/op-7'


def make_cloud(responses, **kwargs):
  cloud, http, lines = infra_tests.make_cloud(responses, **kwargs)
  cloud.target = WB_TARGET
  return cloud, http, lines


def _query(http, index):
  return parse.parse_qs(parse.urlsplit(http.request_sequence[index][0]).query)


# --- The instance -----------------------------------------------------------

def test_creates_the_instance_as_its_account_on_the_network_with_idle_shutdown():
  cloud, http, lines = make_cloud([
      NOT_FOUND,
      ok({'name': OPERATION, 'done': False}),
      ok({'name': OPERATION, 'done': True, 'response': INSTANCE}),
      ok(INSTANCE),
  ])

  workbench.Instance(cloud).apply()

  requests = sent(http)
  assert requests[0][:2] == ('GET', f'{NOTEBOOKS}/instances/taxi-tips-workbench')
  assert requests[1][:2] == ('POST', f'{NOTEBOOKS}/instances')
  query = _query(http, 1)
  assert query['instanceId'] == ['taxi-tips-workbench']
  assert len(query['requestId'][0]) == 36  # a UUID
  setup = requests[1][2]['gceSetup']
  assert setup['machineType'] == 'e2-standard-8'
  assert setup['serviceAccounts'] == [{'email': WB_EMAIL}]
  assert setup['networkInterfaces'] == [
      {'network': f'projects/{PROJECT}/global/networks/default'}]
  assert setup['metadata'] == {'idle-timeout-seconds': str(45 * 60)}
  assert requests[1][2]['labels'] == {'pipeline': 'taxi-tips'}
  assert requests[2][:2] == (
      'GET', f'https://notebooks.googleapis.com/v2/{OPERATION}')
  assert cloud.results == [('Workbench instance taxi-tips-workbench', CREATED)]
  assert any(f'https://{INSTANCE["proxyUri"]}' in line for line in lines)


def test_a_retried_create_reuses_its_request_id_and_never_duplicates():
  # The first create is answered 503 (it may or may not have been applied);
  # the same request is sent again, and the API says the instance exists.
  cloud, http, lines = make_cloud([
      NOT_FOUND,
      error(503, 'The service is currently unavailable.'),
      error(409, 'Instance already exists', 'alreadyExists'),
      ok(INSTANCE),
  ])

  workbench.Instance(cloud).apply()

  posts = [i for i, (method, _, _) in enumerate(sent(http)) if method == 'POST']
  assert len(posts) == 2
  assert _query(http, posts[0]) == _query(http, posts[1])  # same requestId
  assert sent(http)[posts[0]][2] == sent(http)[posts[1]][2]
  assert cloud.results == [('Workbench instance taxi-tips-workbench', PRESENT)]
  assert any('HTTP 503' in line for line in lines)


def test_create_gives_up_after_repeated_server_errors():
  cloud, http, _ = make_cloud([NOT_FOUND] + [error(503, 'unavailable')] * 4)
  with pytest.raises(errors.InfraError, match='HTTP 503'):
    workbench.Instance(cloud).apply()
  assert len(http.request_sequence) == 5


def test_an_existing_instance_is_left_alone():
  stopped = dict(INSTANCE, state='STOPPED')
  cloud, http, lines = make_cloud([ok(stopped)])
  workbench.Instance(cloud).apply()
  assert len(http.request_sequence) == 1
  assert cloud.results == [('Workbench instance taxi-tips-workbench', PRESENT)]
  assert any('idle shutdown' in line for line in lines)


def test_an_instance_being_deleted_stops_the_command():
  cloud, _, _ = make_cloud([ok(dict(INSTANCE, state='DELETING'))])
  with pytest.raises(errors.InfraError, match='being deleted'):
    workbench.Instance(cloud).apply()


def test_missing_permission_names_notebooks_admin():
  cloud, _, _ = make_cloud([NOT_FOUND,
                            error(403, 'Permission denied', 'forbidden')])
  with pytest.raises(errors.InfraError, match='roles/notebooks.admin'):
    workbench.Instance(cloud).apply()


# --- Teardown ---------------------------------------------------------------

def test_destroy_deletes_the_instance_once():
  cloud, http, _ = make_cloud([
      ok(INSTANCE),
      ok({'name': OPERATION}),
      ok({'name': OPERATION, 'done': True}),
  ])
  workbench.DeleteInstance(cloud).apply()
  assert sent(http)[1][:2] == (
      'DELETE', f'{NOTEBOOKS}/instances/taxi-tips-workbench')
  assert cloud.results == [('Workbench instance taxi-tips-workbench', DELETED)]

  cloud, http, _ = make_cloud([NOT_FOUND])
  workbench.DeleteInstance(cloud).apply()
  assert cloud.results == [('Workbench instance taxi-tips-workbench', ABSENT)]
  assert len(http.request_sequence) == 1


# --- Its account and its access to Kubeflow Pipelines -----------------------

def test_the_account_gets_only_its_roles():
  bucket = FakeBucket([{'role': iam.BUCKET_ROLE, 'members': {SA_MEMBER}}])
  cloud, http, _ = make_cloud([
      NOT_FOUND,
      ok({'email': WB_EMAIL}),
      ok({'etag': 'p1', 'bindings': [
          {'role': 'roles/aiplatform.user', 'members': [SA_MEMBER]}]}),
      ok({}),
      ok({'etag': 's1', 'bindings': [
          {'role': iam.SELF_ROLE, 'members': [SA_MEMBER]}]}),
      ok({}),
  ], storage_client=FakeStorage(bucket))

  workbench.Account(cloud).apply()

  requests = sent(http)
  assert requests[1][2]['accountId'] == 'taxi-tips-workbench'
  project_policy = {b['role']: b['members']
                    for b in requests[3][2]['policy']['bindings']}
  assert project_policy == {
      'roles/aiplatform.user': [SA_MEMBER, WB_MEMBER],
      'roles/container.clusterViewer': [WB_MEMBER]}
  assert bucket.policy.bindings == [
      {'role': iam.BUCKET_ROLE, 'members': {SA_MEMBER}},
      {'role': 'roles/storage.objectViewer', 'members': [WB_MEMBER]}]
  # It may act as the pipeline's account, on that account's policy only.
  assert requests[5][1].endswith(
      f'/serviceAccounts/taxi-tips-runner@{PROJECT}.iam.gserviceaccount.com'
      ':setIamPolicy')
  assert requests[5][2]['policy']['bindings'] == [
      {'role': iam.SELF_ROLE, 'members': [SA_MEMBER, WB_MEMBER]}]
  assert dict(cloud.results)[
      f'roles/container.clusterViewer for taxi-tips-workbench on project '
      f'{PROJECT}'] == GRANTED


class ManifestKubectl(FakeKubectl):
  """Also keeps the manifests it is asked to apply."""

  def __init__(self, answers=None):
    super().__init__(answers)
    self.applied = []

  def run(self, args, check=True):
    if args[:2] == ['apply', '-f']:
      with open(args[2]) as f:
        self.applied.append(json.load(f))
    return super().run(args, check)


def test_kfp_access_lets_the_account_port_forward_only():
  kubectl = ManifestKubectl({'get rolebinding': [Result(1, '', 'NotFound')]})
  cloud, _, _ = make_cloud([ok(CLUSTER)], kubectl=kubectl)

  workbench.KfpAccess(cloud).apply()

  (manifest,) = kubectl.applied
  role, binding = manifest['items']
  assert role['kind'] == 'Role' and role['metadata']['namespace'] == 'kubeflow'
  granted = {(resource, verb) for rule in role['rules']
             for resource in rule['resources'] for verb in rule['verbs']}
  assert ('pods/portforward', 'create') in granted
  assert not {verb for resource, verb in granted if resource != (
      'pods/portforward')} - {'get', 'list'}  # reads only, elsewhere
  assert binding['subjects'] == [{'apiGroup': 'rbac.authorization.k8s.io',
                                  'kind': 'User', 'name': WB_EMAIL}]
  assert binding['roleRef']['name'] == role['metadata']['name']
  assert cloud.results == [
      (f'kubeflow/workbench-kfp-access for {WB_EMAIL}', CREATED)]

  kubectl.answers = {'get rolebinding': [Result(0, WB_EMAIL, '')]}
  cloud.results.clear()
  workbench.KfpAccess(cloud).apply()
  assert len(kubectl.applied) == 1
  assert cloud.results == [
      (f'kubeflow/workbench-kfp-access for {WB_EMAIL}', PRESENT)]


def test_second_run_reports_everything_present():
  kubectl = FakeKubectl({'get rolebinding': [Result(0, WB_EMAIL, '')]})
  cloud, http, _ = make_cloud([
      ok({'email': WB_EMAIL}),
      ok({'etag': 'p', 'bindings': [{'role': r, 'members': [WB_MEMBER]}
                                    for r in workbench.PROJECT_ROLES]}),
      ok({'etag': 's', 'bindings': [{'role': iam.SELF_ROLE,
                                     'members': [WB_MEMBER]}]}),
      ok(CLUSTER),
      ok(INSTANCE),
  ], kubectl=kubectl, storage_client=FakeStorage(FakeBucket(
      [{'role': workbench.BUCKET_ROLE, 'members': {WB_MEMBER}}])))

  for step in (workbench.Account, workbench.KfpAccess, workbench.Instance):
    step(cloud).apply()

  assert {status for _, status in cloud.results} == {PRESENT}
  assert [m for m, u, _ in sent(http)
          if m != 'GET' and not u.endswith(':getIamPolicy')] == []
  assert [c[0] for c in kubectl.commands] == ['get']


# --- The command ------------------------------------------------------------

def _plan(monkeypatch, workbench_setting, *argv):
  if workbench_setting is None:
    monkeypatch.delenv('WORKBENCH', raising=False)
  else:
    monkeypatch.setenv('WORKBENCH', workbench_setting)
  clients, http = _refusing_clients()
  lines = []
  assert infra.main(['--dry-run', '--project', PROJECT, *argv],
                    clients=clients, out=lines.append) == 0
  assert http.request_sequence == []
  return '\n'.join(lines)


def test_the_plan_lists_the_instance_only_when_asked(monkeypatch):
  monkeypatch.setenv('WORKBENCH_IDLE_SHUTDOWN_MINUTES', '90')
  plan = _plan(monkeypatch, 'true')
  assert ('Vertex AI Workbench instance taxi-tips-workbench in europe-west3-a '
          'on network default: e2-standard-4, running as taxi-tips-workbench, '
          'idle shutdown after 90 minutes') in plan
  assert 'notebooks' in plan.splitlines()[1]  # the API is enabled first
  assert 'workbench-kfp-access' in plan
  assert 'DELETE Vertex AI Workbench' in _plan(monkeypatch, 'true',
                                               '--destroy')

  for off in (None, 'false'):
    plan = _plan(monkeypatch, off)
    assert 'Workbench' not in plan and 'notebooks' not in plan
    assert 'Workbench' not in _plan(monkeypatch, off, '--destroy')


def test_the_documented_command_lists_the_instance():
  done = subprocess.run(
      [sys.executable, 'pipeline/gcp_infrastructure.py', '--dry-run',
       '--project', 'p-12345'],
      cwd=helpers.REPO, capture_output=True, text=True, check=False,
      env={**{k: v for k, v in os.environ.items()
              if not k.startswith(('GOOGLE_CLOUD_', 'WORKBENCH'))},
           'WORKBENCH': 'true'})
  assert done.returncode == 0, done.stderr
  assert 'Vertex AI Workbench instance taxi-tips-workbench' in done.stdout
