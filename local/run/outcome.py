"""What a local run prints at its end: the summary of a finished run (the
gate metric against its threshold and the baseline, the blessing, the push,
the schema to approve), or why it failed, in one or two lines."""
import os
import shlex
import sys
import traceback
from typing import Any, Dict, List, Optional

from local import output_layout
from local import run_summary
from local.run import progress
from models import features
from pipeline import configs
from pipeline import eval_config
from pipeline.data_files import schema_file
from pipeline.errors import DataError

# The settings `make schema` needs to find a run and mark its label, when a
# run had them in its environment.
_SCHEMA_EXPORT_SETTINGS = ('DATA_PATH', 'PIPELINE_NAME', 'LABEL_KEY',
                           'LOCAL_OUTPUT_DIR')


def _serving_model_dir(settings: configs.Settings) -> str:
  return output_layout.serving_model_dir(settings.LOCAL_OUTPUT_DIR,
                                         settings.PIPELINE_NAME)


def describe(summary: run_summary.RunSummary, seconds: float,
             problem_type: str, settings: configs.Settings,
             reviewed_schema: Optional[str] = '') -> List[str]:
  """The end-of-run summary: the rows left out for an empty label, metrics
  against the thresholds, the blessing and the push, one line each; without
  a reviewed schema (None), how to approve the inferred one."""
  lines = [f'Run {summary.run_id} finished in {seconds:.0f} s.']
  if summary.rows_without_label:
    share = summary.rows_without_label / summary.rows_read
    lines.append(
        f'Rows without a label: {summary.rows_without_label} of '
        f'{summary.rows_read} ({share:.1%}), left out of training and '
        'evaluation (at most MAX_MISSING_LABEL_FRACTION='
        f'{settings.MAX_MISSING_LABEL_FRACTION:g}).')
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
                 f'(serving folder: {_serving_model_dir(settings)}).')
  if reviewed_schema is None:
    lines.append(_approve_schema_hint(settings, summary.schema_reference))
  return lines


def _checked_against(reference: Optional[str]) -> str:
  """What the data of a run without a reviewed schema was checked against
  (run_summary.RunSummary.schema_reference)."""
  if reference:
    return ('checked against the schema of the data the served model was '
            f'trained on: {reference}')
  return ('nothing to check it against on a first run: no model served yet; '
          'from the next run on, new data is checked against the schema of '
          'the served model\'s data')


def _approve_schema_hint(settings: configs.Settings,
                         reference: Optional[str] = None) -> str:
  """What this run's data was checked against, and how to approve the
  schema it inferred (no reviewed one yet): the `make schema` command with
  this run's settings."""
  where = settings.SCHEMA_PATH or schema_file.pipeline_schema_path(
      settings.PIPELINE_NAME)
  command = ' '.join(
      [f'{name}={shlex.quote(os.environ[name])}'
       for name in _SCHEMA_EXPORT_SETTINGS if name in os.environ]
      + ['make schema'])
  return (f'Schema: inferred from this data ({_checked_against(reference)}'
          f'); pipeline '
          f'{settings.PIPELINE_NAME!r} has no reviewed schema yet. Review and '
          f'approve it: `{command}` writes it to {where}, where later runs '
          'find it and check new data against it (docs/data_quality.md).')


def _describe_gate(summary: run_summary.RunSummary,
                   metrics: eval_config.ProblemMetrics, problem_type: str,
                   settings: configs.Settings) -> List[str]:
  """The gate metric with its threshold and the extras, then the baseline's
  gate metric with the allowed change; then which gate applied and the
  model, the trivial model and the last blessed model side by side."""
  m, gate = summary.metrics, metrics.gate
  count = m.get(eval_config.EXAMPLE_COUNT.key, 0)
  gates = summary.gates or {}
  if problem_type == features.REGRESSION:
    value_format = '.4g'
    bound = f'limit {gates.get("bound") or settings.EVAL_RMSE_THRESHOLD:.4g}'
    allowed = f'allowed rise {settings.EVAL_BASELINE_TOLERANCE:.0%}'
  else:
    value_format = '.3f'
    bound = (f'threshold '
             f'{gates.get("bound") or settings.EVAL_ACCURACY_THRESHOLD:.4g}')
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
  if gates:
    lines += describe_gates(gates, value_format)
  return lines


def describe_gates(gates: Dict[str, Any], value_format: str) -> List[str]:
  """Which gate applied, and the gate metric of the model, the trivial
  model and the last blessed model, overall and per slice
  (pipeline/components/quality_gates.py)."""
  label = gates['label']
  trivial = gates['trivial_model']
  relation = '>=' if gates['higher_is_better'] else '<='
  bound = ('' if gates['bound'] is None else
           f': {label} {relation} {gates["bound"]:{value_format}}')
  if gates['gate'] == 'trivial model':
    what = (f'beat the trivial model (always {trivial["prediction"]!r}, '
            f'from {trivial["train_examples"]} train labels) by '
            f'{gates["trivial_margin"]:.0%} of its '
            + ('errors' if gates['higher_is_better'] else 'RMSE'))
  else:
    what = gates['gate']
  lines = [f'Gate: {what}{bound}.']
  width = max([len(row['slice'] or 'all') for row in gates['rows']] + [5])
  lines.append(f'  {"slice":<{width}} {"examples":>8} {"model":>8} '
               f'{"trivial":>8} {"last blessed":>12}')
  show = lambda v: '-' if v is None else f'{v:{value_format}}'  # pylint: disable=unnecessary-lambda-assignment
  for row in gates['rows']:
    lines.append(f'  {row["slice"] or "all":<{width}} {row["examples"]:>8} '
                 f'{show(row["model"]):>8} {show(row["trivial"]):>8} '
                 f'{show(row["baseline"]):>12}')
  if gates['held_slices']:
    lines.append(
        f'Slices held to the last blessed model (at least '
        f'{gates["slice_min_examples"]} eval examples, tolerance '
        f'{gates["slice_tolerance"]:g}): {", ".join(gates["held_slices"])}.')
  return lines


def print_report_path(settings: configs.Settings,
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


def data_error(error: BaseException) -> Optional[BaseException]:
  """The first DataError in `error`'s chain of causes, if any (Beam raises
  a copy with its step's name appended; the first is the component's own)."""
  found = None
  while error is not None:
    if isinstance(error, DataError):
      found = error
    error = error.__cause__ or error.__context__
  return found


def report_failure(error: Exception, printer: progress.ProgressPrinter,
                   verbose: bool, settings: configs.Settings,
                   run_id: str) -> int:
  """Prints why the run failed, in one or two lines; returns the exit code."""
  if printer.current:
    printer.line(printer.current, 'FAILED')
  if verbose:
    traceback.print_exc()
  where = printer.current or 'set-up'
  bad_data = data_error(error)
  if bad_data is not None:
    print(f'\ndata error in {where}: {bad_data}', file=sys.stderr)
    print('No model pushed; the served model is unchanged (serving folder: '
          f'{_serving_model_dir(settings)}).', file=sys.stderr)
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
    print_report_path(settings, run_id)
  return 1
