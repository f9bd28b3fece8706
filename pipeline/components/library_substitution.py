"""A function or class of a third-party module stood in for the library's
own while one executor call runs, and the check that a library's function
is still the one written for.

Three executors change a step inside TFX, TFT or TFDV that the library
offers no parameter for: Transform's tracing (shared_trace_transform.py) and
processor (dense_numeric_inputs.py), TFDV's histogram (equi_width_histogram
.py). Each checks first that the library's function is the one it was
written for, and keeps the library's own otherwise. `substituted` is the
swap they share: one caller per module at a time, and the library's own
back on leaving, also on an error.
"""
import contextlib
import inspect
import threading
from typing import Any, Callable, Dict, Iterator, Sequence

_LOCKS: Dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def takes(function: Callable[..., Any], parameters: Sequence[str]) -> bool:
  """Whether `function` takes exactly `parameters`, in this order: the check
  that a library's function is still the one a substitution (or a call of
  it) was written for."""
  return tuple(inspect.signature(function).parameters) == tuple(parameters)


@contextlib.contextmanager
def substituted(module, **replacements: Any) -> Iterator[None]:
  """While inside, each attribute of `module` named in `replacements` is
  its replacement; callers for the same module wait for each other."""
  with _LOCKS_LOCK:
    lock = _LOCKS.setdefault(module.__name__, threading.Lock())
  with lock:
    originals = {name: getattr(module, name) for name in replacements}
    for name, value in replacements.items():
      setattr(module, name, value)
    try:
      yield
    finally:
      for name, value in originals.items():
        setattr(module, name, value)
