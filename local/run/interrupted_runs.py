"""Clean-up after a run that was killed: abandoned executions, database health.

A run killed with SIGKILL (or a machine that lost power) leaves the component
it was running marked RUNNING in the ML Metadata store for good, and its
output artifacts PENDING. ML Metadata has no "abandoned" execution state, so
`mark_abandoned` sets such executions to CANCELED with the custom property
`abandoned` saying why, and their pending outputs to ABANDONED. TFX's cache
only reuses COMPLETE or CACHED executions, so the next run re-executes that
component and takes everything finished before it from the cache.

local_runner.py calls both functions before each run: no other run of the
same pipeline may be in progress then (the local runner runs one at a time).
"""
import datetime
import os
import sqlite3
import sys

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

ABANDONED_PROPERTY = 'abandoned'
_Execution = metadata_store_pb2.Execution
_Artifact = metadata_store_pb2.Artifact


def sqlite_connection(
    sqlite_path: str) -> metadata_store_pb2.ConnectionConfig:
  """The store's connection config, as TFX's sqlite_metadata_connection_config
  makes it (without importing TFX), creating the folder."""
  os.makedirs(os.path.dirname(os.path.abspath(sqlite_path)), exist_ok=True)
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = sqlite_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  return config


class MetadataStoreError(RuntimeError):
  """The metadata store's database is damaged."""


def check_integrity(sqlite_path: str) -> None:
  """Runs SQLite's integrity check on the store, if it exists.

  Raises:
    MetadataStoreError: the check did not answer "ok".
  """
  if not os.path.exists(sqlite_path):
    return
  connection = sqlite3.connect(f'file:{sqlite_path}?mode=ro', uri=True)
  try:
    result = [row[0] for row in connection.execute('PRAGMA integrity_check')]
  except sqlite3.DatabaseError as error:
    raise MetadataStoreError(
        f'the metadata store {sqlite_path} is not readable: {error}') from None
  finally:
    connection.close()
  if result != ['ok']:
    raise MetadataStoreError(
        f'the metadata store {sqlite_path} failed SQLite\'s integrity check: '
        f'{"; ".join(result[:3])}')


def mark_abandoned(
    connection_config: metadata_store_pb2.ConnectionConfig) -> int:
  """Marks executions left RUNNING (or NEW) by a killed run as abandoned.

  Returns:
    How many executions were marked.
  """
  store = metadata_store.MetadataStore(connection_config)
  stale = [e for e in store.get_executions()
           if e.last_known_state in (_Execution.RUNNING, _Execution.NEW)]
  if not stale:
    return 0
  when = datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='seconds')
  events = store.get_events_by_execution_ids([e.id for e in stale])
  pending = [a for a in store.get_artifacts_by_id(
      [e.artifact_id for e in events
       if e.type in (metadata_store_pb2.Event.OUTPUT,
                     metadata_store_pb2.Event.PENDING_OUTPUT)])
             if a.state == _Artifact.PENDING]
  for execution in stale:
    execution.custom_properties[ABANDONED_PROPERTY].string_value = (
        f'left {_Execution.State.Name(execution.last_known_state)} by an '
        f'interrupted run; marked by local_runner.py at {when}')
    execution.last_known_state = _Execution.CANCELED
  for artifact in pending:
    artifact.state = _Artifact.ABANDONED
  if pending:
    store.put_artifacts(pending)
  store.put_executions(stale)
  return len(stale)


def clean_up(connection_config: metadata_store_pb2.ConnectionConfig,
             sqlite_path: str) -> None:
  """Before a run: checks the store's integrity and marks executions a
  killed run left RUNNING as abandoned, saying so.

  Raises:
    MetadataStoreError: the database is damaged.
  """
  check_integrity(sqlite_path)
  abandoned = mark_abandoned(connection_config)
  if abandoned:
    print(f'Marked {abandoned} execution(s) left running by an interrupted '
          'run as abandoned; finished components come from the cache.',
          flush=True)


def stop_run(connection_config: metadata_store_pb2.ConnectionConfig,
             status: int) -> None:
  """On Ctrl-C: marks the running executions abandoned and ends the process
  with `status` at once. Not sys.exit: Beam's worker threads would finish
  the interrupted job first, and a KeyboardInterrupt raised inside a
  finalizer or a Beam thread's callback would be swallowed."""
  abandoned = mark_abandoned(connection_config)
  print(f'\nInterrupted; marked {abandoned} running execution(s) as '
        'abandoned. Run again to resume: finished components come from the '
        'cache. A push is all or nothing: the serving folder holds no half-'
        'written model.', file=sys.stderr)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access
