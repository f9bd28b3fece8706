"""The pipeline that ships in the image: its definition, settings, custom
components (components/) and the runtime fixes for open-source Kubeflow
Pipelines (kfp_runtime/). Imports nothing of local/, deploy/ or rehearsal/."""
