"""Spans end to end on small data: like, like, drifted.

Three spans of 600 rows each, drawn at random (seeded, disjoint) from the
bundled data; the third with every fare tripled. Runs one: span 1, with a
second run of the same pipeline started together, which is refused. Run
two: span 2, trained on the window of spans 1 and 2. Run three: span 3,
stopped before Transform by the drift of `fare`, the served model untouched.
"""
import os
import shutil
import subprocess
import sys
import time

import pytest
from ml_metadata import metadata_store
from tfx.orchestration import metadata

from local.run import run_spans
from pipeline import component_ids
from pipeline import eval_config
from tests import helpers

pytestmark = pytest.mark.slow

PIPELINE = 'spans-e2e'
SPAN_ROWS = 600
BUSY = 75  # local_runner.BUSY
SETTINGS = dict(
    TRAIN_NUM_STEPS='100',
    TRAIN_WINDOW_SPANS='2',
    # Few rows, few steps: the gates are about spans here, not accuracy.
    EVAL_ACCURACY_THRESHOLD='0.6',
    EVAL_BASELINE_TOLERANCE='0.2',
)


def _start(data, output) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, helpers.LOCAL_RUNNER], cwd=helpers.REPO,
      env=helpers.local_runner_env(data, output, PIPELINE, **SETTINGS),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, output) -> helpers.LocalRun:
  out, _ = process.communicate(timeout=900)
  return helpers.LocalRun(process.returncode, out, str(output), PIPELINE)


def _store(run: helpers.LocalRun) -> metadata_store.MetadataStore:
  return metadata_store.MetadataStore(
      metadata.sqlite_metadata_connection_config(run.metadata_path))


@pytest.fixture(scope='module')
def span_runs(tmp_path_factory):
  """{'together': (run, refused), 'window': run, 'drifted': run}, the
  serving folder after the runs started together, and the served models'
  digests before and after the drifted span."""
  source = tmp_path_factory.mktemp('spans')
  helpers.write_drift_spans(source, SPAN_ROWS)
  data = tmp_path_factory.mktemp('data')
  output = tmp_path_factory.mktemp('out')
  runs = {}
  shutil.copytree(source / 'span-1', data / 'span-1')
  first = _start(data, output)
  time.sleep(0.5)  # started together: whichever takes the lock first runs
  second = _start(data, output)
  runs['together'] = sorted([_finish(first, output),
                             _finish(second, output)],
                            key=lambda run: run.returncode)
  runs['pushed_together'] = os.listdir(runs['together'][0].serving_model_dir)
  shutil.copytree(source / 'span-2', data / 'span-2')
  runs['window'] = helpers.run_local_pipeline(data, output, PIPELINE,
                                              **SETTINGS)
  served = helpers.tree_digest(runs['window'].serving_model_dir)
  shutil.copytree(source / 'span-3', data / 'span-3')
  runs['drifted'] = helpers.run_local_pipeline(data, output, PIPELINE,
                                               **SETTINGS)
  runs['served'] = (served,
                    helpers.tree_digest(runs['drifted'].serving_model_dir))
  return runs


def test_runs_started_together_one_runs_the_other_is_refused(span_runs):
  ran, refused = span_runs['together']
  assert ran.returncode == 0, ran.output[-3000:]
  assert refused.returncode == BUSY, refused.output[-3000:]
  assert (f'error: run {ran.run_id} (process ' in refused.output and
          'is running on the same output folder' in refused.output)
  assert '] CsvExampleGen' not in refused.output  # nothing ran
  assert len(span_runs['pushed_together']) == 1  # one push
  assert ran.summary().run_id == ran.run_id


def test_each_run_ingests_the_newest_span_and_trains_on_the_window(span_runs):
  ran, _ = span_runs['together']
  window = span_runs['window']
  assert window.returncode == 0, window.output[-3000:]
  assert 'Span 2: ingesting ' in window.output
  assert 'Span 2 ingested; the model was trained on span(s) 1, 2' in (
      window.output)
  store = _store(window)
  # Read from ML Metadata under each run's own id, as its summary printed.
  assert window.run_id != ran.run_id
  assert run_spans.ingested_span(store, PIPELINE, ran.run_id) == 1
  assert run_spans.trained_spans(store, PIPELINE, ran.run_id) == [1]
  assert run_spans.ingested_span(store, PIPELINE, window.run_id) == 2
  assert run_spans.trained_spans(store, PIPELINE, window.run_id) == [1, 2]
  # The Evaluator judged the newest span's eval split only.
  assert window.summary().metrics[eval_config.EXAMPLE_COUNT.key] < SPAN_ROWS


def test_a_drifted_span_stops_before_transform_naming_the_column(span_runs):
  drifted = span_runs['drifted']
  assert drifted.returncode == 1, drifted.output[-3000:]
  assert ('data error in AnomalyGate: the new span drifted from span 2 in '
          '1 column(s): fare: Jensen-Shannon divergence') in drifted.output
  assert drifted.run_id is None  # no summary: the run stopped
  store = _store(drifted)
  # Run ids are start times: the newest sorts last.
  newest = max(c.name for c in store.get_contexts_by_type('pipeline_run'))
  assert run_spans.ingested_span(store, PIPELINE, newest) == 3
  assert run_spans.trained_spans(store, PIPELINE, newest) == []
  assert f'] {component_ids.TRANSFORM} ' not in drifted.output
  before, after = span_runs['served']
  assert before and after == before
