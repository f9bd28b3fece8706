"""Reproduces, in the rehearsal's task processes, what the cloud does and a
local run does not.

Loaded only by the rehearsal (rehearsal/rehearse.py), never by the pipeline
image: it stands for the cluster and its bucket, not for the fix.

- REHEARSAL_GCS_DIR set: TensorFlow's new directories in that folder get
  Cloud Storage's zero-byte directory markers (rehearsal/gcs_standin.py).
- REHEARSAL_SHUTDOWN_CRASH=1: the crash reported from open-source Kubeflow
  Pipelines (sky-uk/kfp-operator's TFX patches): after TFX's entrypoint has
  written its ExecutorOutput, the process crashes while the interpreter
  shuts down ("pure virtual method called" from C++ destructors in
  protobuf/ML Metadata) and the launcher fails the task on the exit status.
  The cause needs the cluster's builds and storage; this reproduces the
  effect: a TFX entrypoint process that reaches interpreter shutdown aborts
  (SIGABRT), as the reported one does.
"""
import atexit
import os
import sys

from rehearsal import gcs_standin
from pipeline.kfp_runtime import kfp_compat
from pipeline.kfp_runtime import site_hooks

SHUTDOWN_CRASH_ENV = 'REHEARSAL_SHUTDOWN_CRASH'


def _crash_at_shutdown() -> None:
  if kfp_compat.running_entrypoint():
    sys.stderr.write('pure virtual method called\n'
                     'terminate called without an active exception\n')
    sys.stderr.flush()
    os.abort()


gcs_standin.install_from_env()
if os.environ.get(SHUTDOWN_CRASH_ENV) == '1':
  atexit.register(_crash_at_shutdown)
site_hooks.load_next_sitecustomize(__file__)
