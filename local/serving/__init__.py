"""The pushed model at work on this machine: `make serve` (python -m
local.serving.serve, TensorFlow Serving's REST API) and batch predictions
(python -m local.serving.predict)."""
