"""The default model against gradient-boosted trees, on every data set.

    .venv/bin/python bench/quality.py [--workdir DIR] [--only NAME ...]

Runs the whole pipeline (local_runner.py, default settings but the label)
on each data set below, then compares its Evaluator metric with the
reference of bench/reference.py (HistGradientBoosting with defaults, fitted
on the run's own train split and scored on its eval split) and the trivial
model, and prints one table. Exits 1 if a data set is not within its margin
(docs/performance.md). `make bench` prints the same table.
"""
import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
from bench import datasets
from bench import reference
from pipeline import configs
from pipeline import problem_spec


@dataclasses.dataclass(frozen=True)
class DataSet:
  name: str
  label: str
  # Writes the CSV into a folder; None: the bundled data (data/).
  writer: Optional[Callable[[str], str]]


BUNDLED = 'bundled data'
DATA_SETS = (
    DataSet(BUNDLED, 'big_tipper', None),
    DataSet('300-column sensor table', 'alarm', datasets.write_sensors),
    DataSet('breast cancer', 'diagnosis', datasets.write_breast_cancer),
    DataSet('wine, multiclass', 'cultivar', datasets.write_wine),
    DataSet('iris, multiclass', 'species', datasets.write_iris),
    DataSet('taxi payment type, multiclass', 'payment_type',
            lambda folder: datasets.write_taxi_payments(folder, rows=None)),
    DataSet('diabetes, regression', 'progression', datasets.write_diabetes),
)


@dataclasses.dataclass
class Row:
  data_set: str
  comparison: Optional[reference.Comparison]
  seconds: float
  error: str = ''


def _slug(name: str) -> str:
  return 'quality-' + ''.join(c if c.isalnum() else '-'
                              for c in name.split(',')[0].lower())


def _environment(data_dir: str, output_dir: str, pipeline_name: str,
                 label: str) -> Dict[str, str]:
  """This process's environment without any pipeline setting (the run sees
  the defaults), then the data set's."""
  names = set(configs.Settings.names())
  env = {k: v for k, v in os.environ.items()
         if k not in names and k != 'PYTHONPATH'}
  env.update(TF_CPP_MIN_LOG_LEVEL='3', PIPELINE_NAME=pipeline_name,
             DATA_PATH=data_dir, LOCAL_OUTPUT_DIR=output_dir, LABEL_KEY=label)
  return env


def run_one(data_set: DataSet, workdir: str) -> Row:
  """One cold pipeline run of `data_set` under `workdir`, compared."""
  slug = _slug(data_set.name)
  data_dir = os.path.join(REPO, 'data')
  if data_set.writer:
    data_dir = os.path.join(workdir, slug, 'data')
    data_set.writer(data_dir)
  output_dir = os.path.join(workdir, slug, 'output')
  shutil.rmtree(output_dir, ignore_errors=True)
  env = _environment(data_dir, output_dir, slug, data_set.label)
  start = time.monotonic()
  done = subprocess.run([sys.executable, os.path.join(REPO, 'local_runner.py')],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        check=False)
  seconds = time.monotonic() - start
  problem = problem_spec.from_settings(configs.load(env)).problem
  try:
    comparison = reference.compare(output_dir, slug, problem)
  except Exception as error:  # pylint: disable=broad-except
    # A run that stops before the Evaluator has no metric to compare.
    tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
    return Row(data_set.name, None, seconds,
               f'{type(error).__name__}: {error}; run exit {done.returncode}: '
               + ' | '.join(tail))
  return Row(data_set.name, comparison, seconds)


TITLE = ('the default model against gradient-boosted trees (bench/'
         'reference.py), each on its run\'s own eval split (run: the '
         'pipeline\'s wall time):')


def format_table(rows: Sequence[Row]) -> str:
  header = (f'{"data set":<32}{"metric":>9}{"eval rows":>11}{"this model":>12}'
            f'{"reference":>11}{"trivial":>9}{"margin":>9}{"within":>8}'
            f'{"run":>8}')
  lines = [header, '-' * len(header)]
  for row in rows:
    c = row.comparison
    if c is None:
      lines.append(f'{row.data_set:<32}  no result: {row.error}')
      continue
    margin = (f'+{reference.RMSE_MARGIN:.0%}' if c.lower_is_better
              else f'-{reference.ACCURACY_MARGIN:.2f}')
    lines.append(
        f'{row.data_set:<32}{c.metric:>9}{c.eval_rows:>11,}{c.model:>12.3f}'
        f'{c.reference:>11.3f}{c.trivial:>9.3f}{margin:>9}'
        f'{"yes" if c.within_margin else "NO":>8}{row.seconds:>7.0f}s')
  return '\n'.join(lines)


def all_within(rows: Sequence[Row]) -> bool:
  return all(r.comparison is not None and r.comparison.within_margin
             for r in rows)


def run_all(workdir: str, names: Sequence[str] = (),
            skip: Sequence[str] = ()) -> List[Row]:
  """Runs and compares the data sets whose name contains one of `names`
  (all if empty), but those named in `skip`."""
  rows = []
  for data_set in DATA_SETS:
    if names and not any(n.lower() in data_set.name.lower() for n in names):
      continue
    if data_set.name in skip:
      continue
    print(f'quality: running the pipeline on {data_set.name} ...', flush=True)
    rows.append(run_one(data_set, workdir))
  return rows


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir',
                      default=os.path.join(REPO, 'bench_output', 'quality'))
  parser.add_argument('--only', nargs='*', default=(),
                      help='data sets whose name contains one of these')
  args = parser.parse_args()
  rows = run_all(args.workdir, args.only)
  print('\n' + TITLE)
  print(format_table(rows))
  return 0 if all_within(rows) else 1


if __name__ == '__main__':
  sys.exit(main())
