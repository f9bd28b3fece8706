"""bench/quality.py's table and bench/datasets.py's writers, without a
pipeline run (tests/test_byo_e2e.py compares a real run with the
reference)."""
import numpy as np
import pandas as pd

from bench import datasets
from bench import quality
from bench import reference
from models import features


def _row(name, metric, model, ref, trivial):
  return quality.Row(name, reference.Comparison(metric, model, ref, trivial,
                                                1000), 12.0)


def test_table_says_which_data_sets_are_within_their_margin():
  rows = [_row('close behind', 'accuracy', 0.885, 0.894, 0.7),
          _row('too far behind', 'accuracy', 0.88, 0.894, 0.7),
          _row('below trivial', 'accuracy', 0.69, 0.695, 0.7),
          _row('regression', 'RMSE', 52.0, 50.0, 70.0),
          _row('regression far', 'RMSE', 53.0, 50.0, 70.0),
          quality.Row('failed run', None, 3.0, 'no Evaluator output')]
  lines = quality.format_table(rows).splitlines()[2:]
  verdicts = {line[:32].strip(): line.split()[-2] for line in lines[:-1]}
  assert verdicts == {'close behind': 'yes', 'too far behind': 'NO',
                      'below trivial': 'NO', 'regression': 'yes',
                      'regression far': 'NO'}
  assert 'no result: no Evaluator output' in lines[-1]
  assert not quality.all_within(rows)
  assert quality.all_within(rows[:1] + rows[3:4])


def test_every_data_set_but_the_bundled_one_is_written(tmp_path):
  for data_set in quality.DATA_SETS:
    if data_set.writer is None:
      assert data_set.name == quality.BUNDLED
      continue
    if data_set.writer is datasets.write_sensors:
      continue  # 5,000 x 300 cells: the small table below
    frame = pd.read_csv(data_set.writer(str(tmp_path / data_set.name)))
    assert data_set.label in frame.columns, data_set.name
    assert frame[data_set.label].nunique() > 1


def test_sensor_table_is_numeric_with_a_binary_alarm(tmp_path):
  frame = pd.read_csv(datasets.write_sensors(str(tmp_path), rows=200,
                                             columns=12))
  assert list(frame.columns[:2]) == ['sensor_00', 'sensor_01']
  assert frame.shape == (200, 13)
  assert set(frame['alarm']) == {0, 1}
  assert all(frame[c].dtype.kind == 'f' for c in frame.columns[:-1])


def test_the_reference_does_not_depend_on_the_column_order():
  # Two columns equal on the train split, so the trees' first split could
  # use either, and different on the eval split, where only `b` is right:
  # the score follows whichever column the fit puts first.
  rng = np.random.default_rng(0)
  label = rng.integers(0, 2, 400)
  train = pd.DataFrame({'a': label * 1.0, 'b': label * 1.0, 'y': label})
  evaluation = pd.DataFrame({'a': 1.0 - label[:100], 'b': label[:100] * 1.0,
                             'y': label[:100]})
  problem = features.Problem(label_key='y',
                             problem_type=features.BINARY)
  first = reference.scores(train, evaluation, problem)
  assert first[0] == 'accuracy' and first[1] in (0.0, 1.0)
  for order in (['b', 'a', 'y'], ['y', 'a', 'b'], ['a', 'y', 'b']):
    assert reference.scores(train[order], evaluation[order],
                            problem) == first
