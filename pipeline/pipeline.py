"""The pipeline factory shared by every runner.

`create_pipeline` assembles the logical DAG; runners decide where it runs
(local files and SQLite, or Kubeflow/Vertex AI with Cloud Storage) and pass
the physical settings in. Component ids are in pipeline/component_ids.py,
the Evaluator's metrics in pipeline/eval_metrics.py and
pipeline/eval_config.py: the local tools read them without importing TFX.
"""
from typing import Any, Dict, List, Optional, Sequence

# TFX's own modules rather than its public `tfx.v1`: importing `tfx.v1` also
# imports its Google Cloud extensions and the Vertex AI SDK, 3.6 s of every
# local run; they are imported only when a cloud target needs them.
from tfx import components as tfx_components
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy)
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2
from tfx.proto import pusher_pb2
from tfx.proto import trainer_pb2
from tfx.types import channel
from tfx.types import standard_artifacts
from ml_metadata.proto import metadata_store_pb2

from models import features
from pipeline import component_ids as ids
from pipeline.components import anomaly_gate
from pipeline.components import atomic_push
from pipeline.components import reviewed_schema
from pipeline.components import serving_baseline
from pipeline.components.columnar_csv_example_gen import ColumnarCsvExampleGen
from pipeline.code_version import source_fingerprint
from pipeline.eval_config import create_eval_config


def _vertex():
  """TFX's Vertex AI Trainer and Pusher (imported for cloud targets only)."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  return tfx.extensions.google_cloud_ai_platform

# User code is referenced by dotted path, so the same pipeline compiles for
# Kubeflow without packaging files: the pipeline image contains models/.
PREPROCESSING_FN = 'models.preprocessing.preprocessing_fn'
RUN_FN = 'models.model.run_fn'
# The modules each of them runs; their fingerprint invalidates the cache.
PREPROCESSING_MODULES = ('models.features', 'models.preprocessing')
TRAINING_MODULES = ('models.features', 'models.autograph_compat',
                    'models.signatures', 'models.model')

def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_path: str,
    serving_model_dir: str,
    train_steps: int,
    eval_steps: int,
    batch_size: int,
    seed: int,
    problem: features.Problem,
    eval_accuracy_threshold: float,
    eval_baseline_tolerance: float,
    eval_rmse_threshold: float = 0.0,
    eval_slice_columns: Sequence[str] = (),
    enable_cache: bool = True,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    ai_platform_training_args: Optional[Dict[str, Any]] = None,
    ai_platform_serving_args: Optional[Dict[str, Any]] = None,
    vertex_region: Optional[str] = None,
    vertex_serving_image: Optional[str] = None,
    baseline_from_serving_dir: bool = False,
    reviewed_schema_text: Optional[str] = None,
    allowed_anomalies: str = '',
    anomaly_min_severity: str = 'ERROR',
) -> tfx_pipeline.Pipeline:
  """Assembles the TFX pipeline.

  Args:
    pipeline_name: the pipeline's name (Kubeflow rules, see configs.py).
    pipeline_root: where artifacts are written (a local folder or gs:// URI).
    data_path: a folder of CSV files with a header row.
    serving_model_dir: where blessed models are pushed, one folder each.
    train_steps: Trainer training steps.
    eval_steps: Trainer evaluation steps (the Evaluator reads the whole
      eval split regardless).
    batch_size: training batch size.
    seed: seeds weight initialisation and shuffling.
    problem: what to predict and how to treat the columns
      (pipeline/problem_spec.py); handed to Transform and the Trainer.
    eval_accuracy_threshold: the lowest accuracy that blesses a
      classification model.
    eval_baseline_tolerance: how far behind the last blessed model a new
      model may fall and still be blessed (accuracy points; for regression a
      fraction of the baseline's RMSE).
    eval_rmse_threshold: the highest RMSE that blesses a regression model.
    eval_slice_columns: raw columns the Evaluator also slices metrics by.
    enable_cache: reuse outputs of components whose inputs did not change.
    metadata_connection_config: ML Metadata store; None lets the
      orchestrator provide it (Kubeflow, Vertex AI).
    beam_pipeline_args: arguments for the Beam-based components.
    ai_platform_training_args: a Vertex AI CustomJob (plus 'project') to train
      in; None trains inside the Trainer's own process or container.
    ai_platform_serving_args: Vertex AI deployment arguments ('project',
      'endpoint_name', machine and replica settings) to push blessed models to
      an endpoint; None copies them to `serving_model_dir`.
    vertex_region: the Vertex AI region; required with either of the above.
    vertex_serving_image: the prediction image Vertex AI serves models with;
      required with `ai_platform_serving_args`.
    baseline_from_serving_dir: take the Evaluator's baseline from the newest
      model under `serving_model_dir` (a container step) instead of the
      latest blessed model in ML Metadata (a Resolver), for orchestrators that
      cannot run Resolvers.
    reviewed_schema_text: the reviewed schema (pipeline/components/reviewed_schema.py)
      that the data must match; None infers a schema from the data.
    allowed_anomalies: anomalies that do not stop the run
      (pipeline/components/anomaly_rules.py parse_allow_list).
    anomaly_min_severity: WARNING or ERROR; anomalies below it do not stop
      the run.

  Returns:
    The pipeline, ready for any TFX runner.

  Raises:
    ValueError: the Vertex AI arguments are incomplete or contradict
      `baseline_from_serving_dir`.
  """
  if (ai_platform_training_args or ai_platform_serving_args) and (
      not vertex_region):
    raise ValueError('vertex_region is required to train or serve on '
                     'Vertex AI.')
  if ai_platform_serving_args and not vertex_serving_image:
    raise ValueError('vertex_serving_image is required to serve on '
                     'Vertex AI.')
  if ai_platform_serving_args and baseline_from_serving_dir:
    raise ValueError('baseline_from_serving_dir needs the Pusher to write to '
                     'serving_model_dir, which a push to Vertex AI does not.')
  components = []

  # Reads the *.csv files under data_path (other files, such as a README,
  # are ignored), splits the rows 2:1 into train and eval by a hash of each
  # row, so the split is stable, and writes tf.Examples. CsvExampleGen with a
  # columnar reader: the same examples, many times faster
  # (pipeline/components/columnar_csv_example_gen.py).
  example_gen = ColumnarCsvExampleGen(
      input_base=data_path,
      input_config=example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='all', pattern='*.csv')
      ]),
      output_config=example_gen_pb2.Output(
          split_config=example_gen_pb2.SplitConfig(splits=[
              example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=2),
              example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1),
          ]))).with_id(ids.EXAMPLE_GEN)
  components.append(example_gen)

  # Computes per-split statistics that the schema and validation build on.
  statistics_gen = tfx_components.StatisticsGen(
      examples=example_gen.outputs['examples']).with_id(ids.STATISTICS_GEN)
  components.append(statistics_gen)

  if reviewed_schema_text is not None:
    # The schema a person reviewed (schema/schema.pbtxt): new data is checked
    # against it, not against a schema inferred from the new data itself.
    schema_gen = reviewed_schema.ReviewedSchema(
        schema_text=reviewed_schema_text).with_id(ids.SCHEMA_GEN)
  else:
    # Infers types, domains and presence of each column from the statistics
    # (until a schema has been reviewed; see `make schema`).
    schema_gen = tfx_components.SchemaGen(
        statistics=statistics_gen.outputs['statistics'],
        infer_feature_shape=True).with_id(ids.SCHEMA_GEN)
  components.append(schema_gen)

  # Checks the statistics against the schema and records anomalies.
  example_validator = tfx_components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema']).with_id(ids.EXAMPLE_VALIDATOR)
  components.append(example_validator)

  # Stops the run on anomalies that are not allowed, naming each column;
  # otherwise passes the schema on. Transform and the Trainer read the
  # gate's copy, so nothing after it starts on bad data.
  gate = anomaly_gate.AnomalyGate(
      anomalies=example_validator.outputs['anomalies'],
      schema=schema_gen.outputs['schema'],
      allowed_anomalies=allowed_anomalies,
      min_severity=anomaly_min_severity).with_id(ids.ANOMALY_GATE)
  components.append(gate)
  checked_schema = gate.outputs['checked_schema']

  # Turns raw columns into model inputs (models/preprocessing.py); the same
  # graph is saved with the model, so serving sees the same transformation.
  transform = tfx_components.Transform(
      examples=example_gen.outputs['examples'],
      schema=checked_schema,
      preprocessing_fn=PREPROCESSING_FN,
      custom_config={
          features.PROBLEM_CONFIG_KEY: problem.to_config(),
          'code_version': source_fingerprint(PREPROCESSING_MODULES),
      },
      # StatisticsGen already describes the data; skipping Transform's own
      # pre- and post-transform statistics saves a full pass over it.
      disable_statistics=True,
      # The analyzer cache only pays off for incremental runs over growing
      # span-based data; writing it costs Beam stages on every run.
      disable_analyzer_cache=True,
      # Tracing preprocessing_fn as a TF1 graph halves Transform's time here
      # (17 s instead of 30 s on the bundled data); the saved transform graph
      # loads the same way in the Trainer and at serving time.
      force_tf_compat_v1=True).with_id(ids.TRANSFORM)
  components.append(transform)

  trainer_config = {
      'batch_size': batch_size,
      'seed': seed,
      features.PROBLEM_CONFIG_KEY: problem.to_config(),
      'code_version': source_fingerprint(TRAINING_MODULES),
  }
  trainer_args = dict(
      run_fn=RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=checked_schema,
      train_args=trainer_pb2.TrainArgs(num_steps=train_steps),
      eval_args=trainer_pb2.EvalArgs(num_steps=eval_steps))
  if ai_platform_training_args:
    # Trains the Keras model (models/model.py) in a Vertex AI custom job.
    vertex = _vertex()
    trainer = vertex.Trainer(
        custom_config={
            **trainer_config,
            vertex.ENABLE_VERTEX_KEY: True,
            vertex.VERTEX_REGION_KEY: vertex_region,
            vertex.TRAINING_ARGS_KEY: ai_platform_training_args,
        },
        **trainer_args).with_id(ids.TRAINER)
  else:
    # Trains the Keras model (models/model.py).
    trainer = tfx_components.Trainer(
        custom_config=trainer_config, **trainer_args).with_id(ids.TRAINER)
  components.append(trainer)

  if baseline_from_serving_dir:
    # Copies the newest model in the serving folder, the baseline a new model
    # must not fall behind (empty before the first push).
    baseline = serving_baseline.LatestPushedModel(
        serving_model_dir=serving_model_dir).with_id(ids.PUSHED_MODEL_BASELINE)
    evaluator_class = serving_baseline.Evaluator
  else:
    # Finds the newest blessed model, the baseline a new model must not fall
    # behind.
    baseline = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=channel.Channel(type=standard_artifacts.Model),
        model_blessing=channel.Channel(
            type=standard_artifacts.ModelBlessing)).with_id(ids.MODEL_RESOLVER)
    evaluator_class = tfx_components.Evaluator
  components.append(baseline)

  # Scores the new model (and the baseline) on the eval split and blesses it
  # when it passes the thresholds of create_eval_config.
  evaluator = evaluator_class(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=baseline.outputs['model'],
      eval_config=create_eval_config(
          problem, eval_accuracy_threshold, eval_baseline_tolerance,
          eval_rmse_threshold, eval_slice_columns)).with_id(ids.EVALUATOR)
  components.append(evaluator)

  if ai_platform_serving_args:
    # Deploys a blessed model to a Vertex AI endpoint; does nothing otherwise.
    vertex = _vertex()
    pusher = vertex.Pusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        custom_config={
            vertex.ENABLE_VERTEX_KEY: True,
            vertex.VERTEX_REGION_KEY: vertex_region,
            vertex.VERTEX_CONTAINER_IMAGE_URI_KEY: vertex_serving_image,
            vertex.SERVING_ARGS_KEY: ai_platform_serving_args,
        }).with_id(ids.PUSHER)
  else:
    # Copies a blessed model to the serving directory, atomically on a local
    # disk (pipeline/components/atomic_push.py); does nothing otherwise.
    pusher = atomic_push.Pusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=serving_model_dir))).with_id(ids.PUSHER)
  components.append(pusher)

  return tfx_pipeline.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args,
  )
