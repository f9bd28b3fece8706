"""Shared fixtures: a small slice of the bundled data and a local-run helper."""
import os
import re
import subprocess
import sys
from typing import NamedTuple, Optional, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED_CSV = os.path.join(REPO, 'data', 'data.csv')

# Small enough for CI on 2 cores (start-up, not data, dominates a run), large
# enough for the model to clear the default accuracy gate (0.85) with a few
# hundred training steps: 600 rows gave an eval split of 187 rows and 0.83.
SLICE_ROWS = 2000
SLICE_TRAIN_STEPS = 300


class LocalRun(NamedTuple):
  returncode: int
  output: str  # stdout and stderr together
  output_dir: str
  pipeline_name: str

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_dir, 'metadata', self.pipeline_name,
                        'metadata.db')

  @property
  def run_id(self) -> Optional[str]:
    """The run id from the summary line 'Run <id> finished in ...'."""
    found = re.search(r'^Run (\S+) finished', self.output, re.MULTILINE)
    return found.group(1) if found else None

  @property
  def report_path(self) -> Optional[str]:
    """The report path from the runner's last line 'Report: <path>'."""
    found = re.search(r'^Report: (.+)$', self.output, re.MULTILINE)
    return found.group(1).strip() if found else None


def write_slice(folder, rows: int = SLICE_ROWS) -> str:
  """Writes the header and first `rows` rows of the bundled CSV to folder."""
  os.makedirs(folder, exist_ok=True)
  with open(BUNDLED_CSV) as source:
    lines = [next(source) for _ in range(rows + 1)]
  path = os.path.join(folder, 'data.csv')
  with open(path, 'w') as target:
    target.writelines(lines)
  return path


def run_local_pipeline(data_dir: str, output_dir: str, pipeline_name: str,
                       timeout: int = 900, **env: str) -> LocalRun:
  """Runs local_runner.py in a subprocess with settings as env overrides."""
  environment = dict(os.environ)
  environment.update({
      'PIPELINE_NAME': pipeline_name,
      'DATA_PATH': str(data_dir),
      'LOCAL_OUTPUT_DIR': str(output_dir),
      'TRAIN_NUM_STEPS': str(SLICE_TRAIN_STEPS),
      'TRAINER_EVAL_NUM_STEPS': '5',
  })
  environment.update(env)
  done = subprocess.run([sys.executable, os.path.join(REPO, 'local_runner.py')],
                        cwd=REPO, env=environment, capture_output=True,
                        text=True, timeout=timeout, check=False)
  return LocalRun(done.returncode, done.stdout + done.stderr, str(output_dir),
                  pipeline_name)


@pytest.fixture(scope='session')
def data_slice(tmp_path_factory) -> str:
  """A folder with a SLICE_ROWS-row CSV of the bundled data."""
  folder = tmp_path_factory.mktemp('data_slice')
  write_slice(str(folder))
  return str(folder)


@pytest.fixture(scope='session')
def local_runs(data_slice, tmp_path_factory) -> Tuple[LocalRun, LocalRun]:
  """The one small end-to-end run of the suite, made twice on one output
  folder: the second takes most results from the cache and has the first's
  model as its baseline. Shared by every test that reads a run's outputs
  (end-to-end, report, predict, notebooks)."""
  output = tmp_path_factory.mktemp('e2e')
  first = run_local_pipeline(data_slice, output, 'e2e-test')
  assert first.returncode == 0, first.output[-3000:]
  second = run_local_pipeline(data_slice, output, 'e2e-test')
  assert second.returncode == 0, second.output[-3000:]
  return first, second
