"""models/model.py: the network on small tensors, without a pipeline, and
the Trainer's dataset over a small split transformed by TFT."""
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils
import tf_keras as keras

from models import features
from models import model
from models import preprocessing

_BUCKETS = {'payment_type_xf': 6, 'company_xf': 4, 'fare_xf': 0,
            'trip_miles_xf': 0}


def _batch(n, seed=0):
  rng = np.random.default_rng(seed)
  return {
      'payment_type_xf': tf.constant(rng.integers(0, 6, n), tf.int64),
      'company_xf': tf.constant(rng.integers(0, 4, n), tf.int64),
      'fare_xf': tf.constant(rng.normal(size=n), tf.float32),
      'trip_miles_xf': tf.constant(rng.normal(size=n), tf.float32),
  }


def test_forward_pass_gives_one_probability_per_row():
  net = model.build_model(_BUCKETS, seed=1)
  out = net(_batch(5)).numpy()
  assert out.shape == (5, 1)
  assert np.all((out > 0) & (out < 1))
  assert sorted(net.input_names) == sorted(_BUCKETS)


def test_categorical_inputs_get_embeddings_sized_by_their_buckets():
  net = model.build_model(_BUCKETS, seed=1)
  tables = {layer.name: layer.input_dim for layer in net.layers
            if layer.__class__.__name__ == 'Embedding'}
  assert tables == {'payment_type_xf_embedding': 6, 'company_xf_embedding': 4}


def test_same_seed_same_weights_and_outputs():
  first = model.build_model(_BUCKETS, seed=7)(_batch(8)).numpy()
  again = model.build_model(_BUCKETS, seed=7)(_batch(8)).numpy()
  other = model.build_model(_BUCKETS, seed=8)(_batch(8)).numpy()
  np.testing.assert_array_equal(first, again)
  assert not np.allclose(first, other)


def test_learns_a_rule_from_a_categorical_feature():
  # Label = 1 exactly when payment_type is 2: a learnable, exact rule.
  features = _batch(512, seed=3)
  labels = tf.cast(features['payment_type_xf'] == 2, tf.int64)
  net = model.build_model(_BUCKETS, seed=3)
  data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(64)
  history = net.fit(data.repeat(), steps_per_epoch=8, epochs=25, verbose=0)
  assert history.history['loss'][-1] < 0.25 * history.history['loss'][0]
  assert history.history['accuracy'][-1] > 0.95


def test_multiclass_model_gives_a_distribution_over_the_classes():
  net = model.build_model(_BUCKETS, seed=1,
                          problem_type=features.MULTICLASS, num_classes=4)
  out = net(_batch(5)).numpy()
  assert out.shape == (5, 4)
  np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
  assert net.loss == 'sparse_categorical_crossentropy'


def test_multiclass_model_learns_classes_from_a_categorical_feature():
  # Class = payment_type // 2: three classes from six categories.
  features_ = _batch(512, seed=4)
  labels = features_['payment_type_xf'] // 2
  net = model.build_model(_BUCKETS, seed=4,
                          problem_type=features.MULTICLASS, num_classes=3)
  data = tf.data.Dataset.from_tensor_slices((features_, labels)).batch(64)
  net.fit(data.repeat(), steps_per_epoch=8, epochs=25, verbose=0)
  # Measured without dropout, as served.
  assert net.evaluate(data, verbose=0, return_dict=True)['accuracy'] > 0.95


def test_regression_model_starts_at_the_label_mean_and_learns():
  features_ = _batch(512, seed=5)
  # A label in its own units: 150 + 40 * fare, plus a little noise.
  rng = np.random.default_rng(5)
  labels = (150.0 + 40.0 * features_['fare_xf'].numpy() +
            rng.normal(0, 2, 512)).astype(np.float32)
  net = model.build_model(_BUCKETS, seed=5,
                          problem_type=features.REGRESSION,
                          label_mean=float(labels.mean()),
                          label_std=float(labels.std()))
  first = net(_batch(5)).numpy()
  assert first.shape == (5, 1)
  # Untrained, the predictions sit near the mean, within a spread or so.
  assert np.all(np.abs(first - labels.mean()) < 2 * labels.std())
  assert net.loss == 'mean_squared_error'
  data = tf.data.Dataset.from_tensor_slices((features_, labels)).batch(64)
  net.fit(data.repeat(), steps_per_epoch=8, epochs=25, verbose=0)
  # Always predicting the mean would score an RMSE of about 40.
  assert net.evaluate(data, verbose=0, return_dict=True)['rmse'] < 15


def test_label_statistics_reads_the_labels_of_a_dataset():
  data = tf.data.Dataset.from_tensor_slices(
      ({'x': tf.zeros(8)}, tf.constant([1., 3., 1., 3., 1., 3., 1., 3.])))
  mean, std = model.label_statistics(data.batch(2), batches=4)
  assert (mean, std) == (2.0, 1.0)
  constant = tf.data.Dataset.from_tensor_slices(({'x': tf.zeros(2)},
                                                 tf.ones(2)))
  assert model.label_statistics(constant.batch(2))[1] > 0  # never 0


def test_a_model_without_inputs_is_refused():
  with pytest.raises(ValueError, match='no input features'):
    model.build_model({}, seed=1)


def test_feature_names_tensorflow_refuses_get_layers_named_by_the_rule():
  buckets = {'Antall km_xf': 3, 'Vekt (kg)_xf': 0}
  net = model.build_model(buckets, seed=1)
  out = net({'Antall km_xf': tf.constant([0, 2], tf.int64),
             'Vekt (kg)_xf': tf.constant([0.5, -1.0])}).numpy()
  assert out.shape == (2, 1)
  assert sorted(net.input) == sorted(buckets)
  assert 'Antall_km_xf_embedding' in [layer.name for layer in net.layers]


def _batch_events(log_dir):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  events = event_accumulator.EventAccumulator(
      f'{log_dir}/train', size_guidance={event_accumulator.TENSORS: 0})
  events.Reload()
  return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto)))
                for e in events.Tensors(tag)]
          for tag in events.Tags()['tensors'] if tag.startswith('batch_')}


def test_training_logs_write_what_keras_tensorboard_writes(tmp_path):
  # Two epochs of 60 steps, logging every 2nd (train_steps // 50 = 2 for the
  # TrainingLogs of a 100-step run): the loss and metrics of the same steps
  # as Keras' own callback, across the epoch boundary.
  features = _batch(256, seed=4)
  labels = tf.cast(features['payment_type_xf'] == 2, tf.int64)
  data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(32)
  written = {}
  for name, callback in [
      ('keras', lambda d: keras.callbacks.TensorBoard(
          d, update_freq=2, write_steps_per_second=True)),
      ('ours', lambda d: model.TrainingLogs(d, train_steps=100))]:
    log_dir = str(tmp_path / name)
    net = model.build_model(_BUCKETS, seed=4)
    net.fit(data.repeat(), steps_per_epoch=60, epochs=2, verbose=0,
            callbacks=[callback(log_dir)])
    written[name] = _batch_events(log_dir)
  keras_logs, ours = written['keras'], written['ours']
  assert set(ours) == set(keras_logs) >= {'batch_loss', 'batch_accuracy',
                                          'batch_steps_per_second'}
  assert [s for s, _ in ours['batch_loss']] == list(range(2, 121, 2))
  for tag in ('batch_loss', 'batch_accuracy', 'batch_auc'):
    np.testing.assert_allclose(ours[tag], keras_logs[tag], rtol=1e-6)


def test_shuffled_batches_give_every_row_once_per_pass_in_a_new_order():
  rows = {'x_xf': tf.constant(np.arange(10, dtype=np.float32) * 2),
          'label_xf': tf.constant(np.arange(10, dtype=np.int64))}
  data = model.shuffled_batches(rows, 'label_xf', batch_size=4, seed=1)
  batches = list(data.take(10))
  assert all(label.shape == (4,) for _, label in batches)  # spans passes
  labels = np.concatenate([label.numpy() for _, label in batches])
  inputs = np.concatenate([x['x_xf'].numpy() for x, _ in batches])
  np.testing.assert_array_equal(inputs, labels * 2)  # rows stay whole
  passes = labels.reshape(4, 10)
  for order in passes:
    assert sorted(order) == list(range(10))
  assert len({tuple(order) for order in passes}) == 4  # not replays
  again = model.shuffled_batches(rows, 'label_xf', batch_size=4, seed=1)
  np.testing.assert_array_equal(
      np.concatenate([label.numpy() for _, label in again.take(10)]), labels)


def _transformed_split(tmp_path, count):
  """A regression split of `count` examples (label = row number, `x` twice
  it, sometimes empty) written as TFRecords, and its TFTransformOutput."""
  spec = {'x': tf.io.VarLenFeature(tf.float32),
          'row': tf.io.FixedLenFeature([], tf.float32)}
  problem = features.Problem(label_key='row',
                             problem_type=features.REGRESSION)
  rows = [{'row': float(i), 'x': [] if i % 7 == 3 else [2.0 * i]}
          for i in range(count)]
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(spec))
  fn = functools.partial(
      preprocessing.preprocessing_fn,
      custom_config={features.PROBLEM_CONFIG_KEY: problem.to_config()})
  with tft_beam.Context(temp_dir=str(tmp_path / 'tmp'),
                        force_tf_compat_v1=True):
    transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(fn)
    _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / 'transform'))
  metadata_io.write_metadata(metadata, str(
      tmp_path / 'transform' / tft.TFTransformOutput.RAW_METADATA_DIR))
  path = str(tmp_path / 'data.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for row in rows:
      example = tf.train.Example()
      example.features.feature['row'].float_list.value.append(row['row'])
      example.features.feature['x'].float_list.value.extend(row['x'])
      writer.write(example.SerializeToString())
  return [path], tft.TFTransformOutput(str(tmp_path / 'transform'))


def test_dataset_transforms_each_row_once_and_reads_only_what_steps_need(
    tmp_path):
  files, output = _transformed_split(tmp_path, 300)
  label = 'row_xf'
  data = model.make_dataset(files, output, label, batch_size=32,
                            seed=3, steps=100)
  batches = list(data.take(19))  # 608 rows: two passes and a bit
  labels = np.concatenate([y.numpy() for _, y in batches])
  numeric = np.concatenate([x[features.NUMERIC_FEATURE].numpy()[:, 0]
                            for x, _ in batches])
  np.testing.assert_array_equal(np.sort(labels[:300]), np.arange(300))
  np.testing.assert_array_equal(np.sort(labels[300:600]), np.arange(300))
  assert not np.array_equal(labels[:300], labels[300:600])
  # Each row's features travel with its label: x is z-scored 2 * row, and
  # an empty x sits at 0.
  present = labels % 7 != 3
  assert np.all(numeric[~present] == 0.0)
  first = labels[:300][present[:300]]
  assert np.all(np.diff(numeric[:300][present[:300]][np.argsort(first)]) > 0)
  # Two steps of 32 need 64 rows: only 64 are read and transformed.
  few = model.make_dataset(files, output, label, batch_size=32,
                           seed=3, steps=2)
  seen = np.concatenate([y.numpy() for _, y in few.take(8)])
  assert len(set(seen)) == 64


def test_validation_scores_each_kept_row_once_whatever_the_batch_size(
    tmp_path):
  files, output = _transformed_split(tmp_path, 300)
  label = 'row_xf'
  validation = model.make_validation_dataset(files, output, label,
                                             max_rows=250)
  batches = list(validation)
  assert len(batches) == 1  # 250 rows fit one validation batch
  labels = np.concatenate([y.numpy() for _, y in batches])
  np.testing.assert_array_equal(labels, np.arange(250))  # in the files' order
  everything = model.make_validation_dataset(files, output, label,
                                             max_rows=10_000)
  assert sum(int(y.shape[0]) for _, y in everything) == 300

  # Scored in one batch or in batches of 16, the same validation loss.
  rows = {key: tf.concat([x[key] for x, _ in batches], axis=0)
          for key in batches[0][0]}
  rows[label] = tf.cast(tf.concat([y for _, y in batches], axis=0) % 2,
                        tf.int64)
  net = model.build_model(
      {key: 0 for key in rows if key != label}, seed=3,
      widths={features.NUMERIC_FEATURE:
              int(rows[features.NUMERIC_FEATURE].shape[1])})
  whole = net.evaluate(model.validation_batches(rows, label), verbose=0)
  small = net.evaluate(model.validation_batches(rows, label, batch_rows=16),
                       verbose=0)
  np.testing.assert_allclose(whole, small, rtol=1e-5)

  # A wide row: fewer rows per batch, the same rows.
  wide = {'x': tf.zeros([5000, 1000]), label: tf.range(5000)}
  sizes = [int(y.shape[0]) for _, y in model.validation_batches(wide, label)]
  assert sum(sizes) == 5000 and max(sizes) < 5000 and len(sizes) > 1


def test_dataset_of_an_empty_split_is_a_clear_error(tmp_path):
  files, output = _transformed_split(tmp_path, 20)
  empty = str(tmp_path / 'empty.tfrecord')
  with tf.io.TFRecordWriter(empty):
    pass
  with pytest.raises(ValueError, match='no examples in .*empty.tfrecord'):
    model.make_dataset([empty], output, 'row_xf', batch_size=8,
                       seed=1, steps=5)


def test_learning_rate_decays_to_zero_over_the_training_steps():
  schedule = model.learning_rate(train_steps=400)
  start, middle, end = (float(schedule(step)) for step in (0, 200, 400))
  assert start > middle > end
  assert end < 1e-3 * start
  assert model.learning_rate(train_steps=None) == pytest.approx(start)


def test_a_model_with_a_decaying_rate_learns_in_its_steps():
  net = model.build_model(_BUCKETS, seed=3, train_steps=200)
  x = _batch(256)
  y = tf.cast(x['payment_type_xf'] < 3, tf.float32)
  data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
  net.fit(data.repeat(), steps_per_epoch=8, epochs=25, verbose=0)
  assert net.evaluate(data, verbose=0, return_dict=True)['accuracy'] > 0.95


def test_best_weights_are_those_of_the_lowest_validation_loss():
  net = model.build_model(_BUCKETS, seed=2)
  best = model.BestWeights()
  best.set_model(net)
  best.set_params({'epochs': 3})
  snapshots = []
  for epoch, loss in enumerate([0.7, 0.4, 0.6]):
    net.set_weights([w + epoch for w in net.get_weights()])
    snapshots.append(net.get_weights())
    best.on_epoch_end(epoch, {'loss': 0.1, 'val_loss': loss})
  best.on_train_end()
  for kept, second in zip(net.get_weights(), snapshots[1]):
    np.testing.assert_array_equal(kept, second)


@pytest.mark.parametrize('problem_type,num_classes', [
    (features.BINARY, 2), (features.MULTICLASS, 3), (features.REGRESSION, 1)])
def test_training_traces_its_step_once(tmp_path, problem_type, num_classes):
  # A step that made the optimizer's slots would be traced twice: once
  # making them, once again without. The built model comes with them, for
  # the Trainer's fit and a plain one alike (bench/floor.py).
  features_ = _batch(64, seed=5)
  labels = features_['payment_type_xf'] % num_classes
  data = tf.data.Dataset.from_tensor_slices((features_, labels)).batch(16)
  net = model.build_model(_BUCKETS, seed=5, problem_type=problem_type,
                          num_classes=num_classes)
  # The validation's last batch is short (60 rows in batches of 16): its
  # step is still traced once.
  rows = {key: value[:60] for key, value in features_.items()}
  rows['label'] = labels[:60]
  validation = model.validation_batches(rows, 'label', batch_rows=16)
  history = model.train_model(net, data.repeat(), validation, train_steps=10,
                              log_dir=str(tmp_path))
  assert net.train_function.experimental_get_tracing_count() == 1
  assert net.test_function.experimental_get_tracing_count() == 1
  validations = model._VALIDATIONS  # pylint: disable=protected-access
  assert len(history.history['val_loss']) == validations
  assert net.optimizer.iterations.numpy() == 10

  plain = model.build_model(_BUCKETS, seed=5, problem_type=problem_type,
                            num_classes=num_classes)
  plain.fit(data.repeat(), steps_per_epoch=3, epochs=1, verbose=0)
  assert plain.train_function.experimental_get_tracing_count() == 1
