"""python -m local.report: the newest run's HTML report (run_report.py)."""
import sys

from local.quiet import quiet

quiet()  # before TensorFlow loads
from local.report import run_report  # pylint: disable=g-import-not-at-top

sys.exit(run_report.main())
