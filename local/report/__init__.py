"""`make report` (python -m local.report): one HTML page per pipeline run."""
