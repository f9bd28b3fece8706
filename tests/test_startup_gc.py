"""The collector's start-up pause (pipeline/startup_gc.py): in local_runner.py
and in the pipeline image's processes that start TFX's entrypoint.

Each case runs in a fresh Python process: the pause happens once per
process, and freezing objects in the test process would keep them.
"""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipeline.kfp_runtime import kfp_compat
from tests import helpers

ENTRYPOINT = kfp_compat.EXECUTOR[0]
(DRIVER,) = set(kfp_compat.ENTRYPOINTS) - {ENTRYPOINT}
STARTUP = os.path.join(helpers.REPO, 'pipeline', 'kfp_runtime', 'startup')


def _python(code: str, **env: str) -> dict:
  """Runs `code` in a new interpreter from the repository's root; returns the
  JSON object its last line of output prints."""
  done = subprocess.run(
      [sys.executable, '-c', textwrap.dedent(code)], cwd=helpers.REPO,
      env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
      check=False)
  assert done.returncode == 0, done.stdout + done.stderr
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_start_up_objects_are_frozen_and_later_ones_collected():
  state = _python("""
    import gc, json
    from pipeline import startup_gc
    frozen_before = gc.get_freeze_count()
    startup_gc.pause()
    off = not gc.isenabled()
    kept = [[i] for i in range(50000)]  # what imports leave: long-lived
    startup_gc.resume()
    # A cycle made after the pause is still the collector's to free.
    class Node: pass
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    freed = gc.collect()
    print(json.dumps(dict(off=off, on=gc.isenabled(), freed=freed,
                          frozen=gc.get_freeze_count() - frozen_before)))
  """)
  assert state['off'] and state['on']
  assert state['frozen'] >= 50000
  assert state['freed'] >= 2  # the two nodes (and their __dict__s)


def test_the_pause_happens_once_per_process_and_ends_on_an_error():
  state = _python("""
    import gc, json
    from pipeline import startup_gc
    try:
      with startup_gc.paused():
        raise KeyError('x')
    except KeyError:
      pass
    on_after_error = gc.isenabled()
    startup_gc.pause()  # a second start-up: nothing to gain, nothing done
    print(json.dumps(dict(on_after_error=on_after_error,
                          second_pause_on=gc.isenabled())))
  """)
  assert state == {'on_after_error': True, 'second_pause_on': True}


def test_a_collector_turned_off_by_the_process_stays_off():
  state = _python("""
    import gc, json
    from pipeline import startup_gc
    gc.disable()
    with startup_gc.paused():
      pass
    print(json.dumps(dict(on=gc.isenabled(), frozen=gc.get_freeze_count())))
  """)
  assert state == {'on': False, 'frozen': 0}


@pytest.mark.parametrize('argv, expected', [
    (['python', '-m', ENTRYPOINT, '--executor_class_path', 'x'], True),
    (['python', '-m' + ENTRYPOINT], True),
    (['python3', '-u', '-X', 'importtime', '-Wignore', '-m', ENTRYPOINT],
     True),
    (['python', '-uB', '-m', ENTRYPOINT], True),
    (['python', '-um', ENTRYPOINT], True),
    (['python', '--check-hash-based-pycs', 'never', '-m', ENTRYPOINT], True),
    (['python', '-m', DRIVER, '--json_serialized_invocation_args', '{}'],
     True),
    # The image's other processes: Vertex AI's training container, a
    # Dataflow worker, the rehearsal.
    (['python', '-m', 'tfx.scripts.run_executor', '--executor_class_path',
      'x'], False),
    (['python', '-m', 'apache_beam.runners.worker.sdk_worker_main'], False),
    (['python', '-m', 'rehearsal'], False),
    (['python', '-m', 'pip', 'install', '-m', ENTRYPOINT], False),
    (['python', '--', '-m', ENTRYPOINT], False),  # '--' ends the options
    (['python', '-X', '-m', 'json.tool'], False),  # -m is -X's value
    (['python', 'script.py', '-m', ENTRYPOINT], False),
    (['python', '-c', 'pass', '-m', ENTRYPOINT], False),
    (['python', '-', '-m', ENTRYPOINT], False),
    (['python'], False),
])
def test_the_start_up_hook_recognises_tfx_entrypoints(argv, expected):
  assert kfp_compat.starting_entrypoint(argv) is expected


def test_the_image_hook_leaves_other_processes_alone():
  state = _python("""
    import gc, json, sys
    print(json.dumps(dict(
        on=gc.isenabled(), frozen=gc.get_freeze_count(),
        hook=sys.modules['sitecustomize'].__file__,
        fixes='pipeline.kfp_runtime.kfp_compat' in sys.modules)))
  """, PYTHONPATH=os.pathsep.join([STARTUP, helpers.REPO]))
  assert state == {'on': True, 'frozen': 0, 'fixes': True,
                   'hook': os.path.join(STARTUP, 'sitecustomize.py')}


@pytest.mark.parametrize('name', sorted(kfp_compat.ENTRYPOINTS))
def test_every_paused_entrypoint_starts_through_absl(name):
  # The pause ends in absl.app.run: an entrypoint that never called it
  # would run its whole step with the collector off.
  spec = importlib.util.find_spec(name)
  with open(spec.origin, encoding='utf-8') as source:
    assert 'app.run(' in source.read()


def test_the_image_hook_pauses_an_entrypoint_until_it_starts(tmp_path):
  # A stand-in module under the name of TFX's entrypoint, found before the
  # installed TFX: what it sees at import (the image's hook paused the
  # collector) and in its main (absl.app.run resumed it, and gave the
  # executor's step Beam's caches, as a local run has them).
  module = tmp_path.joinpath(*ENTRYPOINT.split('.')).with_suffix('.py')
  module.parent.mkdir(parents=True)
  for folder in module.relative_to(tmp_path).parents:
    (tmp_path / folder / '__init__.py').touch()
  module.write_text(textwrap.dedent("""
      import gc, json
      from absl import app
      seen = dict(importing_on=gc.isenabled())
      def main(argv):
        from apache_beam.options import pipeline_options
        from apache_beam.transforms import core
        from pipeline.kfp_runtime import beam_signatures
        seen.update(
            main_on=gc.isenabled(), frozen=gc.get_freeze_count() > 0,
            views=hasattr(pipeline_options.PipelineOptions.view_as, 'cache'),
            signatures=isinstance(core.get_signature,
                                  beam_signatures.SignatureCache))
        print(json.dumps(seen), flush=True)
      app.run(main)  # the hook exits at once after a success
  """))
  path = [STARTUP, helpers.REPO, str(tmp_path)]
  done = subprocess.run(
      [sys.executable, '-m', ENTRYPOINT], cwd=tmp_path,
      env={**os.environ, 'PYTHONPATH': os.pathsep.join(path)},
      capture_output=True, text=True, timeout=600, check=False)
  lines = [line for line in done.stdout.splitlines() if line.startswith('{')]
  assert done.returncode == 0 and lines, done.stdout + done.stderr
  assert 'Error in sitecustomize' not in done.stderr
  assert json.loads(lines[-1]) == {'importing_on': False, 'main_on': True,
                                   'frozen': True, 'views': True,
                                   'signatures': True}


def test_local_runner_imports_paused_and_runs_the_pipeline_collecting(
    tmp_path):
  # local_runner.py as the command runs it, stopped when the pause ends:
  # the components would run next.
  runner = """
    import gc, json, os, runpy, sys
    from local import output_layout
    from pipeline import startup_gc
    seen = {}
    pause, resume = startup_gc.pause, startup_gc.resume
    def recording_pause():
      seen['tensorflow_before_pause'] = 'tensorflow' in sys.modules
      pause()
    def recording_resume():
      from google.protobuf import text_format
      from local.run import text_proto_memo
      seen['text_memo'] = text_format.Parse is text_proto_memo.parse
      seen.update(on_before=gc.isenabled(),
                  tensorflow='tensorflow' in sys.modules,
                  built='tfx.orchestration.pipeline' in sys.modules,
                  artifacts=os.path.exists(output_layout.pipeline_root(
                      os.environ['LOCAL_OUTPUT_DIR'], 'startup-gc')))
      resume()
      seen.update(on_after=gc.isenabled(), frozen=gc.get_freeze_count())
      print(json.dumps(seen), flush=True)
      os._exit(0)
    startup_gc.pause, startup_gc.resume = recording_pause, recording_resume
    sys.argv = ['local_runner.py']
    runpy.run_path('local_runner.py', run_name='__main__')
  """
  env = helpers.local_runner_env(os.path.dirname(helpers.BUNDLED_CSV),
                                 tmp_path / 'out', 'startup-gc')
  done = subprocess.run([sys.executable, '-c', textwrap.dedent(runner)],
                        cwd=helpers.REPO, env=env, capture_output=True,
                        text=True, timeout=600, check=False)
  lines = [line for line in done.stdout.splitlines() if line.startswith('{')]
  assert done.returncode == 0 and lines, done.stdout + done.stderr
  state = json.loads(lines[-1])
  assert state['tensorflow_before_pause'] is False
  assert state['on_before'] is False  # imports and building, paused
  assert state['tensorflow'] and state['built']
  assert state['artifacts'] is False  # no component has run yet
  assert state['on_after'] is True  # the components run collecting
  # TensorFlow, TFX and Beam alone are hundreds of thousands of objects.
  assert state['frozen'] > 200000
  # The components will parse each large text proto once.
  assert state['text_memo'] is True
