"""Session fixtures: a small slice of the bundled data, the suite's one
small end-to-end run and the model it pushed (helpers.py holds what the
tests share besides)."""
from typing import NamedTuple, Tuple

import pytest

from local import run_artifacts
from tests import helpers


@pytest.fixture(scope='session')
def data_slice(tmp_path_factory) -> str:
  """A folder with a SLICE_ROWS-row CSV of the bundled data."""
  folder = tmp_path_factory.mktemp('data_slice')
  helpers.write_slice(str(folder))
  return str(folder)


@pytest.fixture(scope='session')
def local_runs(data_slice, tmp_path_factory
              ) -> Tuple[helpers.LocalRun, helpers.LocalRun]:
  """The one small end-to-end run of the suite, made twice on one output
  folder: the second takes most results from the cache and has the first's
  model as its baseline. Shared by every test that reads a run's outputs
  (end-to-end, report, predict, notebooks)."""
  output = tmp_path_factory.mktemp('e2e')
  first = helpers.run_local_pipeline(data_slice, output, 'e2e-test')
  assert first.returncode == 0, first.output[-3000:]
  second = helpers.run_local_pipeline(data_slice, output, 'e2e-test')
  assert second.returncode == 0, second.output[-3000:]
  return first, second


class PushedModel(NamedTuple):
  """The newest model the suite's end-to-end run pushed."""
  output_dir: str
  pipeline_name: str
  model_dir: str  # the pushed SavedModel
  schema_file: str  # the schema of the run that pushed it


@pytest.fixture(scope='session')
def pushed_model(local_runs) -> PushedModel:
  """The newest model `local_runs` pushed (read by predict, serve and the
  signature tests)."""
  _, second = local_runs
  model_dir = run_artifacts.newest_pushed_model(second.serving_model_dir)
  assert model_dir, second.output[-2000:]
  run = run_artifacts.load_run(second.output_dir, second.pipeline_name)
  return PushedModel(second.output_dir, second.pipeline_name, model_dir,
                     run.schema_file)
