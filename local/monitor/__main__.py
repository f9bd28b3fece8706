"""python -m local.monitor: checks served rows for skew and drift
(monitor.py)."""
import sys

from local.quiet import quiet

quiet()  # before TensorFlow loads
from local.monitor import monitor  # pylint: disable=g-import-not-at-top

sys.exit(monitor.main())
