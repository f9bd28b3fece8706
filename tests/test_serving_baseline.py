"""The Kubeflow target's baseline: the newest pushed model, or none at all."""
import os

import pytest
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.types import standard_component_specs

from models import features
from pipeline.eval_config import create_eval_config
from pipeline.components import serving_baseline

_BASELINE = standard_component_specs.BASELINE_MODEL_KEY


def _push(serving_dir, version, saved_model=True):
  path = os.path.join(serving_dir, version)
  os.makedirs(path)
  if saved_model:
    with open(os.path.join(path, 'saved_model.pb'), 'w') as model_file:
      model_file.write(f'model {version}')
  return path


def _model(uri):
  model = tfx.types.standard_artifacts.Model()
  model.uri = str(uri)
  return model


def test_newest_pushed_model_is_the_largest_version_with_a_model(tmp_path):
  serving = str(tmp_path / 'serving')
  _push(serving, '900')
  newest = _push(serving, '1000')  # numerically, not alphabetically, newest
  _push(serving, '2000', saved_model=False)  # a push still being written
  _push(serving, 'notes')
  assert serving_baseline.newest_pushed_model(serving) == newest


def test_no_serving_folder_means_no_baseline(tmp_path):
  assert serving_baseline.newest_pushed_model(str(tmp_path / 'none')) is None


def test_component_copies_the_newest_model_into_its_output(tmp_path):
  serving = str(tmp_path / 'serving')
  _push(serving, '100')
  newest = _push(serving, '200')
  baseline = _model(tmp_path / 'baseline')
  serving_baseline.LatestPushedModel.test_call(serving_model_dir=serving,
                                               model=baseline)
  copied = tmp_path / 'baseline' / 'Format-Serving' / 'saved_model.pb'
  assert copied.read_text() == 'model 200'
  assert baseline.get_string_custom_property('pushed_model') == newest
  assert serving_baseline.has_saved_model(baseline)


def test_evaluator_drops_only_an_empty_baseline(tmp_path):
  empty = _model(tmp_path / 'empty')
  os.makedirs(empty.uri)
  full = _model(tmp_path / 'full')
  _push(full.uri, 'Format-Serving')
  candidate = [_model(tmp_path / 'candidate')]

  dropped = serving_baseline.without_empty_baseline(
      {'model': candidate, _BASELINE: [empty]})
  assert dropped == {'model': candidate}
  kept = {'model': candidate, _BASELINE: [full]}
  assert serving_baseline.without_empty_baseline(kept) is kept


def test_tfma_accepts_a_missing_baseline_only_when_rubber_stamping():
  # What the Evaluator does with the dropped baseline (TFX's executor always
  # passes rubber_stamp=True): no error, and no baseline model to load.
  config = create_eval_config(
      features.Problem('big_tipper', features.BINARY), 0.85, 0.01)
  updated = tfma.utils.update_eval_config_with_defaults(
      config, has_baseline=False, rubber_stamp=True)
  assert not any(spec.is_baseline for spec in updated.model_specs)
  with pytest.raises(RuntimeError, match='baseline is missing'):
    tfma.utils.update_eval_config_with_defaults(
        config, has_baseline=False, rubber_stamp=False)


def test_evaluator_keeps_tfx_evaluator_interface():
  assert issubclass(serving_baseline.Evaluator, tfx.components.Evaluator)
  assert serving_baseline.Evaluator.EXECUTOR_SPEC.executor_class is (
      serving_baseline.BaselineOptionalExecutor)
