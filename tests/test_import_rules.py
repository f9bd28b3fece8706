"""The runners' place in the layers of .importlinter (docs/architecture.md).

local_runner.py and kubeflow_runner.py are scripts, not packages, so
import-linter cannot read them. They sit between the benchmarks and the
tool packages: a runner may import the tools, `pipeline` and `models`, never
`bench` or `tests`, nor the other runner; no package below them imports a
runner. These tests read every import statement, wherever it stands (in a
function, under TYPE_CHECKING), from the sources.
"""
import ast
import os
from typing import Iterator, Set

import pytest

from tests import helpers

RUNNERS = ('local_runner', 'kubeflow_runner')
# Below the runners: the tool packages and what ships.
BELOW_RUNNERS = ('local', 'deploy', 'rehearsal', 'pipeline', 'models')
ABOVE_RUNNERS = ('bench', 'tests')


def imported_top_level_names(source: str) -> Set[str]:
  """The first component of every module an import statement in `source`
  names (relative imports are inside their own package: left out)."""
  names = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names.update(alias.name.split('.')[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.add(node.module.split('.')[0])
  return names


def _python_files(package: str) -> Iterator[str]:
  for folder, _, files in os.walk(os.path.join(helpers.REPO, package)):
    for name in files:
      if name.endswith('.py'):
        yield os.path.join(folder, name)


def _read(path: str) -> str:
  with open(path, encoding='utf-8') as f:
    return f.read()


def test_the_import_reader_sees_every_form():
  source = ('import bench.measure\n'
            'from tests import helpers\n'
            'def f():\n'
            '  from local.run import progress\n'
            '  import kubeflow_runner as k\n'
            'from . import sibling\n')
  assert imported_top_level_names(source) == {'bench', 'tests', 'local',
                                              'kubeflow_runner'}


@pytest.mark.parametrize('runner', RUNNERS)
def test_a_runner_imports_only_the_layers_below_it(runner):
  imported = imported_top_level_names(
      _read(os.path.join(helpers.REPO, runner + '.py')))
  assert imported & {'pipeline', 'models'}, imported  # it reads its imports
  assert not imported & set(ABOVE_RUNNERS + RUNNERS), imported


@pytest.mark.parametrize('package', BELOW_RUNNERS)
def test_no_package_below_the_runners_imports_one(package):
  importers = [
      os.path.relpath(path, helpers.REPO) for path in _python_files(package)
      if imported_top_level_names(_read(path)) & set(RUNNERS)]
  assert not importers
