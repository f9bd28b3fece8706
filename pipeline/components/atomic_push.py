"""The Pusher's copy into the serving folder, made atomic on local disks.

TFX's Pusher copies a blessed model file by file into
`<serving_model_dir>/<version>/`, so a model server, the Evaluator's baseline
reader (pipeline/components/serving_baseline.py) or a person could see a
half-written model, and a run killed mid-copy leaves one behind.
`AtomicPushExecutor` copies into a hidden sibling folder
`.<version>.incomplete` first and renames it to `<version>` only when every
file is there; a rename within one local file system is atomic. A later push
deletes incomplete folders left by a killed one. Model servers (TF Serving) and
`newest_pushed_model` only look at folders whose name is a number, so they
never see the hidden one.

Cloud Storage has no atomic rename (gsutil and tf.io.gfile copy object by
object). There the version folder is written directly, with `saved_model.pb`
copied last, as TFX itself does: each object appears whole, and a version
folder counts as complete exactly when it holds `saved_model.pb`, which is
what TF Serving and `serving_baseline.newest_pushed_model` check.

A model identical, file for file, to the newest pushed version is not pushed
again (a rerun with nothing changed re-evaluates the same model against
itself as the baseline and blesses it): the push points at that version, so
the serving folder does not fill with copies of one model.

The outputs and their metadata are TFX's own (`pushed`, `pushed_destination`,
`pushed_version`, the archived copy in the pushed_model artifact).
"""
import hashlib
import os
import time
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

from pipeline.components import serving_baseline

INCOMPLETE_SUFFIX = '.incomplete'
_SAVED_MODEL = 'saved_model.pb'


def is_local(path: str) -> bool:
  return '://' not in path


def _copy_saved_model_last(source: str, destination: str) -> None:
  io_utils.copy_dir(source, destination,
                    deny_regex_patterns=[r'saved_model\.pb'])
  if fileio.exists(os.path.join(source, _SAVED_MODEL)):
    io_utils.copy_file(os.path.join(source, _SAVED_MODEL),
                       os.path.join(destination, _SAVED_MODEL))


def remove_incomplete(base_directory: str) -> List[str]:
  """Deletes folders that a killed push left under `base_directory`."""
  removed = []
  if not fileio.isdir(base_directory):
    return removed
  for name in fileio.listdir(base_directory):
    name = name.rstrip('/')
    if name.startswith('.') and name.endswith(INCOMPLETE_SUFFIX):
      path = os.path.join(base_directory, name)
      fileio.rmtree(path)
      removed.append(path)
  return removed


def _file_digests(folder: str) -> Dict[str, str]:
  """Relative path -> sha256 of every file under `folder` (local or gs://)."""
  digests = {}
  for directory, _, files in fileio.walk(folder):
    for name in files:
      path = os.path.join(directory, name)
      with fileio.open(path, 'rb') as f:
        digests[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()).hexdigest()
  return digests


def same_model(model_path: str, version_path: str) -> bool:
  """Whether two SavedModel folders hold the same files, byte for byte."""
  return _file_digests(model_path) == _file_digests(version_path)


def push(model_path: str, base_directory: str, version: str) -> str:
  """Copies the SavedModel at `model_path` to `base_directory/version`.

  Local: atomic (copy to a hidden sibling, then rename). Cloud Storage:
  saved_model.pb last (see the module docstring).

  Returns:
    The version folder; if it already exists, it is left as it is. When the
    newest pushed version holds the same model, that version's folder.
  """
  newest = serving_baseline.newest_pushed_model(base_directory)
  if newest and same_model(model_path, newest):
    logging.info('%s already holds this model; not pushing it again.', newest)
    return newest
  destination = os.path.join(base_directory, version)
  if fileio.exists(destination):
    logging.info('%s already exists; not pushing again.', destination)
    return destination
  if not is_local(base_directory):
    _copy_saved_model_last(model_path, destination)
    return destination
  for stale in remove_incomplete(base_directory):
    logging.warning('Removed %s, left by an interrupted push.', stale)
  staging = os.path.join(base_directory, f'.{version}{INCOMPLETE_SUFFIX}')
  _copy_saved_model_last(model_path, staging)
  os.rename(staging, destination)
  return destination


class AtomicPushExecutor(pusher_executor.Executor):
  """TFX's Pusher executor with an atomic copy to the serving folder."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        destination)
    if destination.WhichOneof('destination') != 'filesystem':
      raise NotImplementedError(
          'AtomicPushExecutor pushes to a filesystem destination only.')
    versioning = destination.filesystem.versioning
    if versioning not in (pusher_pb2.Versioning.AUTO,
                          pusher_pb2.Versioning.UNIX_TIMESTAMP):
      raise NotImplementedError(f'Invalid versioning {versioning}')
    version = str(int(time.time()))
    model_path = self.GetModelPath(input_dict)
    serving_path = push(model_path, destination.filesystem.base_directory,
                        version)
    logging.info('Model written to serving path %s.', serving_path)
    # Archived in the artifact too, like TFX's Pusher.
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=serving_path,
                     pushed_version=os.path.basename(serving_path))


class Pusher(pusher_component.Pusher):
  """TFX's Pusher, pushing atomically (AtomicPushExecutor)."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
