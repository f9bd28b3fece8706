"""Makes an N-row CSV for scale benchmarks from the bundled taxi trips.

    .venv/bin/python bench/make_rows.py 1000000 bench_output/rows_1m/data.csv

Rows are drawn with replacement from data/data.csv (fixed seed) and perturbed,
so that the data set is larger without being 66 copies of the same rows:
fare and tips are scaled by the same random factor (the label, tips above 20 %
of the fare, stays true), trip miles and seconds get their own factors, and
coordinates move by about 100 m. Empty cells stay empty, integer columns stay
integers. Rows are streamed to disk in blocks: memory does not grow with N.
"""
import argparse
import csv
import os
import random
import sys

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


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('rows', type=int)
  parser.add_argument('path')
  parser.add_argument('--seed', type=int, default=7)
  args = parser.parse_args()
  if args.rows < 1:
    sys.exit('rows must be at least 1')
  write_rows(args.rows, args.path, args.seed)
  print(args.path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
