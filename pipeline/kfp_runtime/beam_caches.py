"""Beam's caches of what it reads again and again while it builds and runs a
pipeline: DoFn signatures (beam_signatures.py) and options views
(beam_option_views.py). `remember()` applies both in this process; the
local runner calls it, and so does the image's start-up hook in each
executor's step (kfp_compat.py)."""
from pipeline.kfp_runtime import beam_option_views
from pipeline.kfp_runtime import beam_signatures


def remember() -> None:
  """Both caches, in this process; applying them again changes nothing."""
  beam_signatures.remember_signatures()
  beam_option_views.remember_views()
