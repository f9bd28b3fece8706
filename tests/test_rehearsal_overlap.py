"""Rehearsals started on a bucket whose pipeline another one holds: one
refuses, one waits.

`python -m rehearsal` runs the compiled spec as its orchestrator would, each
step a process that holds the pipeline's run lease in the stand-in bucket
(pipeline/kfp_runtime/run_lease.py). Rehearsal A starts; once its steps hold
the lease, rehearsals B and C start on the same bucket (each work folder's
bucket is A's). The spec is compiled with CONCURRENT_RUNS=refuse (A and B);
C runs a copy whose steps carry the lease settings as CONCURRENT_RUNS=wait
RUN_LEASE_TTL_MINUTES=1 compile them (tests/test_kubeflow_runner.py checks
what the compile writes). One A serves both cases, each asserting its own thing. A small
slice and few training steps: the lease is under test, not the model.
"""
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import NamedTuple, Optional, Tuple

import pytest
import yaml

from pipeline.kfp_runtime import run_lease
from rehearsal import compiled_spec
from rehearsal import rehearse as rehearsal
from tests import helpers

pytestmark = pytest.mark.slow

COMPILE_SETTINGS = {
    'GOOGLE_CLOUD_PROJECT': 'rehearsal-test',
    'PIPELINE_IMAGE_TAG': 'test',
    'TRAIN_NUM_STEPS': '10',
    'TRAINER_EVAL_NUM_STEPS': '1',
    'EVAL_ACCURACY_THRESHOLD': '0.5',
    # C's model, 10 steps into training, may score a row or two below A's,
    # its baseline: the lease is under test, so every run must push.
    'EVAL_BASELINE_TOLERANCE': '1.0',
    'CONCURRENT_RUNS': 'refuse',
}
SHAPE = 'vertex'


@pytest.fixture(scope='module')
def specs(tmp_path_factory):
  """(refuse spec, wait spec) paths."""
  folder = tmp_path_factory.mktemp('compiled')
  refuse = rehearsal.compile_spec(str(folder), COMPILE_SETTINGS)
  with open(refuse) as spec_file:
    spec = yaml.safe_load(spec_file)
  changed = 0
  for executor in spec['deploymentSpec']['executors'].values():
    for item in executor.get('container', {}).get('env', []):
      if item['name'] == run_lease.ENV:
        lease = json.loads(item['value'])
        assert lease['mode'] == 'refuse'
        # As CONCURRENT_RUNS=wait RUN_LEASE_TTL_MINUTES=1 compile it: a
        # waiting step looks again every TTL / 4 (15 s, not 30 s). A's lease
        # keeps the TTL A's spec gave it.
        item['value'] = json.dumps(dict(lease, mode='wait', ttl_seconds=60),
                                   sort_keys=True)
        changed += 1
  assert changed
  wait = os.path.join(folder, 'wait.yaml')
  with open(wait, 'w') as spec_file:
    yaml.safe_dump(spec, spec_file)
  return refuse, wait


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('overlap_data'))
  helpers.write_slice(folder, rows=300)
  return folder


def _start(spec, work_dir, data, keep_bucket):
  env = dict(os.environ, DATA_PATH=data,
             GOOGLE_CLOUD_PROJECT=COMPILE_SETTINGS['GOOGLE_CLOUD_PROJECT'])
  args = [sys.executable, '-m', 'rehearsal', f'--shape={SHAPE}', '--runs=1',
          f'--work_dir={work_dir}', f'--spec={spec}']
  if keep_bucket:
    args.append('--keep_bucket')
  return subprocess.Popen(args, cwd=helpers.REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _lease_path(spec, gcs_dir):
  root = rehearsal.localize(
      compiled_spec.pipeline_root(compiled_spec.load(spec)), gcs_dir)
  return os.path.join(root, run_lease.LEASE_OBJECT)


def _holder_once_past_ingestion(proc, lease_path, logs):
  """A's run id, once A holds the lease and its data has been read."""
  deadline = time.time() + 600
  while time.time() < deadline:
    assert proc.poll() is None, proc.stdout.read()
    past = os.path.isdir(logs) and any('StatisticsGen' in name
                                       for name in os.listdir(logs))
    if past and os.path.exists(lease_path):
      with open(lease_path, 'rb') as f:
        return json.loads(f.read().partition(b'\n')[2])['run_id']
    time.sleep(0.5)
  raise AssertionError('rehearsal A never held the lease')


class Overlap(NamedTuple):
  """Rehearsal A, and the two started on its bucket while it held it."""
  running: str  # A's run id, read from the lease while A held it
  first: Tuple[int, str]  # A: (exit status, output)
  refused: Tuple[int, str]  # B, compiled with CONCURRENT_RUNS=refuse
  waited: Tuple[int, str]  # C, compiled with CONCURRENT_RUNS=wait
  holder_after_first: Optional[str]  # the lease's run id once A had ended
  work: pathlib.Path  # a/, b/, c/: each rehearsal's work folder
  lease_path: str


def _read_holder(lease_path: str) -> Optional[str]:
  try:
    with open(lease_path, 'rb') as f:
      return json.loads(f.read().partition(b'\n')[2])['run_id']
  except FileNotFoundError:
    return None


@pytest.fixture(scope='module')
def overlap(specs, data, tmp_path_factory) -> Overlap:
  """A runs alone on its bucket; once its steps hold the lease, B (refuse
  spec) and C (wait spec) start on that bucket together. One A serves both
  cases: A never meets another run's lease, so its own CONCURRENT_RUNS
  plays no part; B must fail at its first step and C wait for A."""
  work = tmp_path_factory.mktemp('overlap')
  refuse, wait = specs
  first = _start(refuse, work / 'a', data, keep_bucket=False)
  gcs = work / 'a' / SHAPE / 'gcs'
  lease_path = _lease_path(refuse, str(gcs))
  running = _holder_once_past_ingestion(first, lease_path,
                                        str(work / 'a' / SHAPE / 'logs'))
  # B's and C's bucket is A's: each work folder's gcs/ is A's, kept
  # (--keep_bucket).
  others = {}
  for name, spec in (('b', refuse), ('c', wait)):
    os.makedirs(work / name / SHAPE)
    os.symlink(gcs, work / name / SHAPE / 'gcs')
    others[name] = _start(spec, work / name, data, keep_bucket=True)
  refused_out, _ = others['b'].communicate(timeout=900)
  first_out, _ = first.communicate(timeout=900)
  # Read as A ends: absent, or C's if C has already taken it.
  holder_after_first = _read_holder(lease_path)
  waited_out, _ = others['c'].communicate(timeout=900)
  return Overlap(running, (first.returncode, first_out),
                 (others['b'].returncode, refused_out),
                 (others['c'].returncode, waited_out), holder_after_first,
                 work, lease_path)


def test_refused_while_another_rehearsal_holds_the_pipeline(overlap):
  code, out = overlap.refused
  assert code == 1, out[-3000:]
  assert 'FAILED (vertex shape) in task CsvExampleGen' in out
  logs = overlap.work / 'b' / SHAPE / 'logs'
  refusal = next((logs / name).read_text() for name in os.listdir(logs)
                 if name.endswith('-CsvExampleGen.log'))
  assert (f'RunInProgress: run {overlap.running} (holding the pipeline since'
          in refusal)
  assert 'not starting run' in refusal and 'CONCURRENT_RUNS=wait' in refusal
  code, out = overlap.first
  assert code == 0, out[-3000:]
  assert 'Run 1: pushed' in out  # A was not disturbed
  # and released the lease at the end
  assert overlap.holder_after_first != overlap.running


def test_waits_while_another_rehearsal_holds_the_pipeline(overlap):
  for code, out in (overlap.first, overlap.waited):
    assert code == 0, out[-3000:]
    assert 'Run 1: pushed' in out
  logs = overlap.work / 'c' / SHAPE / 'logs'
  waited = [name for name in os.listdir(logs)
            if f'Waiting for run {overlap.running} (holding the pipeline '
            'since' in (logs / name).read_text()]
  assert len(waited) == 1, sorted(os.listdir(logs))
  assert ('of this pipeline to finish (CONCURRENT_RUNS=wait)' in
          (logs / waited[0]).read_text())
  # C's first step went on only once A's Pusher had released the lease.
  first_logs = overlap.work / 'a' / SHAPE / 'logs'
  first_pusher = next(name for name in os.listdir(first_logs)
                      if 'Pusher' in name)
  assert (os.path.getmtime(first_logs / first_pusher) <=
          os.path.getmtime(logs / waited[0]))
  assert not os.path.exists(overlap.lease_path)  # C released it at the end
