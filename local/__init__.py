"""Tools for local runs, outside the image: progress lines, pre-flight data
checks, interrupted-run clean-up, run summaries and reports, predictions and
the schema export."""
