"""The problem description shared by Transform and the Trainer.

Nothing here names a column of a particular data set. The pipeline
(pipeline/problem_spec.py, from pipeline/configs.py) writes a `Problem` as a
plain dict into the `custom_config` of Transform and the Trainer, so the
description travels with the pipeline into containers where the user's
environment does not exist, and a changed setting re-runs the components it
affects. Everything else (which columns exist and their types) comes from the
data's schema.
"""
import dataclasses
import functools
import re
import unicodedata
from typing import Any, Dict, Iterable, List, Mapping

BINARY = 'binary'
MULTICLASS = 'multiclass'
REGRESSION = 'regression'
PROBLEM_TYPES = (BINARY, MULTICLASS, REGRESSION)

# The key of the problem description in the components' custom_config.
PROBLEM_CONFIG_KEY = 'problem'

# An empty integer cell where a dense integer tensor needs a value: Transform
# gets the numeric matrix's integer columns dense with it as their default
# (pipeline/components/dense_numeric_inputs.py), and the preprocessing_fn
# reads it as missing. No count or code in a CSV export comes near it.
MISSING_INT = -(2**62)

# Vocabulary files in the transform graph: the class names of a
# classification label (index = the model's class index), and the shared
# vocabulary of 'column=value' tokens of the categorical columns.
LABEL_VOCABULARY = 'label_classes'
CATEGORY_VOCABULARY = 'categories'


def column_vocabulary(column: str) -> str:
  """The vocabulary file of a column with a vocabulary of its own; TFT names
  a scope after it, so it holds the column's `input_name`."""
  return f'vocabulary_{input_name(column)}'


# The transformed feature holding every numeric column that is not
# bucketized, as one [batch, columns] matrix of z-scores in column-name order
# (models/preprocessing.py numeric_columns). It does not end in '_xf', so no
# column's transformed name can take it.
NUMERIC_FEATURE = 'numeric_columns'


def transformed_name(key: str) -> str:
  """The name Transform gives to the feature made from raw column `key`."""
  return key + '_xf'


# Letters that Unicode does not decompose into a base letter and a mark.
_ASCII_LETTERS = str.maketrans({'æ': 'ae', 'Æ': 'AE', 'ø': 'o', 'Ø': 'O',
                                'ß': 'ss'})
_NOT_IN_NAME = re.compile(r'[^A-Za-z0-9_]')


@functools.lru_cache(maxsize=4096)  # called per cell of a served request
def input_name(column: str) -> str:
  """The name TensorFlow knows column `column` by: its input in the serving
  signature, and its Keras layers.

  A SavedModel renames a signature input that is not `[A-Za-z][A-Za-z0-9_]*`
  ('trip-miles' becomes 'trip_miles') and Keras refuses layer names with
  spaces, so every column gets such a name, by one rule: letters lose their
  accents (Å -> A, é -> e; æ -> ae, ø -> o, ß -> ss), every other character
  but A-Z a-z 0-9 _ becomes `_`, and a name that then does not start with a
  letter gets an `x` in front. 'Vekt (kg)' -> 'Vekt__kg_', 'Årsdøgntrafikk'
  -> 'Arsdogntrafikk', 'trip-miles' -> 'trip_miles'; 'trip_miles' stays.
  """
  decomposed = unicodedata.normalize('NFKD', column.translate(_ASCII_LETTERS))
  plain = ''.join(c for c in decomposed if not unicodedata.combining(c))
  name = _NOT_IN_NAME.sub('_', plain)
  return name if name[:1].isalpha() else 'x' + name


def input_names(columns: Iterable[str]) -> Dict[str, str]:
  """{column: input_name(column)} for `columns`.

  Raises:
    ValueError: two columns get the same name; the message names both.
  """
  names, column_of = {}, {}
  for column in columns:
    name = input_name(column)
    if name in column_of:
      raise ValueError(
          f'columns {column_of[name]!r} and {column!r} would both be the '
          f'model input {name!r} (models/features.py input_name): rename '
          'one of them')
    names[column], column_of[name] = name, column
  return names


@dataclasses.dataclass(frozen=True)
class Problem:
  """What to predict and how to treat the columns; see pipeline/configs.py."""
  label_key: str
  problem_type: str  # one of PROBLEM_TYPES
  drop_columns: List[str] = dataclasses.field(default_factory=list)
  categorical_columns: List[str] = dataclasses.field(default_factory=list)
  bucketize: Dict[str, int] = dataclasses.field(default_factory=dict)
  vocab_size: int = 5000
  oov_buckets: int = 10
  vocab_sizes: Dict[str, int] = dataclasses.field(default_factory=dict)
  # How the CSV's label reads: 'integer', 'float' or 'text'; '' when the data
  # could not be sampled (Cloud Storage). Only the Evaluator's configuration
  # uses it; Transform encodes the label by its type in the schema.
  label_kind: str = ''

  def __post_init__(self):
    if self.problem_type not in PROBLEM_TYPES:
      raise ValueError(f'problem_type {self.problem_type!r} is not one of '
                       f'{", ".join(PROBLEM_TYPES)}')

  @property
  def label_feature(self) -> str:
    """The transformed label: what the model is trained and evaluated on."""
    return transformed_name(self.label_key)

  @property
  def is_classification(self) -> bool:
    return self.problem_type != REGRESSION

  @property
  def evaluates_raw_label(self) -> bool:
    """Whether the raw label column is what the model predicts (a number:
    0/1 for binary, the value for regression), so the Evaluator can read it
    from the examples as they are. Otherwise (class names, multiclass codes)
    it reads the transformed label through the model's transform signature.
    """
    return self.problem_type == REGRESSION or (
        self.problem_type == BINARY and self.label_kind in ('integer',
                                                             'float'))

  def to_config(self) -> Dict[str, Any]:
    """A JSON-serialisable dict for a component's custom_config."""
    return dataclasses.asdict(self)

  @classmethod
  def from_config(cls, custom_config: Mapping[str, Any]) -> 'Problem':
    """The Problem in a component's custom_config (see to_config)."""
    if not custom_config or PROBLEM_CONFIG_KEY not in custom_config:
      raise ValueError(
          f'custom_config has no {PROBLEM_CONFIG_KEY!r}: the pipeline must '
          'pass the problem description (pipeline/problem_spec.py)')
    return cls(**custom_config[PROBLEM_CONFIG_KEY])
