"""The whole local pipeline on a slice of the bundled data, twice."""
import glob
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipeline import configs

from local import csv_examples
from models import signatures
from pipeline import component_ids
from tests import helpers

DEFAULTS = configs.load({})  # the bundled taxi data's settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def runs(local_runs):
  first, second = local_runs
  return first, first.summary(), second, second.summary()


def test_every_component_executed_once_and_succeeded(runs):
  first, summary, _, _ = runs
  assert sorted(summary.components) == sorted(component_ids.COMPONENT_IDS)
  for component in summary.components.values():
    assert component.state == 'COMPLETE', component
  # One progress line per component, as it ran.
  for component_id in component_ids.COMPONENT_IDS:
    assert f'] {component_id} ' in first.output


def test_first_model_is_blessed_and_pushed(runs):
  first, summary, _, _ = runs
  assert summary.blessed is True, summary.blessing_failures
  assert summary.metrics['binary_accuracy'] >= 0.85
  assert {'auc', 'precision', 'recall'} <= set(summary.metrics)
  assert summary.baseline_metrics == {}  # nothing blessed before
  assert summary.pushed_to and os.path.isdir(summary.pushed_to)
  assert 'Blessed' in first.output and summary.pushed_to in first.output


def test_rerun_comes_from_cache_and_compares_with_the_baseline(runs):
  _, first, second_run, second = runs
  states = {cid: c.state for cid, c in second.components.items()}
  for cached in ('CsvExampleGen', 'StatisticsGen', 'SchemaGen',
                 'ExampleValidator', 'Transform', 'Trainer'):
    assert states[cached] == 'CACHED', states
  # Same data, same seed: the same model, compared with itself and blessed.
  assert second.baseline_metrics['binary_accuracy'] == pytest.approx(
      first.metrics['binary_accuracy'])
  assert second.blessed is True
  assert 'Baseline (last blessed model) accuracy' in second_run.output


def test_pushed_model_scores_raw_csv_rows(runs, data_slice):
  _, summary, _, _ = runs
  schema_file = glob.glob(os.path.join(
      summary.components['SchemaGen'].outputs['schema'][0], '*.pbtxt'))[0]
  schema = csv_examples.load_schema(schema_file)
  with open(helpers.csv_path(data_slice)) as lines:
    examples = helpers.csv_to_examples(lines, schema)
  served = tf.saved_model.load(summary.pushed_to)
  scores = served.signatures[signatures.EXAMPLES_SIGNATURE](
      examples=tf.constant(examples))['probabilities'].numpy().ravel()
  labels = pd.read_csv(helpers.csv_path(data_slice))[
      DEFAULTS.LABEL_KEY].to_numpy()
  assert scores.shape == labels.shape
  assert np.all((scores >= 0) & (scores <= 1))
  accuracy = np.mean((scores > 0.5) == labels)
  majority = max(labels.mean(), 1 - labels.mean())
  assert accuracy > majority + 0.05, (accuracy, majority)
