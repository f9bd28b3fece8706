"""Two rehearsals started together on one bucket: one waits or refuses.

`python -m rehearsal` runs the compiled spec as its orchestrator would, each
step a process that holds the pipeline's run lease in the stand-in bucket
(pipeline/kfp_runtime/run_lease.py). Rehearsal A starts; once its steps hold
the lease, rehearsal B starts on the same bucket (its work folder's bucket is
A's). The spec is compiled with CONCURRENT_RUNS=refuse; the wait case runs a
copy whose steps carry the lease settings as CONCURRENT_RUNS=wait compiles
them (tests/test_kubeflow_runner.py checks what the compile writes). A small
slice and few training steps: the lease is under test, not the model.
"""
import json
import os
import subprocess
import sys
import time

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
        item['value'] = json.dumps(dict(lease, mode='wait'), sort_keys=True)
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


def _overlap(spec, data, tmp_path):
  first_dir = tmp_path / 'a'
  second_dir = tmp_path / 'b'
  first = _start(spec, first_dir, data, keep_bucket=False)
  gcs = first_dir / SHAPE / 'gcs'
  lease_path = _lease_path(spec, str(gcs))
  running = _holder_once_past_ingestion(first, lease_path,
                                        str(first_dir / SHAPE / 'logs'))
  # B's bucket is A's: its work folder's gcs/ is A's, kept (--keep_bucket).
  os.makedirs(second_dir / SHAPE)
  os.symlink(gcs, second_dir / SHAPE / 'gcs')
  second = _start(spec, second_dir, data, keep_bucket=True)
  second_out, _ = second.communicate(timeout=900)
  first_out, _ = first.communicate(timeout=900)
  return running, (first.returncode, first_out), (second.returncode,
                                                   second_out), lease_path


def test_refused_while_another_rehearsal_holds_the_pipeline(specs, data,
                                                            tmp_path):
  running, first, second, lease_path = _overlap(specs[0], data, tmp_path)
  code, out = second
  assert code == 1, out[-3000:]
  assert 'FAILED (vertex shape) in task CsvExampleGen' in out
  logs = tmp_path / 'b' / SHAPE / 'logs'
  refusal = next((logs / name).read_text() for name in os.listdir(logs)
                 if name.endswith('-CsvExampleGen.log'))
  assert (f'RunInProgress: run {running} (holding the pipeline since'
          in refusal)
  assert 'not starting run' in refusal and 'CONCURRENT_RUNS=wait' in refusal
  code, out = first
  assert code == 0, out[-3000:]
  assert 'Run 1: pushed' in out  # A was not disturbed
  assert not os.path.exists(lease_path)  # and released the lease at the end


def test_waits_while_another_rehearsal_holds_the_pipeline(specs, data,
                                                          tmp_path):
  running, first, second, lease_path = _overlap(specs[1], data, tmp_path)
  for code, out in (first, second):
    assert code == 0, out[-3000:]
    assert 'Run 1: pushed' in out
  logs = tmp_path / 'b' / SHAPE / 'logs'
  waited = [name for name in os.listdir(logs)
            if f'Waiting for run {running} (holding the pipeline since'
            in (logs / name).read_text()]
  assert len(waited) == 1, sorted(os.listdir(logs))
  assert ('of this pipeline to finish (CONCURRENT_RUNS=wait)' in
          (logs / waited[0]).read_text())
  # B's first step went on only once A's Pusher had released the lease.
  first_pusher = next(name for name in os.listdir(tmp_path / 'a' / SHAPE /
                                                   'logs')
                      if 'Pusher' in name)
  assert (os.path.getmtime(tmp_path / 'a' / SHAPE / 'logs' / first_pusher) <=
          os.path.getmtime(logs / waited[0]))
  assert not os.path.exists(lease_path)
