"""The self-contained HTML page and SVG plots both reports draw (make report,
make monitor)."""
