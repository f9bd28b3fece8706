"""Steps of `python -m pipeline.gcp_infrastructure`, one module per resource."""
