"""Column names TensorFlow refuses (models/features.py input_name) and the
rows signature's inputs named by the rule (models/serving.py)."""
import numpy as np
import pytest
import tensorflow as tf

from models import features
from models import serving


@pytest.mark.parametrize('column, name', [
    ('Vekt (kg)', 'Vekt__kg_'),
    ('Antall km', 'Antall_km'),
    ('Årsdøgntrafikk', 'Arsdogntrafikk'),
    ('Kjøretøy/time', 'Kjoretoy_time'),
    ('_id', 'x_id'),
    ('2023', 'x2023'),
    ('trip-miles', 'trip_miles'),
    ('trip_miles', 'trip_miles'),  # valid names stay as they are
    ('Fare2', 'Fare2'),
])
def test_a_column_becomes_a_tensorflow_name_by_one_rule(column, name):
  assert features.input_name(column) == name


def test_two_columns_with_one_name_are_refused_naming_both():
  with pytest.raises(ValueError, match="columns 'Antall km' and 'Antall_km' "
                     "would both be the model input 'Antall_km'.*rename one"):
    features.input_names(['Antall km', 'fare', 'Antall_km'])


def test_rows_signature_inputs_keep_their_names_in_a_saved_model(tmp_path):
  spec = {'Vekt (kg)': tf.io.FixedLenFeature([], tf.int64, default_value=0),
          'Antall km': tf.io.VarLenFeature(tf.string),
          'trip-miles': tf.io.FixedLenFeature([], tf.float32, default_value=0)}
  module = tf.Module()

  def parse(columns):
    parsed = serving.rows_to_parsed(columns, spec)
    return {'weight': parsed['Vekt (kg)'],
            'km': tf.sparse.to_dense(parsed['Antall km'], default_value='-'),
            'miles': parsed['trip-miles']}

  module.rows = tf.function(
      parse, input_signature=[serving.rows_input_signature(spec)])
  tf.saved_model.save(module, str(tmp_path),
                      signatures={'serving_default': module.rows})
  rows = tf.saved_model.load(str(tmp_path)).signatures['serving_default']
  # A SavedModel renames inputs it finds invalid; these it keeps.
  assert sorted(rows.structured_input_signature[1]) == [
      'Antall_km', 'Vekt__kg_', 'trip_miles']
  parsed = rows(Vekt__kg_=tf.constant([3.0, np.nan], tf.float64),
                Antall_km=tf.constant(['12', '']),
                trip_miles=tf.constant([1.5, 2.0], tf.float64))
  assert parsed['weight'].numpy().ravel().tolist() == [3, 0]
  assert parsed['km'].numpy().ravel().tolist() == [b'12', b'-']
  assert parsed['miles'].numpy().ravel().tolist() == [1.5, 2.0]
