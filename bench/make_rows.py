"""Makes N-row CSVs for scale benchmarks: resampled bundled taxi trips, or a
wide numeric sensor table.

    .venv/bin/python bench/make_rows.py 1000000 bench_output/rows_1m/data.csv
    .venv/bin/python bench/make_rows.py 5000 wide/data.csv --columns 300

Rows are drawn with replacement from data/data.csv (fixed seed) and perturbed,
so that the data set is larger without being 66 copies of the same rows:
fare and tips are scaled by the same random factor (the label, tips above 20 %
of the fare, stays true), trip miles and seconds get their own factors, and
coordinates move by about 100 m. Empty cells stay empty, integer columns stay
integers. Rows are streamed to disk in blocks: memory does not grow with N.

With `--columns C`, the table is a sensor export instead (`write_wide_rows`):
C numeric columns `sensor_000`... that are noisy mixtures of a few hidden
factors, each in its own units, with about 1 % empty cells, and a binary
label `alarm` that depends on the factors through limits and an interaction
(about half the rows).
"""
import argparse
import csv
import os
import random
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(REPO, 'data', 'data.csv')

# Scaled together, so tips / fare (and so the label) is unchanged.
_MONEY = ('fare', 'tips')
_DISTANCE = ('trip_miles',)
_DURATION = ('trip_seconds',)  # integer seconds
_COORDINATES = ('pickup_latitude', 'pickup_longitude', 'dropoff_latitude',
                'dropoff_longitude')
_COORDINATE_NOISE = 0.001  # degrees, about 100 m
_BLOCK = 50_000


def _scaled(text: str, factor: float, integer: bool) -> str:
  if not text:
    return text
  value = float(text) * factor
  return str(int(round(value))) if integer else f'{value:.2f}'


def perturbed(row, columns, rng: random.Random):
  """A copy of `row` (a list in `columns` order) with noise applied."""
  out = list(row)
  money = rng.lognormvariate(0.0, 0.05)
  distance = rng.lognormvariate(0.0, 0.05)
  for name in _MONEY:
    i = columns[name]
    out[i] = _scaled(out[i], money, integer=False)
  for name in _DISTANCE:
    i = columns[name]
    out[i] = _scaled(out[i], distance, integer=False)
  for name in _DURATION:
    i = columns[name]
    out[i] = _scaled(out[i], distance, integer=True)
  for name in _COORDINATES:
    i = columns[name]
    if out[i]:
      out[i] = f'{float(out[i]) + rng.gauss(0.0, _COORDINATE_NOISE):.6f}'
  return out


def write_rows(rows: int, path: str, seed: int = 7) -> str:
  """Writes a header and `rows` perturbed rows to `path`; returns `path`."""
  with open(SOURCE, newline='') as f:
    reader = csv.reader(f)
    header = next(reader)
    source = list(reader)
  columns = {name: i for i, name in enumerate(header)}
  rng = random.Random(seed)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(header)
    left = rows
    while left:
      block = min(left, _BLOCK)
      writer.writerows(
          perturbed(source[rng.randrange(len(source))], columns, rng)
          for _ in range(block))
      left -= block
  return path


_FACTORS = 8
_MISSING = 0.01
WIDE_LABEL = 'alarm'


def write_wide_rows(rows: int, columns: int, path: str, seed: int = 7) -> str:
  """Writes a `columns`-sensor table with a binary `alarm` label to `path`."""
  rng = np.random.default_rng(seed)
  loadings = rng.normal(size=(_FACTORS, columns))
  loadings *= rng.random((_FACTORS, columns)) < 0.5  # each mixes some factors
  offsets = rng.normal(0, 100, columns)
  scales = np.exp(rng.normal(0, 1.5, columns))
  digits = len(str(columns - 1))
  header = [f'sensor_{j:0{digits}d}' for j in range(columns)] + [WIDE_LABEL]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', newline='') as f:
    f.write(','.join(header) + '\n')
    left = rows
    while left:
      block = min(left, max(1, 2_000_000 // columns))
      z = rng.normal(size=(block, _FACTORS))
      values = (z @ loadings + rng.normal(0, 0.5, (block, columns))
                ) * scales + offsets
      # Limits crossed, an interaction and a trend: what sets an alarm off.
      score = (1.2 * (z[:, 0] > 0.3) + 0.8 * z[:, 1] * z[:, 2]
               + 0.9 * (np.abs(z[:, 3]) > 1.2) - 0.7 * (z[:, 4] > 1)
               + 0.4 * z[:, 5] - 0.75 + rng.normal(0, 0.3, block))
      text = np.char.mod('%.5g', values).astype(object)
      text[rng.random(values.shape) < _MISSING] = ''
      for cells, label in zip(text, (score > 0).astype(int)):
        f.write(','.join(cells) + f',{label}\n')
      left -= block
  return path


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('rows', type=int)
  parser.add_argument('path')
  parser.add_argument('--seed', type=int, default=7)
  parser.add_argument('--columns', type=int, default=0,
                      help='a wide sensor table of this many numeric columns')
  args = parser.parse_args()
  if args.rows < 1:
    sys.exit('rows must be at least 1')
  if args.columns:
    write_wide_rows(args.rows, args.columns, args.path, args.seed)
  else:
    write_rows(args.rows, args.path, args.seed)
  print(args.path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
