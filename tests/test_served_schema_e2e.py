"""Data checks of a pipeline without a reviewed schema, through the whole
local pipeline, on the bundled data and each other data set the tests use.

Each data set is cut into two random halves. A pipeline of its own (no
reviewed schema) runs the first half: a first run, with nothing to check
its data against, which says so, and pushes a model. Then:

- the second half passes against the schema of the data the served model
  was trained on, with no step by the user;
- the second half passes the first half's schema approved with `make
  schema` (SCHEMA_PATH);
- 30 % unseen values in a text column, text in 5 % of a numeric column and a
  header-only file stop the run, naming the column, with the served model
  byte for byte as it was.

With span folders (the bundled data): after `make schema` on span 1, span 2
runs and a span that drifted stops; and the same with no approval, against
the served model's schema.

Few training steps and low gates: the data checks are under test, not the
model (which must only be pushed).
"""
import os
import shutil
import subprocess
import sys
from typing import Callable, Dict, NamedTuple

import numpy as np
import pandas as pd
import pytest

from pipeline import configs
from pipeline import problem_spec
from tests import helpers

pytestmark = pytest.mark.slow

_STEPS = '60'
_FIRST_RUN = 'nothing to check it against on a first run'
_CHECKED = ('checked against the schema of the data the served model was '
            'trained on')


class DataSet(NamedTuple):
  writer: Callable[[str], str]
  settings: Dict[str, str]
  text_column: str  # a column with a few values: 30 % unseen must stop
  numeric_column: str  # a column the model reads: 5 % text must stop


def _bundled_slice(folder: str) -> str:
  return helpers.write_slice(folder, rows=1000)


_DATA_SETS = {
    'taxi': DataSet(_bundled_slice, {'EVAL_ACCURACY_THRESHOLD': '0.5'},
                    'payment_type', 'trip_miles'),
    'taxi-payments': DataSet(
        helpers.write_taxi_payments,
        {'LABEL_KEY': 'payment_type', 'EVAL_ACCURACY_THRESHOLD': '0.3'},
        'payment_type', 'fare'),
    'breast-cancer': DataSet(
        helpers.write_breast_cancer,
        {'LABEL_KEY': 'diagnosis', 'EVAL_ACCURACY_THRESHOLD': '0.5'},
        'diagnosis', 'mean_radius'),
    'iris': DataSet(helpers.write_iris,
                    {'LABEL_KEY': 'species', 'EVAL_ACCURACY_THRESHOLD': '0.2'},
                    'petal_size', 'sepal_length'),
    'diabetes': DataSet(helpers.write_diabetes,
                        {'LABEL_KEY': 'progression',
                         'EVAL_RMSE_THRESHOLD': '1000'},
                        'sex', 'bmi'),
}


def _halves(path: str, seed: int):
  frame = pd.read_csv(path, keep_default_na=False, dtype=str)
  order = np.random.default_rng(seed).permutation(len(frame))
  half = len(frame) // 2
  return (frame.iloc[np.sort(order[:half])].reset_index(drop=True),
          frame.iloc[np.sort(order[half:])].reset_index(drop=True))


def _write(frame: pd.DataFrame, folder) -> str:
  os.makedirs(folder, exist_ok=True)
  path = helpers.csv_path(folder)
  frame.to_csv(path, index=False)
  return path


class Pipeline(NamedTuple):
  """A pipeline without a reviewed schema, after its first run."""
  name: str
  data_set: DataSet
  output_dir: str
  schema_path: str  # SCHEMA_PATH: no file there
  approved: str  # the first run's schema, exported by `make schema`
  second_half: pd.DataFrame
  first_folder: str  # the first half's DATA_PATH
  first_run: helpers.LocalRun

  def run(self, folder, **settings) -> helpers.LocalRun:
    env = {'TRAIN_NUM_STEPS': _STEPS, 'SCHEMA_PATH': self.schema_path,
           **self.data_set.settings, **settings}
    return helpers.run_local_pipeline(folder, self.output_dir, self.name,
                                      **env)

  def unread_columns(self):
    """LABEL_KEY and DROP_COLUMNS of the first run."""
    return problem_spec.unread_columns(configs.load(helpers.local_runner_env(
        self.first_folder, self.output_dir, self.name,
        **self.data_set.settings)))


def _make_schema(data, output_dir: str, name: str, target: str,
                 settings: Dict[str, str]) -> str:
  """`make schema` for the pipeline's newest run, written to `target`."""
  env = helpers.local_runner_env(data, output_dir, name, **settings)
  done = subprocess.run(
      [sys.executable, '-m', 'local.schema', f'--output={target}'],
      cwd=helpers.REPO, env=env, capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return target


@pytest.fixture(scope='module', params=sorted(_DATA_SETS))
def pipeline(request, tmp_path_factory) -> Pipeline:
  name = request.param
  data_set = _DATA_SETS[name]
  root = tmp_path_factory.mktemp(f'served-{name}')
  first, second = _halves(data_set.writer(str(root / 'whole')), seed=11)
  _write(first, root / 'first')
  output_dir = str(root / 'out')
  schema_path = str(root / 'schema' / 'schema.pbtxt')
  pipeline_name = f'served-{name}'
  run = helpers.run_local_pipeline(
      root / 'first', output_dir, pipeline_name, TRAIN_NUM_STEPS=_STEPS,
      SCHEMA_PATH=schema_path, **data_set.settings)
  assert run.returncode == 0, run.output[-3000:]
  assert run.summary().pushed_to, run.output[-2000:]
  approved = _make_schema(root / 'first', output_dir, pipeline_name,
                          str(root / 'approved.pbtxt'), data_set.settings)
  return Pipeline(pipeline_name, data_set, output_dir, schema_path, approved,
                  second, str(root / 'first'), run)


def test_the_first_run_says_it_had_nothing_to_check_against(pipeline):
  output = pipeline.first_run.output
  assert _FIRST_RUN in output
  # The summary still offers `make schema`.
  assert 'has no reviewed schema yet. Review and approve it' in output
  assert 'make schema`' in output


def test_the_second_half_passes_the_served_models_schema(pipeline, tmp_path):
  _write(pipeline.second_half, tmp_path)
  run = pipeline.run(tmp_path)  # no approval
  assert run.returncode == 0, run.output[-3000:]
  assert _CHECKED in run.output
  summary = run.summary()
  assert summary.components['AnomalyGate'].state == 'COMPLETE'
  # Checked against the schema of the model the first run pushed.
  assert summary.schema_reference == pipeline.first_run.summary().pushed_to


def test_the_second_half_passes_the_first_halfs_approved_schema(
    pipeline, tmp_path):
  _write(pipeline.second_half, tmp_path)
  run = pipeline.run(tmp_path, SCHEMA_PATH=pipeline.approved)
  assert run.returncode == 0, run.output[-3000:]
  assert f'against the reviewed schema {pipeline.approved}' in run.output
  assert run.summary().components['AnomalyGate'].state == 'COMPLETE'


def _refused(pipeline: Pipeline, frame: pd.DataFrame, folder,
             column: str) -> str:
  """Runs `frame`; it must stop naming `column`, the served model unchanged.
  Returns the output."""
  served = helpers.tree_digest(pipeline.first_run.serving_model_dir)
  _write(frame, folder)
  run = pipeline.run(folder)
  assert run.returncode != 0, run.output[-3000:]
  assert column in run.output
  assert helpers.tree_digest(pipeline.first_run.serving_model_dir) == served
  return run.output


def test_thirty_percent_unseen_values_stop_the_run(pipeline, tmp_path):
  column = pipeline.data_set.text_column
  bad = pipeline.second_half.copy()
  rows = np.random.default_rng(3).choice(len(bad), int(len(bad) * 0.3),
                                         replace=False)
  bad.loc[rows, column] = [f'Made-up {i % 50}' for i in range(len(rows))]
  output = _refused(pipeline, bad, tmp_path, column)
  assert 'ENUM_TYPE_UNEXPECTED_STRING_VALUES' in output


def test_text_in_five_percent_of_a_numeric_column_stops_the_run(
    pipeline, tmp_path):
  column = pipeline.data_set.numeric_column
  assert column not in pipeline.unread_columns()
  bad = pipeline.second_half.copy()
  rows = np.random.default_rng(4).choice(len(bad), int(len(bad) * 0.05),
                                         replace=False)
  bad.loc[rows, column] = 'n/a'
  output = _refused(pipeline, bad, tmp_path, column)
  assert 'UNEXPECTED_DATA_TYPE' in output


def test_a_header_only_file_stops_the_run(pipeline, tmp_path):
  output = _refused(pipeline, pipeline.second_half.iloc[:0], tmp_path,
                    helpers.csv_path(tmp_path))
  assert 'no data rows' in output


# --- Spans: drift -------------------------------------------------------------


def _drifted(frame: pd.DataFrame) -> pd.DataFrame:
  """Fares and distances three times what they were."""
  drifted = frame.copy()
  for column in ('fare', 'trip_miles'):
    values = pd.to_numeric(drifted[column], errors='coerce') * 3
    drifted[column] = [f'{v:.2f}' if not np.isnan(v) else ''
                       for v in values]
  return drifted


@pytest.fixture(scope='module')
def spans(tmp_path_factory):
  """Two random halves of the suite's slice of the bundled data (1000 rows
  each: the drift comparators' defaults fit samples of this size), and a
  drifted copy of the second."""
  root = tmp_path_factory.mktemp('span_halves')
  first, second = _halves(helpers.write_slice(str(root)), seed=13)
  return first, second, _drifted(second)


_DRIFT_SETTINGS = {'TRAIN_NUM_STEPS': _STEPS, 'EVAL_ACCURACY_THRESHOLD': '0.5'}


@pytest.fixture(scope='module')
def span_one(spans, tmp_path_factory):
  """The first run of both drift cases, on span 1 alone: the same run in
  each (no schema to check it against yet: `make schema` comes after it).
  Returns (the cases' folder, a copy of it as span 1's run left it); each
  case puts the copy back in the same place, as MLMD and the artifacts name
  absolute paths."""
  root = tmp_path_factory.mktemp('drift')
  work = root / 'work'
  _write(spans[0], work / 'data' / 'span-1')
  run = helpers.run_local_pipeline(
      work / 'data', str(work / 'out'), 'drift',
      SCHEMA_PATH=str(work / 'schema.pbtxt'), **_DRIFT_SETTINGS)
  assert run.returncode == 0, run.output[-3000:]
  assert run.summary().pushed_to, run.output[-2000:]
  assert not os.path.exists(work / 'schema.pbtxt')
  shutil.copytree(work, root / 'after-span-1', symlinks=True)
  return work, root / 'after-span-1'


@pytest.mark.parametrize('approved', [True, False],
                         ids=['make-schema', 'served-schema'])
def test_span_two_runs_and_a_drifted_span_three_stops(spans, span_one,
                                                      approved):
  work, after_span_one = span_one
  shutil.rmtree(work)
  shutil.copytree(after_span_one, work, symlinks=True)
  data, out = work / 'data', str(work / 'out')
  settings = {**_DRIFT_SETTINGS, 'SCHEMA_PATH': str(work / 'schema.pbtxt')}
  if approved:  # `make schema` on span 1
    _make_schema(data, out, 'drift', settings['SCHEMA_PATH'], {})
  for number, frame in enumerate(spans[1:], start=2):
    _write(frame, data / f'span-{number}')
    if number == 3:
      served = helpers.tree_digest(os.path.join(out, 'serving_model'))
    run = helpers.run_local_pipeline(data, out, 'drift', **settings)
    if number == 2:
      assert run.returncode == 0, run.output[-3000:]
      assert run.summary().components['AnomalyGate'].state == 'COMPLETE'
  assert run.returncode != 0, run.output[-3000:]
  assert 'fare' in run.output and 'span 2' in run.output, run.output[-3000:]
  assert 'COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH' in run.output
  assert helpers.tree_digest(os.path.join(out, 'serving_model')) == served
