"""Start-up hook of every Python process in the pipeline image.

The Dockerfile puts this folder on PYTHONPATH, so Python imports this module
when it starts, before the task's entrypoint: it installs the compatibility
fixes for open-source Kubeflow Pipelines and the run lease held around each
step (pipeline/kfp_runtime/kfp_compat.py, run_lease.py; only an import hook
until TFX is imported), then runs the sitecustomize it shadows. The local
rehearsal (rehearsal/rehearse.py) starts its task processes the same way.

A process started to run one of TFX's Kubeflow entrypoints also loads the
entrypoint module (TFX's orchestration, TensorFlow, Beam) with Python's
cyclic collector paused, a pause that ends when the entrypoint starts
(pipeline/startup_gc.py).
"""
from pipeline import startup_gc
from pipeline.kfp_runtime import kfp_compat
from pipeline.kfp_runtime import site_hooks

kfp_compat.install()
if kfp_compat.starting_entrypoint():
  startup_gc.pause()
site_hooks.load_next_sitecustomize(__file__)
