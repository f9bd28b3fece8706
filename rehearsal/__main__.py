"""`python -m rehearsal` (make rehearse): see rehearsal/rehearse.py."""
import sys

from rehearsal import rehearse

sys.exit(rehearse.main())
