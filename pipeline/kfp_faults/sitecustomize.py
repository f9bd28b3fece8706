"""Reproduces, in the rehearsal's task processes, a fault of Kubeflow clusters.

Loaded only by the rehearsal (pipeline/rehearsal.py, --shape=kfp), never by
the pipeline image: it stands for the cluster, not for the fix.

Reported from open-source Kubeflow Pipelines (sky-uk/kfp-operator's TFX
patches): after TFX's entrypoint has written its ExecutorOutput, the
process crashes while the interpreter shuts down ("pure virtual method
called" from C++ destructors in protobuf/ML Metadata) and the launcher fails
the task on the exit status. The cause needs the cluster's builds and
storage; this reproduces the effect: a TFX entrypoint process that reaches
interpreter shutdown aborts (SIGABRT), as the reported one does.
"""
import atexit
import os
import sys

from pipeline import kfp_compat
from pipeline import site_hooks


def _crash_at_shutdown() -> None:
  if kfp_compat.running_entrypoint():
    sys.stderr.write('pure virtual method called\n'
                     'terminate called without an active exception\n')
    sys.stderr.flush()
    os.abort()


atexit.register(_crash_at_shutdown)
site_hooks.load_next_sitecustomize(__file__)
