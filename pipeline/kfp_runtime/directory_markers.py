"""Removes the zero-byte directory markers TensorFlow leaves in Cloud Storage.

TensorFlow 2.16's Cloud Storage filesystem (what `tf.io.gfile` and TFX's
`fileio` use for gs:// paths) creates a directory by writing an empty object
named `<directory>/`. Every `makedirs` leaves one per directory it creates:
at an artifact's root (`.../Trainer_7/model/`) and inside it, down a
model's layout (`model/Format-Serving/`, `.../variables/`, `.../assets/`).

The open-source Kubeflow Pipelines launcher copies each input artifact of a
task from the bucket to the pod (`/gcs/<bucket>/<path>`) before the task's
command starts, one object at a time, creating a *file* for every object,
markers included (kubeflow/pipelines issue 13476; `objectstore.DownloadBlob`
in 2.3.0, the release `make infra` installs, and still in 2.16). The marker
`model/` becomes a file where the folder `model` belongs, and the next object,
`model/Format-Serving/saved_model.pb`, fails with "mkdir .../model: not a
directory": the task fails before it starts. Vertex AI Pipelines copies
nothing into the container (it mounts the bucket with Cloud Storage FUSE),
so only Kubeflow fails.

The fix, run by pipeline/kfp_runtime/kfp_compat.py in every task after TFX's
executor has written its outputs: remove the markers of every directory that
holds anything else. What they marked stays a directory (TensorFlow's
filesystem sees one wherever objects share the prefix), TFX's layout stays as
it is (no flattening of `Format-Serving/`, which Vertex AI and TFX's own
readers expect), and a marker that is a directory's only trace (an empty
`assets/`) is kept: downloaded as an empty file, it breaks nothing.

Which object store a URI lives in is looked up here: gs:// is Cloud Storage;
the local rehearsal registers its stand-in bucket folder (register()).
"""
import functools
import logging
import posixpath
from typing import Callable, Dict, Iterable, List, Optional, Protocol, Tuple

GCS_SCHEME = 'gs://'


class ObjectStore(Protocol):
  """The two calls the fix needs from an object store."""

  def list(self, prefix: str) -> Iterable[Tuple[str, int]]:
    """(key, size in bytes) of every object whose key starts with `prefix`."""

  def delete(self, keys: List[str]) -> None:
    """Deletes the objects `keys`."""


def is_marker(key: str, size: int) -> bool:
  """Whether an object is a directory marker: empty, its name ending in /."""
  return size == 0 and key.endswith('/')


def removable_markers(objects: Dict[str, int]) -> List[str]:
  """The markers among `objects` (key -> size) whose directories hold more."""
  keys = sorted(objects)
  removable = []
  for index, key in enumerate(keys):
    if not is_marker(key, objects[key]):
      continue
    # Sorted: whatever is under `key` comes right after it.
    if index + 1 < len(keys) and keys[index + 1].startswith(key):
      removable.append(key)
  return removable


@functools.lru_cache(maxsize=1)
def _gcs_client():
  """The task's Cloud Storage client (its credentials), made on first use."""
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  return storage.Client()


class GcsStore:
  """One Cloud Storage bucket, through google-cloud-storage."""

  def __init__(self, bucket: str):
    self._bucket = _gcs_client().bucket(bucket)

  def list(self, prefix: str) -> Iterable[Tuple[str, int]]:
    return [(blob.name, blob.size or 0)
            for blob in self._bucket.list_blobs(prefix=prefix)]

  def delete(self, keys: List[str]) -> None:
    for key in keys:
      self._bucket.blob(key).delete()


# Local folder -> a factory of the store standing in for the buckets in it.
_local_stores: Dict[str, Callable[[str], ObjectStore]] = {}


def register(folder: str, store_for_bucket: Callable[[str], ObjectStore]
             ) -> None:
  """Makes paths `<folder>/<bucket>/...` resolve to `store_for_bucket(bucket)`.

  Only the local rehearsal does this: its task processes see its stand-in
  folder where a cluster's see gs://.
  """
  _local_stores[folder.rstrip('/')] = store_for_bucket


def unregister(folder: str) -> None:
  _local_stores.pop(folder.rstrip('/'), None)


def locate(uri: str) -> Optional[Tuple[ObjectStore, str]]:
  """(store, key prefix of the directory `uri`), or None when not in one."""
  if uri.startswith(GCS_SCHEME):
    bucket, _, path = uri[len(GCS_SCHEME):].partition('/')
    return GcsStore(bucket), path
  for folder, store_for_bucket in _local_stores.items():
    if uri.startswith(folder + '/'):
      bucket, _, path = uri[len(folder) + 1:].partition('/')
      return store_for_bucket(bucket), path
  return None


def remove(uri: str) -> List[str]:
  """Removes the removable markers under the directory `uri`.

  Returns:
    The keys removed; none when `uri` is in no object store (a local run).
  """
  located = locate(uri)
  if located is None:
    return []
  store, path = located
  prefix = posixpath.join(path.rstrip('/'), '') if path else ''
  objects = dict(store.list(prefix))
  removable = removable_markers(objects)
  if removable:
    store.delete(removable)
    logging.info('directory_markers: removed %d under %s', len(removable), uri)
  return removable
