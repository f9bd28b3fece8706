"""One local run of a pipeline at a time on one output folder.

Two runs of the same pipeline on the same LOCAL_OUTPUT_DIR share the metadata
store, the artifacts and the serving folder: run together, both would train
and push, and each would mark the other's running executions as abandoned.
`hold` takes an exclusive lock on `metadata/<name>/run.lock` (an OS file lock
through `fasteners`: the operating system releases it when the process ends,
however it ends, so a killed run never leaves a stale lock). With
CONCURRENT_RUNS=refuse a second run stops at once with `RunInProgress`,
naming the running one; with `wait` it waits until the lock is free.

The running run describes itself in `run.json` beside the lock (process id,
host, run id, start time), which is what a refused run quotes. Standard
library and fasteners only: the check costs milliseconds before TFX loads.
"""
import dataclasses
import datetime
import json
import os
import socket
from typing import Callable, Optional

import fasteners

LOCK_FILE_NAME = 'run.lock'
HOLDER_FILE_NAME = 'run.json'
REFUSE, WAIT = 'refuse', 'wait'


class RunInProgress(Exception):
  """Another run of the pipeline holds the output folder."""


@dataclasses.dataclass(frozen=True)
class Holder:
  """The run that holds the lock."""
  run_id: str
  pid: int
  host: str
  started: str  # ISO time, UTC

  def describe(self) -> str:
    return (f'run {self.run_id} (process {self.pid} on {self.host}, started '
            f'{self.started} UTC)')


def _read_holder(folder: str) -> Optional[Holder]:
  try:
    with open(os.path.join(folder, HOLDER_FILE_NAME), encoding='utf-8') as f:
      return Holder(**json.load(f))
  except (OSError, ValueError, TypeError):
    return None  # not written yet, or by another version


def _write_holder(folder: str, holder: Holder) -> None:
  staging = os.path.join(folder, f'.{HOLDER_FILE_NAME}.{holder.pid}')
  with open(staging, 'w', encoding='utf-8') as f:
    json.dump(dataclasses.asdict(holder), f)
  os.replace(staging, os.path.join(folder, HOLDER_FILE_NAME))


class RunLock:
  """The output folder's run lock for one pipeline; held until `release`,
  until this object is garbage-collected, or until the process ends.

  Attributes:
    folder: the folder of the lock file and the holder's description.
    path: the lock file.
    run_id: the run that holds it (`announce`), if any.
  """

  def __init__(self, folder: str):
    """`folder`: the pipeline's metadata folder (created if absent)."""
    os.makedirs(folder, exist_ok=True)
    self.folder = folder
    self.path = os.path.join(folder, LOCK_FILE_NAME)
    self._lock = fasteners.InterProcessLock(self.path)
    self.run_id: Optional[str] = None

  def hold(self, mode: str = REFUSE,
           on_wait: Optional[Callable[[Optional[Holder]], None]] = None
           ) -> None:
    """Takes the lock; then `announce` says which run holds it.

    Args:
      mode: REFUSE or WAIT (CONCURRENT_RUNS).
      on_wait: called once with the running run before waiting for it.

    Raises:
      RunInProgress: with REFUSE, when another run holds the lock; the
        message names it.
    """
    if not self._lock.acquire(blocking=False):
      holder = _read_holder(self.folder)
      if mode == REFUSE:
        running = holder.describe() if holder else 'another run'
        raise RunInProgress(
            f'{running} of this pipeline is running on the same output '
            f'folder (lock {self.path}); not starting a second one. Run '
            'again when it has finished, or set CONCURRENT_RUNS=wait to '
            'queue behind it.')
      if on_wait:
        on_wait(holder)
      self._lock.acquire(blocking=True, delay=0.2, max_delay=1.0)

  def announce(self, run_id: str) -> None:
    """Writes who holds the lock, for the runs it keeps out."""
    self.run_id = run_id
    _write_holder(self.folder, Holder(
        run_id=run_id, pid=os.getpid(), host=socket.gethostname(),
        started=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M:%S')))

  def release(self) -> None:
    """Lets the next run start (the end of the process does it too)."""
    try:
      os.remove(os.path.join(self.folder, HOLDER_FILE_NAME))
    except OSError:
      pass
    self._lock.release()


def hold_for_run(folder: str, mode: str) -> RunLock:
  """Takes the pipeline's run lock in `folder` (its metadata folder) and
  names this run after its start time, as TFX names its own runs. Prints a
  line when it has to wait. The lock is released when the returned object is
  garbage-collected, or at the latest when the process ends.

  Raises:
    RunInProgress: another run holds it and `mode` is REFUSE.
  """
  def say_waiting(holder: Optional[Holder]) -> None:
    running = holder.describe() if holder else 'another run'
    print(f'Waiting for {running} of this pipeline to finish '
          '(CONCURRENT_RUNS=wait).', flush=True)

  lock = RunLock(folder)
  lock.hold(mode, on_wait=say_waiting)
  lock.announce(datetime.datetime.now().isoformat())
  return lock
