"""Spans through the compiled spec: like, like, drifted, in both shapes.

The Kubeflow spec is compiled from a folder of span folders, then rehearsed
three times on one stand-in bucket (what `python -m rehearsal --keep_bucket`
does), a span folder added before each rehearsal, as new data lands between
scheduled runs: the second rehearsal trains on spans 1 and 2, the third
(fares three times higher) stops in the anomaly gate naming `fare`, before
Transform, and the model pushed to the bucket stays byte for byte the same.
Small spans and few steps: the mechanics are under test, not the model.
"""
import os
import shutil

import pytest

from pipeline.components import accepted_spans
from pipeline.kfp_runtime import kfp_compat
from rehearsal import executor_input
from rehearsal import rehearse as rehearsal
from tests import helpers

pytestmark = pytest.mark.slow

SPAN_ROWS = 600
SETTINGS = {
    'GOOGLE_CLOUD_PROJECT': 'rehearsal-test',
    'PIPELINE_IMAGE_TAG': 'test',
    'TRAIN_NUM_STEPS': '40',
    'TRAINER_EVAL_NUM_STEPS': '2',
    'TRAIN_WINDOW_SPANS': '3',
    'EVAL_ACCURACY_THRESHOLD': '0.5',
    'EVAL_BASELINE_TOLERANCE': '0.3',
}
BUCKET = 'rehearsal-test-taxi-tips'
DATA_URI = f'gs://{BUCKET}/input/data'


@pytest.fixture(scope='module')
def span_source(tmp_path_factory):
  """span-1 and span-2 drawn from the bundled data; span-3 with every fare
  three times higher (the draw of tests/test_spans_e2e.py: at this size
  the first two do not drift from each other)."""
  folder = tmp_path_factory.mktemp('span_source')
  helpers.write_drift_spans(folder, SPAN_ROWS)
  return folder


@pytest.fixture(scope='module')
def spec_path(span_source, tmp_path_factory):
  data = tmp_path_factory.mktemp('compile_data')
  shutil.copytree(span_source / 'span-1', data / 'span-1')
  return rehearsal.compile_spec(str(tmp_path_factory.mktemp('compiled')),
                                {**SETTINGS, 'DATA_PATH': str(data)})


def _rehearse_spans(spec_path, span_source, tmp_path_factory, shape):
  """Three rehearsals on one bucket, a span added before each."""
  work_dir = str(tmp_path_factory.mktemp(f'spans_{shape}'))
  data = tmp_path_factory.mktemp(f'data_{shape}')
  serving = os.path.join(work_dir, 'gcs', BUCKET, 'serving_model')
  launcher = rehearsal.Launcher(mode=rehearsal.IN_PROCESS, compat=True)
  found = {}
  try:
    for span in (1, 2):
      shutil.copytree(span_source / f'span-{span}', data / f'span-{span}')
      (found[span],) = rehearsal.rehearse(spec_path, shape, work_dir,
                                          str(data), DATA_URI, runs=1,
                                          launcher=launcher)
    found['served'] = helpers.tree_digest(serving)
    shutil.copytree(span_source / 'span-3', data / 'span-3')
    with pytest.raises(rehearsal.TaskFailed) as stopped:
      rehearsal.rehearse(spec_path, shape, work_dir, str(data), DATA_URI,
                         runs=1, launcher=launcher)
    found[3] = stopped.value
  finally:
    kfp_compat.uninstall()  # in-process: leave TFX as other tests expect it
  found['served_after'] = helpers.tree_digest(serving)
  found['record'] = accepted_spans.accepted_spans(os.path.join(
      work_dir, 'gcs', BUCKET, 'output', 'taxi-tips',
      accepted_spans.RECORD_FOLDER))
  found['staged'] = sorted(os.listdir(rehearsal.localize(
      DATA_URI, os.path.join(work_dir, 'gcs'))))
  return found


@pytest.fixture(scope='module', params=executor_input.SHAPES)
def span_runs(request, spec_path, span_source, tmp_path_factory):
  return _rehearse_spans(spec_path, span_source, tmp_path_factory,
                         request.param)


def test_span_folders_are_staged_as_they_are(span_runs):
  assert span_runs['staged'] == ['span-1', 'span-2', 'span-3']


def test_each_rehearsal_trains_on_the_window_of_accepted_spans(span_runs):
  assert rehearsal.trained_spans(span_runs[1]) == [1]
  assert rehearsal.trained_spans(span_runs[2]) == [1, 2]
  assert 'Run 1: spans trained on: 1, 2' in rehearsal.describe(span_runs[2])
  (evaluator,) = [task for task in span_runs[2].tasks.values()
                  if task.outputs_of_type(rehearsal.BLESSING)]
  # The Evaluator judges the newest span's eval split: ExampleGen's output.
  examples = evaluator.executor_input['inputs']['artifacts']['examples']
  # ExampleGen's span is a custom property of a type that also has a
  # `span` property: TFX's entrypoint sends it as 'custom:span'.
  metadata = examples['artifacts'][0]['metadata']
  assert int(float(metadata['custom:span'])) == 2


def test_a_drifted_span_stops_before_transform_naming_the_column(span_runs):
  stopped = span_runs[3]
  assert stopped.task == 'AnomalyGate'
  assert 'the new span drifted from span 2' in stopped.reason
  assert 'fare: Jensen-Shannon divergence' in stopped.reason
  # Refused: never a reference, never in a later window.
  assert [a.span for a in span_runs['record']] == [1, 2]
  assert span_runs['served'] and span_runs['served_after'] == (
      span_runs['served'])
