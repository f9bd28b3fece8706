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
    ('trip-miles', 'trip-miles'),  # valid names stay as they are
    ('trip_miles', 'trip_miles'),
])
def test_a_column_becomes_a_tensorflow_name_by_one_rule(column, name):
  assert features.input_name(column) == name


def test_two_columns_with_one_name_are_refused_naming_both():
  with pytest.raises(ValueError, match="columns 'Antall km' and 'Antall_km' "
                     "would both be the model input 'Antall_km'.*rename one"):
    features.input_names(['Antall km', 'fare', 'Antall_km'])


def test_rows_signature_inputs_are_named_by_the_rule_and_parse_as_columns():
  spec = {'Vekt (kg)': tf.io.FixedLenFeature([], tf.int64, default_value=0),
          'Antall km': tf.io.VarLenFeature(tf.string)}
  inputs = serving.rows_input_signature(spec)
  assert {k: v.name for k, v in inputs.items()} == {
      'Vekt__kg_': 'Vekt__kg_', 'Antall_km': 'Antall_km'}

  @tf.function(input_signature=[inputs])
  def rows(columns):
    return serving.rows_to_parsed(columns, spec)

  parsed = rows({'Vekt__kg_': tf.constant([3.0, np.nan], tf.float64),
                 'Antall_km': tf.constant(['12', ''])})
  assert parsed['Vekt (kg)'].numpy().ravel().tolist() == [3, 0]
  assert parsed['Antall km'].values.numpy().tolist() == [b'12']
