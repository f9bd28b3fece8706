"""The code fingerprint in the cache key: the project modules a component's
entry module imports, read from the sources (pipeline/code_fingerprint.py).

Unit tests build throwaway projects under tmp_path; the end-to-end test runs
a copy of this project twice, editing a module only the model imports.
"""
import ast
import os
import shutil
import sys
import textwrap
from typing import Dict

import pytest

from pipeline import code_fingerprint
from pipeline import component_ids
from tests import helpers


def _write(root, files: Dict[str, str]) -> None:
  """Writes {relative path: source} under `root`."""
  for path, source in files.items():
    target = os.path.join(str(root), path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'w') as f:
      f.write(textwrap.dedent(source))


def _closure(root, entry: str = 'models.model'):
  return code_fingerprint.project_modules_imported_by(entry, root=str(root))


def _fingerprint(root, entry: str = 'models.model') -> str:
  return code_fingerprint.import_closure_fingerprint(entry, root=str(root))


@pytest.fixture
def project(tmp_path):
  """A project whose model imports one helper module; `unused.py` is
  imported by nothing."""
  _write(tmp_path, {
      'models/__init__.py': '',
      'models/model.py': """\
          import os
          from models import layers

          UNITS = layers.UNITS
          """,
      'models/layers.py': 'UNITS = 3\n',
      'models/unused.py': 'X = 1\n',
  })
  return tmp_path


# --- Which modules count ------------------------------------------------------


def test_closure_follows_every_form_of_import(tmp_path):
  _write(tmp_path, {
      'models/__init__.py': '',
      'models/model.py': """\
          import typing
          from models import layers
          from .blocks import Block
          import models.heads as heads
          from . import losses, NOT_A_MODULE
          try:
            from models import optional_speedups
          except ImportError:
            optional_speedups = None
          if typing.TYPE_CHECKING:
            from models.typing_only import Hint

          def build():
            from models import late
            import importlib
            return importlib.import_module('models.plugin')
          """,
      'models/layers.py': '',
      'models/blocks.py': 'Block = object\n',
      'models/heads.py': '',
      'models/losses.py': '',
      'models/optional_speedups.py': '',
      'models/typing_only.py': 'Hint = int\n',
      'models/late.py': '',
      'models/plugin.py': '',
      'models/unused.py': '',
  })
  assert _closure(tmp_path) == [
      'models', 'models.blocks', 'models.heads', 'models.late',
      'models.layers', 'models.losses', 'models.model',
      'models.optional_speedups', 'models.plugin', 'models.typing_only']


def test_closure_is_transitive_with_packages_and_relative_imports(tmp_path):
  _write(tmp_path, {
      'models/__init__.py': '',
      'models/model.py': 'from models.nets import deep\n',
      'models/nets/__init__.py': '',
      'models/nets/deep.py': """\
          from .. import util
          from ..shapes import SHAPE
          from .wide import WIDTH
          """,
      'models/nets/wide.py': 'from ... import beyond_the_top\nWIDTH = 2\n',
      'models/util.py': 'import helpers_at_root\n',
      'models/shapes.py': 'SHAPE = (1,)\n',
      'helpers_at_root.py': '',
      'unused_at_root.py': '',
  })
  assert _closure(tmp_path) == [
      'helpers_at_root', 'models', 'models.model', 'models.nets',
      'models.nets.deep', 'models.nets.wide', 'models.shapes', 'models.util']


def test_every_parent_package_init_counts(tmp_path):
  _write(tmp_path, {
      'models/__init__.py': '',
      'models/model.py': 'import shared.deep.leaf\n',
      'shared/__init__.py': '',
      'shared/deep/__init__.py': '',
      'shared/deep/leaf.py': '',
      'shared/deep/other.py': '',
  })
  assert _closure(tmp_path) == [
      'models', 'models.model', 'shared', 'shared.deep', 'shared.deep.leaf']


def test_a_name_from_a_package_init_is_not_a_module(tmp_path):
  _write(tmp_path, {
      'models/__init__.py': 'from models.constants import SIZE\n',
      'models/constants.py': 'SIZE = 1\n',
      'models/model.py': 'from models import SIZE\n',
  })
  assert _closure(tmp_path) == ['models', 'models.constants', 'models.model']


def test_installed_and_standard_library_modules_never_count(tmp_path):
  site_packages = '.venv/lib/python3.10/site-packages'
  _write(tmp_path, {
      'models/__init__.py': '',
      'models/model.py': """\
          import json, os.path
          import numpy as np
          from tensorflow import keras
          import installed_here
          import no_such_module_anywhere
          from no_such_package import thing
          """,
      f'{site_packages}/installed_here/__init__.py': 'import models\n',
      f'{site_packages}/numpy/__init__.py': '',
  })
  assert _closure(tmp_path) == ['models', 'models.model']


def test_missing_project_modules_are_skipped_but_not_the_entry(project):
  _write(project, {'models/model.py': 'from models import gone, layers\n'})
  assert _closure(project) == ['models', 'models.layers', 'models.model']
  with pytest.raises(ValueError, match='models.nowhere'):
    _fingerprint(project, 'models.nowhere')
  with pytest.raises(ValueError, match='models.nowhere'):
    _closure(project, 'models.nowhere')


def test_an_import_cycle_terminates(tmp_path):
  _write(tmp_path, {
      'models/__init__.py': 'from models import a\n',
      'models/a.py': 'from models import b\n',
      'models/b.py': 'import models.a\nfrom . import b\n',
  })
  assert _closure(tmp_path, 'models.a') == ['models', 'models.a', 'models.b']
  assert _fingerprint(tmp_path, 'models.a') == _fingerprint(tmp_path,
                                                            'models.b')


def test_a_module_that_does_not_parse_still_counts(project):
  _write(project, {'models/layers.py': 'def broken(:\n'})
  assert _closure(project) == ['models', 'models.layers', 'models.model']
  assert len(_fingerprint(project)) == 16


def test_the_default_root_holds_the_entry_modules_package(tmp_path,
                                                          monkeypatch):
  _write(tmp_path, {
      'fingerprint_pkg/__init__.py': '',
      'fingerprint_pkg/model.py': 'from fingerprint_pkg import layers\n',
      'fingerprint_pkg/layers.py': '',
  })
  monkeypatch.syspath_prepend(str(tmp_path))
  assert code_fingerprint.project_root('fingerprint_pkg.model') == str(tmp_path)
  assert code_fingerprint.project_modules_imported_by('fingerprint_pkg.model') == [
      'fingerprint_pkg', 'fingerprint_pkg.layers', 'fingerprint_pkg.model']
  assert code_fingerprint.import_closure_fingerprint('fingerprint_pkg.model') == (
      _fingerprint(tmp_path, 'fingerprint_pkg.model'))
  # Nothing was imported to find them.
  assert not any(name.startswith('fingerprint_pkg') for name in sys.modules)
  with pytest.raises(ValueError, match='no_such_module'):
    code_fingerprint.import_closure_fingerprint('no_such_module.model')
  with pytest.raises(ValueError, match='installed package'):
    code_fingerprint.import_closure_fingerprint('numpy.linalg')


# --- What changes the fingerprint ---------------------------------------------


def test_fingerprint_is_16_hex_digits_and_deterministic(project):
  first = _fingerprint(project)
  assert len(first) == 16 and int(first, 16) >= 0
  assert _fingerprint(project) == first


def test_editing_the_entry_module_changes_the_fingerprint(project):
  before = _fingerprint(project)
  model = (project / 'models' / 'model.py').read_text()
  _write(project, {'models/model.py': model + '# Edited.\n'})
  assert _fingerprint(project) != before


def test_editing_an_imported_module_changes_the_fingerprint(project):
  before = _fingerprint(project)
  _write(project, {'models/layers.py': 'UNITS = 4\n'})
  assert _fingerprint(project) != before


def test_editing_a_package_init_changes_the_fingerprint(project):
  before = _fingerprint(project)
  _write(project, {'models/__init__.py': '"""The models."""\n'})
  assert _fingerprint(project) != before


def test_editing_a_module_nothing_imports_changes_nothing(project):
  before = _fingerprint(project)
  _write(project, {'models/unused.py': 'X = 2\n', 'models/new.py': '',
                   'models/model.pyc': 'stale', 'README.md': 'Edited.\n'})
  assert _fingerprint(project) == before


def test_importing_a_new_module_changes_it_and_removing_the_import_undoes(
    project):
  before = _fingerprint(project)
  model = (project / 'models' / 'model.py').read_text()
  _write(project, {'models/extra.py': 'EXTRA = 1\n',
                   'models/model.py': model + 'from models import extra\n'})
  assert 'models.extra' in _closure(project)
  with_extra = _fingerprint(project)
  assert with_extra != before
  _write(project, {'models/extra.py': 'EXTRA = 2\n'})
  assert _fingerprint(project) != with_extra
  _write(project, {'models/model.py': model})
  assert _fingerprint(project) == before


def test_removing_an_imported_module_changes_the_fingerprint(project):
  before = _fingerprint(project)
  os.remove(project / 'models' / 'layers.py')
  assert _fingerprint(project) != before


def test_the_same_bytes_under_another_name_change_the_fingerprint(tmp_path):
  _write(tmp_path / 'a', {'models/__init__.py': '', 'models/model.py': '',
                          'models/one.py': 'X = 1\n'})
  _write(tmp_path / 'b', {'models/__init__.py': '', 'models/model.py': '',
                          'models/two.py': 'X = 1\n'})
  _write(tmp_path / 'a', {'models/model.py': 'from models import one\n'})
  _write(tmp_path / 'b', {'models/model.py': 'from models import two\n'})
  assert _fingerprint(tmp_path / 'a') != _fingerprint(tmp_path / 'b')


# --- This project's code --------------------------------------------------------


def _models_named_in_imports(path: str):
  """The models.* modules the import statements of `path` name."""
  with open(path) as f:
    tree = ast.parse(f.read())
  named = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      named.update(a.name for a in node.names if a.name.startswith('models.'))
    elif isinstance(node, ast.ImportFrom) and node.module == 'models':
      named.update(f'models.{a.name}' for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level:
      raise AssertionError(f'update this test for relative imports in {path}')
    elif isinstance(node, ast.ImportFrom) and (
        node.module or '').startswith('models.'):
      named.add(node.module)
  return named


def test_the_models_closure_is_what_models_model_imports():
  closure = set(code_fingerprint.project_modules_imported_by('models.model'))
  named = _models_named_in_imports(
      os.path.join(helpers.REPO, 'models', 'model.py'))
  assert {'models.features', 'models.serving'} <= named
  assert named | {'models', 'models.model'} <= closure
  # And what those import in turn (the serving signatures' names).
  assert _models_named_in_imports(
      os.path.join(helpers.REPO, 'models', 'serving.py')) <= closure
  assert all(name == 'models' or name.startswith('models.')
             for name in closure), closure
  assert code_fingerprint.project_root('models.model') == helpers.REPO


def test_the_preprocessing_closure_leaves_the_model_out():
  closure = code_fingerprint.project_modules_imported_by('models.preprocessing')
  assert {'models', 'models.features', 'models.preprocessing'} <= set(closure)
  assert 'models.model' not in closure
  assert code_fingerprint.import_closure_fingerprint('models.preprocessing') != (
      code_fingerprint.import_closure_fingerprint('models.model'))


# --- End to end -----------------------------------------------------------------

E2E_PIPELINE = 'code-fingerprint-e2e'
E2E_ROWS = 400
E2E_SETTINGS = dict(TRAIN_NUM_STEPS='20', TRAINER_EVAL_NUM_STEPS='2')
# What a copy of the project needs to run local_runner.py.
PROJECT_FOLDERS = ('models', 'pipeline', 'local', 'schema')
EXTRA_MODULE = '''\
"""A helper module only the model imports (tests/test_code_fingerprint.py)."""
# Revision {revision}.


def identity(value):
  return value
'''


def _copy_project(target) -> None:
  """This project's code, with a models/extra.py that only models/model.py
  imports; the model behaves as before."""
  ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
  for folder in PROJECT_FOLDERS:
    if os.path.isdir(os.path.join(helpers.REPO, folder)):
      shutil.copytree(os.path.join(helpers.REPO, folder),
                      os.path.join(str(target), folder), ignore=ignore)
  shutil.copy(helpers.LOCAL_RUNNER, str(target))
  _write(target, {'models/extra.py': EXTRA_MODULE.format(revision=1)})
  model_path = os.path.join(str(target), 'models', 'model.py')
  with open(model_path) as f:
    model = f.read()
  assert '\nfrom models import ' in model and '\ndef run_fn(' in model
  model = model.replace('\nfrom models import ',
                        '\nfrom models import extra\nfrom models import ', 1)
  with open(model_path, 'w') as f:
    f.write(model + '\n\nrun_fn = extra.identity(run_fn)\n')


@pytest.mark.slow
def test_editing_a_module_only_the_model_imports_retrains_it(tmp_path):
  project = tmp_path / 'project'
  _copy_project(project)
  data = tmp_path / 'data'
  helpers.write_slice(str(data), rows=E2E_ROWS)
  output = tmp_path / 'out'
  runner = str(project / 'local_runner.py')

  first = helpers.run_local_pipeline(data, output, E2E_PIPELINE,
                                     runner=runner, **E2E_SETTINGS)
  assert first.returncode == 0, first.output[-3000:]
  _write(project, {'models/extra.py': EXTRA_MODULE.format(revision=2)})
  second = helpers.run_local_pipeline(data, output, E2E_PIPELINE,
                                      runner=runner, **E2E_SETTINGS)
  assert second.returncode == 0, second.output[-3000:]

  states = {id_: c.state for id_, c in second.summary().components.items()}
  assert states[component_ids.EXAMPLE_GEN] == 'CACHED', states
  assert states[component_ids.TRANSFORM] == 'CACHED', states
  assert states[component_ids.TRAINER] == 'COMPLETE', states
