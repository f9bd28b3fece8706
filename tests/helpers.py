"""What the tests share: CSV inputs, local runs, and where a run's outputs are.

CSV inputs: a slice of the bundled data, its rows to change and write back,
any header and rows, and small tables of other shapes built from
scikit-learn's bundled data sets (bench/datasets.py; nothing is downloaded).
Each writer puts one CSV file into a folder (the folder is what DATA_PATH
names) and returns the file's path.

Cloud Storage: `storage_emulator` starts the emulator the tests talk to
with the official client (google-cloud-storage) on loopback.

Local runs: `run_local_pipeline` runs local_runner.py in a subprocess with
settings as environment overrides. The `LocalRun` it returns reads the run id
and the report path from the runner's output, and finds the metadata store
and the served models through local/output_layout.py, as the runner does.
"""
import contextlib
import csv
import hashlib
import os
import re
import socket
import subprocess
import sys
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from bench import datasets
from local import output_layout
from pipeline.data_files import bundled_data
from pipeline import configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED_CSV = datasets.BUNDLED_CSV
# The bundled pipeline's reviewed schema; runs of a slice of the bundled data
# under another pipeline name check against it too (local_runner_env).
REVIEWED_SCHEMA = os.path.join(REPO, 'schema', 'taxi-tips', 'schema.pbtxt')
LOCAL_RUNNER = os.path.join(REPO, 'local_runner.py')
CSV_NAME = datasets.CSV_NAME  # the name every writer gives its file

# Small enough for CI on 2 cores (start-up, not data, dominates a run), large
# enough for the model to clear the default accuracy gate (0.85) with a few
# hundred training steps: 600 rows gave an eval split of 187 rows and 0.83.
SLICE_ROWS = 2000
SLICE_TRAIN_STEPS = 300

Header = List[str]
Rows = List[List[str]]


# --- Cloud Storage ---------------------------------------------------------


@contextlib.contextmanager
def storage_emulator() -> Iterator[str]:
  """Cloud Storage's emulator (gcp-storage-emulator), in memory, on a free
  port of 127.0.0.1 while the block runs.

  Yields its address, for STORAGE_EMULATOR_HOST: google-cloud-storage's
  client then talks to it instead of Google Cloud. Stopped on leaving the
  block, whatever happened in it.
  """
  # pylint: disable=g-import-not-at-top
  from gcp_storage_emulator.server import create_server
  # pylint: enable=g-import-not-at-top
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
  server = create_server('127.0.0.1', port, in_memory=True)
  server.start()
  try:
    yield f'http://127.0.0.1:{port}'
  finally:
    server.stop()


# --- CSV inputs --------------------------------------------------------------

# The writers of other data sets live in bench/datasets.py, which the quality
# table (bench/quality.py) runs too.
csv_path = datasets.csv_path
read_csv = datasets.read_csv
drop_columns = datasets.drop_columns
write_csv = datasets.write_csv
write_breast_cancer = datasets.write_breast_cancer
write_iris = datasets.write_iris
write_diabetes = datasets.write_diabetes
write_taxi_payments = datasets.write_taxi_payments


def bundled_rows(rows: int = SLICE_ROWS) -> Tuple[Header, Rows]:
  """The header and the first `rows` rows of the bundled data, to change."""
  return read_csv(BUNDLED_CSV, rows)


def write_drift_spans(folder, span_rows: int) -> None:
  """span-1/ and span-2/ drawn from the bundled data (seeded: at a few hundred
  rows they do not drift from each other), span-3/ with every fare three
  times higher: the continuous-training scenario of the spans tests."""
  header, rows = bundled_rows(rows=None)
  order = np.random.default_rng(16).permutation(len(rows))
  fare = header.index('fare')
  for span in (1, 2, 3):
    chunk = [list(rows[i])
             for i in order[(span - 1) * span_rows:span * span_rows]]
    if span == 3:
      for row in chunk:
        row[fare] = row[fare] and f'{float(row[fare]) * 3:.2f}'
    write_csv(os.path.join(str(folder), f'span-{span}'), header, chunk)


def write_slice(folder, rows: int = SLICE_ROWS) -> str:
  """Copies the header and the first `rows` lines of the bundled data, byte
  for byte, into `folder`."""
  os.makedirs(folder, exist_ok=True)
  with open(BUNDLED_CSV) as source:
    lines = [next(source) for _ in range(rows + 1)]
  path = csv_path(folder)
  with open(path, 'w') as target:
    target.writelines(lines)
  return path


# --- Files a run leaves ------------------------------------------------------


def tree_digest(folder: str) -> Dict[str, str]:
  """{relative path: sha256 of a file, or 'folder'} of everything under
  `folder` ({} if it does not exist)."""
  digest = {}
  for root, folders, files in os.walk(folder):
    for name in folders:
      digest[os.path.relpath(os.path.join(root, name), folder)] = 'folder'
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        digest[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()).hexdigest()
  return digest


def csv_to_examples(lines: Iterable[str], schema) -> List[bytes]:
  """Serialized tf.Examples for the rows of CSV text with a header line,
  typed by `schema` as a client of the served model types them
  (local/csv_examples.py)."""
  from local import csv_examples  # pylint: disable=g-import-not-at-top
  return [csv_examples.row_to_example(row, schema).SerializeToString()
          for row in csv.DictReader(lines)]

# --- Local runs --------------------------------------------------------------


class LocalRun(NamedTuple):
  """One local_runner.py process: its exit status, output and settings."""
  returncode: int
  output: str  # stdout and stderr together
  output_dir: str
  pipeline_name: str

  @property
  def metadata_path(self) -> str:
    return output_layout.metadata_path(self.output_dir, self.pipeline_name)

  @property
  def serving_model_dir(self) -> str:
    return output_layout.serving_model_dir(self.output_dir, self.pipeline_name)

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

  def summary(self):
    """This run's local.run_summary.RunSummary, read from its metadata store.

    Imports TFX (seconds), so only the tests that read a run pay for it.
    """
    # pylint: disable=g-import-not-at-top
    from tfx.orchestration import metadata
    from local import run_summary
    # pylint: enable=g-import-not-at-top
    assert self.run_id, self.output[-3000:]
    connection = metadata.sqlite_metadata_connection_config(self.metadata_path)
    return run_summary.summarize(connection, self.pipeline_name, self.run_id)


def local_runner_env(data_dir, output_dir, pipeline_name: str,
                     **env: str) -> Dict[str, str]:
  """This process's environment without any setting of pipeline/configs.py
  (the run sees the defaults the tests compare with), a small run's
  settings, then `env`. A run of the bundled data's columns (a slice, a
  copy) checks against the bundled pipeline's reviewed schema, as the
  bundled pipeline does, whatever the test's pipeline name."""
  settings = set(configs.Settings.names())
  environment = {name: value for name, value in os.environ.items()
                 if name not in settings}
  if bundled_data.is_bundled_data(str(data_dir)):
    environment['SCHEMA_PATH'] = REVIEWED_SCHEMA
  environment.update({
      'PIPELINE_NAME': pipeline_name,
      'DATA_PATH': str(data_dir),
      'LOCAL_OUTPUT_DIR': str(output_dir),
      'TRAIN_NUM_STEPS': str(SLICE_TRAIN_STEPS),
      'TRAINER_EVAL_NUM_STEPS': '5',
  })
  environment.update(env)
  return environment


def run_local_pipeline(data_dir, output_dir, pipeline_name: Optional[str],
                       timeout: int = 900, runner: str = LOCAL_RUNNER,
                       **env: str) -> LocalRun:
  """Runs local_runner.py (or `runner`, a copy of it in a copy of the
  project, from its own folder) in a subprocess with settings as env
  overrides; with `pipeline_name` None, PIPELINE_NAME is left unset (its
  default comes from the data)."""
  environment = local_runner_env(data_dir, output_dir, pipeline_name or '',
                                 **env)
  if pipeline_name is None:
    del environment['PIPELINE_NAME']
    pipeline_name = configs.load(environment).PIPELINE_NAME
  runner = os.path.abspath(runner)
  done = subprocess.run(
      [sys.executable, runner], cwd=os.path.dirname(runner), env=environment,
      capture_output=True, text=True, timeout=timeout, check=False)
  return LocalRun(done.returncode, done.stdout + done.stderr, str(output_dir),
                  pipeline_name)
