"""The rehearsal's local folder standing in for Cloud Storage, markers included.

The rehearsal maps `gs://<bucket>/<path>` to `<gcs dir>/<bucket>/<path>`. A
local folder differs from a bucket in one way that matters to Kubeflow
Pipelines: TensorFlow's Cloud Storage filesystem writes an empty object
`<directory>/` for every directory it creates
(pipeline/kfp_runtime/directory_markers.py), and the Kubeflow launcher
downloads those as files. This module adds them:

- while emulating (`emulating()` in a process, or `install_from_env()` in a
  task process started with REHEARSAL_GCS_DIR set), every directory that
  TensorFlow's file API (`tf.io.gfile.makedirs`/`mkdir`, hence TFX's
  `fileio`) creates in the folder gets a marker, as TensorFlow 2.16's GCS
  filesystem's CreateDir and RecursivelyCreateDir write one for each
  directory they create. Directories Beam creates get none (Beam's GCS
  filesystem writes no markers), nor do those TensorFlow's C++ code creates
  on its own: the rehearsal has fewer markers than a bucket, not more.
- a marker is an extended attribute of its directory, so it moves and goes
  with the directory (renames and deletes on Cloud Storage take the marker
  object along too);
- `list_objects()` lists the folder as Cloud Storage lists a bucket: every
  file and every marker (`<directory>/`, zero bytes) whose key starts with a
  prefix, in key order; `LocalBucket` is the directory_markers.ObjectStore
  the image's fix uses on it.
"""
import contextlib
import errno
import os
from typing import Dict, Iterator, List, Optional, Tuple

from pipeline.kfp_runtime import directory_markers

GCS_DIR_ENV = 'REHEARSAL_GCS_DIR'
MARKER_ATTRIBUTE = 'user.rehearsal.gcs_directory_marker'


class MarkersUnsupported(RuntimeError):
  """The folder's file system keeps no user extended attributes."""


def _mark(directory: str) -> None:
  try:
    os.setxattr(directory, MARKER_ATTRIBUTE, b'')
  except OSError as error:
    if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
      raise MarkersUnsupported(
          f'the rehearsal stands in for Cloud Storage\'s directory markers '
          f'with user extended attributes, which the file system of '
          f'{directory} does not keep; set --work_dir to a folder on ext4, '
          f'xfs or btrfs') from error
    raise


def has_marker(directory: str) -> bool:
  try:
    return MARKER_ATTRIBUTE in os.listxattr(directory)
  except OSError:
    return False


def _bucket_dir(gcs_dir: str, path: str) -> Optional[str]:
  """`<gcs_dir>/<bucket>` when `path` is below it, else None."""
  relative = os.path.relpath(path, gcs_dir)
  if relative.startswith(os.pardir) or relative == os.curdir:
    return None
  return os.path.join(gcs_dir, relative.split(os.sep)[0])


def _missing_directories(gcs_dir: str, path: str) -> List[str]:
  """The directories from the bucket down to `path` that do not exist yet."""
  bucket_dir = _bucket_dir(gcs_dir, path)
  if bucket_dir is None:
    return []
  missing = []
  while path != bucket_dir and not os.path.isdir(path):
    missing.append(path)
    path = os.path.dirname(path)
  return missing


class _Emulation:
  """Wraps TensorFlow's directory calls to mark what they create."""

  def __init__(self, gcs_dir: str):
    self.gcs_dir = os.path.abspath(gcs_dir)
    self._originals: Dict[str, object] = {}

  def _wrap(self, module, name: str) -> None:
    original = getattr(module, name)
    self._originals[name] = original

    def create(path, *args, **kwargs):
      local = os.path.abspath(os.fsdecode(path))
      missing = _missing_directories(self.gcs_dir, local)
      result = original(path, *args, **kwargs)
      for directory in missing:
        if os.path.isdir(directory):
          _mark(directory)
      return result

    setattr(module, name, create)

  def start(self) -> None:
    # pylint: disable=g-import-not-at-top
    from tensorflow.python.lib.io import _pywrap_file_io
    # pylint: enable=g-import-not-at-top
    self._module = _pywrap_file_io
    for name in ('CreateDir', 'RecursivelyCreateDir'):
      self._wrap(_pywrap_file_io, name)
    directory_markers.register(self.gcs_dir, self.bucket)

  def stop(self) -> None:
    for name, original in self._originals.items():
      setattr(self._module, name, original)
    self._originals.clear()
    directory_markers.unregister(self.gcs_dir)

  def bucket(self, name: str) -> 'LocalBucket':
    return LocalBucket(os.path.join(self.gcs_dir, name))


@contextlib.contextmanager
def emulating(gcs_dir: str) -> Iterator[None]:
  """Within: TensorFlow's new directories in `gcs_dir` get markers."""
  emulation = _Emulation(gcs_dir)
  emulation.start()
  try:
    yield
  finally:
    emulation.stop()


def install_from_env() -> None:
  """Starts the emulation for the process when REHEARSAL_GCS_DIR is set."""
  gcs_dir = os.environ.get(GCS_DIR_ENV)
  if gcs_dir:
    _Emulation(gcs_dir).start()


def list_objects(bucket_dir: str, prefix: str) -> List[Tuple[str, int]]:
  """(key, size) of the stand-in bucket's objects under `prefix`, in order."""
  # Only the deepest folder that holds every key with the prefix is walked.
  top = os.path.join(bucket_dir, os.path.dirname(prefix))
  objects = []
  if not os.path.isdir(top):
    return objects
  for folder, _, files in os.walk(top):
    relative = os.path.relpath(folder, bucket_dir)
    base = '' if relative == os.curdir else relative.replace(os.sep, '/') + '/'
    if base and has_marker(folder):
      objects.append((base, 0))
    for name in files:
      objects.append((base + name,
                      os.path.getsize(os.path.join(folder, name))))
  return sorted(item for item in objects if item[0].startswith(prefix))


class LocalBucket:
  """A stand-in bucket folder as a directory_markers.ObjectStore."""

  def __init__(self, bucket_dir: str):
    self.bucket_dir = bucket_dir

  def path(self, key: str) -> str:
    return os.path.join(self.bucket_dir, *key.rstrip('/').split('/'))

  def list(self, prefix: str) -> List[Tuple[str, int]]:
    return list_objects(self.bucket_dir, prefix)

  def delete(self, keys: List[str]) -> None:
    for key in keys:
      if key.endswith('/'):
        os.removexattr(self.path(key), MARKER_ATTRIBUTE)
      else:
        os.remove(self.path(key))
