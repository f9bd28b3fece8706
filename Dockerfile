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
ENV PYTHONPATH=/pipeline${PYTHONPATH:+:${PYTHONPATH}}
