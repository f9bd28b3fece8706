"""Measuring helpers for the benchmarks: timed commands with the peak memory
of their whole process tree, and per-component windows from a metadata store.
"""
import dataclasses
import resource
import statistics
import subprocess
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import psutil
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

_SAMPLE_SECONDS = 0.25


@dataclasses.dataclass
class Measured:
  seconds: float
  cpu_seconds: float  # user + system, the command and its children
  peak_rss: int  # bytes, whole process tree
  samples: List[Tuple[float, int]]  # (epoch seconds, tree RSS in bytes)
  output: str
  # (epoch seconds, CPU seconds the live process tree has used so far)
  cpu_samples: List[Tuple[float, float]] = dataclasses.field(
      default_factory=list)


def _tree_rss(process: psutil.Process) -> int:
  total = 0
  try:
    for member in [process] + process.children(recursive=True):
      try:
        total += member.memory_info().rss
      except psutil.Error:
        pass
  except psutil.Error:
    pass
  return total


def _tree_cpu(process: psutil.Process) -> float:
  """User + system seconds of the live members of `process`'s tree."""
  total = 0.0
  try:
    for member in [process] + process.children(recursive=True):
      try:
        times = member.cpu_times()
        total += times.user + times.system
      except psutil.Error:
        pass
  except psutil.Error:
    pass
  return total


def _children_cpu() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def run_measured(command: Sequence[str], cwd: str,
                 env: Dict[str, str]) -> Measured:
  """Runs `command`, sampling the RSS of its process tree; fails loudly."""
  start, cpu = time.monotonic(), _children_cpu()
  child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
  samples: List[Tuple[float, int]] = []
  cpu_samples: List[Tuple[float, float]] = []
  watched = psutil.Process(child.pid)

  def sample():
    while child.poll() is None:
      now = time.time()
      samples.append((now, _tree_rss(watched)))
      cpu_samples.append((now, _tree_cpu(watched)))
      time.sleep(_SAMPLE_SECONDS)

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  output, _ = child.communicate()
  seconds = time.monotonic() - start
  cpu_seconds = _children_cpu() - cpu
  sampler.join()
  if child.returncode:
    raise RuntimeError(f'{" ".join(command)} failed ({child.returncode}):\n'
                       f'{output[-4000:]}')
  return Measured(seconds, cpu_seconds,
                  max((rss for _, rss in samples), default=0), samples, output,
                  cpu_samples)


@dataclasses.dataclass
class SideBySide:
  """Alternating runs of two commands on a shared, noisy machine: each
  pair's ratio of the first command's time to the second's, and their
  median. A single run of each moves with the machine's speed from one
  minute to the next; a pair's two runs share it."""
  runs: List[Measured]
  yardstick: List[Measured]

  def pair_ratios(self, cpu: bool = False) -> List[float]:
    """Each pair's ratio, of wall times or of CPU times."""
    return [(r.cpu_seconds / y.cpu_seconds) if cpu else (r.seconds / y.seconds)
            for r, y in zip(self.runs, self.yardstick)]

  def ratio(self, cpu: bool = False) -> float:
    """The median of the pairs' ratios."""
    return statistics.median(self.pair_ratios(cpu))

  def median_yardstick(self) -> Measured:
    """The yardstick's run of median wall time."""
    return sorted(self.yardstick,
                  key=lambda run: run.seconds)[len(self.yardstick) // 2]

  def describe(self) -> str:
    """The pairs' wall times and ratios, one line."""
    return '; '.join(
        f'{r.seconds:.1f} s / {y.seconds:.1f} s = {wall:.2f} ({cpu:.2f} CPU)'
        for r, y, wall, cpu in zip(self.runs, self.yardstick,
                                   self.pair_ratios(),
                                   self.pair_ratios(cpu=True)))


def side_by_side(pairs: int, run: Callable[[int], Measured],
                 yardstick: Callable[[int], Measured]) -> SideBySide:
  """`pairs` times (an odd number, so that a median is of one pair) `run`
  and `yardstick`, each given the pair's index, `run` first in every other
  pair so that neither always follows the other."""
  assert pairs % 2 == 1, pairs
  measured = SideBySide(runs=[], yardstick=[])
  for index in range(pairs):
    for first in (True, False) if index % 2 == 0 else (False, True):
      if first:
        measured.runs.append(run(index))
      else:
        measured.yardstick.append(yardstick(index))
  return measured


@dataclasses.dataclass
class ComponentWindow:
  component_id: str
  state: str
  start: float  # epoch seconds
  end: float

  @property
  def seconds(self) -> float:
    return self.end - self.start

  def cpu_seconds(self, cpu_samples: List[Tuple[float, float]]
                  ) -> Optional[float]:
    """CPU seconds the process tree used while the component ran (to the
    sampling interval); None for a window shorter than two samples."""
    inside = [cpu for t, cpu in cpu_samples if self.start <= t <= self.end]
    return inside[-1] - inside[0] if len(inside) > 1 else None

  def peak_rss(self, samples: List[Tuple[float, int]]) -> Optional[int]:
    inside = [rss for t, rss in samples if self.start <= t <= self.end]
    return max(inside) if inside else None


_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def component_windows(metadata_path: str,
                      pipeline_name: str) -> Dict[str, ComponentWindow]:
  """Each component's last execution in the store: state, start and end."""
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = 1  # READONLY
  store = metadata_store.MetadataStore(config)
  windows = {}
  prefix = pipeline_name + '.'
  for execution in sorted(store.get_executions(), key=lambda e: e.id):
    node = next((c.name[len(prefix):]
                 for c in store.get_contexts_by_execution(execution.id)
                 if c.name.startswith(prefix)), None)
    if node is None:
      continue
    windows[node] = ComponentWindow(
        node, _STATES.get(execution.last_known_state, '?'),
        execution.create_time_since_epoch / 1000,
        execution.last_update_time_since_epoch / 1000)
  return windows


def gib(n_bytes: Optional[int]) -> str:
  return '-' if n_bytes is None else f'{n_bytes / 2**30:.2f} GiB'
