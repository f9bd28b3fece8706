"""Defaults that follow the data: the bundled taxi data's settings stay with it.

Some defaults of pipeline/configs.py describe the bundled taxi data (data/):
the columns to drop, the integer codes, the slices, the pipeline name
`taxi-tips` and with it the reviewed schema schema/taxi-tips/schema.pbtxt.
They apply to the bundled data, and to a copy, a slice or an export of it
(CSV files with its columns, wherever they are); any other data set gets
empty column settings and a pipeline named after its folder, so a new data
set runs with only DATA_PATH and LABEL_KEY set. `describe` says which of
these were inferred, for the run's output.

Only the header lines are read (microseconds), and nothing when DATA_PATH is
on Cloud Storage.
"""
import os
import re
from typing import Collection, FrozenSet, List, Optional

from pipeline import data_files
from pipeline import setting_types
from pipeline.data_files import csv_format
from pipeline.data_files import spans
from pipeline.errors import DataError

BUNDLED_DATA_PATH = os.path.join(data_files.REPO_ROOT, 'data')
BUNDLED_PIPELINE_NAME = 'taxi-tips'
# The settings whose defaults describe the bundled data's columns.
COLUMN_SETTINGS = ('DROP_COLUMNS', 'CATEGORICAL_COLUMNS', 'EVAL_SLICE_COLUMNS')
# The delimiters a header is split on to recognise the bundled data's
# columns in an export of it.
_DELIMITERS = (',', ';', '\t')


def _columns(data_path: str) -> Optional[FrozenSet[str]]:
  """The column names in the header of the first data file in
  `data_path` (in its newest span folder, when it holds span folders), or
  None when there is none to read."""
  if not data_path or data_path.startswith('gs://'):
    return None
  try:
    folder = spans.ingested_folder(data_path, spans.list_spans(data_path))
  except DataError:
    return None  # the run's data checks report the folder's layout
  files = csv_format.csv_files(folder)
  if not files:
    return None
  try:
    with csv_format.open_bytes(files[0]) as f:
      line = f.readline().decode('utf-8-sig', errors='replace').strip()
  except csv_format.DECOMPRESSION_ERRORS:
    return None  # the run's data checks report an unreadable file
  split = max((line.split(d) for d in _DELIMITERS), key=len)
  return frozenset(name.strip().strip('"') for name in split)


def is_bundled_data(data_path: str) -> bool:
  """Whether `data_path` holds the bundled data, or a copy or export of it:
  CSV files with the bundled data's columns."""
  if os.path.realpath(data_path) == os.path.realpath(BUNDLED_DATA_PATH):
    return True
  columns = _columns(data_path)
  return columns is not None and columns == _columns(BUNDLED_DATA_PATH)


def only_for_bundled_data(value: str) -> setting_types.Derived:
  """A default that is `value` for the bundled data, empty for other data."""
  return setting_types.derived(
      lambda s: value if is_bundled_data(s.DATA_PATH) else '')


def folder_pipeline_name(data_path: str) -> str:
  """A pipeline name made of the data folder's name (`/data/Road Works_2`
  -> `road-works-2`), by the rules of PIPELINE_NAME."""
  folder = os.path.basename(os.path.normpath(data_path.rstrip('/')))
  name = re.sub(r'[^a-z0-9]+', '-', folder.lower()).strip('-')[:128]
  return name.strip('-') or 'pipeline'


def pipeline_name(data_path: str) -> str:
  """PIPELINE_NAME's default: `taxi-tips` for the bundled data, else the
  data folder's name."""
  return (BUNDLED_PIPELINE_NAME if is_bundled_data(data_path) else
          folder_pipeline_name(data_path))


def describe(settings, defaulted: Collection[str]) -> List[str]:
  """Lines for the run's output on what followed from the data.

  Args:
    settings: configs.load(...)'s settings.
    defaulted: the settings that took their default (no override).

  Returns:
    Up to two lines: the pipeline name, when it was derived, and the column
    settings that were left empty because the data is not the bundled data
    or were taken from the bundled data's.
  """
  lines = []
  bundled = is_bundled_data(settings.DATA_PATH)
  if 'PIPELINE_NAME' in defaulted and not bundled:
    lines.append(f'Pipeline name {settings.PIPELINE_NAME!r}: from the data '
                 "folder's name (set PIPELINE_NAME to choose another).")
  columns = [name for name in COLUMN_SETTINGS if name in defaulted]
  if columns and bundled:
    lines.append(f'Column settings: the bundled taxi data\'s '
                 f'{", ".join(columns)} (pipeline/configs.py).')
  elif columns:
    lines.append(f'Column settings: {", ".join(columns)} empty (their '
                 'defaults describe the bundled taxi data only); inferred '
                 'from the data instead.')
  return lines
