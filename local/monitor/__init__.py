"""`make monitor` (python -m local.monitor): skew and drift of the rows a
served model receives, against its training data and the previous window."""
