"""Start-up hooks of the pipeline image's processes (sitecustomize chaining).

Python imports the first `sitecustomize` module on sys.path at start-up. The
pipeline image puts its own first (pipeline/kfp_runtime/startup/), so it must
load the one it shadows, e.g. the base image's, for that one to keep working.
"""
import importlib.machinery
import importlib.util
import os
import sys


def load_next_sitecustomize(this_file: str) -> None:
  """Runs the `sitecustomize` that the one in `this_file`'s folder shadows."""
  here = os.path.dirname(os.path.abspath(this_file))
  later = [entry for entry in sys.path
           if os.path.abspath(entry or os.curdir) != here]
  spec = importlib.machinery.PathFinder.find_spec('sitecustomize', later)
  if spec is None or spec.loader is None:
    return
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
