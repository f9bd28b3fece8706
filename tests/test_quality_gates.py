"""Bad data the pre-flight cannot see stops the run and never replaces the
served model.

One good run (module fixture) pushes a model against the reviewed schema;
each bad-data case then runs the pipeline in the same output folder and
metadata store, up to the anomaly gate, and checks the error text, the exit
status, that no model was pushed and that the served model's files are
byte-identical. (Bad data the pre-flight catches, before any Beam job, is
tested case by case in test_data_checks.py, and once through the command
line there.) The last tests stop a run in the middle of Transform and rerun
it.
"""
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from local.run import interrupted_runs
from local.schema import schema_export
from tests import helpers

pytestmark = pytest.mark.slow

PIPELINE = 'gates-test'
# Rows 1..SAMPLE of each file are pre-flight checked; bad values placed after
# them can only be caught by the reviewed schema and the anomaly gate.
SAMPLE = 1000


class Served:
  """The module's good run: its output folder and the served model."""

  def __init__(self, run: helpers.LocalRun):
    self.output_dir = run.output_dir
    self.metadata_path = run.metadata_path
    self.serving_dir = run.serving_model_dir
    self.digest = helpers.tree_digest(self.serving_dir)

  def assert_unchanged(self):
    assert helpers.tree_digest(self.serving_dir) == self.digest


@pytest.fixture(scope='module')
def served(tmp_path_factory, data_slice):
  output = str(tmp_path_factory.mktemp('gates'))
  run = helpers.run_local_pipeline(data_slice, output, PIPELINE,
                                   PREFLIGHT_SAMPLE_ROWS=str(SAMPLE))
  assert run.returncode == 0, run.output[-3000:]
  assert 'Pushed model:' in run.output, run.output[-3000:]
  result = Served(run)
  assert len(os.listdir(result.serving_dir)) == 1 and result.digest
  return result


def _run_bad(served, data_dir):
  run = helpers.run_local_pipeline(data_dir, served.output_dir, PIPELINE,
                                   PREFLIGHT_SAMPLE_ROWS=str(SAMPLE))
  assert run.returncode == 1, run.output[-3000:]
  assert 'Pushed model:' not in run.output
  served.assert_unchanged()
  return run.output


def _data_error_line(output):
  lines = [l for l in output.splitlines() if l.startswith('data error')]
  assert len(lines) == 1, output[-3000:]
  return lines[0]


def _set_column(header, rows, column, value_of, indices):
  i = header.index(column)
  for n in indices:
    rows[n][i] = value_of(n)
  return rows


# --- The anomaly gate: the whole data against the reviewed schema -----------


def _gate_failure(output):
  line = _data_error_line(output)
  assert line.startswith('data error in AnomalyGate: the data does not match '
                         'the schema')
  assert 'AnomalyGate' in output and 'FAILED' in output
  assert '] Transform ' not in output  # nothing after the gate ran
  assert 'Anomalies file(s): ' in line and 'SchemaDiff.pb' in line
  return line


def test_numeric_column_with_text_in_5_percent_of_rows(served, tmp_path):
  header, rows = helpers.bundled_rows()
  bad = range(len(rows) - len(rows) // 20, len(rows))  # after the sample
  rows = _set_column(header, rows, 'fare', lambda n: f'${n}', bad)
  helpers.write_csv(tmp_path, header, rows)
  line = _gate_failure(_run_bad(served, str(tmp_path)))
  assert 'fare: ' in line and 'type' in line.lower()


def test_30_percent_unseen_categories(served, tmp_path):
  header, rows = helpers.bundled_rows()
  rows = _set_column(header, rows, 'company', lambda n: f'Unseen Cab Co {n}',
                     range(0, len(rows), 3))
  helpers.write_csv(tmp_path, header, rows)
  line = _gate_failure(_run_bad(served, str(tmp_path)))
  assert 'company: Unexpected string values' in line
  assert 'Unseen Cab Co' in line


# --- Reviewing a schema ------------------------------------------------------


def test_schema_export_copies_the_newest_schema_for_review(
    served, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv('LOCAL_OUTPUT_DIR', served.output_dir)
  monkeypatch.setenv('PIPELINE_NAME', PIPELINE)
  target = tmp_path / 'review' / 'schema.pbtxt'
  assert schema_export.main([f'--output={target}']) == 0
  assert f'Wrote {target} from {served.output_dir}' in capsys.readouterr().out
  # The good run used the reviewed schema: exported, it is the same text.
  with open(helpers.REVIEWED_SCHEMA) as f:
    assert target.read_text() == f.read()


def test_schema_export_without_a_run(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv('LOCAL_OUTPUT_DIR', str(tmp_path))
  target = tmp_path / 'schema.pbtxt'
  assert schema_export.main([f'--output={target}']) == 1
  assert 'no schema in ' in capsys.readouterr().err
  assert not target.exists()


# --- Interrupted runs --------------------------------------------------------


def _running_transform(metadata_path):
  """Whether the store shows a RUNNING Transform execution."""
  if not os.path.exists(metadata_path):
    return False
  db = sqlite3.connect(f'file:{metadata_path}?mode=ro', uri=True, timeout=1)
  try:
    return bool(db.execute(
        'SELECT 1 FROM Execution e JOIN Association a ON a.execution_id = e.id '
        'JOIN Context c ON c.id = a.context_id WHERE c.name = ? AND '
        'e.last_known_state = 2', (f'{PIPELINE}.Transform',)).fetchall())
  except sqlite3.OperationalError:  # locked or not created yet
    return False
  finally:
    db.close()


@pytest.fixture(scope='module')
def new_data(tmp_path_factory):
  """Data no earlier run saw (1500 rows), so runs on it are not cached."""
  folder = str(tmp_path_factory.mktemp('new_data'))
  helpers.write_slice(folder, rows=1500)
  return folder


def _interrupt_in_transform(served, folder, log_path, signal_number):
  """Starts a run, sends `signal_number` to its process group mid-Transform.

  Returns:
    The run's exit status and output.
  """
  env = helpers.local_runner_env(folder, served.output_dir, PIPELINE)
  with open(log_path, 'w') as log:
    process = subprocess.Popen(
        [sys.executable, helpers.LOCAL_RUNNER],
        cwd=helpers.REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own process group, as in a terminal
    try:
      deadline = time.monotonic() + 300
      while not _running_transform(served.metadata_path):
        assert process.poll() is None, open(log_path).read()
        assert time.monotonic() < deadline, 'Transform never started'
        time.sleep(0.05)
      # Inside Transform: it takes about 2 s on the suite's slice of the
      # bundled data on a fast machine (a fixed 2 s here once let it finish
      # first), and longer on a slow one.
      time.sleep(0.3)
      assert process.poll() is None, 'the run ended before it was stopped'
      os.killpg(process.pid, signal_number)
      process.wait(timeout=120)
    finally:
      if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
  with open(log_path) as log:
    return process.returncode, log.read()


def test_ctrl_c_during_transform_stops_cleanly(served, new_data, tmp_path):
  status, output = _interrupt_in_transform(
      served, new_data, tmp_path / 'interrupted.log', signal.SIGINT)
  assert status == 130, output[-3000:]
  assert re.search(r'\] Transform +STOPPED', output), output[-3000:]
  assert 'Interrupted; marked 1 running execution(s) as abandoned' in output
  served.assert_unchanged()
  db = sqlite3.connect(served.metadata_path)
  try:
    assert db.execute('SELECT COUNT(*) FROM Execution WHERE '
                      'last_known_state = 2').fetchone() == (0,)
  finally:
    db.close()


def test_sigkill_during_transform_then_rerun_completes_from_cache(
    served, new_data, tmp_path):
  status, output = _interrupt_in_transform(
      served, new_data, tmp_path / 'killed.log', signal.SIGKILL)
  assert status == -signal.SIGKILL, output[-3000:]
  served.assert_unchanged()

  rerun = helpers.run_local_pipeline(new_data, served.output_dir, PIPELINE)
  assert rerun.returncode == 0, rerun.output[-3000:]
  assert ('Marked 1 execution(s) left running by an interrupted run as '
          'abandoned') in rerun.output
  summary = rerun.summary()
  states = {c: r.state for c, r in summary.components.items()}
  for cached in ('CsvExampleGen', 'StatisticsGen', 'SchemaGen',
                 'ExampleValidator', 'AnomalyGate'):
    assert states[cached] == 'CACHED', states
  for executed in ('Transform', 'Trainer', 'Evaluator', 'Pusher'):
    assert states[executed] == 'COMPLETE', states
  interrupted_runs.check_integrity(served.metadata_path)  # raises unless "ok"
  db = sqlite3.connect(served.metadata_path)
  try:
    assert db.execute('PRAGMA integrity_check').fetchall() == [('ok',)]
    assert db.execute('SELECT COUNT(*) FROM Execution WHERE '
                      'last_known_state = 2').fetchone() == (0,)
  finally:
    db.close()
