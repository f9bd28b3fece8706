"""python -m local.schema: copies the newest inferred schema for review
(schema_export.py)."""
import sys

from local.quiet import quiet

quiet()  # before TensorFlow loads
from local.schema import schema_export  # pylint: disable=g-import-not-at-top

sys.exit(schema_export.main())
