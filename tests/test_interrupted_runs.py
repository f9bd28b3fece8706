"""local/run/interrupted_runs.py: what a killed run leaves behind is cleaned up."""
import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from local.run import interrupted_runs

_Execution = metadata_store_pb2.Execution
_Artifact = metadata_store_pb2.Artifact


def _store_with(tmp_path, states):
  path = str(tmp_path / 'metadata' / 'metadata.db')
  connection = interrupted_runs.sqlite_connection(path)
  store = metadata_store.MetadataStore(connection)
  execution_type = store.put_execution_type(
      metadata_store_pb2.ExecutionType(name='Transform'))
  artifact_type = store.put_artifact_type(
      metadata_store_pb2.ArtifactType(name='TransformGraph'))
  ids = []
  for state in states:
    [artifact_id] = store.put_artifacts([_Artifact(
        type_id=artifact_type, uri='/x', state=_Artifact.PENDING)])
    [execution_id] = store.put_executions(
        [_Execution(type_id=execution_type, last_known_state=state)])
    store.put_events([metadata_store_pb2.Event(
        artifact_id=artifact_id, execution_id=execution_id,
        type=metadata_store_pb2.Event.OUTPUT)])
    ids.append((execution_id, artifact_id))
  return path, connection, store, ids


def test_running_executions_are_marked_abandoned_once(tmp_path):
  _, connection, store, ids = _store_with(
      tmp_path, [_Execution.RUNNING, _Execution.COMPLETE])
  assert interrupted_runs.mark_abandoned(connection) == 1
  (running, running_output), (complete, _) = ids
  by_id = {e.id: e for e in store.get_executions_by_id([running, complete])}
  assert by_id[running].last_known_state == _Execution.CANCELED
  assert 'left RUNNING by an interrupted run' in by_id[running].custom_properties[
      interrupted_runs.ABANDONED_PROPERTY].string_value
  assert by_id[complete].last_known_state == _Execution.COMPLETE
  [artifact] = store.get_artifacts_by_id([running_output])
  assert artifact.state == _Artifact.ABANDONED
  assert interrupted_runs.mark_abandoned(connection) == 0


def test_integrity_check_passes_a_healthy_store(tmp_path):
  path, _, _, _ = _store_with(tmp_path, [])
  interrupted_runs.check_integrity(path)  # no exception
  interrupted_runs.check_integrity(str(tmp_path / 'absent.db'))  # first run


def test_integrity_check_stops_on_a_damaged_store(tmp_path):
  path, _, _, _ = _store_with(tmp_path, [_Execution.COMPLETE])
  with open(path, 'r+b') as database:
    database.seek(100)
    database.write(b'\xff' * 4000)  # overwrite the first pages
  with pytest.raises(interrupted_runs.MetadataStoreError,
                     match='metadata store .*metadata.db'):
    interrupted_runs.check_integrity(path)
