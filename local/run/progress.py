"""One line per component while a local run goes on.

The local runner attaches a `ProgressPrinter` to absl's logger: TFX's
LocalDagRunner logs when each component starts, is taken from the cache and
finishes, and each finish becomes a line such as
`[ 3/10] SchemaGen                    done      0.4 s`.
"""
import logging
import time
from typing import List, Optional


class ProgressPrinter(logging.Handler):
  """Prints one line per component from the local runner's log records."""

  def __init__(self, component_ids: List[str]):
    super().__init__(level=logging.INFO)
    self._total = len(component_ids)
    self._done = 0
    self._started = {}
    self._cached = False
    self.current: Optional[str] = None

  @property
  def started(self) -> bool:
    """Whether any component has started (so the run is in the store)."""
    return bool(self._started)

  def emit(self, record: logging.LogRecord) -> None:
    if record.msg == 'Component %s is running.':
      self.current = record.args[0]
      self._started[self.current] = time.monotonic()
      self._cached = False
    elif record.msg == 'A cached execution %d is used.':
      self._cached = True
    elif record.msg == 'Component %s is finished.':
      self.line(record.args[0], 'cached' if self._cached else 'done')
      self.current = None

  def line(self, component_id: str, outcome: str) -> None:
    seconds = time.monotonic() - self._started.get(component_id,
                                                   time.monotonic())
    self._done += 1
    width = len(str(self._total))
    print(f'[{self._done:>{width}}/{self._total}] {component_id:<28} '
          f'{outcome:<7}{seconds:6.1f} s', flush=True)


def show_logs(verbose: bool) -> None:
  """TFX's, Beam's and TensorFlow's logs only with --verbose; absl's INFO
  records reach the ProgressPrinter either way."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.INFO)
  shown = logging.INFO if verbose else logging.ERROR
  for handler in logging.getLogger().handlers:
    handler.setLevel(shown)
  for name in ('apache_beam', 'tensorflow'):
    logging.getLogger(name).setLevel(shown)
