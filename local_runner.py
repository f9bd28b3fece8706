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
BUSY naming the running one, or waits for it (CONCURRENT_RUNS).
"""
import argparse
import dataclasses
import datetime
import logging
import os
import shlex
import signal
import sys
import time
import traceback
from typing import TYPE_CHECKING, List, Optional

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

from pipeline.data_files import bundled_data  # pylint: disable=g-import-not-at-top
from pipeline import configs  # pylint: disable=g-import-not-at-top
from pipeline.data_files import csv_format  # pylint: disable=g-import-not-at-top
from pipeline import setting_types  # pylint: disable=g-import-not-at-top
from pipeline import problem_spec  # pylint: disable=g-import-not-at-top
from pipeline.data_files import schema_file  # pylint: disable=g-import-not-at-top
from pipeline.data_files import spans as span_layout  # pylint: disable=g-import-not-at-top
from pipeline.errors import ConfigError, DataError  # pylint: disable=g-import-not-at-top

# Light modules only: the checks before a run report bad input within a
# second; TensorFlow, TFX and Beam (seconds to import) load in _run.
from models import features  # pylint: disable=g-import-not-at-top
from pipeline import component_ids  # pylint: disable=g-import-not-at-top
from local.run import preflight  # pylint: disable=g-import-not-at-top
from local.run import interrupted_runs  # pylint: disable=g-import-not-at-top
from local import output_layout  # pylint: disable=g-import-not-at-top
from local.run import progress  # pylint: disable=g-import-not-at-top
from local.run import run_lock  # pylint: disable=g-import-not-at-top

if TYPE_CHECKING:  # loaded in _run only: they import TFX
  from local import run_summary  # pylint: disable=g-import-not-at-top
  from pipeline import eval_config  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import pipeline as tfx_pipeline  # pylint: disable=g-import-not-at-top

# Beam's defaults: the DirectRunner, in memory, one worker. (Any non-empty
# argument list makes every Beam component build an sdist of TFX first, to
# ship to remote workers, which costs seconds and is useless locally.)
BEAM_PIPELINE_ARGS: List[str] = []

INTERRUPTED = 130  # the shell's exit status for a program stopped by SIGINT
BUSY = 75  # another run holds the output folder (EX_TEMPFAIL: try again later)
_progress: Optional[progress.ProgressPrinter] = None  # the running pipeline's, for _stop


@dataclasses.dataclass(frozen=True)
class _Layout:
  """Where this pipeline's local run writes (local/output_layout.py)."""
  pipeline_root: str
  metadata_path: str
  serving_model_dir: str

  @classmethod
  def of(cls, settings: configs.Settings) -> '_Layout':
    out, name = settings.LOCAL_OUTPUT_DIR, settings.PIPELINE_NAME
    return cls(output_layout.pipeline_root(out, name),
               output_layout.metadata_path(out, name),
               output_layout.serving_model_dir(out, name))


def _describe(summary: 'run_summary.RunSummary', seconds: float,
              problem_type: str, settings: configs.Settings,
              reviewed_schema: Optional[str] = '') -> List[str]:
  """The end-of-run summary: metrics against the thresholds, the blessing
  and the push, one line each."""
  from pipeline import eval_config  # pylint: disable=g-import-not-at-top
  lines = [f'Run {summary.run_id} finished in {seconds:.0f} s.']
  metrics = eval_config.METRICS[problem_type]
  if metrics.gate.key in summary.metrics:
    lines += _describe_gate(summary, metrics, problem_type, settings)
  if summary.blessed:
    lines.append('Blessed: the model passed every threshold.')
  elif summary.blessed is False:
    lines.append('NOT blessed: ' + '; '.join(summary.blessing_failures or
                                             ['see the Evaluator output']))
  if summary.pushed_to:
    lines.append(f'Pushed model: {summary.pushed_to}')
  else:
    lines.append('No model pushed; the served model is unchanged '
                 f'(serving folder: {_Layout.of(settings).serving_model_dir}).')
  if reviewed_schema is None:
    lines.append(_approve_schema_hint(settings))
  return lines


# The settings `make schema` needs to find a run and mark its label, when a
# run had them in its environment.
_SCHEMA_EXPORT_SETTINGS = ('DATA_PATH', 'PIPELINE_NAME', 'LABEL_KEY',
                           'LOCAL_OUTPUT_DIR')


def _approve_schema_hint(settings: configs.Settings) -> str:
  """How to approve the schema this run inferred (no reviewed one yet): the
  `make schema` command with this run's settings."""
  where = settings.SCHEMA_PATH or schema_file.pipeline_schema_path(
      settings.PIPELINE_NAME)
  command = ' '.join(
      [f'{name}={shlex.quote(os.environ[name])}'
       for name in _SCHEMA_EXPORT_SETTINGS if name in os.environ]
      + ['make schema'])
  return (f'Schema: inferred from this data; pipeline '
          f'{settings.PIPELINE_NAME!r} has no reviewed schema yet. Review and '
          f'approve it: `{command}` writes it to {where}, where later runs '
          'find it and check new data against it (docs/data_quality.md).')


def _describe_gate(summary: 'run_summary.RunSummary',
                   metrics: 'eval_config.ProblemMetrics', problem_type: str,
                   settings: configs.Settings) -> List[str]:
  """The gate metric with its threshold and the extras, then the baseline's
  gate metric with the allowed change."""
  from pipeline import eval_config  # pylint: disable=g-import-not-at-top
  m, gate = summary.metrics, metrics.gate
  count = m.get(eval_config.EXAMPLE_COUNT.key, 0)
  if problem_type == features.REGRESSION:
    value_format = '.4g'
    bound = f'limit {settings.EVAL_RMSE_THRESHOLD}'
    allowed = f'allowed rise {settings.EVAL_BASELINE_TOLERANCE:.0%}'
  else:
    value_format = '.3f'
    bound = f'threshold {settings.EVAL_ACCURACY_THRESHOLD}'
    allowed = f'allowed drop {settings.EVAL_BASELINE_TOLERANCE}'
  extras = ', '.join(f'{extra.label} {m[extra.key]:.3f}'
                     for extra in metrics.extras if extra.key in m)
  lines = [f'{gate.label[0].upper()}{gate.label[1:]} '
           f'{m[gate.key]:{value_format}} on {count:.0f} '
           f'{eval_config.EXAMPLE_COUNT.label} ({bound})'
           + (f'; {extras}.' if extras else '.')]
  base = summary.baseline_metrics.get(gate.key)
  if base is None:
    lines.append('No baseline: no model has been blessed before.')
  else:
    lines.append(f'Baseline (last blessed model) {gate.label} '
                 f'{base:{value_format}}; {allowed}.')
  return lines


def _print_report_path(settings: configs.Settings,
                       run_id: Optional[str] = None) -> None:
  """Builds the run's HTML report; failing to only prints a warning."""
  try:
    from local.report import run_report  # pylint: disable=g-import-not-at-top
    path = run_report.write_report(settings.LOCAL_OUTPUT_DIR,
                                   settings.PIPELINE_NAME, run_id)
  except Exception as error:  # pylint: disable=broad-except
    print(f'Warning: no run report: {type(error).__name__}: {error}',
          file=sys.stderr)
    return
  print(f'Report: {path}', flush=True)


def _check_data(settings: configs.Settings,
                data_folder: str) -> Optional[str]:
  """The reviewed schema and the pre-flight checks of the CSV files.

  Args:
    settings: the settings.
    data_folder: the folder this run ingests (spans.ingested_folder).

  Returns:
    The reviewed schema's text, or None when there is none.

  Raises:
    schema_file.SchemaFileError, DataError: one-line messages.
  """
  schema_text = schema_file.read_text(settings.SCHEMA_PATH)
  schema = (None if schema_text is None else
            schema_file.parse(schema_text, settings.SCHEMA_PATH))
  report = preflight.check_csv_folder(
      data_folder, schema, settings.SCHEMA_PATH,
      settings.PREFLIGHT_SAMPLE_ROWS, csv_format.CsvFormat.from_settings(
          settings), settings.PIPELINE_NAME, settings.LABEL_KEY)
  if report.skipped:
    print(f'Data checks skipped: {report.skipped}; the anomaly gate checks '
          'it.', flush=True)
  else:
    against = (f'against the reviewed schema {settings.SCHEMA_PATH}'
               if schema else
               f'no reviewed schema yet for pipeline {settings.PIPELINE_NAME!r}'
               ': this run infers one')
    print(f'Data checks passed: {len(report.files)} file(s), '
          f'{report.rows_checked} rows sampled; {against}.', flush=True)
  return schema_text


def _clean_up_metadata(connection, metadata_path: str) -> None:
  """Checks the store's integrity; marks executions a killed run left
  RUNNING as abandoned. Raises interrupted_runs.MetadataStoreError."""
  interrupted_runs.check_integrity(metadata_path)
  abandoned = interrupted_runs.mark_abandoned(connection)
  if abandoned:
    print(f'Marked {abandoned} execution(s) left running by an interrupted '
          'run as abandoned; finished components come from the cache.',
          flush=True)


def _data_error(error: BaseException) -> Optional[BaseException]:
  """The first DataError in `error`'s chain of causes, if any (Beam raises
  a copy with its step's name appended; the first is the component's own)."""
  found = None
  while error is not None:
    if isinstance(error, DataError):
      found = error
    error = error.__cause__ or error.__context__
  return found


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--verbose', action='store_true',
                      help='show TFX, Beam and TensorFlow logs')
  args = parser.parse_args(argv)
  # Ctrl-C (or kill -INT) interrupts the run even when the shell that started
  # it in the background set SIGINT to be ignored (until _stop takes over).
  signal.signal(signal.SIGINT, signal.default_int_handler)

  # Bad input and settings stop the run here, in well under a second,
  # before TensorFlow loads, and before anything is written.
  try:
    settings = configs.load(os.environ)
    spans = span_layout.list_spans(settings.DATA_PATH)
    data_folder = span_layout.ingested_folder(settings.DATA_PATH, spans)
    schema_text = _check_data(settings, data_folder)
    resolved = problem_spec.from_settings(settings, data_folder)
  except ConfigError as error:
    return configs.config_error_status(error)
  except DataError as error:
    print(f'data error: {error}', file=sys.stderr)
    return 1
  except schema_file.SchemaFileError as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  layout = _Layout.of(settings)
  # Before the store is touched: a second run must not mark the first one's
  # running executions as abandoned.
  try:
    # Held while this frame lives, that is until the run has ended.
    lock = _hold_output_folder(settings, layout)
  except run_lock.RunInProgress as error:
    print(f'error: {error}', file=sys.stderr)
    return BUSY
  connection = interrupted_runs.sqlite_connection(layout.metadata_path)
  try:
    _clean_up_metadata(connection, layout.metadata_path)
  except interrupted_runs.MetadataStoreError as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  # Ctrl-C stops the run at once, whatever Python code is running: a
  # KeyboardInterrupt raised inside a finalizer or a Beam thread's callback
  # would be swallowed and the run would carry on.
  signal.signal(signal.SIGINT, lambda *unused: _stop(connection))
  return _run(args.verbose, settings, connection, schema_text, resolved,
              _Ingest(lock.run_id, spans, data_folder))


@dataclasses.dataclass(frozen=True)
class _Ingest:
  """This run: its id, the spans under DATA_PATH and the folder it reads."""
  run_id: str
  spans: List[int]
  data_folder: str


def _hold_output_folder(settings: configs.Settings,
                        layout: _Layout) -> run_lock.RunLock:
  """Takes the pipeline's run lock on the output folder (local/run/run_lock.py)
  and names this run after its start time. The lock is released when the
  returned object is garbage-collected, or at the latest when the process
  ends.

  Raises:
    run_lock.RunInProgress: another run holds it and CONCURRENT_RUNS is
      refuse.
  """
  def say_waiting(holder: Optional[run_lock.Holder]) -> None:
    running = holder.describe() if holder else 'another run'
    print(f'Waiting for {running} of this pipeline to finish '
          '(CONCURRENT_RUNS=wait).', flush=True)

  lock = run_lock.RunLock(os.path.dirname(layout.metadata_path))
  lock.hold(settings.CONCURRENT_RUNS, on_wait=say_waiting)
  # The same form as TFX's own run ids: the start time.
  lock.announce(datetime.datetime.now().isoformat())
  return lock


def _stop(connection) -> None:
  """Marks the running execution abandoned and exits with INTERRUPTED."""
  if _progress and _progress.current:
    _progress.line(_progress.current, 'STOPPED')
  abandoned = interrupted_runs.mark_abandoned(connection)
  print(f'\nInterrupted; marked {abandoned} running execution(s) as '
        'abandoned. Run again to resume: finished components come from the '
        'cache. A push is all or nothing: the serving folder holds no half-'
        'written model.', file=sys.stderr)
  sys.stdout.flush()
  sys.stderr.flush()
  # Not sys.exit: Beam's worker threads would finish the interrupted job
  # first.
  os._exit(INTERRUPTED)  # pylint: disable=protected-access


def _create_pipeline(settings: configs.Settings,
                     resolved: problem_spec.Resolved, connection,
                     schema_text: Optional[str],
                     spans: List[int]) -> 'tfx_pipeline.Pipeline':
  """pipeline/pipeline.py's pipeline with this machine's paths and store."""
  from pipeline import pipeline as pipeline_factory  # pylint: disable=g-import-not-at-top
  layout = _Layout.of(settings)
  return pipeline_factory.create_pipeline(
      pipeline_name=settings.PIPELINE_NAME,
      pipeline_root=layout.pipeline_root,
      data_path=settings.DATA_PATH,
      serving_model_dir=layout.serving_model_dir,
      problem=resolved.problem,
      training=pipeline_factory.Training.from_settings(settings),
      evaluation=pipeline_factory.Evaluation.from_settings(settings),
      data_gates=pipeline_factory.DataGates.from_settings(settings,
                                                          schema_text),
      csv=csv_format.CsvFormat.from_settings(settings),
      spans=pipeline_factory.Spans.from_settings(settings, spans),
      metadata_connection_config=connection,
      beam_pipeline_args=BEAM_PIPELINE_ARGS)


def _show_logs(verbose: bool) -> None:
  """TFX's, Beam's and TensorFlow's logs only with --verbose."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.INFO)  # the progress lines read it
  shown = logging.INFO if verbose else logging.ERROR
  for handler in logging.getLogger().handlers:
    handler.setLevel(shown)
  for name in ('apache_beam', 'tensorflow'):
    logging.getLogger(name).setLevel(shown)


def _report_failure(error: Exception, printer: progress.ProgressPrinter,
                    verbose: bool, settings: configs.Settings,
                    run_id: str) -> int:
  """Prints why the run failed, in one or two lines; returns the exit code."""
  if printer.current:
    printer.line(printer.current, 'FAILED')
  if verbose:
    traceback.print_exc()
  where = printer.current or 'set-up'
  bad_data = _data_error(error)
  if bad_data is not None:
    print(f'\ndata error in {where}: {bad_data}', file=sys.stderr)
    print('No model pushed; the served model is unchanged (serving folder: '
          f'{_Layout.of(settings).serving_model_dir}).', file=sys.stderr)
    return 1
  root = error
  while root.__cause__ or root.__context__:
    root = root.__cause__ or root.__context__
  print(f'\nPipeline failed in {where}: {type(error).__name__}: {error}',
        file=sys.stderr)
  if root is not error:
    print(f'Cause: {type(root).__name__}: {root}', file=sys.stderr)
  print('Run again with --verbose for the full logs.', file=sys.stderr)
  if printer.started:
    _print_report_path(settings, run_id)
  return 1


def _run_with_id(pipeline: 'tfx_pipeline.Pipeline', run_id: str) -> None:
  """LocalDagRunner's run, under the run id this process chose (and holds
  the output folder's lock for), so its summary and report find its own
  run."""
  # pylint: disable=g-import-not-at-top
  # Not `tfx.v1`, which also imports the Vertex AI SDK (pipeline/pipeline.py).
  from tfx.dsl.compiler import compiler
  from tfx.dsl.compiler import constants
  from tfx.orchestration.local.local_dag_runner import LocalDagRunner
  from tfx.orchestration.portable import runtime_parameter_utils
  # pylint: enable=g-import-not-at-top
  ir = compiler.Compiler().compile(pipeline)
  runtime_parameter_utils.substitute_runtime_parameter(
      ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
  LocalDagRunner().run_with_ir(ir)


def _run(verbose: bool, settings: configs.Settings, connection,
         schema_text: Optional[str], resolved: problem_spec.Resolved,
         ingest: _Ingest) -> int:
  """Runs the pipeline with LocalDagRunner; prints progress and a summary."""
  from local import run_summary  # pylint: disable=g-import-not-at-top
  from local.run import beam_signatures  # pylint: disable=g-import-not-at-top

  _show_logs(verbose)
  # Beam's in-process runner re-reads DoFn signatures for every stage.
  beam_signatures.remember_signatures()
  printer = progress.ProgressPrinter(list(component_ids.COMPONENT_IDS))
  global _progress
  _progress = printer
  logging.getLogger('absl').addHandler(printer)

  # Dotted user-code paths (models.*) must import in every Beam worker too.
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  pipeline = _create_pipeline(settings, resolved, connection, schema_text,
                              ingest.spans)
  print(f'Running pipeline {settings.PIPELINE_NAME!r} on {settings.DATA_PATH} '
        f'(outputs in {settings.LOCAL_OUTPUT_DIR})', flush=True)
  if ingest.spans:
    print(f'Span {ingest.spans[-1]}: ingesting {ingest.data_folder}, the '
          f'newest of {len(ingest.spans)} span folder(s); training on the '
          f'newest {settings.TRAIN_WINDOW_SPANS} span(s) that passed the '
          'checks.', flush=True)
  print(resolved.describe(), flush=True)
  for line in bundled_data.describe(
      settings, setting_types.defaulted(configs, os.environ)):
    print(line, flush=True)
  start = time.monotonic()
  try:
    _run_with_id(pipeline, ingest.run_id)
  except Exception as error:  # pylint: disable=broad-except
    return _report_failure(error, printer, verbose, settings, ingest.run_id)
  finally:
    logging.getLogger('absl').removeHandler(printer)

  summary = run_summary.summarize(connection, settings.PIPELINE_NAME,
                                  ingest.run_id)
  print()
  lines = _describe(summary, time.monotonic() - start,
                    resolved.problem.problem_type, settings,
                    schema_text)
  if ingest.spans:
    from local.run import run_spans  # pylint: disable=g-import-not-at-top
    lines.insert(1, run_spans.describe(connection, settings.PIPELINE_NAME,
                                       ingest.run_id,
                                       settings.TRAIN_WINDOW_SPANS))
  print('\n'.join(lines))
  _print_report_path(settings, summary.run_id)
  return 0


if __name__ == '__main__':
  status = main()
  # Everything is written and closed (metadata, artifacts, report); skip the
  # interpreter's shutdown, which waits about 3 s for TensorFlow's and Beam's
  # threads and destructors.
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access
