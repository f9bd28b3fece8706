"""The compiled pipeline's run lease (pipeline/kfp_runtime/run_lease.py).

Against Cloud Storage through the official google-cloud-storage client and the
tests' emulator on loopback, with Cloud Storage's generation preconditions
(tests/gcs_preconditions.py), and against the file store the rehearsal uses.
Time is a clock the test moves, so expiry needs no waiting.
"""
import json
import threading
import time

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from pipeline.kfp_runtime import run_lease
from tests import gcs_preconditions
from tests import helpers

BUCKET = 'lease-bucket'
ROOT = f'gs://{BUCKET}/tfx_pipeline_output/taxi-tips'
TTL = 900.0


@pytest.fixture(scope='module')
def gcs_client():
  with helpers.storage_emulator() as host, pytest.MonkeyPatch.context(
  ) as patch, gcs_preconditions.enforcing():
    patch.setenv('STORAGE_EMULATOR_HOST', host)
    client = storage.Client(project='test-project',
                            credentials=AnonymousCredentials())
    client.create_bucket(BUCKET)
    yield client


@pytest.fixture(params=['gcs', 'file'])
def new_store(request, tmp_path):
  """Makes stores of one lease object, as separate runs would."""
  if request.param == 'gcs':
    client = request.getfixturevalue('gcs_client')
    blob = client.bucket(BUCKET).blob(
        'tfx_pipeline_output/taxi-tips/' + run_lease.LEASE_OBJECT)
    if blob.exists():
      blob.delete()
    return lambda: run_lease.GcsStore(f'{ROOT}/{run_lease.LEASE_OBJECT}',
                                      client=client)
  path = str(tmp_path / 'root' / run_lease.LEASE_OBJECT)
  return lambda: run_lease.FileStore(path)


class Clock:
  def __init__(self, now=1_800_000_000.0):
    self.now = now

  def __call__(self):
    return self.now


def _holder(store):
  current = store.read()
  return run_lease.Holder.parse(current[0]) if current else None


def test_taken_and_released(new_store):
  store = new_store()
  lease = run_lease.RunLease(store, 'run-a', TTL)
  lease.take()
  holder = _holder(new_store())
  assert holder.run_id == 'run-a'
  assert lease.release()
  assert new_store().read() is None


def test_second_run_is_refused_naming_the_running_one(new_store):
  clock = Clock()
  run_lease.RunLease(new_store(), 'run-a', TTL, clock=clock).take()
  clock.now += 120
  second = run_lease.RunLease(new_store(), 'run-b', TTL, clock=clock)
  with pytest.raises(run_lease.RunInProgress) as refused:
    second.take(run_lease.REFUSE)
  message = str(refused.value)
  assert 'run run-a' in message
  assert 'since 2027-01-15 08:00:00 UTC' in message  # run-a's take
  assert 'not starting run run-b' in message
  assert 'CONCURRENT_RUNS=wait' in message
  assert _holder(new_store()).run_id == 'run-a'


def test_second_run_waits_until_the_first_releases(new_store):
  first = run_lease.RunLease(new_store(), 'run-a', TTL)
  first.take()
  seen, polls = [], []

  def first_finishes(seconds):
    polls.append(seconds)
    if len(polls) == 2:
      first.release()

  second = run_lease.RunLease(new_store(), 'run-b', TTL, sleep=first_finishes)
  second.take(run_lease.WAIT, on_wait=seen.append)
  assert [h.run_id for h in seen] == ['run-a']  # told once, whom it waits for
  assert len(polls) == 2 and polls[0] == second.poll_seconds
  assert _holder(new_store()).run_id == 'run-b'


def test_killed_holders_lease_expires_and_is_taken_over(new_store):
  clock = Clock()
  killed = run_lease.RunLease(new_store(), 'run-a', TTL, clock=clock)
  killed.take()
  clock.now += TTL  # exactly the TTL since the last renewal: still held
  with pytest.raises(run_lease.RunInProgress):
    run_lease.RunLease(new_store(), 'run-b', TTL, clock=clock).take()
  clock.now += 1
  taker = run_lease.RunLease(new_store(), 'run-b', TTL, clock=clock)
  taker.take()
  assert _holder(new_store()).run_id == 'run-b'
  # The killed run, were it to come back, renews and releases nothing.
  assert not killed.renew()
  assert not killed.release()
  assert _holder(new_store()).run_id == 'run-b'
  assert taker.release()


def test_renewal_keeps_the_lease_from_expiring(new_store):
  clock = Clock()
  holder = run_lease.RunLease(new_store(), 'run-a', TTL, clock=clock)
  holder.take()
  for _ in range(3):
    clock.now += TTL - 1
    assert holder.renew()
  with pytest.raises(run_lease.RunInProgress):
    run_lease.RunLease(new_store(), 'run-b', TTL, clock=clock).take()
  renewed = _holder(new_store())
  assert renewed.renewed == clock.now
  assert renewed.since == clock.now - 3 * (TTL - 1)


def test_release_never_deletes_another_runs_lease(new_store):
  first = run_lease.RunLease(new_store(), 'run-a', TTL)
  first.take()
  stale_generation = first.generation
  assert first.release()
  second = run_lease.RunLease(new_store(), 'run-b', TTL)
  second.take()
  with pytest.raises(run_lease.PreconditionFailed):
    new_store().delete(stale_generation)
  first.generation = stale_generation  # as if its release were retried
  assert not first.release()
  assert _holder(new_store()).run_id == 'run-b'


def test_retried_take_and_later_steps_keep_one_lease(new_store):
  clock = Clock()
  first_step = run_lease.RunLease(new_store(), 'run-a', TTL, clock=clock)
  first_step.take()
  clock.now += 60
  # The same take again (a retried request, or the run's next step).
  next_step = run_lease.RunLease(new_store(), 'run-a', TTL, clock=clock)
  next_step.take(run_lease.REFUSE)
  holder = _holder(new_store())
  assert holder.run_id == 'run-a'
  assert holder.since == clock.now - 60  # still the run's first take
  assert not first_step.renew()  # superseded by the newer generation
  assert next_step.release()
  assert new_store().read() is None


def test_racing_takers_get_exactly_one_lease(new_store):
  results = {}
  start = threading.Barrier(4)

  def take(run):
    lease = run_lease.RunLease(new_store(), run, TTL)
    start.wait()
    try:
      lease.take(run_lease.REFUSE)
      results[run] = 'took'
    except run_lease.RunInProgress:
      results[run] = 'refused'

  threads = [threading.Thread(target=take, args=(f'run-{i}',))
             for i in range(4)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  winners = [run for run, result in results.items() if result == 'took']
  assert len(winners) == 1
  assert _holder(new_store()).run_id == winners[0]


def test_the_emulator_enforces_generation_preconditions(gcs_client):
  blob = gcs_client.bucket(BUCKET).blob('precondition-check')
  blob.upload_from_string(b'one', if_generation_match=0)
  with pytest.raises(exceptions.PreconditionFailed):
    gcs_client.bucket(BUCKET).blob('precondition-check').upload_from_string(
        b'two', if_generation_match=0)
  with pytest.raises(exceptions.PreconditionFailed):
    blob.delete(if_generation_match=int(blob.generation) + 1)
  blob.delete(if_generation_match=blob.generation)


# --- Around a step ----------------------------------------------------------


def _argv(root, run_id, task='Trainer'):
  """A step's arguments, with output URIs laid out as Kubeflow Pipelines'."""
  invocation = {'outputs': {'artifacts': {'model': {'artifacts': [
      {'uri': f'{root}/taxi-tips/{run_id}/{task}/7/model'}]}},
      'outputFile': '/tmp/kfp_outputs/output_metadata.json'}}
  return ['--executor_class_path', 'x.Executor',
          run_lease.INVOCATION_FLAG, json.dumps(invocation)]


def _env(root, mode='refuse', releases=False):
  return run_lease.container_env(root, mode, 15, releases)


def test_run_id_is_the_runs_folder_in_both_orchestrators():
  root = 'gs://b/root'
  vertex = {'outputs': {'artifacts': {'examples': {'artifacts': [
      {'uri': f'{root}/123456789012/taxi-tips-20261204123456/'
              'CsvExampleGen_1/examples'}]}}}}
  assert run_lease.run_id_of(vertex, root) == 'taxi-tips-20261204123456'
  kfp = json.loads(_argv(root, '8c1f-run')[3])
  assert run_lease.run_id_of(kfp, root + '/') == '8c1f-run'


def test_step_keeps_the_lease_for_the_next_step_and_the_last_releases(
    tmp_path):
  root = str(tmp_path)
  store = run_lease.store_for(root)
  with run_lease.during_task(_argv(root, 'run-a'), _env(root)):
    assert _holder(store).run_id == 'run-a'
  assert _holder(store).run_id == 'run-a'  # between steps: still held
  with pytest.raises(SystemExit):
    with run_lease.during_task(_argv(root, 'run-a', 'Pusher'),
                               _env(root, releases=True)):
      raise SystemExit(0)  # how absl's app.run ends a step that succeeded
  assert store.read() is None


def test_failed_step_releases_and_refused_step_names_the_run(tmp_path):
  root = str(tmp_path)
  store = run_lease.store_for(root)
  with run_lease.during_task(_argv(root, 'run-a', 'CsvExampleGen'),
                             _env(root)):
    with pytest.raises(run_lease.RunInProgress, match='run run-a .* not '
                       'starting run run-b'):
      with run_lease.during_task(_argv(root, 'run-b', 'CsvExampleGen'),
                                 _env(root)):
        pass
  with pytest.raises(RuntimeError, match='drifted'):
    with run_lease.during_task(_argv(root, 'run-a', 'AnomalyGate'),
                               _env(root)):
      raise RuntimeError('the new span drifted')
  assert store.read() is None  # the next run need not wait for the TTL


def test_outside_a_compiled_step_nothing_is_taken(tmp_path):
  root = str(tmp_path)
  with run_lease.during_task(_argv(root, 'run-a'), {}):
    pass
  with run_lease.during_task(['--flag'], _env(root)):
    pass
  assert run_lease.store_for(root).read() is None


def test_parallel_steps_of_one_run_renew_and_release_the_same_lease(
    new_store):
  example_gen = run_lease.RunLease(new_store(), 'run-a', TTL)
  schema_gen = run_lease.RunLease(new_store(), 'run-a', TTL)
  example_gen.take()
  schema_gen.take()  # the same run: keeps the lease, newer generation
  assert not example_gen.renew()
  heartbeat = run_lease.Heartbeat(example_gen, 0.01).start()
  time.sleep(0.2)  # renewals go on from the run's newer generation
  heartbeat.stop()
  assert example_gen.renew()
  assert schema_gen.release()  # fails: releases the run's current lease
  assert new_store().read() is None
  other = run_lease.RunLease(new_store(), 'run-b', TTL)
  other.take()
  assert not example_gen.release()
  assert _holder(new_store()).run_id == 'run-b'


def test_the_steps_arguments_are_tfx_entrypoints():
  """The arguments above are what TFX's executor entrypoint parses."""
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # pylint: disable=g-import-not-at-top
  argv = _argv('gs://b/root', 'run-a')
  parsed, _ = kubeflow_v2_run_executor._parse_flags(['entrypoint'] + argv)  # pylint: disable=protected-access
  assert json.loads(parsed.json_serialized_invocation_args) == (
      run_lease._executor_input(argv))  # pylint: disable=protected-access
