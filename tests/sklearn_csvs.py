"""Small CSVs of other shapes, built from scikit-learn's bundled data sets.

Each writer puts one data.csv into a folder and returns its path; the data
ships inside the scikit-learn package, so nothing is downloaded. Used by the
end-to-end tests that run the pipeline on data other than the taxi trips.
"""
import os

import numpy as np
import pandas as pd
from sklearn import datasets


def _write(frame: pd.DataFrame, folder: str) -> str:
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, 'data.csv')
  frame.to_csv(path, index=False)
  return path


def write_breast_cancer(folder: str) -> str:
  """Binary, numeric features: 569 tumours, 30 float measurements, a text
  label `diagnosis` ('malignant' 37 %, 'benign'), and a row id to drop."""
  data = datasets.load_breast_cancer(as_frame=True)
  frame = data.data.rename(columns=lambda c: c.replace(' ', '_'))
  frame.insert(0, 'sample_id', np.arange(1000, 1000 + len(frame)))
  frame['diagnosis'] = np.asarray(data.target_names)[data.target]
  return _write(frame, folder)


def write_iris(folder: str) -> str:
  """Multiclass, string label and string features: 150 flowers, 4 float
  measurements (10 % of `sepal_width` cells empty), a text column
  `petal_size` derived from the petal length, a text column `garden` that
  carries no signal, and the label `species` as names."""
  data = datasets.load_iris(as_frame=True)
  frame = data.data.rename(columns=lambda c: c.replace(' (cm)', '').replace(
      ' ', '_'))
  rng = np.random.default_rng(7)
  frame['petal_size'] = pd.cut(frame['petal_length'], [0, 2.5, 5.0, 10],
                               labels=['small', 'medium', 'large']).astype(str)
  frame['garden'] = rng.choice(['north', 'south', 'east'], len(frame))
  frame['sepal_width'] = frame['sepal_width'].astype(object)
  frame.loc[rng.random(len(frame)) < 0.1, 'sepal_width'] = ''
  frame['species'] = np.asarray(data.target_names)[data.target]
  return _write(frame, folder)


def write_diabetes(folder: str) -> str:
  """Regression: 442 patients, 9 measurements (`sex` an integer code 1/2,
  the rest numbers), and `progression`, a disease score from 25 to 346."""
  data = datasets.load_diabetes(as_frame=True, scaled=False)
  frame = data.data.copy()
  frame['sex'] = frame['sex'].astype(int)
  frame['progression'] = data.target
  return _write(frame, folder)
