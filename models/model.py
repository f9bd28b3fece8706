"""The Keras model and the Trainer's entry point, `run_fn`.

`run_fn` is a short adapter over plain functions that tests call directly:
`build_model` (the network for a given set of transformed features),
`make_dataset` (batched training data) and `make_serving_signature` (raw
serialized tf.Examples in, probabilities out).
"""
from typing import Dict, List, Mapping

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import autograph_compat  # pylint: disable=unused-import
from models import features

_LABEL = features.transformed_name(features.LABEL_KEY)
_HIDDEN_UNITS = (64, 32)
_LEARNING_RATE = 1e-3
_DROPOUT = 0.3
_EMBEDDING_L2 = 1e-2
_MAX_EMBEDDING_DIM = 8


def _embedding_dim(num_buckets: int) -> int:
  return int(min(_MAX_EMBEDDING_DIM, max(2, round(1.6 * num_buckets**0.56))))


def feature_buckets(tf_transform_output: tft.TFTransformOutput) -> Dict[str, int]:
  """Maps each transformed model input to its number of buckets (0: numeric)."""
  spec = tf_transform_output.transformed_feature_spec()
  buckets = {}
  for name in sorted(spec):
    if name == _LABEL:
      continue
    if spec[name].dtype == tf.int64:
      buckets[name] = tf_transform_output.num_buckets_for_transformed_feature(
          name)
    else:
      buckets[name] = 0
  return buckets


def build_model(buckets: Mapping[str, int], seed: int) -> keras.Model:
  """A feed-forward binary classifier over the transformed features.

  Args:
    buckets: transformed feature name -> number of categories, or 0 for a
      numeric feature (see `feature_buckets`).
    seed: seeds the weight initialisation.

  Returns:
    A compiled model taking a dict of [batch] tensors and returning the
    probability of the positive class, shape [batch, 1].
  """
  keras.utils.set_random_seed(seed)
  inputs, encoded = {}, []
  for name, num_buckets in buckets.items():
    if num_buckets:
      inputs[name] = keras.Input(shape=(), name=name, dtype=tf.int64)
      embedded = keras.layers.Embedding(
          num_buckets, _embedding_dim(num_buckets),
          embeddings_regularizer=keras.regularizers.l2(_EMBEDDING_L2),
          name=f'{name}_embedding')(inputs[name])
      encoded.append(embedded)
    else:
      inputs[name] = keras.Input(shape=(), name=name, dtype=tf.float32)
      encoded.append(keras.layers.Reshape((1,))(inputs[name]))
  x = keras.layers.Concatenate()(encoded)
  for units in _HIDDEN_UNITS:
    x = keras.layers.Dropout(_DROPOUT, seed=seed)(x)
    x = keras.layers.Dense(units, activation='relu')(x)
  output = keras.layers.Dense(1, activation='sigmoid', name='probability')(x)
  model = keras.Model(inputs=inputs, outputs=output)
  model.compile(
      optimizer=keras.optimizers.Adam(_LEARNING_RATE),
      loss='binary_crossentropy',
      metrics=[keras.metrics.BinaryAccuracy(name='accuracy'),
               keras.metrics.AUC(name='auc')])
  return model


def make_dataset(file_pattern: List[str],
                 data_accessor: tfx.components.DataAccessor,
                 tf_transform_output: tft.TFTransformOutput,
                 batch_size: int,
                 seed: int) -> tf.data.Dataset:
  """Transformed examples as (features, label) batches, repeated forever."""
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(
          batch_size=batch_size, label_key=_LABEL, shuffle_seed=seed),
      tf_transform_output.transformed_metadata.schema).repeat()


def make_serving_signature(model: keras.Model,
                           tf_transform_output: tft.TFTransformOutput):
  """A signature scoring serialized raw tf.Examples (label not needed)."""
  # Attached to the model so that the Transform graph is saved with it.
  model.tft_layer = tf_transform_output.transform_features_layer()
  raw_spec = tf_transform_output.raw_feature_spec()
  # Neither the label nor the never-used columns (e.g. `tips`, which a client
  # cannot know before the trip ends) are required in a request.
  for column in (features.LABEL_KEY, *features.EXCLUDED_COLUMNS):
    raw_spec.pop(column, None)
  model_inputs = list(model.input_names)

  @tf.function(input_signature=[
      tf.TensorSpec(shape=[None], dtype=tf.string, name='examples')
  ])
  def serve_tf_examples(serialized):
    raw = tf.io.parse_example(serialized, raw_spec)
    transformed = model.tft_layer(raw)
    return {'probabilities': model({k: transformed[k] for k in model_inputs})}

  return serve_tf_examples


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the model and saves it with a raw-example serving signature.

  Called by the TFX Trainer. `fn_args.custom_config` carries `batch_size`
  and `seed` from pipeline/configs.py.
  """
  batch_size = int(fn_args.custom_config['batch_size'])
  seed = int(fn_args.custom_config['seed'])
  tf.config.experimental.enable_op_determinism()
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

  train = make_dataset(fn_args.train_files, fn_args.data_accessor,
                       tf_transform_output, batch_size, seed)
  evaluation = make_dataset(fn_args.eval_files, fn_args.data_accessor,
                            tf_transform_output, batch_size, seed)
  model = build_model(feature_buckets(tf_transform_output), seed)
  logging.info('Training for %d steps of %d examples', fn_args.train_steps,
               batch_size)
  model.fit(
      train,
      steps_per_epoch=fn_args.train_steps,
      validation_data=evaluation,
      validation_steps=fn_args.eval_steps,
      verbose=0,
      # TensorBoard logs (the Trainer's model_run artifact): the training
      # loss and metrics about 50 times per run, validation at the end.
      # (Keras calls the per-step hook that writes them only with
      # write_steps_per_second, which also logs the training speed.)
      callbacks=[keras.callbacks.TensorBoard(
          log_dir=fn_args.model_run_dir,
          update_freq=max(1, fn_args.train_steps // 50),
          write_steps_per_second=True)])

  signature = make_serving_signature(model, tf_transform_output)
  model.save(fn_args.serving_model_dir, save_format='tf',
             signatures={'serving_default': signature})
