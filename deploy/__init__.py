"""Tools that deploy to Google Cloud, outside the image: the infrastructure
command (provision.py, infra/), the Kubeflow Pipelines CLI and the pipeline
image's name."""
