"""One run at a time per pipeline on Kubeflow Pipelines and Vertex AI: a lease.

Locally an OS file lock keeps a second run out (local/run/run_lock.py). The
orchestrators run each step in a pod of its own, so the compiled pipeline
holds a lease instead: one object, `run.lease.json`, under the pipeline root
(`gs://<bucket>/...`), naming the run that holds it, since when, and when it
last renewed it. Every write is conditioned on the object's generation, so
two runs can never both believe they hold it:

- take: create the object only if none exists (`if_generation_match=0`);
  one that has not been renewed for its time to live (TTL) belonged to a run
  that was killed, and is taken over only at the generation that was read;
- renew: rewrite it only at the generation this run wrote last;
- release: delete it only at that generation, so a run never deletes
  another run's lease.

A precondition that fails means another writer came first: the lease is read
again and the decision made again. A take retried after a lost reply finds
its own run's lease and keeps it, so it never counts twice.

What happens in the pods (`during_task`, called around every step by the
image's start-up hook, pipeline/kfp_runtime/kfp_compat.py): a step takes the
lease (or finds its own run holding it) before its executor starts, with
CONCURRENT_RUNS deciding what happens when another run holds it: 'refuse'
fails the step at once, naming the running run; 'wait' polls until that run
releases the lease or its lease expires. While the executor runs, a
heartbeat thread renews the lease. A step that fails releases it before the
run stops (a drift stop included); the pipeline's last steps release it when
they succeed. A killed run stops renewing, and its lease expires after the
TTL (RUN_LEASE_TTL_MINUTES), which must outlast the longest pause between two
steps of a run (a pod waiting for a node).

Which run: the orchestrator's run folder under the pipeline root, the second
path segment of every output artifact URI: the PipelineJob name on Vertex AI
(`<root>/<project number>/<job name>/...`), the run id on Kubeflow
Pipelines (`<root>/<pipeline name>/<run id>/...`).

The object store: Cloud Storage through google-cloud-storage for a gs://
root; for a root on a file system (the rehearsal maps gs:// to a folder) a
file whose generation is kept under an OS file lock.
"""
import contextlib
import dataclasses
import datetime
import fcntl
import json
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Protocol, Tuple

from pipeline.kfp_runtime import entrypoint_args

LEASE_OBJECT = 'run.lease.json'
# The compiled spec hands the lease's settings to each step's container in
# this environment variable (JSON): see `container_env`.
ENV = 'TFX_RUN_LEASE'
REFUSE, WAIT = 'refuse', 'wait'
# How often a waiting run looks again, and a holder renews, at most.
MAX_POLL_SECONDS = 30.0


class RunInProgress(RuntimeError):
  """Another run of the pipeline holds the lease (CONCURRENT_RUNS=refuse)."""


class PreconditionFailed(Exception):
  """The object's generation was not the one the write was conditioned on."""


class Store(Protocol):
  """One object with generations, as Cloud Storage keeps it."""

  def read(self) -> Optional[Tuple[bytes, int]]:
    """(content, generation) of the object, or None when there is none."""

  def write(self, content: bytes, if_generation_match: int) -> int:
    """Writes the object if its generation is the given one (0: absent);
    returns the new generation. Raises PreconditionFailed otherwise."""

  def delete(self, if_generation_match: int) -> None:
    """Deletes the object if its generation is the given one; raises
    PreconditionFailed otherwise (also when it is gone)."""


class GcsStore:
  """The lease object in Cloud Storage (google-cloud-storage)."""

  def __init__(self, uri: str, client: Any = None):
    """`uri`: gs://bucket/path of the object; `client`: a storage.Client
    (default: one with the pod's credentials, made on first use)."""
    bucket, _, self.name = uri[len('gs://'):].partition('/')
    self.bucket_name = bucket
    self.uri = uri
    self._client = client

  def _bucket(self):
    if self._client is None:
      from google.cloud import storage  # pylint: disable=g-import-not-at-top
      self._client = storage.Client()
    return self._client.bucket(self.bucket_name)

  def read(self):
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
    while True:
      blob = self._bucket().get_blob(self.name)
      if blob is None:
        return None
      try:
        # The content of the generation that was listed, not a newer one.
        return (blob.download_as_bytes(if_generation_match=blob.generation),
                blob.generation)
      except (exceptions.PreconditionFailed, exceptions.NotFound):
        continue  # replaced or deleted in between: read again

  def write(self, content, if_generation_match):
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
    blob = self._bucket().blob(self.name)
    try:
      blob.upload_from_string(content, content_type='application/json',
                              if_generation_match=if_generation_match)
    except exceptions.PreconditionFailed as error:
      raise PreconditionFailed(str(error)) from None
    return blob.generation

  def delete(self, if_generation_match):
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
    try:
      self._bucket().blob(self.name).delete(
          if_generation_match=if_generation_match)
    except (exceptions.PreconditionFailed, exceptions.NotFound) as error:
      raise PreconditionFailed(str(error)) from None


class FileStore:
  """The lease object as a file; its generation is written in it, and every
  read-check-write happens under an OS lock on a file beside it."""

  def __init__(self, path: str):
    self.uri = path
    self.path = path

  @contextlib.contextmanager
  def _locked(self) -> Iterator[None]:
    os.makedirs(os.path.dirname(self.path) or '.', exist_ok=True)
    with open(self.path + '.lock', 'a') as lock_file:
      fcntl.flock(lock_file, fcntl.LOCK_EX)
      try:
        yield
      finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)

  def _current(self) -> Optional[Tuple[bytes, int]]:
    try:
      with open(self.path, 'rb') as f:
        generation, _, content = f.read().partition(b'\n')
      return content, int(generation)
    except FileNotFoundError:
      return None

  def read(self):
    with self._locked():
      return self._current()

  def write(self, content, if_generation_match):
    with self._locked():
      current = self._current()
      if (current[1] if current else 0) != if_generation_match:
        raise PreconditionFailed(f'{self.path}: generation '
                                 f'{current[1] if current else 0}, not '
                                 f'{if_generation_match}')
      generation = time.time_ns()
      staging = f'{self.path}.{os.getpid()}'
      with open(staging, 'wb') as f:
        f.write(b'%d\n' % generation + content)
      os.replace(staging, self.path)
      return generation

  def delete(self, if_generation_match):
    with self._locked():
      current = self._current()
      if current is None or current[1] != if_generation_match:
        raise PreconditionFailed(f'{self.path}: not generation '
                                 f'{if_generation_match}')
      os.remove(self.path)


def store_for(pipeline_root: str) -> Store:
  """The lease object's store under `pipeline_root` (gs:// or a folder)."""
  uri = pipeline_root.rstrip('/') + '/' + LEASE_OBJECT
  if uri.startswith('gs://'):
    return GcsStore(uri)
  return FileStore(uri)


def _utc(seconds: float) -> str:
  return datetime.datetime.fromtimestamp(
      seconds, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S')


@dataclasses.dataclass(frozen=True)
class Holder:
  """What the lease object says: which run holds it, since when."""
  run_id: str
  since: float  # seconds since the epoch
  renewed: float
  ttl_seconds: float

  def expired(self, now: float) -> bool:
    return now > self.renewed + self.ttl_seconds

  def describe(self) -> str:
    return (f'run {self.run_id} (holding the pipeline since '
            f'{_utc(self.since)} UTC; lease renewed {_utc(self.renewed)} '
            f'UTC, expires {self.ttl_seconds / 60:g} min after its last '
            'renewal)')

  @classmethod
  def parse(cls, content: bytes) -> Optional['Holder']:
    try:
      return cls(**json.loads(content))
    except (ValueError, TypeError):
      return None  # written by another version: treated as expired


class RunLease:
  """One run's hold on the pipeline's lease object.

  Attributes:
    store: where the lease object is.
    run_id: the run this object takes the lease for.
    generation: the object's generation this run wrote last (None: the
      lease is not held).
  """

  def __init__(self, store: Store, run_id: str, ttl_seconds: float,
               clock: Callable[[], float] = time.time,
               sleep: Callable[[float], None] = time.sleep):
    self.store = store
    self.run_id = run_id
    self.ttl_seconds = ttl_seconds
    self.generation: Optional[int] = None
    self.since = 0.0  # when the run took the lease
    self._clock = clock
    self._sleep = sleep

  @property
  def poll_seconds(self) -> float:
    return min(MAX_POLL_SECONDS, self.ttl_seconds / 4)

  def _content(self, now: float) -> bytes:
    return json.dumps(dataclasses.asdict(Holder(
        run_id=self.run_id, since=self.since, renewed=now,
        ttl_seconds=self.ttl_seconds))).encode()

  def _try_take(self) -> Optional[Holder]:
    """One attempt: takes or keeps the lease; returns the other run that
    holds it instead, if any."""
    while True:
      now = self._clock()
      current = self.store.read()
      holder = Holder.parse(current[0]) if current else None
      if current and holder and holder.run_id == self.run_id:
        # This run's lease (an earlier step, or a retried take): renew it.
        self.since = holder.since
        expected = current[1]
      elif current and holder and not holder.expired(now):
        return holder
      else:
        if current:
          logging.warning('Taking over the expired lease %s: %s',
                          self.store.uri, holder.describe() if holder else
                          'unreadable')
        self.since = now
        expected = current[1] if current else 0
      try:
        self.generation = self.store.write(self._content(now), expected)
        return None
      except PreconditionFailed:
        continue  # another writer came first: read again

  def take(self, mode: str = REFUSE,
           on_wait: Optional[Callable[[Holder], None]] = None) -> None:
    """Takes the lease for this run.

    Args:
      mode: REFUSE or WAIT (CONCURRENT_RUNS).
      on_wait: called once, with the running run, before waiting for it.

    Raises:
      RunInProgress: with REFUSE, when another run holds an unexpired
        lease; the message names it.
    """
    waited = False
    while True:
      holder = self._try_take()
      if holder is None:
        return
      if mode == REFUSE:
        raise RunInProgress(
            f'{holder.describe()} of this pipeline is running (lease '
            f'{self.store.uri}); not starting run {self.run_id} beside it. '
            'Start it again when that run has finished, or compile with '
            'CONCURRENT_RUNS=wait to queue behind it.')
      if not waited and on_wait:
        on_wait(holder)
      waited = True
      self._sleep(self.poll_seconds)

  def renew(self) -> bool:
    """Renews the lease; False when this run no longer holds it."""
    if self.generation is None:
      return False
    try:
      self.generation = self.store.write(self._content(self._clock()),
                                         self.generation)
      return True
    except PreconditionFailed:
      self.generation = None
      return False

  def release(self) -> bool:
    """Deletes the lease if this run holds it; False otherwise (then
    another run's lease is left alone). The generation this step wrote may
    be stale when another step of the run, in a parallel branch, renewed
    the lease since: then the run's current generation is released."""
    if self.generation is None:
      return False
    generation, self.generation = self.generation, None
    while True:
      try:
        self.store.delete(generation)
        return True
      except PreconditionFailed:
        current = self.store.read()
        holder = Holder.parse(current[0]) if current else None
        if not holder or holder.run_id != self.run_id:
          return False
        generation = current[1]


class Heartbeat:
  """Renews a lease every `every_seconds` in a background thread. Steps of
  one run in parallel branches each renew it; a renewal that finds a newer
  generation of its own run's lease goes on from that one."""

  def __init__(self, lease: RunLease, every_seconds: float):
    self._lease = lease
    self._every = every_seconds
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, daemon=True,
                                    name='run-lease-heartbeat')

  def _beat(self) -> None:
    while not self._stop.wait(self._every):
      try:
        if not self._lease.renew():
          # Taken over after a pause longer than the TTL: take it back if
          # it is free, else say which run has it.
          holder = self._lease._try_take()  # pylint: disable=protected-access
          if holder:
            logging.error('Run %s lost the pipeline\'s lease to %s',
                          self._lease.run_id, holder.describe())
      except Exception:  # pylint: disable=broad-except
        # A failed renewal is retried next beat; the TTL leaves several.
        logging.exception('Renewing the run lease %s failed',
                          self._lease.store.uri)

  def start(self) -> 'Heartbeat':
    self._thread.start()
    return self

  def stop(self) -> None:
    self._stop.set()
    self._thread.join()


# --- The compiled spec and the pods -----------------------------------------


def container_env(pipeline_root: str, mode: str, ttl_minutes: int,
                  releases: bool) -> Dict[str, str]:
  """The environment variable a step's container gets: where the lease is,
  CONCURRENT_RUNS, the TTL, and whether the step is one of the last."""
  return {ENV: json.dumps({'root': pipeline_root, 'mode': mode,
                           'ttl_seconds': ttl_minutes * 60,
                           'releases': releases}, sort_keys=True)}


def add_to_spec(spec: Dict[str, Any], pipeline_root: str, mode: str,
                ttl_minutes: int) -> None:
  """Gives every container step of a compiled pipeline spec the lease's
  environment; the steps no other step depends on release it."""
  tasks = spec['root']['dag']['tasks']
  upstream = set()
  for task in tasks.values():
    upstream.update(task.get('dependentTasks', []))
    for artifact in task.get('inputs', {}).get('artifacts', {}).values():
      producer = artifact.get('taskOutputArtifact', {}).get('producerTask')
      if producer:
        upstream.add(producer)
  executors = spec['deploymentSpec']['executors']
  for name, task in tasks.items():
    component = spec['components'][task['componentRef']['name']]
    container = executors[component['executorLabel']].get('container')
    if container is None:
      continue  # a Resolver or Importer: no pod of the pipeline's image
    env = [item for item in container.get('env', [])
           if item.get('name') != ENV]
    env.extend({'name': key, 'value': value} for key, value in container_env(
        pipeline_root, mode, ttl_minutes, releases=name not in upstream
    ).items())
    container['env'] = env


def run_id_of(executor_input: Dict[str, Any], pipeline_root: str
              ) -> Optional[str]:
  """The run's folder under the pipeline root, from the step's output
  artifact URIs (see the module docstring); None when none is below it."""
  root = pipeline_root.rstrip('/') + '/'
  for listed in executor_input.get('outputs', {}).get('artifacts',
                                                      {}).values():
    for artifact in listed.get('artifacts', []):
      uri = artifact.get('uri', '')
      if uri.startswith(root):
        parts = uri[len(root):].split('/')
        if len(parts) > 2 and parts[1]:
          return parts[1]
  return None


INVOCATION_FLAG = entrypoint_args.INVOCATION_FLAG


def _executor_input(argv) -> Optional[Dict[str, Any]]:
  value = entrypoint_args.flag_value(argv, INVOCATION_FLAG)
  if value is None:
    return None
  try:
    return json.loads(value)
  except ValueError:
    return None


@contextlib.contextmanager
def during_task(argv, environ=os.environ,
                store: Optional[Store] = None) -> Iterator[None]:
  """Holds the pipeline's lease while one step runs (see the module
  docstring); does nothing outside a compiled pipeline's step.

  Args:
    argv: the step's arguments (INVOCATION_FLAG: the ExecutorInput).
    environ: the step's environment (ENV, from the compiled spec).
    store: the lease object's store (default: by the pipeline root).

  Raises:
    RunInProgress: CONCURRENT_RUNS=refuse and another run holds the lease.
  """
  raw = environ.get(ENV)
  invocation = _executor_input(argv) if raw else None
  if not raw or invocation is None:
    yield
    return
  config = json.loads(raw)
  run_id = run_id_of(invocation, config['root'])
  if run_id is None:
    logging.warning('No run id in the output URIs under %s: running without '
                    'the run lease', config['root'])
    yield
    return
  lease = RunLease(store or store_for(config['root']), run_id,
                   float(config['ttl_seconds']))

  def say_waiting(holder: Holder) -> None:
    logging.warning('Waiting for %s of this pipeline to finish '
                    '(CONCURRENT_RUNS=wait); lease %s', holder.describe(),
                    lease.store.uri)

  lease.take(config['mode'], on_wait=say_waiting)
  logging.info('Run %s holds the pipeline\'s lease %s', run_id,
               lease.store.uri)
  heartbeat = Heartbeat(lease, lease.poll_seconds).start()
  succeeded = False
  try:
    yield
    succeeded = True
  except SystemExit as exit_:  # absl's app.run ends every step with one
    succeeded = exit_.code in (None, 0)
    raise
  finally:
    heartbeat.stop()
    # A failed step ends its run; the last steps end it when they succeed.
    if not succeeded or config.get('releases'):
      released = lease.release()
      logging.info('Run %s %s; %s the pipeline\'s lease', run_id,
                   'finished' if succeeded else 'failed',
                   'released' if released else 'no longer held')
