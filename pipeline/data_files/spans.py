"""Span folders: new data arrives as DATA_PATH/span-1/, span-2/, ...

A data folder holds either CSV files (one data set, read whole by every run)
or span folders `span-<n>/`, each a batch of CSV files with the same columns.
With span folders, ExampleGen reads the newest span only (TFX's `{SPAN}` input
pattern, resolved by ExampleGen's driver from the folder names, on a local
disk or in Cloud Storage alike), and the Trainer trains on the newest
TRAIN_WINDOW_SPANS accepted spans (pipeline/components/training_window.py).

Standard library only (TensorFlow's file system, for gs://, is imported when
listing one): the local runner's checks before a run use it.
"""
import os
import re
from typing import Callable, Iterable, List, Optional

from pipeline.data_files import csv_format
from pipeline.errors import DataError

# One span's folder, as TFX's input pattern and as a name.
SPAN_FOLDER_PATTERN = 'span-{SPAN}'
# ExampleGen's input patterns: every data file (csv_format.is_csv_file:
# `*.csv`, `*.csv.gz`, ...) of the folder; the executor leaves out other
# names the pattern matches.
SPAN_SPLIT_PATTERN = SPAN_FOLDER_PATTERN + '/' + csv_format.CSV_FILE_GLOB
PLAIN_SPLIT_PATTERN = csv_format.CSV_FILE_GLOB
_SPAN_FOLDER = re.compile(r'span-(\d+)/?')


def span_folder_name(span: int) -> str:
  """'span-<span>'."""
  return SPAN_FOLDER_PATTERN.replace('{SPAN}', str(span))


def span_numbers(names: Iterable[str]) -> List[int]:
  """The spans among folder names ('span-3' or 'span-3/'), ascending."""
  return sorted(int(found.group(1)) for found in map(_SPAN_FOLDER.fullmatch,
                                                     names) if found)


def list_spans(data_path: str,
               listdir: Optional[Callable[[str], List[str]]] = None
               ) -> List[int]:
  """The spans under `data_path`, ascending; [] for a folder of CSV files
  (or a local folder that does not exist: the data checks report it).

  Args:
    data_path: the data folder, a local path or a gs:// URI.
    listdir: lists a folder's entries; default os.listdir, or TensorFlow's
      file system for gs://.

  Raises:
    DataError: the folder mixes span folders and CSV files of its own, which
      would leave the CSV files unread.
  """
  if listdir is None and data_path.startswith('gs://'):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    listdir = tf.io.gfile.listdir
  if listdir is None and not os.path.isdir(data_path):
    return []
  names = (listdir or os.listdir)(data_path)
  spans = span_numbers(names)
  loose = sorted(name for name in names if csv_format.is_csv_file(name))
  if spans and loose:
    raise DataError(
        f'{data_path} holds span folders ({span_folder_name(spans[-1])}, ...) '
        f'and CSV files of its own ({", ".join(loose[:3])}): move the CSV '
        'files into a span folder (docs/continuous_training.md)')
  return spans


def ingested_folder(data_path: str, spans: List[int]) -> str:
  """The folder a run ingests: the newest span's, or `data_path` itself
  when there are no spans."""
  if not spans:
    return data_path
  return os.path.join(data_path, span_folder_name(spans[-1]))


def split_pattern(spans: List[int]) -> str:
  """ExampleGen's input pattern for a data folder with these spans."""
  return SPAN_SPLIT_PATTERN if spans else PLAIN_SPLIT_PATTERN
