"""Cloud Storage's directory markers: how TensorFlow leaves them, how the
Kubeflow launcher trips on them, and how the pipeline image removes them.

- rehearsal/gcs_standin.py: the rehearsal's bucket folder gets a marker for
  each directory TensorFlow's file API creates;
- rehearsal/launcher_download.py: the Kubeflow Pipelines 2.3.0 launcher's
  copy of an input artifact into the pod, on that folder;
- pipeline/kfp_runtime/directory_markers.py: the fix, on the folder and, through
  google-cloud-storage, on a local Cloud Storage emulator.
"""
import os

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from pipeline.kfp_runtime import directory_markers
from rehearsal import gcs_standin
from rehearsal import launcher_download
from tests import helpers

BUCKET = 'bkt'
MODEL = 'run/Trainer_7/model'


@pytest.fixture
def gcs_dir(tmp_path):
  folder = tmp_path / 'gcs'
  (folder / BUCKET).mkdir(parents=True)
  return str(folder)


def _bucket_path(gcs_dir, key):
  return os.path.join(gcs_dir, BUCKET, *key.rstrip('/').split('/'))


def _write(path, data=b'x'):
  with open(path, 'wb') as out:
    out.write(data)


def _model_as_tensorflow_writes_it(gcs_dir):
  """A SavedModel tree written through TFX's fileio (hence TensorFlow)."""
  # pylint: disable=g-import-not-at-top
  from tfx.dsl.io import fileio
  # pylint: enable=g-import-not-at-top
  serving = _bucket_path(gcs_dir, MODEL + '/Format-Serving')
  with gcs_standin.emulating(gcs_dir):
    fileio.makedirs(os.path.join(serving, 'variables'))
    fileio.mkdir(os.path.join(serving, 'assets'))
    for name in ('saved_model.pb', 'variables/variables.index'):
      with fileio.open(os.path.join(serving, name), 'wb') as out:
        out.write(b'bytes of ' + name.encode())
  return serving


def _download(gcs_dir, pod, key=MODEL, name='model'):
  return launcher_download.download_input(
      name, _bucket_path(gcs_dir, key), gcs_dir, str(pod))


def _pod_path(pod, key):
  return os.path.join(str(pod), 'gcs', BUCKET, *key.split('/'))


# TensorFlow's directories get markers in the stand-in bucket.


def test_tensorflow_marks_each_directory_it_creates(gcs_dir):
  _model_as_tensorflow_writes_it(gcs_dir)
  listed = gcs_standin.list_objects(os.path.join(gcs_dir, BUCKET), '')
  assert listed == [
      ('run/', 0),
      ('run/Trainer_7/', 0),
      ('run/Trainer_7/model/', 0),
      ('run/Trainer_7/model/Format-Serving/', 0),
      ('run/Trainer_7/model/Format-Serving/assets/', 0),
      ('run/Trainer_7/model/Format-Serving/saved_model.pb', 23),
      ('run/Trainer_7/model/Format-Serving/variables/', 0),
      ('run/Trainer_7/model/Format-Serving/variables/variables.index', 34),
  ]


def test_directories_that_existed_or_beam_made_get_no_marker(gcs_dir):
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  # pylint: enable=g-import-not-at-top
  existing = _bucket_path(gcs_dir, 'old')
  os.makedirs(existing)  # as Beam's file system does: no marker
  with gcs_standin.emulating(gcs_dir):
    tf.io.gfile.makedirs(os.path.join(existing, 'new'))
    tf.io.gfile.makedirs(os.path.join(str(gcs_dir), '..', 'elsewhere'))
  assert not gcs_standin.has_marker(existing)
  assert gcs_standin.has_marker(os.path.join(existing, 'new'))
  assert not gcs_standin.has_marker(os.path.join(gcs_dir, '..', 'elsewhere'))
  # Outside the emulation TensorFlow marks nothing.
  tf.io.gfile.makedirs(_bucket_path(gcs_dir, 'later'))
  assert not gcs_standin.has_marker(_bucket_path(gcs_dir, 'later'))


def test_a_marker_moves_with_its_directory(gcs_dir):
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  # pylint: enable=g-import-not-at-top
  with gcs_standin.emulating(gcs_dir):
    tf.io.gfile.makedirs(_bucket_path(gcs_dir, 'staging/v1'))
  os.rename(_bucket_path(gcs_dir, 'staging/v1'), _bucket_path(gcs_dir, 'v1'))
  assert gcs_standin.list_objects(os.path.join(gcs_dir, BUCKET), 'v') == [
      ('v1/', 0)]


# The launcher's copy into the pod, as Kubeflow Pipelines 2.3.0 does it.


def test_without_markers_the_launcher_copies_the_artifact(gcs_dir, tmp_path):
  serving = _bucket_path(gcs_dir, MODEL + '/Format-Serving')
  os.makedirs(os.path.join(serving, 'variables'))
  _write(os.path.join(serving, 'saved_model.pb'), b'graph')
  _write(os.path.join(serving, 'variables', 'variables.index'), b'index')
  sibling = _bucket_path(gcs_dir, MODEL + '_run')
  os.makedirs(sibling)
  _write(os.path.join(sibling, 'events'), b'e')
  written = _download(gcs_dir, tmp_path / 'pod')
  pod = _pod_path(tmp_path / 'pod', MODEL)
  assert sorted(written) == sorted([
      os.path.join(pod, 'Format-Serving', 'saved_model.pb'),
      os.path.join(pod, 'Format-Serving', 'variables', 'variables.index'),
      # The listing's prefix has no trailing slash: `model_run` comes along.
      _pod_path(tmp_path / 'pod', MODEL + '_run/events'),
  ])
  with open(os.path.join(pod, 'Format-Serving', 'saved_model.pb'), 'rb') as f:
    assert f.read() == b'graph'


def test_a_marker_at_the_artifact_root_fails_the_copy(gcs_dir, tmp_path):
  schema = _bucket_path(gcs_dir, 'run/SchemaGen_3/schema')
  with gcs_standin.emulating(gcs_dir):
    # pylint: disable=g-import-not-at-top
    from tfx.dsl.io import fileio
    # pylint: enable=g-import-not-at-top
    fileio.makedirs(schema)
  _write(os.path.join(schema, 'schema.pbtxt'))
  with pytest.raises(launcher_download.DownloadFailed) as failure:
    _download(gcs_dir, tmp_path / 'pod', 'run/SchemaGen_3/schema', 'schema')
  local = _pod_path(tmp_path / 'pod', 'run/SchemaGen_3/schema')
  assert str(failure.value) == (
      'failed to download input artifact "schema" from remote storage URI '
      f'"gs://{BUCKET}/run/SchemaGen_3/schema": downloadFile(): unable to '
      'complete copying "run/SchemaGen_3/schema/schema.pbtxt" to local '
      f'storage "{local}/schema.pbtxt": failed to create local directory '
      f'"{local}": mkdir {local}: not a directory')
  assert os.path.isfile(local)  # the marker, downloaded as a file


def test_markers_down_the_model_layout_fail_the_copy(gcs_dir, tmp_path):
  _model_as_tensorflow_writes_it(gcs_dir)
  # Even with the artifact's own marker gone, Format-Serving's fails.
  os.removexattr(_bucket_path(gcs_dir, MODEL), gcs_standin.MARKER_ATTRIBUTE)
  with pytest.raises(launcher_download.DownloadFailed) as failure:
    _download(gcs_dir, tmp_path / 'pod')
  serving = _pod_path(tmp_path / 'pod', MODEL + '/Format-Serving')
  assert str(failure.value).endswith(f'mkdir {serving}: not a directory')


def test_an_empty_directory_marker_downloads_as_an_empty_file(gcs_dir,
                                                              tmp_path):
  with gcs_standin.emulating(gcs_dir):
    # pylint: disable=g-import-not-at-top
    import tensorflow as tf
    # pylint: enable=g-import-not-at-top
    tf.io.gfile.makedirs(_bucket_path(gcs_dir, 'run/empty/assets'))
  os.removexattr(_bucket_path(gcs_dir, 'run/empty'),
                 gcs_standin.MARKER_ATTRIBUTE)
  (written,) = _download(gcs_dir, tmp_path / 'pod', 'run/empty', 'empty')
  assert written == _pod_path(tmp_path / 'pod', 'run/empty/assets')
  assert os.path.getsize(written) == 0


# The fix.


def test_only_markers_of_directories_with_more_in_them_are_removed():
  objects = {
      'm/': 0,
      'm/Format-Serving/': 0,
      'm/Format-Serving/saved_model.pb': 10,
      'm/Format-Serving/assets/': 0,  # empty directory: kept
      'm/empty.txt': 0,  # an empty file, not a marker
      'm/sub/': 0,
      'm/sub/deeper/': 0,  # only trace of deeper: kept
  }
  assert directory_markers.removable_markers(objects) == [
      'm/', 'm/Format-Serving/', 'm/sub/']


def test_the_fix_makes_the_model_downloadable_and_keeps_its_layout(
    gcs_dir, tmp_path):
  serving = _model_as_tensorflow_writes_it(gcs_dir)
  with gcs_standin.emulating(gcs_dir):
    removed = directory_markers.remove(_bucket_path(gcs_dir, MODEL))
  assert removed == [MODEL + '/', MODEL + '/Format-Serving/',
                     MODEL + '/Format-Serving/variables/']
  assert os.path.isfile(os.path.join(serving, 'saved_model.pb'))
  _download(gcs_dir, tmp_path / 'pod')
  pod_serving = _pod_path(tmp_path / 'pod', MODEL + '/Format-Serving')
  assert os.path.isfile(os.path.join(pod_serving, 'saved_model.pb'))
  assert os.path.isfile(os.path.join(pod_serving, 'variables',
                                     'variables.index'))


def test_paths_outside_any_bucket_are_left_alone(tmp_path):
  assert directory_markers.locate(str(tmp_path)) is None
  assert directory_markers.remove(str(tmp_path)) == []


@pytest.fixture
def gcs_client(monkeypatch):
  with helpers.storage_emulator() as host:
    monkeypatch.setenv('STORAGE_EMULATOR_HOST', host)
    # The fix's client is made once per process: make it here, for this
    # server.
    directory_markers._gcs_client.cache_clear()  # pylint: disable=protected-access
    try:
      client = storage.Client(project='test-project',
                              credentials=AnonymousCredentials())
      client.create_bucket(BUCKET)
      yield client
    finally:
      directory_markers._gcs_client.cache_clear()  # pylint: disable=protected-access


def test_the_fix_on_cloud_storage(gcs_client):
  bucket = gcs_client.bucket(BUCKET)
  objects = {
      MODEL + '/': b'',
      MODEL + '/Format-Serving/': b'',
      MODEL + '/Format-Serving/saved_model.pb': b'graph',
      MODEL + '/Format-Serving/assets/': b'',
      MODEL + '/Format-Serving/variables/': b'',
      MODEL + '/Format-Serving/variables/variables.index': b'index',
      MODEL + '/empty.txt': b'',
      MODEL + '_run/': b'',  # another artifact
      MODEL + '_run/events': b'e',
  }
  for key, data in objects.items():
    bucket.blob(key).upload_from_string(data)
  # GcsStore's own client: STORAGE_EMULATOR_HOST points it at the emulator.
  removed = directory_markers.remove(f'gs://{BUCKET}/{MODEL}')
  assert removed == [MODEL + '/', MODEL + '/Format-Serving/',
                     MODEL + '/Format-Serving/variables/']
  left = sorted(blob.name for blob in gcs_client.list_blobs(BUCKET))
  assert left == sorted(set(objects) - set(removed))
