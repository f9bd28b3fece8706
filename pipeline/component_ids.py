"""The pipeline's component ids, importable without TFX.

ML Metadata, the cache and Kubeflow task names depend on these ids, so they
stay the same when a component's class or position changes. The pipeline
factory (pipeline/pipeline.py) gives them to its components; the local tools
(progress lines, run summary, report, schema export) find a run's components
by them without loading TFX.
"""

EXAMPLE_GEN = 'CsvExampleGen'
STATISTICS_GEN = 'StatisticsGen'
SCHEMA_GEN = 'SchemaGen'
EXAMPLE_VALIDATOR = 'ExampleValidator'
ANOMALY_GATE = 'AnomalyGate'
TRANSFORM = 'Transform'
TRAINER = 'Trainer'
MODEL_RESOLVER = 'LatestBlessedModelResolver'
EVALUATOR = 'Evaluator'
PUSHER = 'Pusher'
# With span folders only, between the anomaly gate and Transform: the newest
# accepted spans (pipeline/components/training_window.py).
TRAINING_WINDOW = 'TrainingWindow'
# Replaces MODEL_RESOLVER where ML Metadata queries cannot run (Kubeflow
# Pipelines on GKE); see pipeline/components/serving_baseline.py.
PUSHED_MODEL_BASELINE = 'LatestPushedModel'

# Every component of a pipeline whose baseline comes from ML Metadata (local
# runs, Vertex AI), from the data to the push.
COMPONENT_IDS = (EXAMPLE_GEN, STATISTICS_GEN, SCHEMA_GEN, EXAMPLE_VALIDATOR,
                 ANOMALY_GATE, TRANSFORM, TRAINER, MODEL_RESOLVER, EVALUATOR,
                 PUSHER)


def of_pipeline(spans: bool) -> tuple:
  """The components of a pipeline, in order: COMPONENT_IDS, with the
  training window before Transform when the data has span folders."""
  if not spans:
    return COMPONENT_IDS
  at = COMPONENT_IDS.index(TRANSFORM)
  return COMPONENT_IDS[:at] + (TRAINING_WINDOW,) + COMPONENT_IDS[at:]
