# The pipeline image: the official TFX 1.16 image plus this project's code, so
# the dotted paths in the compiled pipeline (models.model.run_fn,
# pipeline.serving_baseline...) import in every container that runs it:
# Kubeflow and Vertex AI Pipelines steps, Vertex AI training jobs and Dataflow
# workers (the base image's entrypoint is Beam's worker boot).
#
# Build it with Cloud Build, tagged with the git commit:  make image
FROM gcr.io/tfx-oss-public/tfx:1.16.0

WORKDIR /pipeline
COPY models/ models/
COPY pipeline/ pipeline/
# pipeline/startup/sitecustomize.py runs when any Python process starts: it
# installs pipeline/kfp_compat.py, the fixes TFX's entrypoints need on
# open-source Kubeflow Pipelines 2.x (harmless on Vertex AI). `make rehearse`
# starts its task processes with the same PYTHONPATH.
ENV PYTHONPATH=/pipeline/pipeline/startup:/pipeline${PYTHONPATH:+:${PYTHONPATH}}
