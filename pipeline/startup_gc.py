"""Python's cyclic garbage collector while a pipeline process starts.

A process that runs the pipeline (local_runner.py) or one of its steps (TFX's
Kubeflow entrypoint in the pipeline image) first imports TensorFlow, TFX,
Beam, TFDV, TFT and TFMA: about a million Python objects, nearly all of them
kept until the process ends. CPython's collector scans every object it
tracks in each collection of its oldest generation, and it starts one each
time the number of objects has grown by a quarter, so the imports trigger
one full collection after another over an ever larger heap, and each full
collection later in the run (the transform graph's, the model's) scans the
million again. In a local run of the bundled data (2026-12-06, 2-core
machine): nine full collections before the first component, 1.6 s of CPU,
which freed about 200 objects in all; then two more during Transform and
the Trainer, 0.5 s each. gc.freeze exists for this: objects it moves into
the permanent generation are never scanned again.

`pause()` turns the collector off at the start of such a process, and
`resume()`, called once the imports are done and before any component's
work, freezes everything alive at that moment and turns the collector back
on: objects made afterwards (the components' graphs, models and data) are
collected as usual. What start-up left as garbage (those 200 objects)
stays in memory, and so does a frozen object that later becomes garbage in
a cycle (the built pipeline, the checked settings: kept to the end of the
process anyway). Once per process: a second start-up in the same process
imports nothing new, so it changes nothing. A process whose collector was
already off is left as it was.

Used by local_runner.py (paused from main() until the pipeline is built)
and by the pipeline image's start-up hook (pipeline/kfp_runtime/startup/:
paused in a process started as TFX's entrypoint, resumed when the
entrypoint's `absl.app.run` begins). There the entrypoint module's own
imports are paused: TFX's orchestration, TensorFlow, Beam and TFMA; the
step's executor class is imported after, in the entrypoint's main (0.01 s
for Transform's or the Evaluator's once those are loaded).
"""
import contextlib
import gc
from typing import Iterator

_paused = False  # this module turned the collector off
_started = False  # a pause happened in this process (ended or not)


def pause() -> None:
  """Turns the collector off until `resume()`: once per process, and only
  where it is on."""
  global _paused, _started
  if _started or not gc.isenabled():
    return
  _started = _paused = True
  gc.disable()


def resume() -> None:
  """Ends the pause: freezes every object alive now and turns the collector
  on. Nothing when no pause is in effect."""
  global _paused
  if not _paused:
    return
  _paused = False
  gc.freeze()
  gc.enable()


@contextlib.contextmanager
def paused() -> Iterator[None]:
  """`pause()` for the block, `resume()` when it ends (or earlier, by a
  `resume()` inside it), also on an error."""
  pause()
  try:
    yield
  finally:
    resume()
