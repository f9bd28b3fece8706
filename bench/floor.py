"""The floor: the same learning as the pipeline, with no pipeline.

    .venv/bin/python bench/floor.py [--train-steps 1000]

Reads the bundled CSV with pandas, prepares the same features as
models/preprocessing.py for the problem in pipeline/configs.py (numeric
columns z-scored with missing values at the mean, text and categorical
columns mapped into one vocabulary of 'column=value' tokens plus
out-of-vocabulary buckets), trains models/model.py's network for the same
steps and batch size, and prints the eval accuracy (binary problems only). No TFX, Beam,
metadata or artifacts: the time of this script is what any pipeline adds to.
"""
import argparse
import os
import sys
import time
import warnings

_START = time.monotonic()
warnings.filterwarnings('ignore', category=FutureWarning)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import pandas as pd
import tensorflow as tf

from models import features
from models import model as model_lib
from pipeline import configs
from pipeline import problem_spec

_IMPORTED = time.monotonic()
# What models/model.py's imports load besides TensorFlow and Keras: the
# floor pays for them although it uses none of them.
_PIPELINE_LIBRARIES = sorted(
    name for name in ('tfx', 'apache_beam', 'tensorflow_model_analysis',
                      'tensorflow_data_validation') if name in sys.modules)


def column_roles(frame: pd.DataFrame, problem: features.Problem):
  """(numeric columns, categorical columns) as models/preprocessing.py
  treats them: text and declared-categorical columns are categorical."""
  inputs = [c for c in frame.columns
            if c != problem.label_key and c not in problem.drop_columns]
  categorical = [c for c in inputs if frame[c].dtype == object or
                 c in problem.categorical_columns]
  numeric = [c for c in inputs if c not in categorical]
  return numeric, categorical


def prepare(frame: pd.DataFrame, problem: features.Problem, vocabulary=None,
            moments=None):
  """Model inputs from raw columns; fits vocabulary and moments if None."""
  numeric, categorical = column_roles(frame, problem)
  if moments is None:
    moments = {c: (frame[c].mean(), frame[c].std(ddof=0) or 1.0)
               for c in numeric}
  if vocabulary is None:
    tokens = pd.concat([(c + '=' + frame[c].dropna().astype(str))
                        for c in categorical])
    top = tokens.value_counts().index[:problem.vocab_size]
    vocabulary = {token: i for i, token in enumerate(top)}
  inputs = {}
  if numeric:  # one matrix, in column-name order, as Transform makes it
    inputs[features.NUMERIC_FEATURE] = np.stack(
        [((frame[c] - moments[c][0]) / moments[c][1]).fillna(0.0)
         for c in sorted(numeric)], axis=1).astype(np.float32)
  oov = len(vocabulary)
  for c in categorical:
    tokens = c + '=' + frame[c].astype(str)
    ids = tokens.map(vocabulary)
    # Unseen tokens go to one of the OOV buckets by hash, as TFT does.
    unseen = ids.isna()
    ids[unseen] = oov + (pd.util.hash_pandas_object(
        tokens[unseen], index=False) % problem.oov_buckets)
    ids[frame[c].isna()] = oov  # a missing value: its own bucket
    inputs[features.transformed_name(c)] = ids.to_numpy(np.int64)
  return inputs, vocabulary, moments


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--data', default=os.path.join(REPO, 'data', 'data.csv'))
  parser.add_argument('--train-steps', type=int, default=1000)
  parser.add_argument('--batch-size', type=int, default=128)
  parser.add_argument('--seed', type=int, default=42)
  args = parser.parse_args()

  frame = pd.read_csv(args.data)
  problem = problem_spec.from_settings(
      configs.load_or_exit(os.environ), os.path.dirname(args.data)).problem
  if problem.problem_type != features.BINARY:
    sys.exit('bench/floor.py measures binary problems (the bundled data)')
  rng = np.random.default_rng(args.seed)
  is_eval = rng.random(len(frame)) < 1 / 3
  train, evaluation = frame[~is_eval], frame[is_eval]
  train_inputs, vocabulary, moments = prepare(train, problem)
  eval_inputs, _, _ = prepare(evaluation, problem, vocabulary, moments)

  numeric, categorical = column_roles(frame, problem)
  buckets = {features.NUMERIC_FEATURE: 0} if numeric else {}
  buckets.update({features.transformed_name(c):
                  len(vocabulary) + problem.oov_buckets for c in categorical})
  model = model_lib.build_model(
      dict(sorted(buckets.items())), args.seed,
      widths={features.NUMERIC_FEATURE: len(numeric)},
      train_steps=args.train_steps)
  labels = train[problem.label_key].to_numpy(np.float32)
  dataset = (tf.data.Dataset.from_tensor_slices((train_inputs, labels))
             .shuffle(len(labels), seed=args.seed).repeat()
             .batch(args.batch_size))
  model.fit(dataset, steps_per_epoch=args.train_steps, epochs=1, verbose=0)
  probabilities = model.predict(eval_inputs, batch_size=4096, verbose=0)
  accuracy = float(np.mean(
      (probabilities[:, 0] > 0.5) == evaluation[problem.label_key].to_numpy()))
  print(f'floor: {len(train)} train rows, {len(evaluation)} eval rows, '
        f'{args.train_steps} steps, eval accuracy {accuracy:.3f}, '
        f'{time.monotonic() - _START:.1f} s including imports '
        f'({_IMPORTED - _START:.1f} s; loaded through models.model: '
        f'{", ".join(_PIPELINE_LIBRARIES) or "none"})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
