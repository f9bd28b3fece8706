"""The single source of the data's column roles: label, features, excluded columns.

Every other module (preprocessing, model, evaluation config, tests) imports
these names instead of repeating column strings.
"""
from typing import Tuple

# 1 when the tip was more than 20 % of the fare.
LABEL_KEY = 'big_tipper'

# Columns that are never model inputs. `tips` leaks the label (the label is
# computed from it); the raw timestamp repeats trip_start_month/hour/day;
# pickup_census_tract is empty in all but one row of the bundled data.
EXCLUDED_COLUMNS: Tuple[str, ...] = ('tips', 'trip_start_timestamp',
                                     'pickup_census_tract')

# Real-valued columns: missing values imputed with the mean, then z-scored.
NUMERIC_FEATURES: Tuple[str, ...] = (
    'fare',
    'trip_miles',
    'trip_seconds',
    'pickup_latitude',
    'pickup_longitude',
    'dropoff_latitude',
    'dropoff_longitude',
)

# Columns whose values are categories (strings or integer codes): mapped to
# indices in one vocabulary of the VOCAB_SIZE most frequent (column, value)
# pairs, plus OOV_BUCKETS indices for pairs not seen in training.
CATEGORICAL_FEATURES: Tuple[str, ...] = (
    'payment_type',
    'company',
    'trip_start_hour',
    'trip_start_day',
    'trip_start_month',
    'pickup_community_area',
    'dropoff_community_area',
    'dropoff_census_tract',
)

VOCAB_SIZE = 5000
OOV_BUCKETS = 10


def transformed_name(key: str) -> str:
  """The name Transform gives to the feature made from raw column `key`."""
  return key + '_xf'
