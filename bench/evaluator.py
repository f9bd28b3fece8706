"""The columnar Evaluator against TFX's own, at scale, with a real baseline.

    .venv/bin/python -m bench.evaluator [--rows 100000] [--types binary,...]

For each problem type, writes bench/evaluator_cases.py's case with `--rows`
eval rows (and as many train rows): a candidate that is not the baseline and
is ten points worse on one segment, with the change thresholds and the
per-slice thresholds the quality gates add. Runs the pipeline's Evaluator
executor (pipeline/components/columnar_evaluator.py) and TFX's
(tfx.components.evaluator.executor, given the EvalConfig the gates
completed), and prints per problem type: which path the columnar executor
took (its own, or TFMA's Beam pipeline and why), both times, the largest
metric difference, and whether the validation results and the blessings are
the same.
"""
import argparse
import math
import os
import sys
import tempfile
import time
from typing import List

import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from google.protobuf import text_format
from tfx.components.evaluator import executor as tfx_evaluator

from bench import evaluator_cases
from models import features
from pipeline import eval_config
from pipeline.components import columnar_evaluator
from pipeline.components import columnar_metrics
from pipeline.components import quality_gates


def _metrics(uri: str):
  values = {}
  for per_slice in tfma.load_metrics(uri):
    key = text_format.MessageToString(per_slice.slice_key, as_one_line=True)
    for kv in per_slice.metric_keys_and_values:
      values[(key, text_format.MessageToString(kv.key, as_one_line=True))] = (
          kv.value.double_value.value)
  return values


def _largest_difference(ours: str, theirs: str) -> float:
  a, b = _metrics(ours), _metrics(theirs)
  if set(a) != set(b):
    return math.inf
  return max((0.0 if math.isnan(b[k]) and math.isnan(a[k])
              else abs(a[k] - b[k]) for k in b), default=0.0)


def _sorted_validation(result):
  """A ValidationResult with its repeated fields in a fixed order: TFMA's
  Beam pipeline combines the slices' validations in any order."""
  result = type(result).FromString(result.SerializeToString())
  for repeated in (result.metric_validations_per_slice,
                   result.validation_details.slicing_details):
    ordered = sorted(repeated, key=lambda m: m.SerializeToString(
        deterministic=True))
    ordered = [type(m).FromString(m.SerializeToString()) for m in ordered]
    del repeated[:]
    repeated.extend(ordered)
  return result


def same_validation(ours: str, theirs: str) -> bool:
  """Whether two evaluations' validation results are the same, in any
  order."""
  return (_sorted_validation(tfma.load_validation_result(ours)) ==
          _sorted_validation(tfma.load_validation_result(theirs)))


def for_tfx(inputs, exec_properties):
  """The properties TFX's Evaluator executor, which has no quality gates, is
  given to evaluate as the pipeline's does: the EvalConfig the gates
  complete from the data (pipeline/components/quality_gates.py).

  Returns:
    (the quality gates' plan or None, the properties).
  """
  if not exec_properties.get(quality_gates.PARAMETER):
    return None, exec_properties
  plan = quality_gates.plan(
      eval_config.QualityGates.from_json(
          exec_properties[quality_gates.PARAMETER]),
      json_format.Parse(exec_properties['eval_config'], tfma.EvalConfig()),
      inputs['examples'], ['eval'],
      has_baseline=bool(inputs.get('baseline_model')))
  properties = {k: v for k, v in exec_properties.items()
                if k != quality_gates.PARAMETER}
  properties['eval_config'] = json_format.MessageToJson(plan.eval_config)
  return plan, properties


def _columnar_path(plan: quality_gates.Plan) -> str:
  config = tfma.utils.update_eval_config_with_defaults(
      plan.eval_config, has_baseline=True, rubber_stamp=True)
  try:
    columnar_metrics.computations(config)
  except columnar_metrics.Unsupported as reason:
    return f'TFMA (hands over: {reason})'
  return 'columnar'


def _run(executor_class, case, folder, name, exec_properties):
  outputs = evaluator_cases.fresh_outputs(folder, name)
  start = time.perf_counter()
  executor_class(executor_class.Context(
      beam_pipeline_args=[], tmp_dir=os.path.join(folder, 'tmp'),
      unique_id='1')).Do(case.inputs, outputs, exec_properties)
  return (time.perf_counter() - start, outputs['evaluation'][0].uri,
          os.listdir(outputs['blessing'][0].uri))


def compare(problem_type: str, rows: int, folder: str) -> List[str]:
  """One problem type's line of the table."""
  case = evaluator_cases.case(folder, problem_type, rows,
                              candidate_wrong_share=0.17,
                              baseline_wrong_share=0.0,
                              baseline_tolerance=0.02, slice_tolerance=0.05,
                              slice_min_examples=200)
  plan, theirs_properties = for_tfx(case.inputs, case.exec_properties)
  ours_s, ours, ours_blessing = _run(columnar_evaluator.Executor, case,
                                     folder, 'ours', case.exec_properties)
  theirs_s, theirs, theirs_blessing = _run(
      tfx_evaluator.Executor, case, folder, 'tfma', theirs_properties)
  same = same_validation(ours, theirs)
  refused = sorted({
      quality_gates.slice_key_name(s.slice_key) or 'overall'
      for s in tfma.load_validation_result(ours).metric_validations_per_slice})
  return [problem_type, f'{rows:,}', _columnar_path(plan), f'{ours_s:.1f}',
          f'{theirs_s:.1f}', f'{_largest_difference(ours, theirs):.1e}',
          'yes' if same else 'NO',
          'yes' if ours_blessing == theirs_blessing else 'NO',
          ','.join(ours_blessing), '; '.join(refused) or '-']


def main(argv: List[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rows', type=int, default=100_000,
                      help='eval rows per problem type (default 100,000)')
  parser.add_argument('--types', default=','.join(features.PROBLEM_TYPES),
                      help='comma-separated problem types')
  args = parser.parse_args(argv)
  header = ['problem', 'eval rows', 'columnar executor path', 'ours s',
            'TFX s', 'max |diff|', 'same validation', 'same blessing',
            'blessing', 'refused on']
  lines = [header]
  with tempfile.TemporaryDirectory() as folder:
    for problem_type in args.types.split(','):
      lines.append(compare(problem_type, args.rows,
                           os.path.join(folder, problem_type)))
      print(' | '.join(lines[-1]), flush=True)
  print()
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  for line in lines[1:]:
    print('| ' + ' | '.join(line) + ' |')
  return 0 if all(line[6] == line[7] == 'yes' and
                  float(line[5]) <= 1e-6 for line in lines[1:]) else 1


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
