"""The pipeline factory shared by every runner.

`create_pipeline` assembles the logical DAG; runners decide where it runs
(local files and SQLite, or Kubeflow/Vertex AI with Cloud Storage) and pass
the physical settings in.
"""
from typing import Any, Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma
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
from models import signatures as model_outputs
from pipeline.components import anomaly_gate
from pipeline.components import atomic_push
from pipeline.components import reviewed_schema
from pipeline.components import serving_baseline
from pipeline.components.columnar_csv_example_gen import ColumnarCsvExampleGen
from pipeline.code_version import source_fingerprint


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

# Stable component ids: metadata, caching and Kubeflow task names depend on
# them, so they do not change when a component's class or position does.
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
# Replaces MODEL_RESOLVER where ML Metadata queries cannot run (Kubeflow
# Pipelines on GKE); see pipeline/components/serving_baseline.py.
PUSHED_MODEL_BASELINE = 'LatestPushedModel'

COMPONENT_IDS = (EXAMPLE_GEN, STATISTICS_GEN, SCHEMA_GEN, EXAMPLE_VALIDATOR,
                 ANOMALY_GATE, TRANSFORM, TRAINER, MODEL_RESOLVER, EVALUATOR,
                 PUSHER)

# Metric names as the Evaluator reports them (and local/run_summary.py
# reads them). Each problem type is gated by one metric (GATE_METRIC).
ACCURACY_METRIC = 'binary_accuracy'  # binary
MULTICLASS_ACCURACY_METRIC = 'sparse_categorical_accuracy'  # multiclass
RMSE_METRIC = 'root_mean_squared_error'  # regression
MAE_METRIC = 'mean_absolute_error'  # regression
EXAMPLE_COUNT_METRIC = 'example_count'
GATE_METRIC = {
    features.BINARY: ACCURACY_METRIC,
    features.MULTICLASS: MULTICLASS_ACCURACY_METRIC,
    features.REGRESSION: RMSE_METRIC,
}
# Reported alongside the gate: (label in the run summary, metric name).
EXTRA_METRICS = {
    features.BINARY: (('AUC', 'auc'), ('precision', 'precision'),
                      ('recall', 'recall')),
    features.MULTICLASS: (),
    features.REGRESSION: (('MAE', MAE_METRIC),),
}


def create_eval_config(problem: features.Problem,
                       accuracy_threshold: float,
                       baseline_tolerance: float,
                       rmse_threshold: float = 0.0,
                       slice_columns: Sequence[str] = ()) -> tfma.EvalConfig:
  """What the Evaluator computes and when it blesses a model.

  Classification: blessed when accuracy >= `accuracy_threshold` and, if a
  previously blessed model exists, accuracy >= the baseline's accuracy -
  `baseline_tolerance`; binary problems also report AUC, precision and
  recall. Regression: blessed when the RMSE <= `rmse_threshold` and at most
  `baseline_tolerance` (a fraction) above the baseline's RMSE; MAE is
  reported alongside. The example count is always reported.

  The model's 'serving_default' signature gives the predictions. A numeric
  binary or regression label is read from the examples as it is (as models
  saved before the transform signature existed need, when they are the
  baseline); any other label is the transformed one (a class index), read
  through the model's transform signature, so both sides use the same
  classes.

  Args:
    problem: the problem description (models/features.py).
    accuracy_threshold: the lowest accepted accuracy, 0..1 (classification).
    baseline_tolerance: how far the candidate may fall behind the baseline.
    rmse_threshold: the highest accepted RMSE (regression), > 0.
    slice_columns: raw columns to report every metric per value of, besides
      the whole eval split (EVAL_SLICE_COLUMNS in pipeline/configs.py).

  Returns:
    The Evaluator's EvalConfig.

  Raises:
    ValueError: a regression without a positive `rmse_threshold`.
  """
  if problem.is_classification:
    gate_class = ('BinaryAccuracy' if problem.problem_type == features.BINARY
                  else 'SparseCategoricalAccuracy')
    gate_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(
            lower_bound={'value': accuracy_threshold}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={'value': -baseline_tolerance}))
  else:
    if rmse_threshold <= 0:
      raise ValueError('a regression needs a positive rmse_threshold')
    gate_class = 'RootMeanSquaredError'
    gate_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(
            upper_bound={'value': rmse_threshold}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.LOWER_IS_BETTER,
            relative={'value': baseline_tolerance}))
  # The gate applies to the whole eval split only: a plain `threshold` would
  # also apply to every slice, and small slices would fail it by chance.
  gate = tfma.MetricConfig(
      class_name=gate_class,
      per_slice_thresholds=[tfma.PerSliceMetricThreshold(
          slicing_specs=[tfma.SlicingSpec()], threshold=gate_threshold)])
  extras = {
      features.BINARY: ['AUC', 'Precision', 'Recall'],
      features.MULTICLASS: [],
      features.REGRESSION: ['MeanAbsoluteError'],
  }[problem.problem_type]
  return tfma.EvalConfig(
      model_specs=[
          tfma.ModelSpec(
              signature_name='serving_default',
              prediction_key=(model_outputs.PROBABILITIES
                              if problem.is_classification else
                              model_outputs.PREDICTIONS),
              label_key=(problem.label_key if problem.evaluates_raw_label
                         else problem.label_feature),
              preprocessing_function_names=(
                  [] if problem.evaluates_raw_label else
                  [model_outputs.TRANSFORM_SIGNATURE]))
      ],
      slicing_specs=[tfma.SlicingSpec()] + [
          tfma.SlicingSpec(feature_keys=[column]) for column in slice_columns],
      # Only the metrics below: the model's own compiled Keras metrics would
      # be reported under clashing names ('auc', 'accuracy').
      options=tfma.Options(include_default_metrics={'value': False}),
      metrics_specs=[
          tfma.MetricsSpec(metrics=[
              tfma.MetricConfig(class_name='ExampleCount'), gate
          ] + [tfma.MetricConfig(class_name=name) for name in extras])
      ])


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
          ]))).with_id(EXAMPLE_GEN)
  components.append(example_gen)

  # Computes per-split statistics that the schema and validation build on.
  statistics_gen = tfx_components.StatisticsGen(
      examples=example_gen.outputs['examples']).with_id(STATISTICS_GEN)
  components.append(statistics_gen)

  if reviewed_schema_text is not None:
    # The schema a person reviewed (schema/schema.pbtxt): new data is checked
    # against it, not against a schema inferred from the new data itself.
    schema_gen = reviewed_schema.ReviewedSchema(
        schema_text=reviewed_schema_text).with_id(SCHEMA_GEN)
  else:
    # Infers types, domains and presence of each column from the statistics
    # (until a schema has been reviewed; see `make schema`).
    schema_gen = tfx_components.SchemaGen(
        statistics=statistics_gen.outputs['statistics'],
        infer_feature_shape=True).with_id(SCHEMA_GEN)
  components.append(schema_gen)

  # Checks the statistics against the schema and records anomalies.
  example_validator = tfx_components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema']).with_id(EXAMPLE_VALIDATOR)
  components.append(example_validator)

  # Stops the run on anomalies that are not allowed, naming each column;
  # otherwise passes the schema on. Transform and the Trainer read the
  # gate's copy, so nothing after it starts on bad data.
  gate = anomaly_gate.AnomalyGate(
      anomalies=example_validator.outputs['anomalies'],
      schema=schema_gen.outputs['schema'],
      allowed_anomalies=allowed_anomalies,
      min_severity=anomaly_min_severity).with_id(ANOMALY_GATE)
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
      force_tf_compat_v1=True).with_id(TRANSFORM)
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
        **trainer_args).with_id(TRAINER)
  else:
    # Trains the Keras model (models/model.py).
    trainer = tfx_components.Trainer(
        custom_config=trainer_config, **trainer_args).with_id(TRAINER)
  components.append(trainer)

  if baseline_from_serving_dir:
    # Copies the newest model in the serving folder, the baseline a new model
    # must not fall behind (empty before the first push).
    baseline = serving_baseline.LatestPushedModel(
        serving_model_dir=serving_model_dir).with_id(PUSHED_MODEL_BASELINE)
    evaluator_class = serving_baseline.Evaluator
  else:
    # Finds the newest blessed model, the baseline a new model must not fall
    # behind.
    baseline = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=channel.Channel(type=standard_artifacts.Model),
        model_blessing=channel.Channel(
            type=standard_artifacts.ModelBlessing)).with_id(
                MODEL_RESOLVER)
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
          eval_rmse_threshold, eval_slice_columns)).with_id(EVALUATOR)
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
        }).with_id(PUSHER)
  else:
    # Copies a blessed model to the serving directory, atomically on a local
    # disk (pipeline/components/atomic_push.py); does nothing otherwise.
    pusher = atomic_push.Pusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=serving_model_dir))).with_id(PUSHER)
  components.append(pusher)

  return tfx_pipeline.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args,
  )
