"""The Keras model and the Trainer's entry point, `run_fn`.

`run_fn` is a short adapter over plain functions that tests call directly:
`build_model` (the network for a given set of transformed features),
`make_dataset` (batched training data), `make_validation_dataset` (the
rows each validation scores), `train_model` (the fit, with its
validations and logs) and `make_serving_signatures` (raw
rows or serialized tf.Examples in, probabilities or predictions out; built in
models/serving.py). Nothing here names a column: the inputs come from the
transformed feature spec and the output layer from the problem description
(models/features.py).

TFX and TFXIO are imported only where the Trainer reads its data: building
and training the network needs TensorFlow alone, so bench/floor.py, which
trains this network with no pipeline, does not pay for TFX's imports.
"""
from __future__ import annotations

import gc
from typing import (TYPE_CHECKING, Any, Dict, List, Mapping, Optional,
                    Tuple)

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import autograph_compat  # pylint: disable=unused-import
from models import features
from models import serving
from models import signatures

if TYPE_CHECKING:
  from tfx.components.trainer import fn_args_utils

_HIDDEN_UNITS = (128, 64)
# Adam's step size at the start; it decays to 0 along a cosine over the
# training steps (`learning_rate`).
_LEARNING_RATE = 3e-3
_DROPOUT = 0.2
# How much of its running mean and variance a batch normalisation layer
# keeps per step: 0.9 settles them within about 50 steps, so that a model
# trained for few steps serves with statistics of its trained weights.
_BATCH_NORM_MOMENTUM = 0.9
_EMBEDDING_L2 = 1e-2
_MAX_EMBEDDING_DIM = 8
# Times during training that the model is scored on the eval split; it keeps
# the weights that scored the lowest loss (`BestWeights`).
_VALIDATIONS = 5
# Batches read to estimate a regression label's mean and spread.
_LABEL_STATS_BATCHES = 20
# Rows read and transformed at a time when the Trainer loads its data.
_READ_BATCH_ROWS = 1024
# Rows scored at a time in a validation (`validation_batches`): the default
# eval split (50 steps of 128) in one batch; fewer for a wide table, so that
# a batch holds at most _VALIDATION_BATCH_VALUES input values (8 MiB of
# floats: 2,097 rows of 1,000 columns).
_VALIDATION_BATCH_ROWS = 8192
_VALIDATION_BATCH_VALUES = 1 << 21

PROBABILITIES = signatures.PROBABILITIES
CLASS_NAMES = signatures.CLASS_NAMES
PREDICTED_CLASS = signatures.PREDICTED_CLASS
PREDICTIONS = signatures.PREDICTIONS
TRANSFORM_SIGNATURE = signatures.TRANSFORM_SIGNATURE


def _embedding_dim(num_buckets: int) -> int:
  return int(min(_MAX_EMBEDDING_DIM, max(2, round(1.6 * num_buckets**0.56))))


def feature_buckets(tf_transform_output: tft.TFTransformOutput,
                    label_feature: str) -> Dict[str, int]:
  """Maps each transformed model input to its number of buckets (0: numeric).

  Every integer feature of the transformed schema is an index (vocabulary
  or bucket) and every float feature a number; `label_feature` is left out.
  """
  spec = tf_transform_output.transformed_feature_spec()
  buckets = {}
  for name in sorted(spec):
    if name == label_feature:
      continue
    if spec[name].dtype == tf.int64:
      buckets[name] = tf_transform_output.num_buckets_for_transformed_feature(
          name)
    else:
      buckets[name] = 0
  return buckets


def numeric_widths(tf_transform_output: tft.TFTransformOutput
                  ) -> Dict[str, int]:
  """Maps each numeric transformed feature that holds several columns (a
  [batch, columns] matrix, models/preprocessing.py) to its number of
  columns."""
  spec = tf_transform_output.transformed_feature_spec()
  return {name: int(feature.shape[0]) for name, feature in spec.items()
          if feature.dtype == tf.float32 and len(feature.shape) == 1}


def class_names(tf_transform_output: tft.TFTransformOutput,
                problem: features.Problem) -> List[str]:
  """The classes in the order of the model's class indices."""
  if problem.problem_type == features.REGRESSION:
    return []
  if tf_transform_output.vocabulary_file_by_name(
      features.LABEL_VOCABULARY) is None:
    return ['0', '1']  # a numeric binary label: 0 and 1 as they are
  return [v.decode() for v in tf_transform_output.vocabulary_by_name(
      features.LABEL_VOCABULARY)]


def _output_layer(problem_type: str, num_classes: int, label_mean: float,
                  label_std: float, x):
  """The last layer per problem type, and its loss and metrics."""
  if problem_type == features.BINARY:
    output = keras.layers.Dense(1, activation='sigmoid', name='probability')(x)
    return output, 'binary_crossentropy', [
        keras.metrics.BinaryAccuracy(name='accuracy'),
        keras.metrics.AUC(name='auc')]
  if problem_type == features.MULTICLASS:
    output = keras.layers.Dense(num_classes, activation='softmax',
                                name='probabilities')(x)
    return output, 'sparse_categorical_crossentropy', [
        keras.metrics.SparseCategoricalAccuracy(name='accuracy')]
  # Regression: the network predicts a z-score, which a fixed layer turns
  # into the label's units, so the initial predictions sit at the mean and
  # the optimiser works at the same scale for any label.
  z = keras.layers.Dense(1, name='z_score')(x)
  output = keras.layers.Rescaling(label_std, offset=label_mean,
                                  name='prediction')(z)
  return output, 'mean_squared_error', [
      keras.metrics.RootMeanSquaredError(name='rmse')]


def learning_rate(train_steps: Optional[int]):
  """Adam's learning rate: `_LEARNING_RATE` decaying to 0 along a cosine
  over `train_steps` steps (None: constant).

  A large step early and small steps at the end settle the weights in the
  default step budget: on the bundled data, the 300-column sensor table and
  the public sets of bench/quality.py it did better than a constant rate,
  and never worse by more than a row or two.
  """
  if not train_steps:
    return _LEARNING_RATE
  return keras.optimizers.schedules.CosineDecay(_LEARNING_RATE, train_steps)


def build_model(buckets: Mapping[str, int],
                seed: int,
                problem_type: str = features.BINARY,
                num_classes: int = 2,
                label_mean: float = 0.0,
                label_std: float = 1.0,
                widths: Mapping[str, int] = None,
                train_steps: Optional[int] = None) -> keras.Model:
  """A feed-forward network over the transformed features.

  Args:
    buckets: transformed feature name -> number of categories, or 0 for a
      numeric feature (see `feature_buckets`).
    seed: seeds the weight initialisation.
    problem_type: binary, multiclass or regression (models/features.py).
    num_classes: the number of classes (multiclass).
    label_mean: the regression label's mean...
    label_std: ...and standard deviation, which scale the output.
    widths: numeric feature -> number of values, for the numeric features
      that are [batch, columns] matrices (see `numeric_widths`); the others
      are [batch].
    train_steps: the steps the learning rate decays over (`learning_rate`);
      None: a constant rate.

  Returns:
    A compiled model taking a dict of [batch] tensors and returning, shape
    [batch, 1], the probability of the positive class (binary) or the
    predicted value (regression), or, shape [batch, num_classes], the
    probability of each class (multiclass).
  """
  keras.utils.set_random_seed(seed)
  widths = widths or {}
  inputs, encoded = {}, []
  for name, num_buckets in buckets.items():
    # The inputs are keyed by feature; layers need TensorFlow names.
    layer = features.input_name(name)
    if num_buckets:
      inputs[name] = keras.Input(shape=(), name=layer, dtype=tf.int64)
      embedded = keras.layers.Embedding(
          num_buckets, _embedding_dim(num_buckets),
          embeddings_regularizer=keras.regularizers.l2(_EMBEDDING_L2),
          name=f'{layer}_embedding')(inputs[name])
      encoded.append(embedded)
    elif name in widths:
      inputs[name] = keras.Input(shape=(widths[name],), name=layer,
                                 dtype=tf.float32)
      encoded.append(inputs[name])
    else:
      inputs[name] = keras.Input(shape=(), name=layer, dtype=tf.float32)
      encoded.append(keras.layers.Reshape((1,))(inputs[name]))
  if not encoded:
    raise ValueError('no input features: every column but the label is '
                     'dropped')
  x = (keras.layers.Concatenate()(encoded) if len(encoded) > 1
       else encoded[0])
  # Batch normalisation after each hidden layer: on the bundled data, a
  # 300-column sensor table and the public sets the tests use, it brought
  # the network within a point of gradient-boosted trees at the default
  # step budget (docs/performance.md, bench/reference.py).
  for units in _HIDDEN_UNITS:
    x = keras.layers.Dropout(_DROPOUT, seed=seed)(x)
    x = keras.layers.Dense(units, activation='relu')(x)
    x = keras.layers.BatchNormalization(momentum=_BATCH_NORM_MOMENTUM)(x)
  output, loss, metrics = _output_layer(problem_type, num_classes,
                                        label_mean, label_std, x)
  model = keras.Model(inputs=inputs, outputs=output)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate(train_steps)),
                loss=loss,
                metrics=metrics)
  # Adam's slots are made here, not inside the first training step:
  # tf.function traces a step that creates variables twice, the second time
  # without them (about 0.3 s of the bundled data's 2.3 s of training).
  model.optimizer.build(model.trainable_variables)
  return model


def label_statistics(
    dataset: tf.data.Dataset,
    batches: int = _LABEL_STATS_BATCHES) -> Tuple[float, float]:
  """Mean and standard deviation (at least 1e-6) of the labels in `batches`
  batches of (features, label) `dataset`."""
  labels = np.concatenate([np.asarray(label, np.float64).ravel()
                           for _, label in dataset.take(batches)])
  return float(labels.mean()), float(max(labels.std(), 1e-6))


def _transformed_rows(file_pattern: List[str],
                      transform: serving.RawTransform,
                      max_rows: int) -> Dict[str, tf.Tensor]:
  """The first `max_rows` examples of `file_pattern` (all of them if fewer),
  in the files' order, read once and transformed by the Transform graph:
  transformed feature -> tensor with one row per example.

  The serialized tf.Examples come from TFXIO's own record reader (the files
  in the order, and with the compression, its TensorFlowDataset reads them),
  and `transform.apply_serialized` parses and transforms them: one trace of
  parsing every column, which the transform signature reuses, where TFXIO's
  dataset traced its own per split.

  Raises:
    ValueError: the files hold no example.
  """
  from tfx_bsl.tfxio import dataset_util  # pylint: disable=g-import-not-at-top
  read_batch = min(max_rows, _READ_BATCH_ROWS)
  serialized_batches = dataset_util.make_tf_record_dataset(
      file_pattern, batch_size=read_batch, drop_final_batch=False,
      num_epochs=1, shuffle=False, shuffle_buffer_size=1,
      shuffle_seed=None).take(-(-max_rows // read_batch)).prefetch(
          tf.data.AUTOTUNE)
  parts: Dict[str, List[tf.Tensor]] = {}
  for serialized in serialized_batches:
    for key, value in transform.apply_serialized(serialized).items():
      parts.setdefault(key, []).append(value)
  if not parts:
    raise ValueError(f'no examples in {", ".join(file_pattern)}: the split '
                     'is empty; give the data more rows')
  return {key: tf.concat(values, axis=0)[:max_rows]
          for key, values in parts.items()}


def shuffled_batches(rows: Mapping[str, tf.Tensor], label_feature: str,
                     batch_size: int, seed: int) -> tf.data.Dataset:
  """(features, label) batches of `rows` (feature -> tensor, one row per
  example, in the files' order), repeated forever.

  The order is the one the Trainer's reader gave the same examples before
  they were kept (TFXIO's shuffle, with its default buffer, with
  `seed`, anew for each pass, then batches of `batch_size` that may span two
  passes), so a model trains on the same batches as when each pass was read
  and transformed again. The rows stay where they are; only their indices
  are shuffled, so the memory is that of the rows, once.
  """
  from tfx_bsl.public import tfxio  # pylint: disable=g-import-not-at-top
  # TFXIO's default shuffle buffer, which the reader used.
  buffer_rows = tfxio.TensorFlowDatasetOptions(1).shuffle_buffer_size
  label = rows[label_feature]
  inputs = {key: value for key, value in rows.items() if key != label_feature}

  def gather(indices):
    return ({key: tf.gather(value, indices) for key, value in inputs.items()},
            tf.gather(label, indices))

  return tf.data.Dataset.range(int(label.shape[0])).shuffle(
      buffer_rows, seed).repeat().batch(
          batch_size, drop_remainder=True).map(
              gather, num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True).prefetch(tf.data.AUTOTUNE)


def validation_batches(rows: Mapping[str, tf.Tensor], label_feature: str,
                       batch_rows: Optional[int] = None) -> tf.data.Dataset:
  """(features, label) batches of `rows` (feature -> tensor, one row per
  example), each row once, in order, `batch_rows` at a time (default:
  _VALIDATION_BATCH_ROWS, fewer where a row holds many values): what each
  validation scores.

  A validation scores its rows with the model in inference mode, so the
  batch size changes no score; the same rows in batches of the training
  batch size took a step per batch (about 0.4 s of the bundled data's 2 s
  of training went to 250 validation steps).
  """
  label = rows[label_feature]
  inputs = {key: value for key, value in rows.items() if key != label_feature}
  if batch_rows is None:
    values_per_row = sum(
        int(np.prod(value.shape[1:], dtype=np.int64)) for value in
        inputs.values())
    batch_rows = max(1, min(_VALIDATION_BATCH_ROWS,
                            _VALIDATION_BATCH_VALUES // max(1, values_per_row)))
  return tf.data.Dataset.from_tensor_slices((inputs, label)).batch(batch_rows)


def make_validation_dataset(file_pattern: List[str],
                            tf_transform_output: tft.TFTransformOutput,
                            label_feature: str,
                            max_rows: int,
                            transform: Optional[serving.RawTransform] = None
                           ) -> tf.data.Dataset:
  """The first `max_rows` examples of `file_pattern` (the whole split if it
  is smaller), transformed as `make_dataset` transforms them, as
  `validation_batches`: what every validation scores."""
  if transform is None:
    transform = serving.RawTransform.of(tf_transform_output)
  rows = _transformed_rows(file_pattern, transform, max_rows)
  return validation_batches(rows, label_feature)


def make_dataset(file_pattern: List[str],
                 tf_transform_output: tft.TFTransformOutput,
                 label_feature: str,
                 batch_size: int,
                 seed: int,
                 steps: int,
                 transform: Optional[serving.RawTransform] = None
                ) -> tf.data.Dataset:
  """Examples transformed by the Transform graph, as (features, label)
  batches of `batch_size`, repeated forever, for `steps` steps.

  Transform does not write a transformed copy of the data
  (pipeline/pipeline.py): the Trainer reads ExampleGen's examples and applies
  the same saved graph that serving applies. It reads and transforms the
  rows `steps` batches need (the whole split if it is smaller) once, keeps
  them in memory and shuffles them anew for every pass (`shuffled_batches`,
  in the order the reader gave them when it read every pass again):
  parsing and transforming every batch again on every pass made each step
  cost in proportion to the number of columns, and a wide table dozens of
  passes. Memory is bounded by min(split, steps x batch_size) transformed
  rows. `transform` (default: Transform's layer) is shared by the datasets
  and the saved transform signature, so that they copy its graph once.
  The files hold serialized tf.Examples (what ExampleGen writes and the saved
  model's signatures parse), read as TFXIO's reader reads them.
  """
  if transform is None:
    transform = serving.RawTransform.of(tf_transform_output)
  rows = _transformed_rows(file_pattern, transform, steps * batch_size)
  return shuffled_batches(rows, label_feature, batch_size, seed)


def make_serving_signatures(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput,
    problem: features.Problem,
    transform: Optional[serving.RawTransform] = None) -> Dict[str, Any]:
  """The saved model's signatures over raw data (models/serving.py).

  ROWS_SIGNATURE ('serving_default') takes one named input per raw column
  and EXAMPLES_SIGNATURE serialized tf.Examples (the label not needed in
  either); both return PROBABILITIES, CLASS_NAMES and PREDICTED_CLASS for a
  classification, PREDICTIONS for a regression. TRANSFORM_SIGNATURE returns
  the transformed features, label included, for the Evaluator.
  """
  if transform is None:
    transform = serving.RawTransform.of(tf_transform_output)
  return serving.make_signatures(model, transform, problem,
                                 class_names(tf_transform_output, problem))


class TrainingLogs(keras.callbacks.TensorBoard):
  """TensorBoard logs (the Trainer's model_run artifact): the training loss,
  metrics and speed about 50 times per run, validation at the end.

  Keras' TensorBoard callback writes per-batch metrics only from its
  per-batch hook, which it runs only with `write_steps_per_second`; the hook
  then runs the summary ops of every batch and records every
  `update_freq`-th (about 1 s of CPU per 1000 steps). This one runs them on
  the recorded batches only and writes the same events.
  """

  def __init__(self, log_dir: str, train_steps: int):
    super().__init__(log_dir=log_dir, update_freq=max(1, train_steps // 50),
                     write_steps_per_second=True)

  def on_train_batch_end(self, batch, logs=None):
    # Counts training batches across epochs, as the recording condition
    # (the model's train counter) does.
    if self._global_train_batch % self.update_freq == 0:
      super().on_train_batch_end(batch, logs)


class BestWeights(keras.callbacks.Callback):
  """Keeps the weights (batch normalisation statistics included) of the
  epoch with the lowest validation loss, and restores them when training
  ends: a small data set that the later steps over-fit is served as it was
  at its best on the eval split.

  Keras' EarlyStopping restores the best weights only when it stops early;
  this one always does, and never stops.
  """

  def __init__(self, monitor: str = 'val_loss'):
    super().__init__()
    self.monitor = monitor
    self.best = np.inf
    self.best_epoch = -1
    self._weights = None

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(self.monitor)
    if value is not None and value < self.best:
      self.best, self.best_epoch = float(value), epoch
      self._weights = self.model.get_weights()

  def on_train_end(self, logs=None):
    if self._weights is not None:
      self.model.set_weights(self._weights)
      logging.info('Kept the weights of epoch %d of %d (%s %.4f)',
                   self.best_epoch + 1, self.params.get('epochs', 0),
                   self.monitor, self.best)


def train_model(model: keras.Model, train: tf.data.Dataset,
                validation: tf.data.Dataset, train_steps: int,
                log_dir: str) -> keras.callbacks.History:
  """Trains `model` (from `build_model`) on `train` in `_VALIDATIONS`
  epochs (fewer if there are fewer steps) of `train_steps // epochs`
  batches each, so `train_steps` rounded down to a multiple of the epochs,
  each epoch followed by a validation: the model scores every batch of
  `validation` (a finite dataset, from `make_validation_dataset`); keeps
  the weights that scored best there (`BestWeights`) and writes TensorBoard
  logs to `log_dir` (`TrainingLogs`).
  """
  epochs = max(1, min(_VALIDATIONS, train_steps))
  return model.fit(
      train,
      epochs=epochs,
      steps_per_epoch=train_steps // epochs,
      validation_data=validation,
      verbose=0,
      callbacks=[TrainingLogs(log_dir=log_dir, train_steps=train_steps),
                 BestWeights()])


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the model and saves it with raw-data signatures.

  Called by the TFX Trainer. `fn_args.custom_config` carries `batch_size`,
  `seed` and the problem description (models/features.py) from
  pipeline/configs.py.
  """
  _train_and_save(fn_args)
  # The model, its traced functions, the Transform graph and the kept rows
  # are garbage now (Keras' objects hold each other in cycles): freed here,
  # not whenever the collector next runs, so that a local run, whose later
  # components share this process, reuses their memory (a 1,000-column
  # table's run peaks in the Evaluator).
  keras.backend.clear_session()
  gc.collect()


def _train_and_save(fn_args: fn_args_utils.FnArgs) -> None:
  """run_fn's work."""
  batch_size = int(fn_args.custom_config['batch_size'])
  seed = int(fn_args.custom_config['seed'])
  problem = features.Problem.from_config(fn_args.custom_config)
  tf.config.experimental.enable_op_determinism()
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

  # One traced Transform for both datasets and the saved signatures.
  transform = serving.RawTransform.of(tf_transform_output)
  train = make_dataset(fn_args.train_files, tf_transform_output,
                       problem.label_feature, batch_size, seed,
                       fn_args.train_steps, transform)
  # The eval split's rows that `eval_steps` batches cover.
  validation = make_validation_dataset(
      fn_args.eval_files, tf_transform_output, problem.label_feature,
      fn_args.eval_steps * batch_size, transform)
  label_mean, label_std = 0.0, 1.0
  if not problem.is_classification:
    label_mean, label_std = label_statistics(train)
  model = build_model(
      feature_buckets(tf_transform_output, problem.label_feature), seed,
      problem_type=problem.problem_type,
      num_classes=len(class_names(tf_transform_output, problem)),
      label_mean=label_mean, label_std=label_std,
      widths=numeric_widths(tf_transform_output),
      train_steps=fn_args.train_steps)
  logging.info('Training a %s model for %d steps of %d examples',
               problem.problem_type, fn_args.train_steps, batch_size)
  train_model(model, train, validation, fn_args.train_steps,
              fn_args.model_run_dir)

  # Serving, the Evaluator and local.serving.predict call the signatures; without
  # each layer's traced call functions (save_traces) the export takes about
  # 40 % less time, and tf_keras still reloads the model from its config.
  # Nothing resumes training from a pushed model, so it holds no optimizer
  # state (tf_keras reloads it uncompiled): Adam's two slots per weight were
  # two thirds of its variables (569 -> 195 KB on the bundled data), and
  # tracing their save and restore about 0.1 s of the export.
  model.save(fn_args.serving_model_dir, save_format='tf',
             save_traces=False, include_optimizer=False,
             signatures=make_serving_signatures(model, tf_transform_output,
                                                problem, transform))
  if fn_args.schema_path:
    saved_schema = f'{fn_args.serving_model_dir}/{signatures.SCHEMA_IN_MODEL}'
    tf.io.gfile.makedirs(saved_schema.rpartition('/')[0])
    tf.io.gfile.copy(fn_args.schema_path, saved_schema, overwrite=True)
