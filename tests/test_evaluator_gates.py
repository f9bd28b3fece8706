"""The Evaluator's gates that depend on the data
(pipeline/components/quality_gates.py), with a candidate that is not the
baseline (bench/evaluator_cases.py): the trivial model's bar for each problem
type, a slice that regresses, and the columnar executor against TFX's own on
the same inputs.
"""
import math
import os

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.slicer import slicer_lib
from tfx.components.evaluator import executor as tfx_evaluator

from bench import evaluator as bench_evaluator
from bench import evaluator_cases
from local import run_summary
from local.run import outcome
from models import features
from pipeline import eval_config
from pipeline.components import columnar_evaluator
from pipeline.components import quality_gates
from tests import test_columnar_evaluator as same_evaluation

_EVAL_ROWS = 600


def _run(executor_class, case, folder, name, exec_properties=None):
  outputs = evaluator_cases.fresh_outputs(str(folder), name)
  executor_class(executor_class.Context(
      beam_pipeline_args=[], tmp_dir=str(folder / 'tmp'), unique_id='1')).Do(
          case.inputs, outputs, exec_properties or case.exec_properties)
  return outputs['evaluation'][0].uri, outputs['blessing'][0]


def _blessed(blessing) -> bool:
  return os.listdir(blessing.uri) == ['BLESSED']


def _train_labels(problem_type):
  # The rows evaluator_cases writes to the train split (its seed + 1).
  return evaluator_cases._rows(_EVAL_ROWS, 1, problem_type)[  # pylint: disable=protected-access
      evaluator_cases.LABEL]


# Binary runs the columnar executor (seconds); multiclass and regression go
# to TFMA's Beam pipeline (half a minute each).
@pytest.mark.parametrize('problem_type', [
    features.BINARY,
    pytest.param(features.MULTICLASS, marks=pytest.mark.slow),
    pytest.param(features.REGRESSION, marks=pytest.mark.slow)])
def test_the_trivial_model_is_the_bar_without_an_absolute_threshold(
    tmp_path, problem_type):
  case = evaluator_cases.case(str(tmp_path), problem_type, _EVAL_ROWS,
                              candidate_wrong_share=0.0,
                              baseline_wrong_share=None, margin=0.2)
  uri, blessing = _run(columnar_evaluator.Executor, case, tmp_path, 'good')
  gates = quality_gates.read(uri)
  assert gates['gate'] == 'trivial model' and _blessed(blessing)

  # What the trivial model is, from the train split's labels.
  labels = _train_labels(problem_type)
  whole = gates['rows'][0]
  if problem_type == features.REGRESSION:
    assert math.isclose(gates['trivial_model']['prediction'],
                        float(np.mean(labels)), rel_tol=1e-9)
    assert math.isclose(gates['bound'], whole['trivial'] * 0.8)
    assert whole['model'] < gates['bound']
  else:
    values, counts = np.unique(labels, return_counts=True)
    assert gates['trivial_model']['prediction'] == values[np.argmax(counts)]
    assert math.isclose(gates['bound'],
                        whole['trivial'] + 0.2 * (1 - whole['trivial']))
    assert whole['model'] > gates['bound'] > whole['trivial']
  assert gates['trivial_model']['train_examples'] == _EVAL_ROWS
  # Per slice too, side by side; no baseline, so no slice is held to one.
  assert [row['slice'] for row in gates['rows']] == [''] + [
      f'segment={s}' for s in sorted(evaluator_cases.SEGMENTS)]
  assert sum(row['examples'] for row in gates['rows'][1:]) == _EVAL_ROWS
  assert all(row['baseline'] is None for row in gates['rows'])
  assert gates['held_slices'] == []
  # The summary's lines: the gate, then a row per slice with the three
  # models' values (no last blessed model yet).
  lines = outcome.describe_gates(gates, '.4g')
  assert lines[0].startswith('Gate: beat the trivial model (always ')
  assert lines[0].endswith(f'{gates["bound"]:.4g}.')
  assert [line.split() for line in lines[2:]] == [
      [row['slice'] or 'all', str(row['examples']), f'{row["model"]:.4g}',
       f'{row["trivial"]:.4g}', '-'] for row in gates['rows']]

  # A model that barely beats the trivial one is refused: here the margin
  # asks for more than this model does.
  strict = evaluator_cases.case(str(tmp_path / 'strict'), problem_type,
                                _EVAL_ROWS, 0.0, None, margin=0.9)
  uri, blessing = _run(columnar_evaluator.Executor, strict, tmp_path,
                       'strict')
  assert not _blessed(blessing)
  reason, = run_summary._failures(uri)  # pylint: disable=protected-access
  metric = eval_config.METRICS[problem_type].gate.key
  assert reason.startswith(metric) and (
      'above the limit' if problem_type == features.REGRESSION
      else 'below the threshold') in reason


def test_an_absolute_threshold_is_the_gate_when_set(tmp_path):
  case = evaluator_cases.case(str(tmp_path), features.BINARY, _EVAL_ROWS,
                              0.0, None, accuracy_threshold=0.95)
  uri, blessing = _run(columnar_evaluator.Executor, case, tmp_path, 'out')
  gates = quality_gates.read(uri)
  assert (gates['gate'], gates['bound']) == ('absolute threshold', 0.95)
  assert not _blessed(blessing)  # the model scores about 0.85
  assert gates['rows'][0]['trivial'] < 0.6  # shown, though not the gate
  lines = outcome.describe_gates(gates, '.3f')
  assert lines[0] == 'Gate: absolute threshold: accuracy >= 0.950.'


def _slice_case(folder, candidate_wrong_share):
  """A binary case whose 'small' segment (about 8% of 2,500 eval rows) the
  candidate gets wrong more often than the baseline."""
  return evaluator_cases.case(
      str(folder), features.BINARY, 2500,
      candidate_wrong_share=candidate_wrong_share, baseline_wrong_share=0.0,
      baseline_tolerance=0.02, slice_tolerance=0.05, slice_min_examples=150)


def _planned_properties(case):
  """What TFX's executor (without the quality gates) is given."""
  return bench_evaluator.for_tfx(case.inputs, case.exec_properties)[1]


def _assert_refused_on_the_small_slice_only(uri, blessing):
  assert not _blessed(blessing)
  gates = quality_gates.read(uri)
  rows = {row['slice']: row for row in gates['rows']}
  small = rows['segment=small']
  # Ten points worse on the slice, within the tolerance on the whole split.
  assert 0.08 < small['baseline'] - small['model'] < 0.15
  assert rows['']['baseline'] - rows['']['model'] < 0.02
  assert gates['held_slices'] == [
      f'segment={s}' for s in sorted(evaluator_cases.SEGMENTS)]
  reason, = run_summary._failures(uri)  # pylint: disable=protected-access
  assert reason == (
      f'on slice segment=small, binary_accuracy {small["model"]:.4f} is '
      f'{small["baseline"] - small["model"]:.4f} below the baseline model\'s '
      f'{small["baseline"]:.4f} (allowed drop: 0.0500)')


def test_a_slice_ten_points_worse_is_refused_by_name(tmp_path):
  case = _slice_case(tmp_path, candidate_wrong_share=0.17)
  _assert_refused_on_the_small_slice_only(
      *same_evaluation._run_columnar_case(  # pylint: disable=protected-access
          lambda: _run(columnar_evaluator.Executor, case, tmp_path, 'ours')))


@pytest.mark.slow  # TFX's executor runs TFMA's Beam pipeline
def test_tfx_refuses_the_same_slice_with_the_same_metrics(tmp_path):
  case = _slice_case(tmp_path, candidate_wrong_share=0.17)
  ours = same_evaluation._run_columnar_case(  # pylint: disable=protected-access
      lambda: _run(columnar_evaluator.Executor, case, tmp_path, 'ours'))
  theirs = _run(tfx_evaluator.Executor, case, tmp_path, 'tfma',
                _planned_properties(case))
  # The same metrics, validation result (the slice's failure) and blessing.
  same_evaluation._assert_same_evaluation(ours, theirs)  # pylint: disable=protected-access
  _assert_refused_on_the_small_slice_only(*ours)


@pytest.mark.slow  # TFX's executor runs TFMA's Beam pipeline
def test_a_candidate_as_good_on_every_slice_is_blessed_as_by_tfma(tmp_path):
  # Better than the baseline: the diffs are positive, every gate passes.
  case = evaluator_cases.case(
      str(tmp_path), features.BINARY, 2500, candidate_wrong_share=0.0,
      baseline_wrong_share=0.3, slice_min_examples=150)
  ours = same_evaluation._run_columnar_case(  # pylint: disable=protected-access
      lambda: _run(columnar_evaluator.Executor, case, tmp_path, 'ours'))
  theirs = _run(tfx_evaluator.Executor, case, tmp_path, 'tfma',
                _planned_properties(case))
  same_evaluation._assert_same_evaluation(ours, theirs)  # pylint: disable=protected-access
  assert _blessed(ours[1])
  rows = {row['slice']: row for row in quality_gates.read(ours[0])['rows']}
  assert rows['segment=small']['model'] > rows['segment=small']['baseline']


def test_small_slices_are_not_held_to_the_baseline(tmp_path):
  case = evaluator_cases.case(
      str(tmp_path), features.BINARY, 2500, candidate_wrong_share=0.17,
      baseline_wrong_share=0.0, baseline_tolerance=0.02,
      slice_min_examples=400)
  uri, blessing = _run(columnar_evaluator.Executor, case, tmp_path, 'out')
  gates = quality_gates.read(uri)
  assert 'segment=small' not in gates['held_slices']
  assert gates['held_slices'] == ['segment=large', 'segment=medium']
  assert _blessed(blessing)


@pytest.mark.parametrize('value,addressable', [
    ('Cash', True), ('007', True), (5, True), (2.5, True), (1e-05, False)])
def test_a_slice_is_held_only_where_tfma_can_name_its_value(value,
                                                            addressable):
  spec = tfma.SlicingSpec(feature_values={'c': str(value)})
  matches = slicer_lib.SingleSliceSpec(spec=spec).is_slice_applicable(
      (('c', value),))
  assert quality_gates._addressable(value) == matches == addressable  # pylint: disable=protected-access
