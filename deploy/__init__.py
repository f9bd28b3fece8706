"""Tools that deploy to Google Cloud, outside the image: the infrastructure
command (provision.py, infra/), the Kubeflow Pipelines CLI, the pipeline
image's name, and the status and rollback of the model served on Vertex AI
(serving.py)."""
