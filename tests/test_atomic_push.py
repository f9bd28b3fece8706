"""pipeline/components/atomic_push.py: a push never shows a half-written model."""
import os

import pytest
from google.protobuf import json_format
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts

from pipeline.components import atomic_push
from pipeline.components import serving_baseline


@pytest.fixture
def model(tmp_path):
  folder = tmp_path / 'model'
  (folder / 'variables').mkdir(parents=True)
  (folder / 'variables' / 'variables.index').write_bytes(b'index')
  (folder / 'saved_model.pb').write_bytes(b'graph')
  return str(folder)


def test_push_renames_a_complete_copy_into_place(model, tmp_path):
  serving = str(tmp_path / 'serving')
  path = atomic_push.push(model, serving, '1700000000')
  assert path == os.path.join(serving, '1700000000')
  assert os.listdir(serving) == ['1700000000']  # no staging folder left
  with open(os.path.join(path, 'variables', 'variables.index'), 'rb') as f:
    assert f.read() == b'index'
  assert serving_baseline.newest_pushed_model(serving) == path


def test_a_copy_that_fails_half_way_never_appears(model, tmp_path,
                                                  monkeypatch):
  serving = str(tmp_path / 'serving')
  atomic_push.push(model, serving, '1700000000')
  with open(os.path.join(model, 'saved_model.pb'), 'wb') as f:
    f.write(b'retrained graph')

  def fail(*unused_args, **unused_kwargs):
    raise OSError('disk full')

  monkeypatch.setattr(atomic_push.io_utils, 'copy_file', fail)
  with pytest.raises(OSError, match='disk full'):
    atomic_push.push(model, serving, '1700000100')
  assert not os.path.exists(os.path.join(serving, '1700000100'))
  # The served model is still the old one; the half copy is hidden.
  assert serving_baseline.newest_pushed_model(serving) == os.path.join(
      serving, '1700000000')
  monkeypatch.undo()
  atomic_push.push(model, serving, '1700000200')
  assert sorted(os.listdir(serving)) == ['1700000000', '1700000200']


def test_the_same_model_is_not_pushed_twice(model, tmp_path):
  serving = str(tmp_path / 'serving')
  first = atomic_push.push(model, serving, '1700000000')
  assert atomic_push.push(model, serving, '1700000100') == first
  assert os.listdir(serving) == ['1700000000']
  with open(os.path.join(model, 'variables', 'variables.index'), 'wb') as f:
    f.write(b'other weights')
  second = atomic_push.push(model, serving, '1700000200')
  assert second == os.path.join(serving, '1700000200')
  assert sorted(os.listdir(serving)) == ['1700000000', '1700000200']


def test_an_existing_version_is_left_alone(model, tmp_path):
  serving = tmp_path / 'serving'
  (serving / '1700000000').mkdir(parents=True)
  (serving / '1700000000' / 'saved_model.pb').write_bytes(b'old')
  atomic_push.push(model, str(serving), '1700000000')
  assert (serving / '1700000000' / 'saved_model.pb').read_bytes() == b'old'


def _artifacts(tmp_path, model_dir, blessed):
  model = standard_artifacts.Model()
  model.uri = model_dir
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed')
  return ({'model': [model], 'model_blessing': [blessing]},
          {'pushed_model': [pushed]}, pushed)


@pytest.mark.parametrize('blessed', [True, False])
def test_executor_keeps_tfx_pusher_outputs(tmp_path, blessed):
  model_dir = tmp_path / 'trainer_model'
  serving_model = model_dir / 'Format-Serving'
  (serving_model / 'variables').mkdir(parents=True)
  (serving_model / 'saved_model.pb').write_bytes(b'graph')
  serving = tmp_path / 'serving'
  inputs, outputs, pushed = _artifacts(tmp_path, str(model_dir), blessed)
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=str(serving)))
  atomic_push.AtomicPushExecutor().Do(
      inputs, outputs,
      {'push_destination': json_format.MessageToJson(destination)})
  assert pushed.get_int_custom_property('pushed') == int(blessed)
  if not blessed:
    assert not serving.exists()
    return
  version = pushed.get_string_custom_property('pushed_version')
  destination_dir = pushed.get_string_custom_property('pushed_destination')
  assert destination_dir == str(serving / version)
  assert os.listdir(serving) == [version]
  assert (serving / version / 'saved_model.pb').read_bytes() == b'graph'
  assert (tmp_path / 'pushed' / 'saved_model.pb').exists()  # archived copy
