"""What the pipeline image runs at start-up on open-source Kubeflow Pipelines
2.x: fixes for TFX 1.16's Kubeflow V2 entrypoints (kfp_compat.py, each fix with
the condition under which it can go) and the sitecustomize hook that installs
them (startup/)."""
