"""Keeps the views of Apache Beam's pipeline options, in the processes that
build and run the pipeline's Beam pipelines: a local run (local_runner.py)
and each step of a cloud run (the image's start-up hook,
pipeline/kfp_runtime/kfp_compat.py).

`PipelineOptions.view_as(cls)` builds a new options object of `cls` each
time: a fresh argparse parser with every option of every Beam options class
(hundreds of `add_argument` calls, each looking up gettext's translations),
which then parses the pipeline's flags again, only to return an object that
reads and writes the same shared dictionary of values. Beam 2.74 asks for a
view in every type check while it builds a pipeline (`is_consistent_with`
reads `TypeOptions.disable_beartype`), in every applied transform and while
it runs one: about 1,200 views in the Transform of one local run of the
bundled data, 0.5 s of the executor's 3.0 s of CPU (2026-12-06, 2-core
machine, `bench/profile_component.py Transform --cpu`, medians of three
runs each way).

`remember_views` makes `view_as` return the view it built before for the
same options object and class, as long as the view still holds the flags
and the value dictionary the options hold (the two things a view is made
from). A view has no state of its own: every read and write goes to the
shared dictionary, and setting anything else raises. So a kept view answers
exactly as a new one would; only `is` between two views tells them apart.
Views are held with their options object, weakly: a pipeline's options
that are dropped take their views with them.
"""
from typing import Any, Callable
import weakref

from apache_beam.options import pipeline_options


class ViewCache:
  """`PipelineOptions.view_as` with its views kept per options object."""

  def __init__(self, view_as: Callable[[Any, type], Any]):
    self.view_as = view_as
    self._views = weakref.WeakKeyDictionary()

  def __call__(self, options, cls):
    try:
      views = self._views.setdefault(options, {})
    except TypeError:  # options that cannot be a dictionary key
      return self.view_as(options, cls)
    kept = views.get(cls)
    # A view is made from its options' flags and values, and holds them: it
    # is handed out again while it holds the ones the options hold now
    # (anyone may set either, on the options or on the view).
    if (kept is not None and kept._flags is options._flags and  # pylint: disable=protected-access
        kept._all_options is options._all_options):  # pylint: disable=protected-access
      return kept
    views[cls] = view = self.view_as(options, cls)
    return view


def remember_views() -> None:
  """Makes Beam keep the views of its options, in this process; applying it
  again changes nothing."""
  options = pipeline_options.PipelineOptions
  if isinstance(getattr(options.view_as, 'cache', None), ViewCache):
    return
  cache = ViewCache(options.view_as)

  def view_as(self, cls):
    return cache(self, cls)

  view_as.__doc__ = options.view_as.__doc__
  view_as.cache = cache
  options.view_as = view_as
