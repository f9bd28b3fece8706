"""Runs the whole pipeline on this machine: Beam DirectRunner, SQLite metadata,
local files.

    make run                      # or: .venv/bin/python local_runner.py
    TRAIN_NUM_STEPS=200 make run  # any setting of pipeline/configs.py

Everything a run writes goes under LOCAL_OUTPUT_DIR (default tfx_output/):
artifacts in pipelines/<name>/, the metadata store in metadata/<name>/, blessed
models in serving_model/<name>/<version>/. Prints one line per component and a
summary; exits non-zero when a component fails. With span folders under
DATA_PATH it ingests the newest span (docs/continuous_training.md). One run
of a pipeline at a time per output folder: a second one exits with status
BUSY naming the running one, or waits for it (CONCURRENT_RUNS). The steps
live in local/run/.
"""
import argparse
import logging
import os
import signal
import sys
import time
from typing import List, Optional
import warnings

# Before TensorFlow and the Google client libraries load: keep their start-up
# notices (C++ logs about absent GPUs, Python-version FutureWarnings) out of
# the output unless --verbose is given.
if '--verbose' not in sys.argv:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  warnings.filterwarnings('ignore', category=FutureWarning)
  # TFMA divides by zero for a slice without positive labels (recall n/a).
  warnings.filterwarnings('ignore', category=RuntimeWarning,
                          module='tensorflow_model_analysis')

# Light modules only, so bad input is reported within a second; TensorFlow,
# TFX and Beam (seconds to import) load in _run.
# pylint: disable=g-import-not-at-top,wrong-import-position
from local import output_layout
from local.run import inputs as run_inputs
from local.run import interrupted_runs
from local.run import progress
from local.run import run_lock
from pipeline import component_ids
from pipeline import configs
from pipeline import setting_types
from pipeline import startup_gc
from pipeline.data_files import bundled_data
from pipeline.data_files import schema_file
from pipeline.errors import ConfigError, DataError
# pylint: enable=g-import-not-at-top,wrong-import-position

INTERRUPTED = 130  # the shell's exit status for a program stopped by SIGINT
BUSY = 75  # another run holds the output folder (EX_TEMPFAIL: try again later)


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--verbose', action='store_true',
                      help='show TFX, Beam and TensorFlow logs')
  args = parser.parse_args(argv)
  # Ctrl-C (or kill -INT) interrupts the run even when the shell that started
  # it in the background set SIGINT to be ignored (until _run takes over).
  signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    checked = run_inputs.check(os.environ)
  except ConfigError as error:
    return configs.config_error_status(error)
  except (DataError, schema_file.SchemaFileError) as error:
    prefix = 'data error' if isinstance(error, DataError) else 'error'
    print(f'{prefix}: {error}', file=sys.stderr)
    return 1
  settings = checked.settings
  layout = output_layout.PipelineLayout.of(settings.LOCAL_OUTPUT_DIR,
                                           settings.PIPELINE_NAME)
  # Before the store is touched: a second run must not mark the first one's
  # running executions as abandoned. Held while this frame lives, that is
  # until the run has ended.
  try:
    lock = run_lock.hold_for_run(os.path.dirname(layout.metadata_path),
                                 settings.CONCURRENT_RUNS)
  except run_lock.RunInProgress as error:
    print(f'error: {error}', file=sys.stderr)
    return BUSY
  connection = interrupted_runs.sqlite_connection(layout.metadata_path)
  try:
    interrupted_runs.clean_up(connection, layout.metadata_path)
  except interrupted_runs.MetadataStoreError as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  return _run(args.verbose, checked, connection, lock.run_id)


def _run(verbose: bool, checked: run_inputs.RunInputs, connection,
         run_id: str) -> int:
  """Runs the pipeline (local/run/local_pipeline.py); prints progress and a
  summary."""
  settings = checked.settings
  printer = progress.ProgressPrinter(
      list(component_ids.of_pipeline(bool(checked.spans))))

  def stop(*unused):
    if printer.current:
      printer.line(printer.current, 'STOPPED')
    interrupted_runs.stop_run(connection, INTERRUPTED)

  # Ctrl-C stops the run at once, whatever Python code is running.
  signal.signal(signal.SIGINT, stop)
  # pylint: disable=g-import-not-at-top
  from local import run_summary
  from pipeline.kfp_runtime import beam_caches
  from local.run import local_pipeline
  from local.run import outcome
  from local.run import text_proto_memo
  # pylint: enable=g-import-not-at-top
  progress.show_logs(verbose)
  # Beam's in-process runner re-reads DoFn signatures for every stage, and
  # builds a new options object, parser and all, for each options view.
  beam_caches.remember()
  # The components parse the same schema text one after the other.
  text_proto_memo.remember()
  logging.getLogger('absl').addHandler(printer)
  # Dotted user-code paths (models.*) must import in every Beam worker too.
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  pipeline = local_pipeline.create_pipeline(checked, connection)
  print(f'Running pipeline {settings.PIPELINE_NAME!r} on {settings.DATA_PATH} '
        f'(outputs in {settings.LOCAL_OUTPUT_DIR})', flush=True)
  if checked.spans:
    print(f'Span {checked.spans[-1]}: ingesting {checked.data_folder}, the '
          f'newest of {len(checked.spans)} span folder(s); training on the '
          f'newest {settings.TRAIN_WINDOW_SPANS} span(s) that passed the '
          'checks.', flush=True)
  print(checked.resolved.describe(), flush=True)
  for line in bundled_data.describe(
      settings, setting_types.defaulted(configs, os.environ)):
    print(line, flush=True)
  # The imports are done and the pipeline is built: the components run with
  # the collector on, and it no longer scans what start-up made.
  startup_gc.resume()
  start = time.monotonic()
  try:
    local_pipeline.run(pipeline, run_id)
  except Exception as error:  # pylint: disable=broad-except
    return outcome.report_failure(error, printer, verbose, settings, run_id)
  finally:
    logging.getLogger('absl').removeHandler(printer)

  summary = run_summary.summarize(connection, settings.PIPELINE_NAME, run_id)
  lines = outcome.describe(summary, time.monotonic() - start,
                           checked.resolved.problem.problem_type, settings,
                           checked.schema_text)
  if checked.spans:
    from local.run import run_spans  # pylint: disable=g-import-not-at-top
    lines.insert(1, run_spans.describe(connection, settings.PIPELINE_NAME,
                                       run_id, settings.TRAIN_WINDOW_SPANS))
  print('\n' + '\n'.join(lines))
  outcome.print_report_path(settings, summary.run_id)
  return 0


if __name__ == '__main__':
  # main()'s start-up (the checks, the imports of TensorFlow, TFX and Beam,
  # building the pipeline) runs with Python's cyclic collector paused, until
  # _run resumes it (pipeline/startup_gc.py).
  with startup_gc.paused():
    status = main()
  # Everything is written and closed (metadata, artifacts, report); skip the
  # interpreter's shutdown, which waits about 3 s for TensorFlow's and Beam's
  # threads and destructors.
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access
