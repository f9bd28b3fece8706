"""pipeline/atomic_push.py: a push never shows a half-written model."""
import os

import pytest

from pipeline import atomic_push
from pipeline import serving_baseline


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


def test_an_existing_version_is_left_alone(model, tmp_path):
  serving = tmp_path / 'serving'
  (serving / '1700000000').mkdir(parents=True)
  (serving / '1700000000' / 'saved_model.pb').write_bytes(b'old')
  atomic_push.push(model, str(serving), '1700000000')
  assert (serving / '1700000000' / 'saved_model.pb').read_bytes() == b'old'
