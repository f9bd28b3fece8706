"""Serving on Vertex AI: one model with versions, one endpoint, rollback.

Every blessed model becomes a new version of one Vertex AI Model, deployed to
one endpoint, where it takes all the traffic once its deployment is up; the
alias VERTEX_PRODUCTION_ALIAS follows it, and older deployments are removed
(VERTEX_KEEP_DEPLOYED stay, without traffic). The Pusher of both cloud
targets (pipeline/components/vertex_push.py) and the `python -m
deploy.serving` command use it:

- `target.py`: where and how to serve (`ServingTarget`, from the settings);
- `provenance.py`: the labels a version carries (pipeline, run, metrics, the
  model's digest, by which a retried push finds the version it made);
- `api.py`: the official Vertex AI clients (REST transport);
- `registry.py`: the model and its versions;
- `endpoints.py`: the endpoint, its deployments and traffic;
- `rollout.py`: push, rollback and status, built from the two above.

Nothing here calls a cloud API at import time.
"""
