"""The columnar Evaluator executor against TFX's own (TFMA's Beam pipeline).

The unit tests compare the accumulators filled from columns with what TFMA's
combiners accumulate one example at a time; the slow tests run both
executors on the inputs of the suite's end-to-end run and compare the
metrics, the validation result and the blessing.
"""
import math
import os

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from google.protobuf import text_format
from tensorflow_model_analysis.metrics import metric_types
from tfx.components.evaluator import executor as tfx_evaluator
from tfx_bsl.coders import example_coder

from bench import evaluator as bench_evaluator
from bench import recorded_execution
from models import features
from pipeline import component_ids
from pipeline import eval_config
from pipeline.components import columnar_evaluator
from pipeline.components import columnar_metrics
from pipeline.components import quality_gates

_BINARY = features.Problem('big_tipper', features.BINARY)


def _config(problem=_BINARY, slices=('payment_type',), has_baseline=False):
  config = eval_config.create_eval_config(problem, 0.85, 0.01, 5.0, slices)
  return tfma.utils.update_eval_config_with_defaults(
      config, has_baseline=has_baseline, rubber_stamp=True)


def _columns(rows, seed=0, models=('',), fractional=False):
  rng = np.random.default_rng(seed)
  # Edges of the histogram's buckets and of the 0.5 threshold included.
  predictions = rng.random(rows)
  predictions[:6] = [0.0, 0.5, 1.0, 1e-4, 0.5 + 1e-9, 0.9999]
  labels = (rng.random(rows) if fractional
            else (rng.random(rows) < predictions).astype(np.float64))
  payment = rng.choice(['Cash', 'Credit Card', None], rows).tolist()
  return columnar_metrics.Columns(
      labels={m: labels for m in models},
      predictions={m: np.clip(predictions + 0.05 * i, 0, 1)
                   for i, m in enumerate(models)},
      slice_values={'payment_type': payment})


def _tfma_one_by_one(separated, columns, rows, baseline_name):
  """The slice's metrics with TFMA's combiners fed one example at a time."""
  metrics = {}
  for computation in separated.non_derived_computations:
    model = computation.keys[0].model_name
    combiner = computation.combiner
    accumulator = combiner.create_accumulator()
    for row in rows:
      accumulator = combiner.add_input(
          accumulator, metric_types.StandardMetricInputs(
              labels={model: np.array([columns.labels[model][row]])} if model
              else np.array([columns.labels[model][row]]),
              predictions={model: np.array([columns.predictions[model][row]])}
              if model else np.array([columns.predictions[model][row]]),
              example_weights=None))
    metrics.update(combiner.extract_output(accumulator))
  for computation in separated.derived_computations:
    metrics.update(computation.result(metrics))
  if baseline_name:
    metrics = columnar_metrics._with_diffs(metrics, baseline_name)  # pylint: disable=protected-access
  return {k: v for k, v in metrics.items() if not k.name.startswith('_')}


@pytest.mark.parametrize('fractional', [False, True])
@pytest.mark.parametrize('has_baseline', [False, True])
def test_column_metrics_equal_tfmas_combiners(has_baseline, fractional):
  config = _config(has_baseline=has_baseline)
  models = [spec.name for spec in config.model_specs]
  columns = _columns(300, models=models, fractional=fractional)
  separated = columnar_metrics.computations(config)
  results = columnar_metrics.sliced_metrics(config, separated, columns)

  keys = [key for key, _ in results]
  assert keys[0] == () and sorted(keys[1:]) == [
      (('payment_type', 'Cash'),), (('payment_type', 'Credit Card'),)]
  baseline = 'baseline' if has_baseline else ''
  for key, metrics in results:
    rows = (range(300) if not key else
            [i for i, v in enumerate(columns.slice_values['payment_type'])
             if v == key[0][1]])
    expected = _tfma_one_by_one(separated, columns, rows, baseline)
    assert set(metrics) == set(expected)
    for name, value in expected.items():
      assert math.isclose(metrics[name], value, rel_tol=0, abs_tol=1e-9) or (
          math.isnan(value) and math.isnan(metrics[name])), name
  names = {k.name for k in results[0][1]}
  assert names == {'example_count', 'binary_accuracy', 'auc', 'precision',
                   'recall'}
  assert any(k.is_diff for k in results[0][1]) == has_baseline


@pytest.mark.parametrize('problem_type',
                         [features.MULTICLASS, features.REGRESSION])
def test_other_problem_types_are_left_to_tfma(problem_type):
  problem = features.Problem('y', problem_type)
  with pytest.raises(columnar_metrics.Unsupported, match='combiner'):
    columnar_metrics.computations(_config(problem))


def test_unsupported_options_are_left_to_tfma():
  config = _config()
  config.cross_slicing_specs.add()
  with pytest.raises(columnar_metrics.Unsupported, match='cross slices'):
    columnar_metrics.computations(config)
  config = _config()
  config.slicing_specs.add().feature_values['payment_type'] = 'Cash'
  with pytest.raises(columnar_metrics.Unsupported, match='feature values'):
    columnar_metrics.computations(config)


def test_slice_columns_hold_one_value_or_none_a_row():
  batch = pa.RecordBatch.from_arrays(
      [pa.array([[b'a'], [], None, [b'b']], pa.list_(pa.binary())),
       pa.array([[1], [2, 3], [4], [5]], pa.list_(pa.int64()))],
      ['one', 'several'])
  assert columnar_evaluator._single_values(batch, 'one', False) == [  # pylint: disable=protected-access
      b'a', None, None, b'b']
  assert columnar_evaluator._single_values(batch, 'absent', False) == [  # pylint: disable=protected-access
      None] * 4
  # A multivalent column, an absent label: TFMA's Beam pipeline evaluates.
  with pytest.raises(columnar_metrics.Unsupported, match='one value'):
    columnar_evaluator._single_values(batch, 'several', False)  # pylint: disable=protected-access
  with pytest.raises(columnar_metrics.Unsupported, match='no feature'):
    columnar_evaluator._single_values(batch, 'absent', True)  # pylint: disable=protected-access


def _example(**columns) -> bytes:
  example = tf.train.Example()
  for name, values in columns.items():
    feature = example.features.feature[name]
    if values and isinstance(values[0], bytes):
      feature.bytes_list.value.extend(values)
    elif values and isinstance(values[0], int):
      feature.int64_list.value.extend(values)
    elif values:
      feature.float_list.value.extend(values)
  return example.SerializeToString()


def test_only_the_read_columns_are_decoded_with_their_types():
  # 200 wide examples; 'late' has a value from the 70th example on only,
  # 'empty' is a feature without a value (and kind) in the first.
  wide = {f'x{i}': [float(i)] for i in range(50)}
  serialized = [_example(**wide, slice=[b'a' if i % 2 else b'b'],
                         label=[i % 2], late=[1.5] if i >= 70 else [],
                         empty=[] if i == 0 else [b'v'])
                for i in range(200)]
  columns = ['slice', 'label', 'late', 'empty']
  decoder = quality_gates.column_decoder(serialized, columns)
  narrow = decoder.DecodeBatch(serialized)
  full = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(serialized)
  assert sorted(narrow.schema.names) == sorted(columns)
  for column in columns:
    assert (columnar_evaluator._single_values(narrow, column, False) ==  # pylint: disable=protected-access
            columnar_evaluator._single_values(full, column, False))  # pylint: disable=protected-access
    assert (quality_gates._python_values(narrow.column(column)) ==  # pylint: disable=protected-access
            quality_gates._python_values(full.column(column)))  # pylint: disable=protected-access
  assert narrow.column('late').type.value_type == pa.float32()
  assert quality_gates._python_values(narrow.column('slice'))[:2] == [  # pylint: disable=protected-access
      'b', 'a']
  # A column in none of the examples: no narrowed decoder (every column is
  # decoded, as before).
  assert quality_gates.column_decoder(serialized, ['slice', 'nowhere']) is None


@pytest.mark.parametrize('args,runner', [
    ([], ''), (['--direct_num_workers=2'], ''),
    (['--runner=DataflowRunner', '--project=p'], 'dataflowrunner'),
    (['--runner', 'DirectRunner'], 'directrunner')])
def test_beam_runner(args, runner):
  assert columnar_evaluator.beam_runner(args) == runner


def test_tfmas_executor_evaluates_on_dataflow(tmp_path, monkeypatch):
  calls = []
  monkeypatch.setattr(tfx_evaluator.Executor, 'Do',
                      lambda self, *args: calls.append(args))
  executor = columnar_evaluator.Executor(
      columnar_evaluator.Executor.Context(
          # (With an image, TFX does not build a package of itself.)
          beam_pipeline_args=['--runner=DataflowRunner',
                              '--sdk_container_image=image'],
          tmp_dir=str(tmp_path), unique_id='1'))
  executor.Do({}, {}, {})
  assert calls == [({}, {}, {})]


# --- Both executors on the end-to-end run's inputs ------------------------------


def _run(executor_class, recorded, folder):
  outputs = recorded.redirect_outputs(str(folder))
  executor_class(executor_class.Context(
      beam_pipeline_args=[], tmp_dir=str(folder / 'tmp'),
      unique_id='1')).Do(outputs.inputs, outputs.outputs,
                         outputs.exec_properties)
  evaluation = outputs.outputs['evaluation'][0].uri
  blessing = outputs.outputs['blessing'][0]
  return evaluation, blessing


def _run_columnar_case(run):
  """`run()`, failing if the columnar executor hands the evaluation to
  TFMA's Beam pipeline (TFX's own executor, its base class)."""
  def hand_over(*unused_args, **unused_kwargs):
    raise AssertionError('the columnar Evaluator handed over to TFMA')

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(tfx_evaluator.Executor, 'Do', hand_over)
    return run()


def _run_columnar(recorded, folder):
  """`_run` of the columnar executor, which must not hand over to TFMA."""
  return _run_columnar_case(
      lambda: _run(columnar_evaluator.Executor, recorded, folder))


def _metrics(evaluation_uri):
  values = {}
  for per_slice in tfma.load_metrics(evaluation_uri):
    key = text_format.MessageToString(per_slice.slice_key, as_one_line=True)
    for kv in per_slice.metric_keys_and_values:
      values[(key, text_format.MessageToString(kv.key, as_one_line=True))] = (
          kv.value.double_value.value)
  return values


def _assert_same_evaluation(ours, theirs):
  (our_uri, our_blessing), (their_uri, their_blessing) = ours, theirs
  our_metrics, their_metrics = _metrics(our_uri), _metrics(their_uri)
  assert set(our_metrics) == set(their_metrics)
  for key, value in their_metrics.items():
    assert (math.isnan(value) and math.isnan(our_metrics[key])) or (
        abs(our_metrics[key] - value) <= 1e-6), key
  assert bench_evaluator.same_validation(our_uri, their_uri)
  assert sorted(os.listdir(our_blessing.uri)) == sorted(
      os.listdir(their_blessing.uri))
  assert (our_blessing.mlmd_artifact.custom_properties ==
          their_blessing.mlmd_artifact.custom_properties)
  for name in ('plots', 'attributions'):
    loader = getattr(tfma, f'load_{name}')
    assert (sorted(p.SerializeToString() for p in loader(our_uri)) ==
            sorted(p.SerializeToString() for p in loader(their_uri)))
  result = tfma.load_eval_result(our_uri)  # what the notebooks load
  assert result.slicing_metrics


def _for_tfx(recorded):
  """`recorded` as TFX's executor, which has no quality gates, is given it:
  with the EvalConfig they complete (bench/evaluator.py)."""
  plan, properties = bench_evaluator.for_tfx(recorded.inputs,
                                             recorded.exec_properties)
  assert plan is not None  # the pipeline's Evaluator has quality gates
  return recorded_execution.RecordedExecution(
      recorded.inputs, recorded.outputs, properties)


@pytest.fixture(scope='module')
def recorded(local_runs):
  _, second = local_runs
  return recorded_execution.newest(second.output_dir, second.pipeline_name,
                                   component_ids.EVALUATOR)


@pytest.mark.slow
def test_same_evaluation_with_a_baseline(recorded, tmp_path):
  assert recorded.inputs.get('baseline_model')
  ours = _run_columnar(recorded, tmp_path / 'ours')
  theirs = _run(tfx_evaluator.Executor, _for_tfx(recorded), tmp_path / 'tfma')
  _assert_same_evaluation(ours, theirs)
  assert os.listdir(ours[1].uri) == ['BLESSED']


@pytest.mark.slow
def test_same_failed_blessing_without_a_baseline(recorded, tmp_path):
  config = json_format.Parse(recorded.exec_properties['eval_config'],
                             tfma.EvalConfig())
  gate = config.metrics_specs[0].metrics[1].per_slice_thresholds[0]
  gate.threshold.value_threshold.lower_bound.value = 0.99
  recorded = recorded_execution.RecordedExecution(
      {k: v for k, v in recorded.inputs.items() if k != 'baseline_model'},
      recorded.outputs, {**recorded.exec_properties,
                         'eval_config': json_format.MessageToJson(config)})
  ours = _run_columnar(recorded, tmp_path / 'ours')
  theirs = _run(tfx_evaluator.Executor, _for_tfx(recorded), tmp_path / 'tfma')
  _assert_same_evaluation(ours, theirs)
  assert os.listdir(ours[1].uri) == ['NOT_BLESSED']
