"""Bucket and uploads of pipeline/gcp_infrastructure.py against a local GCS emulator.

The emulator (gcp-storage-emulator) listens on 127.0.0.1 only and is stopped
after each test. What it keeps: objects with their MD5 and generation, and
storage class and iamConfiguration when they are PATCHed. What it does not:
the bucket insert request's settings (it answers with location US and uniform
access off whatever was sent, so the tests also record that request), and it
enforces neither IAM nor public access prevention.
"""
import json

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from deploy.infra import errors
from pipeline.data_files import spans
from deploy.infra import storage as infra_storage
from deploy.infra.context import (ABSENT, CREATED, DELETED, PRESENT, UPDATED,
                                  Clients, Cloud, Target)
from tests import helpers

PROJECT = 'test-project'


class RecordingSession(requests.Session):
  """Sends requests as usual and keeps (method, url, JSON body) of each."""

  def __init__(self):
    super().__init__()
    self.sent = []

  def request(self, method, url, data=None, **kwargs):
    body = kwargs.get('json')
    if body is None and isinstance(data, (str, bytes)) and data[:1] in (
        '{', b'{'):
      body = json.loads(data)
    self.sent.append((method, url, body))
    return super().request(method, url, data=data, **kwargs)


@pytest.fixture
def session():
  return RecordingSession()


@pytest.fixture
def client(monkeypatch, session):
  with helpers.storage_emulator() as host:
    monkeypatch.setenv('STORAGE_EMULATOR_HOST', host)
    yield storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                         _http=session)


@pytest.fixture
def target(tmp_path):
  data, models = tmp_path / 'data', tmp_path / 'models'
  data.mkdir()
  (data / 'data.csv').write_text('a,b\n1,2\n')
  (data / 'README.md').write_text('about the data\n')
  (models / 'sub').mkdir(parents=True)
  (models / 'model.py').write_text('x = 1\n')
  (models / 'sub' / 'features.py').write_text('y = 2\n')
  (models / '__pycache__').mkdir()
  (models / '__pycache__' / 'model.cpython-310.pyc').write_bytes(b'\0')
  return Target(project=PROJECT, region='europe-west3', zone='europe-west3-a',
                pipeline_name='taxi-tips', bucket=f'{PROJECT}-taxi-tips',
                network='default', repository='tfx-pipelines',
                service_account_id='taxi-tips-runner',
                cluster='taxi-tips-cluster', machine_type='e2-standard-4',
                node_count=2, kfp_version='2.3.0', data_dir=str(data),
                models_dir=str(models))


def _run(steps, target, client, **kwargs):
  cloud = Cloud(target, Clients(PROJECT, storage_client=client,
                                credentials_factory=_no_credentials),
                out=lambda line: None)
  for step in steps:
    step(cloud, **kwargs).apply()
  return dict(cloud.results)


def _no_credentials():
  raise AssertionError('the storage steps must use the injected client')


def test_creates_bucket_with_settings_and_layout(client, session, target):
  results = _run([infra_storage.Bucket, infra_storage.Uploads], target,
                 client)

  inserts = [body for method, url, body in session.sent
             if method == 'POST' and url.split('?')[0].endswith('/b')]
  assert inserts == [{
      'name': target.bucket,
      'location': 'EU',
      'storageClass': 'STANDARD',
      'iamConfiguration': {
          'uniformBucketLevelAccess': {'enabled': True},
          'publicAccessPrevention': 'enforced',
      },
  }]
  bucket = client.get_bucket(target.bucket)
  assert bucket.storage_class == 'STANDARD'
  assert bucket.iam_configuration.uniform_bucket_level_access_enabled
  assert bucket.iam_configuration.public_access_prevention == 'enforced'
  names = sorted(b.name for b in client.list_blobs(target.bucket))
  assert names == ['input/', 'input/data/README.md', 'input/data/data.csv',
                   'input/models/model.py', 'input/models/sub/features.py',
                   'output/']
  assert results[f'bucket gs://{target.bucket}'] == CREATED
  assert set(results.values()) == {CREATED}


def test_second_run_changes_nothing(client, target):
  _run([infra_storage.Bucket, infra_storage.Uploads], target, client)
  before = {b.name: (b.generation, b.md5_hash)
            for b in client.list_blobs(target.bucket)}
  metageneration = client.get_bucket(target.bucket).metageneration

  results = _run([infra_storage.Bucket, infra_storage.Uploads], target,
                 client)

  assert set(results.values()) == {PRESENT}
  after = {b.name: (b.generation, b.md5_hash)
           for b in client.list_blobs(target.bucket)}
  assert after == before
  assert client.get_bucket(target.bucket).metageneration == metageneration


def test_uploads_only_changed_files(client, target, tmp_path):
  _run([infra_storage.Bucket, infra_storage.Uploads], target, client)
  (tmp_path / 'data' / 'data.csv').write_text('a,b\n3,4\n')
  (tmp_path / 'models' / 'new.py').write_text('z = 3\n')

  results = _run([infra_storage.Uploads], target, client)

  assert results == {
      f'gs://{target.bucket}/input/data/README.md': PRESENT,
      f'gs://{target.bucket}/input/data/data.csv': UPDATED,
      f'gs://{target.bucket}/input/models/model.py': PRESENT,
      f'gs://{target.bucket}/input/models/new.py': CREATED,
      f'gs://{target.bucket}/input/models/sub/features.py': PRESENT,
  }
  blob = client.bucket(target.bucket).blob('input/data/data.csv')
  assert blob.download_as_bytes() == b'a,b\n3,4\n'


def test_span_folders_are_uploaded_as_they_are(client, target, tmp_path):
  data = tmp_path / 'data'
  (data / 'data.csv').unlink()
  for span in (1, 2):
    (data / f'span-{span}').mkdir()
    (data / f'span-{span}' / f'trips-{span}.csv').write_text(f'a,b\n{span},2\n')
  _run([infra_storage.Bucket, infra_storage.Uploads], target, client)
  (data / 'span-3').mkdir()  # the next batch lands
  (data / 'span-3' / 'trips-3.csv').write_text('a,b\n3,2\n')

  results = _run([infra_storage.Uploads], target, client)

  prefix = f'gs://{target.bucket}/input/data/'
  assert {name: state for name, state in results.items()
          if name.startswith(prefix)} == {
              prefix + 'README.md': PRESENT,
              prefix + 'span-1/trips-1.csv': PRESENT,
              prefix + 'span-2/trips-2.csv': PRESENT,
              prefix + 'span-3/trips-3.csv': CREATED,
          }
  # The bucket's data folder, listed as ExampleGen's driver lists it (one
  # level, folders with a trailing slash), holds the span folders.
  listing = client.list_blobs(target.bucket, prefix='input/data/',
                              delimiter='/')
  names = [blob.name.rsplit('/', 1)[1] for blob in listing]
  folders = [prefix.split('/')[-2] + '/' for prefix in listing.prefixes]
  assert spans.list_spans(f'gs://{target.bucket}/input/data',
                          listdir=lambda _: names + folders) == [1, 2, 3]


def test_existing_bucket_gets_uniform_access(client, target):
  bucket = client.bucket(target.bucket)
  bucket.storage_class = 'STANDARD'
  client.create_bucket(bucket, location='EU')

  results = _run([infra_storage.Bucket], target, client)

  assert results[f'bucket gs://{target.bucket}'] == UPDATED
  iam = client.get_bucket(target.bucket).iam_configuration
  assert iam.uniform_bucket_level_access_enabled
  assert iam.public_access_prevention == 'enforced'


def test_delete_bucket_needs_the_typed_name(client, target):
  _run([infra_storage.Bucket, infra_storage.Uploads], target, client)

  with pytest.raises(errors.InfraError, match='did not match'):
    _run([infra_storage.DeleteBucket], target, client, ask=lambda _: 'yes')

  def no_terminal(prompt):
    raise EOFError

  with pytest.raises(errors.InfraError, match='did not match'):
    _run([infra_storage.DeleteBucket], target, client, ask=no_terminal)
  assert client.lookup_bucket(target.bucket) is not None

  prompts = []
  results = _run([infra_storage.DeleteBucket], target, client,
                 ask=lambda p: prompts.append(p) or target.bucket)
  assert results == {f'bucket gs://{target.bucket}': DELETED}
  assert '6 objects' in prompts[0]
  assert client.lookup_bucket(target.bucket) is None
  results = _run([infra_storage.DeleteBucket], target, client,
                 ask=lambda p: pytest.fail('asked for an absent bucket'))
  assert results == {f'bucket gs://{target.bucket}': ABSENT}


def test_bucket_role_for_the_pipeline_account_is_granted_once(client, target):
  """The emulator stores (does not enforce) bucket IAM policies."""
  from deploy.infra import iam  # pylint: disable=g-import-not-at-top
  _run([infra_storage.Bucket], target, client)
  member = f'serviceAccount:{target.service_account_email}'
  cloud = Cloud(target, Clients(PROJECT, storage_client=client,
                                credentials_factory=_no_credentials),
                out=lambda line: None)

  iam.Roles(cloud)._bucket()  # pylint: disable=protected-access
  iam.Roles(cloud)._bucket()  # pylint: disable=protected-access

  policy = client.bucket(target.bucket).get_iam_policy(
      requested_policy_version=3)
  assert member in policy[iam.BUCKET_ROLE]
  assert [status for _, status in cloud.results] == ['granted', PRESENT]
