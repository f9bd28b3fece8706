"""models/model.py: the network on small tensors, without a pipeline."""
import numpy as np
import tensorflow as tf

from models import model

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
