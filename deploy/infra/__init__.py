"""Steps of `python pipeline/gcp_infrastructure.py`, one module per resource."""
