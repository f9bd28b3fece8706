"""The Kubeflow Pipelines launcher's copy of a task's inputs into its pod.

Before an open-source Kubeflow Pipelines 2.x launcher starts a task's
command, it copies every input artifact from the bucket to the pod's disk
(`/gcs/<bucket>/<path>` for `gs://<bucket>/<path>`), whether the command
reads that copy or not (TFX reads gs:// itself). In 2.3.0, the release
`make infra` installs (`backend/src/v2/component/launcher_v2.go`
downloadArtifacts, `backend/src/v2/objectstore/object_store.go`
DownloadBlob), for the first artifact of each input:

- list the objects whose keys start with the artifact's key (no trailing
  slash: a sibling `model_run` comes along with `model`);
- for each, in key order: the local path is the pod path joined with the
  key relative to the artifact's key (Go's filepath.Rel, which drops a
  trailing slash: the marker `model/` maps to the pod path itself); create
  its parent folders, then create the path as a file and copy the object.

A zero-byte directory marker therefore becomes a file where a folder
belongs, and the next object below it fails: "mkdir ...: not a directory".
This module does the same, on the rehearsal's stand-in bucket
(rehearsal/gcs_standin.py), with the launcher's error messages.
"""
import os
import posixpath
import shutil
from typing import List

from rehearsal import gcs_standin


class DownloadFailed(RuntimeError):
  """What the launcher reports when it cannot copy an input artifact."""


def _mkdir_all(path: str) -> None:
  """Go's os.MkdirAll: fails when a component of `path` is a file."""
  if os.path.isdir(path):
    return
  if os.path.lexists(path):
    raise OSError(f'mkdir {path}: not a directory')
  _mkdir_all(os.path.dirname(path))
  os.mkdir(path)


def download_blob(bucket: gcs_standin.LocalBucket, local_dir: str,
                  blob_dir: str) -> List[str]:
  """Copies the objects under `blob_dir` to `local_dir`, as DownloadBlob does.

  Args:
    bucket: the stand-in bucket.
    local_dir: the pod path of the artifact.
    blob_dir: the artifact's key in its bucket.

  Returns:
    The local paths written.

  Raises:
    DownloadFailed: with the launcher's message.
  """
  written = []
  for key, size in bucket.list(blob_dir):
    local = os.path.normpath(os.path.join(local_dir,
                                          posixpath.relpath(key, blob_dir)))
    parent = os.path.dirname(local)
    copying = (f'downloadFile(): unable to complete copying "{key}" to local '
               f'storage "{local}"')
    try:
      _mkdir_all(parent)
    except OSError as error:
      raise DownloadFailed(f'{copying}: failed to create local directory '
                           f'"{parent}": {error}') from None
    if os.path.isdir(local):
      raise DownloadFailed(f'{copying}: unable to open local file "{local}" '
                           f'for writing: open {local}: is a directory')
    if size:
      try:
        os.link(bucket.path(key), local)  # the bytes are the same
      except OSError:
        shutil.copyfile(bucket.path(key), local)
    else:
      open(local, 'wb').close()
    written.append(local)
  return written


def download_input(name: str, uri: str, gcs_dir: str, pod_dir: str
                   ) -> List[str]:
  """Copies the input artifact `name` at `uri` into the pod, or fails.

  Args:
    name: the task's input key.
    uri: the artifact's URI, in the rehearsal's stand-in folder.
    gcs_dir: the stand-in folder for gs://.
    pod_dir: the task's pod; the copy goes to <pod_dir>/gcs/<bucket>/<path>.

  Returns:
    The local paths written.

  Raises:
    DownloadFailed: naming the input, its gs:// URI and the cause.
  """
  relative = os.path.relpath(uri, gcs_dir).replace(os.sep, '/')
  bucket, _, key = relative.partition('/')
  local_dir = os.path.join(pod_dir, 'gcs', bucket, *key.split('/'))
  try:
    return download_blob(
        gcs_standin.LocalBucket(os.path.join(gcs_dir, bucket)), local_dir,
        key)
  except DownloadFailed as error:
    raise DownloadFailed(
        f'failed to download input artifact "{name}" from remote storage URI '
        f'"gs://{relative}": {error}') from None
