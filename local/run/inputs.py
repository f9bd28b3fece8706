"""What a local run reads, checked before anything heavy loads.

The settings, the span folders under DATA_PATH and the folder this run
ingests, the reviewed schema with the pre-flight checks of the CSV files
(local/run/preflight.py), and the problem the settings and the data describe
(pipeline/problem_spec.py). Bad input and settings stop the run here, in
well under a second, before TensorFlow loads and before anything is written.
Standard library and the light pipeline modules only.
"""
import dataclasses
from typing import List, Mapping, Optional

from local.run import preflight
from pipeline import configs
from pipeline import problem_spec
from pipeline.data_files import csv_format
from pipeline.data_files import schema_file
from pipeline.data_files import spans as span_layout


@dataclasses.dataclass(frozen=True)
class RunInputs:
  """A run's checked inputs.

  Attributes:
    settings: the loaded settings.
    spans: the span numbers under DATA_PATH, oldest first; empty for a plain
      folder of CSV files.
    data_folder: the folder this run ingests (the newest span's, or
      DATA_PATH).
    schema_text: the reviewed schema; None when the pipeline has none yet
      and this run infers one.
    resolved: the problem (label, problem type, columns) and how it was
      found.
  """
  settings: configs.Settings
  spans: List[int]
  data_folder: str
  schema_text: Optional[str]
  resolved: problem_spec.Resolved


def check(environ: Mapping[str, str]) -> RunInputs:
  """Loads the settings from `environ` and checks the data they name.

  Raises:
    ConfigError: a bad setting.
    DataError, schema_file.SchemaFileError: bad data or a bad reviewed
      schema, in one line that names the file.
  """
  settings = configs.load(environ)
  spans = span_layout.list_spans(settings.DATA_PATH)
  data_folder = span_layout.ingested_folder(settings.DATA_PATH, spans)
  schema_text = _check_data(settings, data_folder)
  resolved = problem_spec.from_settings(settings, data_folder)
  return RunInputs(settings, spans, data_folder, schema_text, resolved)


def _check_data(settings: configs.Settings,
                data_folder: str) -> Optional[str]:
  """Reads the reviewed schema and checks a sample of the CSV files against
  it (or, without one, against each other); returns the schema's text."""
  schema_text = schema_file.read_text(settings.SCHEMA_PATH)
  schema = (None if schema_text is None else
            schema_file.parse(schema_text, settings.SCHEMA_PATH))
  report = preflight.check_csv_folder(
      data_folder, schema, settings.SCHEMA_PATH,
      settings.PREFLIGHT_SAMPLE_ROWS, csv_format.CsvFormat.from_settings(
          settings), settings.PIPELINE_NAME, settings.LABEL_KEY,
      settings.MAX_MISSING_LABEL_FRACTION)
  if report.skipped:
    print(f'Data checks skipped: {report.skipped}; the anomaly gate checks '
          'it.', flush=True)
  else:
    against = (f'against the reviewed schema {settings.SCHEMA_PATH}'
               if schema else
               f'no reviewed schema yet for pipeline {settings.PIPELINE_NAME!r}'
               ': this run infers one, and checks the data against the '
               "schema of the served model's data, if there is one")
    print(f'Data checks passed: {len(report.files)} file(s), '
          f'{report.rows_checked} rows sampled{report.missing_label_note()}; '
          f'{against}.', flush=True)
  return schema_text
