# The pipeline image: the locked environment (requirements.lock, the package
# set the tests run) plus the two folders that ship, pipeline/ and models/,
# and nothing else (docs/architecture.md). Every container of the compiled
# pipeline runs it: Kubeflow and Vertex AI Pipelines steps, Vertex AI training
# jobs and Dataflow workers, so the dotted paths in the compiled spec
# (models.model.run_fn, pipeline.components.serving_baseline...) import there.
#
# The base is Apache Beam's SDK container for the lock's Python and Beam
# versions: its entrypoint is the boot program Dataflow runs on each worker,
# and Dataflow needs the worker's Beam SDK to equal the launcher's.
#
# Build it with Cloud Build, tagged with the git commit, and record the pushed
# digest that compiled pipelines then name:  make image
FROM apache/beam_python3.10_sdk:2.74.0

WORKDIR /pipeline
COPY requirements.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.lock \
 && pip check
COPY models/ models/
COPY pipeline/ pipeline/
# pipeline/kfp_runtime/startup/sitecustomize.py runs when any Python process
# starts: it installs pipeline/kfp_runtime/kfp_compat.py, the fixes TFX's
# entrypoints need on open-source Kubeflow Pipelines 2.x (harmless on Vertex
# AI). `make rehearse` starts its task processes with the same PYTHONPATH.
ENV PYTHONPATH=/pipeline/pipeline/kfp_runtime/startup:/pipeline${PYTHONPATH:+:${PYTHONPATH}}
