"""Data sets of other shapes than the bundled data, as CSV files.

Small tables built from scikit-learn's bundled data sets (nothing is
downloaded), a variant of the bundled data with another label, and a wide
numeric sensor table (bench/make_rows.py). Each writer puts one CSV file,
`data.csv`, into a folder (the folder is what DATA_PATH names) and returns
the file's path. The tests (tests/helpers.py) and the quality table
(bench/quality.py) write their data with these.
"""
import csv
import itertools
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from sklearn import datasets

from bench import make_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED_CSV = os.path.join(REPO, 'data', 'data.csv')
CSV_NAME = 'data.csv'  # the name every writer here gives its file

Header = List[str]
Rows = List[List[str]]


def csv_path(folder: str, name: str = CSV_NAME) -> str:
  """The path of the CSV file a writer here put into `folder`."""
  return os.path.join(str(folder), name)


def read_csv(path: str, rows: Optional[int] = None) -> Tuple[Header, Rows]:
  """The header and the first `rows` data rows (all by default) of a CSV."""
  with open(path, newline='') as f:
    reader = csv.reader(f)
    return next(reader), list(itertools.islice(reader, rows))


def drop_columns(header: Header, rows: Rows,
                 columns: Sequence[str]) -> Tuple[Header, Rows]:
  """The table without `columns`."""
  keep = [i for i, name in enumerate(header) if name not in columns]
  return [header[i] for i in keep], [[row[i] for i in keep] for row in rows]


def write_csv(folder, header: Sequence[str], rows: Sequence[Sequence],
              name: str = CSV_NAME) -> str:
  """Writes a header and rows (values of any type) as `folder`/`name`."""
  os.makedirs(folder, exist_ok=True)
  path = csv_path(folder, name)
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(header)
    writer.writerows(rows)
  return path


def _write_frame(frame: pd.DataFrame, folder) -> str:
  os.makedirs(folder, exist_ok=True)
  path = csv_path(folder)
  frame.to_csv(path, index=False)
  return path


def write_breast_cancer(folder) -> str:
  """Binary, numeric features: 569 tumours, 30 float measurements, a text
  label `diagnosis` ('malignant' 37 %, 'benign'), and a row id to drop."""
  data = datasets.load_breast_cancer(as_frame=True)
  frame = data.data.rename(columns=lambda c: c.replace(' ', '_'))
  frame.insert(0, 'sample_id', np.arange(1000, 1000 + len(frame)))
  frame['diagnosis'] = np.asarray(data.target_names)[data.target]
  return _write_frame(frame, folder)


def write_iris(folder) -> str:
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
  return _write_frame(frame, folder)


def write_wine(folder) -> str:
  """Multiclass, numeric features: 178 wines, 13 chemical measurements on
  very different scales, and the label `cultivar` ('class_0', 'class_1',
  'class_2')."""
  data = datasets.load_wine(as_frame=True)
  frame = data.data.rename(columns=lambda c: c.replace('/', '_'))
  frame['cultivar'] = np.asarray(data.target_names)[data.target]
  return _write_frame(frame, folder)


def write_diabetes(folder) -> str:
  """Regression with a text feature: 442 patients, 9 measurements, `sex` as
  text ('female', 'male'), and `progression`, a disease score from 25 to
  346."""
  data = datasets.load_diabetes(as_frame=True, scaled=False)
  frame = data.data.copy()
  frame['sex'] = np.where(frame['sex'].astype(int) == 1, 'female', 'male')
  frame['progression'] = data.target
  return _write_frame(frame, folder)


def write_taxi_payments(folder, rows: Optional[int] = 600) -> str:
  """Multiclass, a variant of the bundled data: its first `rows` rows (all
  with None) without `big_tipper`, to predict `payment_type` (in 600 rows 5
  names, 71 % 'Cash', 28 % 'Credit Card')."""
  header, table = drop_columns(*read_csv(BUNDLED_CSV, rows), ['big_tipper'])
  return write_csv(folder, header, table)


def write_sensors(folder, rows: int = 5000, columns: int = 300) -> str:
  """Binary, wide and numeric: a `columns`-sensor export of `rows` rows with
  the label `alarm` (bench/make_rows.py's `write_wide_rows`)."""
  return make_rows.write_wide_rows(rows, columns, csv_path(folder))
