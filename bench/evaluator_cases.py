"""Inputs for the Evaluator with a candidate that is not the baseline.

The suite's end-to-end runs evaluate a model against itself (the cached
second run); here two different models are scored on the same examples, so
the baseline diffs, the change thresholds and the per-slice thresholds are
exercised: the candidate predicts like the baseline except on a share of the
rows of one segment, where it turns its answer around (classification) or
shifts it (regression). `case` writes the examples (a train and an eval
split) and both saved models, and returns what TFX's Evaluator executor
receives; tests/test_evaluator_gates.py runs it small, bench/evaluator.py
with at least 100,000 eval rows.

The models have the signatures the pipeline's models have
(models/signatures.py): 'predict' takes serialized examples, and, where the
label is a class name, 'transform_features' returns its class index.
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from models import features
from models import signatures
from pipeline import eval_config

LABEL = 'y'
SEGMENT = 'segment'
# The segments and their shares of the rows: 'small' is the one the worse
# candidate gets worse on; it is small enough that the whole split barely
# notices.
SEGMENTS = ('large', 'medium', 'small')
SHARES = (0.6, 0.32, 0.08)
CLASSES = ('high', 'low', 'mid')  # multiclass labels, in vocabulary order


@dataclasses.dataclass
class Case:
  """What the Evaluator's executor receives for one case."""
  inputs: Dict[str, List[Any]]
  outputs: Dict[str, List[Any]]
  exec_properties: Dict[str, Any]
  problem: features.Problem


def _rows(rows: int, seed: int, problem_type: str) -> Dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  x = rng.normal(size=rows)
  noisy = x + rng.normal(scale=0.5, size=rows)
  if problem_type == features.BINARY:
    label = (noisy > 0).astype(np.int64)
  elif problem_type == features.MULTICLASS:
    label = np.where(noisy < -0.5, 'low', np.where(noisy < 0.5, 'mid',
                                                   'high'))
  else:
    label = 3.0 * noisy + 10.0
  return {'x': x, 'u': rng.random(rows),
          SEGMENT: rng.choice(SEGMENTS, rows, p=SHARES), LABEL: label}


def _feature(value) -> tf.train.Feature:
  if isinstance(value, (str, bytes)):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[value.encode() if isinstance(value, str) else value]))
  if isinstance(value, (int, np.integer)):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
  return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def _write_split(folder: str, columns: Dict[str, np.ndarray]) -> None:
  os.makedirs(folder, exist_ok=True)
  rows = len(columns[LABEL])
  with tf.io.TFRecordWriter(os.path.join(folder, 'data_tfrecord-00000.gz'),
                            options='GZIP') as writer:
    for i in range(rows):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          name: _feature(values[i].item() if hasattr(values[i], 'item')
                         else values[i])
          for name, values in columns.items()})).SerializeToString())


class _Model(tf.Module):
  """A model of the case: the right answer from 'x', wrong on a share of
  the 'small' segment's rows."""

  def __init__(self, problem_type: str, wrong_share: float):
    super().__init__()
    self.problem_type = problem_type
    self.wrong_share = tf.constant(wrong_share, tf.float32)
    spec = tf.TensorSpec([None], tf.string, name='examples')
    self.predict = tf.function(self._predict, input_signature=[spec])
    if problem_type == features.MULTICLASS:
      self.transform = tf.function(self._transform, input_signature=[spec])

  def _predict(self, examples):
    parsed = tf.io.parse_example(examples, {
        'x': tf.io.FixedLenFeature([1], tf.float32),
        'u': tf.io.FixedLenFeature([1], tf.float32),
        SEGMENT: tf.io.FixedLenFeature([1], tf.string)})
    x = parsed['x']
    wrong = tf.logical_and(tf.equal(parsed[SEGMENT], SEGMENTS[-1]),
                           parsed['u'] < self.wrong_share)
    if self.problem_type == features.REGRESSION:
      value = 3.0 * x + 10.0 + tf.where(wrong, 4.0, 0.0)
      return {signatures.PREDICTIONS: value}
    if self.problem_type == features.BINARY:
      p = tf.sigmoid(2.5 * x)
      return {signatures.PROBABILITIES: tf.where(wrong, 1.0 - p, p)}
    # Multiclass: scores for high, low, mid (CLASSES' order).
    logits = tf.concat([2.0 * (x - 0.5), 2.0 * (-x - 0.5),
                        1.0 - tf.abs(x)], axis=1)
    logits = tf.where(wrong, -logits, logits)
    return {signatures.PROBABILITIES: tf.nn.softmax(logits)}

  def _transform(self, examples):
    label = tf.io.parse_example(examples, {
        LABEL: tf.io.FixedLenFeature([1], tf.string)})[LABEL]
    index = tf.argmax(tf.cast(tf.equal(label, list(CLASSES)), tf.int64),
                      axis=1)
    return {features.transformed_name(LABEL): index}


def _save_model(uri: str, problem_type: str, wrong_share: float) -> None:
  model = _Model(problem_type, wrong_share)
  functions = {signatures.EXAMPLES_SIGNATURE: model.predict}
  if problem_type == features.MULTICLASS:
    functions[signatures.TRANSFORM_SIGNATURE] = model.transform
  tf.saved_model.save(model, path_utils.serving_model_dir(uri),
                      signatures=functions)


def _artifact(cls, uri: str, artifact_id: int):
  artifact = cls()
  artifact.uri = uri
  artifact.id = artifact_id
  os.makedirs(uri, exist_ok=True)
  return artifact


def case(folder: str, problem_type: str, eval_rows: int,
         candidate_wrong_share: float, baseline_wrong_share: Optional[float],
         accuracy_threshold: float = 0.0, rmse_threshold: float = 0.0,
         baseline_tolerance: float = 0.01, slice_tolerance: float = 0.05,
         slice_min_examples: int = 100, margin: float = 0.1,
         seed: int = 0) -> Case:
  """Writes a case's examples and models under `folder`.

  Args:
    folder: an empty folder.
    problem_type: binary, multiclass or regression.
    eval_rows: rows of the eval split (the train split has as many).
    candidate_wrong_share: the share of the 'small' segment's rows the
      candidate gets wrong.
    baseline_wrong_share: the baseline's; None: no baseline.
    accuracy_threshold ... slice_min_examples: the pipeline's settings of
      those names (pipeline/configs.py), for this case.
    margin: EVAL_TRIVIAL_MARGIN_<problem type>.
    seed: for the rows.

  Returns:
    The executor's inputs, outputs (fresh folders) and properties, as the
    pipeline's Evaluator has them.
  """
  problem = features.Problem(
      LABEL, problem_type,
      label_kind='text' if problem_type == features.MULTICLASS else
      'integer' if problem_type == features.BINARY else 'float')
  examples = _artifact(standard_artifacts.Examples,
                       os.path.join(folder, 'examples'), 1)
  examples.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  for split, split_seed in (('train', seed + 1), ('eval', seed + 2)):
    _write_split(os.path.join(examples.uri, f'Split-{split}'),
                 _rows(eval_rows, split_seed, problem_type))
  model = _artifact(standard_artifacts.Model,
                    os.path.join(folder, 'candidate'), 2)
  _save_model(model.uri, problem_type, candidate_wrong_share)
  inputs = {'examples': [examples], 'model': [model]}
  if baseline_wrong_share is not None:
    baseline = _artifact(standard_artifacts.Model,
                         os.path.join(folder, 'baseline'), 3)
    _save_model(baseline.uri, problem_type, baseline_wrong_share)
    inputs['baseline_model'] = [baseline]
  config = eval_config.create_eval_config(
      problem, accuracy_threshold, baseline_tolerance, rmse_threshold,
      (SEGMENT,))
  gates = eval_config.quality_gates(
      problem, accuracy_threshold, rmse_threshold, {problem_type: margin},
      slice_tolerance, slice_min_examples)
  return Case(inputs, fresh_outputs(folder, 'outputs'), {
      'eval_config': json_format.MessageToJson(config),
      'example_splits': 'null', 'fairness_indicator_thresholds': 'null',
      'quality_gates': gates.to_json()}, problem)


def fresh_outputs(folder: str, name: str) -> Dict[str, List[Any]]:
  """Empty evaluation and blessing artifacts under `folder`/`name`."""
  return {
      'evaluation': [_artifact(standard_artifacts.ModelEvaluation,
                               os.path.join(folder, name, 'evaluation'), 10)],
      'blessing': [_artifact(standard_artifacts.ModelBlessing,
                             os.path.join(folder, name, 'blessing'), 11)]}
