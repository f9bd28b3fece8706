"""Times this project's local pipeline against the official TFX taxi template.

    make bench            # or: .venv/bin/python bench/compare_with_template.py

Both pipelines run cold (fresh output folders), one after the other, on the
same 15,002 Chicago taxi trips with the same number of training steps. The
template is copied with `tfx template copy --model=taxi` from the installed TFX
and every one of its commented-out `components.append(...)` lines is enabled.
Then this pipeline runs again with nothing changed and again after a change to
models/model.py; then cold runs of it alternate with runs of bench/floor.py,
five pairs: the cold run's ratio to the floor is the median of the pairs'
ratios, and the floor's run of median wall time is the reruns' yardstick.
Prints both models' eval accuracy, a per-component breakdown read from each
run's metadata store (with this project's time over the template's), and the
ratios the performance goals name, of wall times and of CPU times (user +
system, which vary less on a shared machine). The machine is shared and noisy:
compare the ratios, not the absolute seconds.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import warnings
from typing import Dict, List, Optional, Tuple

warnings.filterwarnings('ignore', category=FutureWarning)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline import configs
from models import features
from pipeline import component_ids
from pipeline import eval_config
from local import run_summary
from bench import measure
from bench import quality as quality_table
from bench import reference
from pipeline import problem_spec
import tensorflow as tf
from tfx import v1 as tfx

tf.get_logger().setLevel('ERROR')  # TFMA's deprecation notices

TEMPLATE_NAME = 'bench-template'
OURS_NAME = 'bench-ours'


def clean_env() -> Dict[str, str]:
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env['TF_CPP_MIN_LOG_LEVEL'] = '3'
  return env


def copy_template(destination: str, train_steps: int) -> str:
  """Copies the official taxi template and enables all of its components."""
  tfx_cli = os.path.join(os.path.dirname(sys.executable), 'tfx')
  subprocess.run([tfx_cli, 'template', 'copy', f'--pipeline_name={TEMPLATE_NAME}',
                  f'--destination_path={destination}', '--model=taxi'],
                 check=True, capture_output=True, env=clean_env())
  pipeline_file = os.path.join(destination, 'pipeline', 'pipeline.py')
  with open(pipeline_file) as f:
    source = f.read()
  enabled, count = re.subn(r'# (components\.append\()', r'\1', source)
  with open(pipeline_file, 'w') as f:
    f.write(enabled)
  configs_file = os.path.join(destination, 'pipeline', 'configs.py')
  with open(configs_file) as f:
    source = f.read()
  source = re.sub(r'^TRAIN_NUM_STEPS = \d+', f'TRAIN_NUM_STEPS = {train_steps}',
                  source, flags=re.M)
  with open(configs_file, 'w') as f:
    f.write(source)
  print(f'template copied to {destination}; {count} components.append lines '
        'enabled', flush=True)
  return destination


# Each timed command (bench/measure.py), by label: wall and CPU seconds
# (user + system, steadier than wall times on a shared machine) and samples
# of its process tree's CPU time, which give each component's CPU time.
MEASURED: Dict[str, measure.Measured] = {}
# label -> component id -> CPU seconds (None: too short to sample).
COMPONENT_CPU: Dict[str, Dict[str, Optional[float]]] = {}


def _measured(command, cwd, env) -> measure.Measured:
  """Runs `command` and measures it; exits with its output if it fails."""
  try:
    return measure.run_measured(command, cwd, env)
  except RuntimeError as error:
    sys.exit(str(error))


def _timed(command, cwd, env, label: str) -> float:
  """Runs `command`; returns its wall time and records its measurements."""
  MEASURED[label] = _measured(command, cwd, env)
  return MEASURED[label].seconds


def _component_cpu(label: str, metadata: str,
                   pipeline_name: str) -> Dict[str, float]:
  """Component id -> CPU seconds the run `label` used while it ran."""
  windows = measure.component_windows(metadata, pipeline_name)
  return {name: window.cpu_seconds(MEASURED[label].cpu_samples)
          for name, window in windows.items()}


def run_ours(workdir: str, train_steps: int, code_dir: str = REPO,
             label: str = 'ours') -> Tuple[float, Dict]:
  """Runs local_runner.py from `code_dir` with outputs under `workdir`."""
  env = clean_env()
  env.update(PIPELINE_NAME=OURS_NAME, LOCAL_OUTPUT_DIR=workdir,
             DATA_PATH=os.path.join(REPO, 'data'),
             TRAIN_NUM_STEPS=str(train_steps))
  seconds = _timed([sys.executable, os.path.join(code_dir, 'local_runner.py')],
                   code_dir, env, label)
  metadata = os.path.join(workdir, 'metadata', OURS_NAME, 'metadata.db')
  COMPONENT_CPU[label] = _component_cpu(label, metadata, OURS_NAME)
  summary = run_summary.summarize(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata),
      OURS_NAME)
  return seconds, summary


def copy_with_model_change(destination: str) -> str:
  """A copy of the pipeline code, the local tools, the reviewed schema and
  (linked) the bundled data, whose models/model.py differs by a comment."""
  for folder in ('pipeline', 'models', 'local', 'schema'):
    shutil.copytree(os.path.join(REPO, folder),
                    os.path.join(destination, folder),
                    ignore=shutil.ignore_patterns('__pycache__'))
  shutil.copy(os.path.join(REPO, 'local_runner.py'), destination)
  # The bundled data in its place, so the copy's settings that follow the
  # bundled data (pipeline/data_files/bundled_data.py) are the checkout's.
  os.symlink(os.path.join(REPO, 'data'), os.path.join(destination, 'data'))
  with open(os.path.join(destination, 'models', 'model.py'), 'a') as f:
    f.write('\n# bench: a change to the model code\n')
  return destination


# The floor is the yardstick of three goals and takes a few seconds: one run
# of it varied by a third between two benches on the same machine, and the
# run of median wall time out of three, timed minutes after the cold run,
# still put the cold run's ratio on one side of its goal or the other from
# one bench to the next. So the cold run is timed against it side by side:
# PAIRS times a cold run of this pipeline (a fresh output folder) and a
# floor run, in turn, and the cold run's ratio to the floor is the median
# of the pairs' ratios; the floor's own figure (the reruns' yardstick) is
# its run of median wall time.
PAIRS = 5


def run_pairs(workdir: str, train_steps: int,
              pairs: int = PAIRS) -> measure.SideBySide:
  """`pairs` alternating cold runs of this pipeline (outputs in a fresh
  folder under `workdir`, removed after the run) and floor runs."""
  env = clean_env()
  env.update(PIPELINE_NAME=OURS_NAME, DATA_PATH=os.path.join(REPO, 'data'),
             TRAIN_NUM_STEPS=str(train_steps))
  floor = [sys.executable, os.path.join(REPO, 'bench', 'floor.py'),
           f'--train-steps={train_steps}']

  def cold_run(index: int) -> measure.Measured:
    output = os.path.join(workdir, f'pair-{index}')
    try:
      return _measured([sys.executable, os.path.join(REPO, 'local_runner.py')],
                       REPO, dict(env, LOCAL_OUTPUT_DIR=output))
    finally:
      shutil.rmtree(output, ignore_errors=True)

  measured = measure.side_by_side(
      pairs, cold_run, lambda _: _measured(floor, REPO, clean_env()))
  MEASURED['floor'] = measured.median_yardstick()
  return measured


def executed(summary) -> List[str]:
  """Components that ran (not taken from the cache) in a run."""
  return [name for name, run in summary.components.items()
          if run.state == 'COMPLETE']


def run_template(template_dir: str) -> Tuple[float, Dict]:
  seconds = _timed([sys.executable, 'local_runner.py'], template_dir,
                   clean_env(), 'template')
  metadata = os.path.join(template_dir, 'tfx_metadata', TEMPLATE_NAME,
                          'metadata.db')
  COMPONENT_CPU['template'] = _component_cpu('template', metadata,
                                             TEMPLATE_NAME)
  summary = run_summary.summarize(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata),
      TEMPLATE_NAME)
  return seconds, summary


# Both pipelines gate the binary taxi problem on Keras' BinaryAccuracy, which
# both Evaluators report under the same key, and name their Evaluator alike.
ACCURACY_KEY = eval_config.METRICS[features.BINARY].gate.key


def _accuracy(summary, base_dir: str) -> float:
  """Eval accuracy; the template records artifact URIs relative to base_dir."""
  evaluator = summary.components.get(component_ids.EVALUATOR)
  if not evaluator:
    return float('nan')
  uri = os.path.join(base_dir, evaluator.outputs['evaluation'][0])
  metrics = run_summary.overall_metrics(uri)
  return metrics.get('candidate', {}).get(ACCURACY_KEY, float('nan'))


def _breakdown(ours, template) -> None:
  """Each component's wall and CPU seconds in both cold runs, and this
  project's over the template's."""
  names = list(component_ids.COMPONENT_IDS) + sorted(
      set(template.components) - set(component_ids.COMPONENT_IDS))
  print(f'\n{"component":<28}{"this project":>22}{"template":>22}'
        f'{"ratio":>8}{"cpu":>8}')
  for name in names:
    wall, cpu = [], []
    for label, summary in (('ours', ours), ('template', template)):
      component = summary.components.get(name)
      wall.append(None if component is None else component.seconds)
      cpu.append(COMPONENT_CPU.get(label, {}).get(name))
    cells = ['-' if w is None else f'{w:.1f} s' + (
        '' if c is None else f', {c:.1f} cpu') for w, c in zip(wall, cpu)]
    print(f'{name:<28}{cells[0]:>22}{cells[1]:>22}'
          f'{_ratio(wall):>8}{_ratio(cpu):>8}')
  wall, cpu = [], []
  for label, summary in (('ours', ours), ('template', template)):
    outside = _outside_components(label, summary)
    wall.append(outside[0])
    cpu.append(outside[1])
  cells = [f'{w:.1f} s, {c:.1f} cpu' for w, c in zip(wall, cpu)]
  print(f'{"outside the components":<28}{cells[0]:>22}{cells[1]:>22}'
        f'{_ratio(wall):>8}{_ratio(cpu):>8}')


def _outside_components(label: str, summary) -> Tuple[float, float]:
  """Wall and CPU seconds of the run `label` outside its components'
  executions: interpreter start-up, imports, the runner's checks, building
  and compiling the pipeline, what the store and the launcher do between
  components, and the summary and report after the run."""
  components = [name for name, run in summary.components.items()
                if run.seconds is not None]
  inside_wall = sum(summary.components[name].seconds for name in components)
  inside_cpu = sum(COMPONENT_CPU.get(label, {}).get(name) or 0.0
                   for name in components)
  return (MEASURED[label].seconds - inside_wall,
          MEASURED[label].cpu_seconds - inside_cpu)


def _ratio(pair) -> str:
  """ours / template, '-' when either is missing or the template's < 0.5."""
  ours, template = pair
  if ours is None or template is None or template < 0.5:
    return '-'
  return f'{ours / template:.2f}'


def _ratios(wall: Dict[str, float], pairs: measure.SideBySide) -> None:
  """The goals as ratios, of wall times and of CPU times, beside each goal
  (docs/performance.md). The cold run's ratio to the floor is the pairs'
  median (`run_pairs`); the others are of single runs."""
  print(f'\n{"ratios":<30}{"wall":>8}{"CPU":>8}{"goal":>8}'
        '  (the reruns: one run each, over the floor\'s median run)')
  rows = [('cold run / template', 'ours', 'template', 0.4),
          ('cold run / floor', None, None, 1.5),
          ('cached rerun / floor', 'cached', 'floor', 1.2),
          ('model-change rerun / floor', 'changed', 'floor', 1.5),
          ('model-change rerun / cold', 'changed', 'ours', None)]
  for label, top, bottom, goal in rows:
    if top is None:
      ratio, cpu = pairs.ratio(), pairs.ratio(cpu=True)
      label = f'{label} ({len(pairs.runs)} pairs)'
    else:
      cpu = MEASURED[top].cpu_seconds / MEASURED[bottom].cpu_seconds
      ratio = wall[top] / wall[bottom]
    verdict = ('' if goal is None else
               f'{goal:>8.2f}  {"met" if ratio <= goal else "NOT met"}')
    print(f'  {label:<28}{ratio:>8.2f}{cpu:>8.2f}{verdict}')


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir', default=os.path.join(REPO, 'bench_output'))
  parser.add_argument('--train-steps', type=int,
                      default=configs.load_or_exit(os.environ).TRAIN_NUM_STEPS)
  args = parser.parse_args()

  shutil.rmtree(args.workdir, ignore_errors=True)
  os.makedirs(args.workdir)
  template_dir = copy_template(os.path.join(args.workdir, 'template'),
                               args.train_steps)
  ours_dir = os.path.join(args.workdir, 'ours')

  print('running the official template, cold ...', flush=True)
  template_seconds, template = run_template(template_dir)
  print('running this project\'s pipeline, cold ...', flush=True)
  ours_seconds, ours = run_ours(ours_dir, args.train_steps)
  quality = reference.compare(ours_dir, OURS_NAME, problem_spec.from_settings(
      configs.load(dict(clean_env(), DATA_PATH=os.path.join(REPO, 'data'))))
                              .problem)
  print('running it again, nothing changed ...', flush=True)
  cached_seconds, cached = run_ours(ours_dir, args.train_steps,
                                    label='cached')
  print('running it again after a change to models/model.py ...', flush=True)
  changed_code = copy_with_model_change(os.path.join(args.workdir, 'changed'))
  changed_seconds, changed = run_ours(ours_dir, args.train_steps, changed_code,
                                      label='changed')
  print(f'timing cold runs of it against the floor (bench/floor.py), {PAIRS} '
        'alternating pairs ...', flush=True)
  pairs = run_pairs(os.path.join(args.workdir, 'pairs'), args.train_steps)
  floor_seconds = MEASURED['floor'].seconds
  quality_rows = [quality_table.Row(quality_table.BUNDLED, quality,
                                    ours_seconds)] + quality_table.run_all(
                                        os.path.join(args.workdir, 'quality'),
                                        skip=(quality_table.BUNDLED,))

  _breakdown(ours, template)
  ours_accuracy = _accuracy(ours, REPO)
  template_accuracy = _accuracy(template, template_dir)
  print(f'\n{"":<28}{"this project":>14}{"template":>12}')
  print(f'{"wall time, cold":<28}{ours_seconds:>12.1f} s{template_seconds:>10.1f} s')
  print(f'{"eval accuracy":<28}{ours_accuracy:>14.3f}{template_accuracy:>12.3f}')
  print(f'{"components executed":<28}{len(ours.components):>14}'
        f'{len(template.components):>12}')
  print('\n' + quality_table.TITLE)
  print(quality_table.format_table(quality_rows))
  print(f'\nfloor: {floor_seconds:.1f} s wall, the median of '
        f'{len(pairs.yardstick)} runs '
        f'({MEASURED["floor"].output.strip().splitlines()[-1]})')
  print(f'cold run against the floor, side by side: {pairs.describe()}')
  print(f'cached rerun: {cached_seconds:.1f} s; executed: '
        f'{", ".join(executed(cached)) or "nothing (all cached)"}')
  print(f'rerun after a model change: {changed_seconds:.1f} s; executed: '
        f'{", ".join(executed(changed))}')
  print('CPU seconds (user + system): ' + ', '.join(
      f'{label} {m.cpu_seconds:.1f}' for label, m in MEASURED.items()))
  _ratios({'ours': ours_seconds, 'template': template_seconds,
           'floor': floor_seconds, 'cached': cached_seconds,
           'changed': changed_seconds}, pairs)
  return 0


if __name__ == '__main__':
  sys.exit(main())
