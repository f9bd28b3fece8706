"""The pipeline's bucket: settings, `input/` and `output/` folders, uploads.

The bucket is EU multi-region, Standard class, with uniform bucket-level
access and public access prevention: access is granted by IAM on the whole
bucket only (docs/cloud_setup.md says why this replaces the proof of
concept's fine-grained ACLs). Uploads compare MD5 checksums, so files that
are already there unchanged are not sent again.
"""
import base64
import hashlib
import os
from typing import Callable, Dict, List

from google.api_core import exceptions as api_exceptions

from deploy.infra import errors
from deploy.infra.context import (ABSENT, CREATED, DELETED, PRESENT, UPDATED,
                                  Cloud, Target)

LOCATION = 'EU'
STORAGE_CLASS = 'STANDARD'
FOLDERS = ('input/', 'output/')
_ROLE = 'roles/storage.admin'
_SKIPPED_DIRS = ('__pycache__',)


def md5_base64(path: str) -> str:
  """Returns a file's MD5 as Cloud Storage reports it (base64 of the digest)."""
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return base64.b64encode(digest.digest()).decode('ascii')


def local_files(root: str, prefix: str) -> Dict[str, str]:
  """Maps object names under `prefix` to the files below `root`.

  Args:
    root: a local folder.
    prefix: the object name prefix, e.g. 'input/data/'.

  Returns:
    {object name: local path}, skipping hidden files, __pycache__ and .pyc.
  """
  files = {}
  for folder, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs
                     if d not in _SKIPPED_DIRS and not d.startswith('.'))
    for name in sorted(names):
      if name.startswith('.') or name.endswith('.pyc'):
        continue
      path = os.path.join(folder, name)
      relative = os.path.relpath(path, root).replace(os.sep, '/')
      files[prefix + relative] = path
  return files


def uploads(target: Target) -> Dict[str, str]:
  """Returns {object name: local path} for data/ and models/."""
  files = local_files(target.data_dir, 'input/data/')
  files.update(local_files(target.models_dir, 'input/models/'))
  return files


class Bucket:
  """Creates the bucket, or brings an existing one's access settings in line."""
  name = 'bucket'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'bucket gs://{target.bucket}: {LOCATION} multi-region, '
            f'{STORAGE_CLASS} class, uniform bucket-level access, public '
            f'access prevention enforced, folders {" ".join(FOLDERS)}']

  def apply(self) -> None:
    cloud, name = self.cloud, self.cloud.target.bucket
    client = cloud.clients.storage()
    bucket = cloud.storage_call(
        lambda: client.lookup_bucket(name),
        f'read bucket gs://{name} (if another project owns this name, set '
        'GCS_BUCKET_NAME to a free one)', _ROLE)
    if bucket is None:
      bucket = self._create(client)
      # Checked like an existing bucket: no request when the server kept
      # every setting (Cloud Storage does; the test emulator does not).
      self._align(bucket)
      cloud.report(f'bucket gs://{name}', CREATED)
    else:
      cloud.report(f'bucket gs://{name}', self._align(bucket))
    for folder in FOLDERS:
      blob = bucket.blob(folder)
      if cloud.storage_call(blob.exists, f'read gs://{name}/{folder}', _ROLE):
        cloud.report(f'folder gs://{name}/{folder}', PRESENT)
      else:
        cloud.storage_call(lambda b=blob: b.upload_from_string(b''),
                           f'create gs://{name}/{folder}', _ROLE)
        cloud.report(f'folder gs://{name}/{folder}', CREATED)

  def _create(self, client):
    cloud, name = self.cloud, self.cloud.target.bucket
    bucket = client.bucket(name)
    bucket.storage_class = STORAGE_CLASS
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = 'enforced'

    def create():
      try:
        return client.create_bucket(bucket, project=cloud.target.project,
                                    location=LOCATION)
      except api_exceptions.Conflict:
        raise errors.InfraError(
            f'The bucket name gs://{name} is taken by another project: set '
            'GCS_BUCKET_NAME to a free name.') from None

    return cloud.storage_call(create, f'create bucket gs://{name}', _ROLE)

  def _align(self, bucket) -> str:
    """Turns on uniform access and public access prevention if off."""
    cloud = self.cloud
    if bucket.location != LOCATION or bucket.storage_class != STORAGE_CLASS:
      cloud.out(f'  note: gs://{bucket.name} is {bucket.location} '
                f'{bucket.storage_class}, not {LOCATION} {STORAGE_CLASS}; '
                'location and class cannot change, so it is used as it is.')
    iam = bucket.iam_configuration
    if (iam.uniform_bucket_level_access_enabled and
        iam.public_access_prevention == 'enforced'):
      return PRESENT
    iam.uniform_bucket_level_access_enabled = True
    iam.public_access_prevention = 'enforced'
    cloud.storage_call(bucket.patch, f'update gs://{bucket.name} access',
                       _ROLE)
    return UPDATED


class Uploads:
  """Uploads data/ to input/data/ and models/ to input/models/."""
  name = 'uploads'

  def __init__(self, cloud: Cloud):
    self.cloud = cloud

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'upload {target.data_dir} to gs://{target.bucket}/input/data/ '
            f'and {target.models_dir} to gs://{target.bucket}/input/models/ '
            f'({len(uploads(target))} files; unchanged ones are skipped)']

  def apply(self) -> None:
    cloud, name = self.cloud, self.cloud.target.bucket
    client = cloud.clients.storage()
    remote = {blob.name: blob.md5_hash for blob in cloud.storage_call(
        lambda: list(client.list_blobs(name, prefix='input/')),
        f'list gs://{name}/input/', _ROLE)}
    bucket = client.bucket(name)
    for object_name, path in uploads(cloud.target).items():
      if remote.get(object_name) == md5_base64(path):
        cloud.report(f'gs://{name}/{object_name}', PRESENT)
        continue
      blob = bucket.blob(object_name)
      cloud.storage_call(lambda b=blob, p=path: b.upload_from_filename(p),
                         f'upload {path}', _ROLE)
      cloud.report(f'gs://{name}/{object_name}',
                   UPDATED if object_name in remote else CREATED)


class DeleteBucket:
  """Deletes the bucket and everything in it, after a typed confirmation."""
  name = 'delete bucket'

  def __init__(self, cloud: Cloud, ask: Callable[[str], str] = input):
    self.cloud = cloud
    self.ask = ask

  @staticmethod
  def plan(target: Target) -> List[str]:
    return [f'DELETE bucket gs://{target.bucket} and all its objects '
            '(asks you to type the bucket name first)']

  def apply(self) -> None:
    cloud, name = self.cloud, self.cloud.target.bucket
    client = cloud.clients.storage()
    bucket = cloud.storage_call(lambda: client.lookup_bucket(name),
                                f'read bucket gs://{name}', _ROLE)
    if bucket is None:
      cloud.report(f'bucket gs://{name}', ABSENT)
      return
    count = sum(1 for _ in cloud.storage_call(
        lambda: list(client.list_blobs(name)), f'list gs://{name}', _ROLE))
    try:
      answer = self.ask(f'Type the bucket name ({name}) to delete it and its '
                        f'{count} objects for good: ')
    except EOFError:  # No terminal to type into: keep the bucket.
      answer = ''
    if answer.strip() != name:
      raise errors.InfraError(
          f'Bucket gs://{name} kept: the typed name did not match.')
    if count <= 256:  # The most that delete(force=True) accepts.
      delete = lambda: bucket.delete(force=True)
    else:
      delete = lambda: self._delete_all(client, bucket)
    cloud.storage_call(delete, f'delete bucket gs://{name}', _ROLE)
    cloud.report(f'bucket gs://{name}', DELETED)

  @staticmethod
  def _delete_all(client, bucket) -> None:
    """Deletes objects page by page (force= allows at most 256), then the bucket."""
    for page in client.list_blobs(bucket.name).pages:
      bucket.delete_blobs(list(page))
    bucket.delete()
