"""The pipeline factory shared by every runner.

`build` turns the settings into the pipeline for every runner; the runners
pass only what differs by runtime (`Runtime`: local files and SQLite, or
Kubeflow/Vertex AI with Cloud Storage). `create_pipeline` assembles the
logical DAG from its arguments. The settings that belong together travel in small
frozen dataclasses: `Spans`, `Training`, `Evaluation`, `DataGates` and
`VertexAI`.
Component ids are in pipeline/component_ids.py and the Evaluator's metrics
and configuration in pipeline/eval_config.py: the local tools read names
there without importing this factory.
"""
import dataclasses
from typing import (Any, Dict, List, Mapping, NamedTuple, Optional, Sequence,
                    Tuple, Type)

# TFX's own modules rather than its public `tfx.v1`: importing `tfx.v1` also
# imports its Google Cloud extensions and the Vertex AI SDK, seconds that a
# local run does not need; they are imported only for a cloud target.
from tfx import components as tfx_components
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import base_node
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
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features
from pipeline import component_ids as ids
from pipeline import configs
from pipeline.data_files import csv_format
from pipeline.data_files import schema_file
from pipeline import code_fingerprint
from pipeline.data_files import spans as span_layout
from pipeline.components import accepted_spans
from pipeline.components import anomaly_gate
from pipeline.components import atomic_push
from pipeline.components import columnar_csv_example_gen
from pipeline.components import columnar_evaluator
from pipeline.components import columnar_statistics_gen
from pipeline.components import fitted_schema_gen
from pipeline.components import reviewed_schema
from pipeline.components import serving_baseline
from pipeline.components import shared_trace_transform
from pipeline.components import span_drift_validator
from pipeline.components import span_statistics_gen
from pipeline.components import training_window
from pipeline.components import vertex_push
from pipeline.components.columnar_csv_example_gen import ColumnarCsvExampleGen
from pipeline.eval_config import create_eval_config
from pipeline.eval_config import quality_gates
from pipeline.vertex_serving import target as vertex_target

# User code is referenced by dotted path, so the same pipeline compiles for
# Kubeflow without packaging files: the pipeline image contains models/.
PREPROCESSING_FN = 'models.preprocessing.preprocessing_fn'
RUN_FN = 'models.model.run_fn'


def _user_code_fingerprint(dotted_function: str) -> str:
  """The fingerprint of the project code a dotted function path runs: its
  module and every project module that imports, found from the sources
  (pipeline/code_fingerprint.py). Transform and the Trainer carry it, so TFX's
  cache reruns them when that code changes, and only then."""
  return code_fingerprint.import_closure_fingerprint(
      dotted_function.rpartition('.')[0])


@dataclasses.dataclass(frozen=True)
class Spans:
  """Span folders under the data path (pipeline/data_files/spans.py); without them,
  every run reads the whole folder.

  Attributes:
    enabled: the data folder holds span-<n>/ folders: ExampleGen ingests the
      newest, the drift check compares it with the previous accepted span,
      Transform and the Trainer read the training window, the Evaluator
      judges on the newest span's eval split.
    train_window: Transform and the Trainer read the newest this many spans
      that passed the anomaly gate (TRAIN_WINDOW_SPANS).
  """
  enabled: bool = False
  train_window: int = 1

  @classmethod
  def from_settings(cls, settings: Any, spans: Sequence[int]) -> 'Spans':
    """TRAIN_WINDOW_SPANS, with the spans the runner found under DATA_PATH
    (pipeline/data_files/spans.py list_spans)."""
    return cls(enabled=bool(spans), train_window=settings.TRAIN_WINDOW_SPANS)


@dataclasses.dataclass(frozen=True)
class Training:
  """How the Trainer trains.

  Attributes:
    steps: training steps.
    eval_steps: the Trainer's validations score the first eval_steps x
      batch_size rows of the eval split (the Evaluator reads the whole eval
      split regardless).
    batch_size: training batch size.
    seed: seeds weight initialisation and shuffling.
  """
  steps: int
  eval_steps: int
  batch_size: int
  seed: int

  @classmethod
  def from_settings(cls, settings: Any) -> 'Training':
    """TRAIN_NUM_STEPS, TRAINER_EVAL_NUM_STEPS, TRAIN_BATCH_SIZE, RANDOM_SEED."""
    return cls(steps=settings.TRAIN_NUM_STEPS,
               eval_steps=settings.TRAINER_EVAL_NUM_STEPS,
               batch_size=settings.TRAIN_BATCH_SIZE, seed=settings.RANDOM_SEED)


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """When the Evaluator blesses a model (pipeline/eval_config.py).

  Attributes:
    accuracy_threshold: the lowest accuracy that blesses a classification
      model (0: none; the trivial model's bar applies).
    baseline_tolerance: how far behind the last blessed model a new model may
      fall and still be blessed (accuracy points; for regression a fraction
      of the baseline's RMSE).
    rmse_threshold: the highest RMSE that blesses a regression model (0:
      none; the trivial model's bar applies).
    slice_columns: raw columns the Evaluator also slices metrics by.
    trivial_margins: problem type -> how far the model must beat the trivial
      model (EVAL_TRIVIAL_MARGIN_*).
    slice_tolerance: how far behind the last blessed model a new model may
      fall on a slice of `slice_columns`.
    slice_min_examples: the eval examples a slice needs to be held to that.
  """
  accuracy_threshold: float
  baseline_tolerance: float
  rmse_threshold: float = 0.0
  slice_columns: Sequence[str] = ()
  # The defaults are the settings' (configs.py).
  trivial_margins: Mapping[str, float] = dataclasses.field(
      default_factory=lambda: {
          features.BINARY: configs.EVAL_TRIVIAL_MARGIN_BINARY.default,
          features.MULTICLASS: configs.EVAL_TRIVIAL_MARGIN_MULTICLASS.default,
          features.REGRESSION: configs.EVAL_TRIVIAL_MARGIN_REGRESSION.default})
  slice_tolerance: float = configs.EVAL_SLICE_TOLERANCE.default
  slice_min_examples: int = configs.EVAL_SLICE_MIN_EXAMPLES.default

  @classmethod
  def from_settings(cls, settings: Any) -> 'Evaluation':
    """The EVAL_* settings of pipeline/configs.py."""
    return cls(accuracy_threshold=settings.EVAL_ACCURACY_THRESHOLD,
               baseline_tolerance=settings.EVAL_BASELINE_TOLERANCE,
               rmse_threshold=settings.EVAL_RMSE_THRESHOLD,
               slice_columns=settings.EVAL_SLICE_COLUMNS,
               trivial_margins={
                   features.BINARY: settings.EVAL_TRIVIAL_MARGIN_BINARY,
                   features.MULTICLASS: settings.EVAL_TRIVIAL_MARGIN_MULTICLASS,
                   features.REGRESSION:
                       settings.EVAL_TRIVIAL_MARGIN_REGRESSION},
               slice_tolerance=settings.EVAL_SLICE_TOLERANCE,
               slice_min_examples=settings.EVAL_SLICE_MIN_EXAMPLES)


@dataclasses.dataclass(frozen=True)
class DataGates:
  """What the data must match before anything trains on it.

  Attributes:
    reviewed_schema_text: the reviewed schema
      (pipeline/components/reviewed_schema.py); None infers a schema from
      the data.
    allowed_anomalies: anomalies that do not stop the run
      (pipeline/components/anomaly_rules.py parse_allow_list).
    min_severity: WARNING or ERROR; anomalies below it do not stop the run.
    drift_action: 'stop' or 'warn': what drift between spans beyond the
      schema's drift comparators does.
    max_missing_label_fraction: the largest share of rows with an empty
      label that ExampleGen leaves out; above it the run stops.
    min_domain_mass: without a reviewed schema, the least share of a text
      column's values that must be in the values the schema lists
      (pipeline/components/fitted_schema_gen.py).
  """
  reviewed_schema_text: Optional[str] = None
  allowed_anomalies: str = ''
  min_severity: str = 'ERROR'
  drift_action: str = 'stop'
  max_missing_label_fraction: float = 0.10
  min_domain_mass: float = 0.99

  @classmethod
  def from_settings(cls, settings: Any,
                    reviewed_schema_text: Optional[str]) -> 'DataGates':
    """ALLOWED_ANOMALIES, ANOMALY_MIN_SEVERITY, DRIFT_ACTION and
    MAX_MISSING_LABEL_FRACTION and SCHEMA_MIN_DOMAIN_MASS, with the reviewed
    schema the runner read from SCHEMA_PATH (None where there is none)."""
    return cls(reviewed_schema_text=reviewed_schema_text,
               allowed_anomalies=settings.ALLOWED_ANOMALIES,
               min_severity=settings.ANOMALY_MIN_SEVERITY,
               drift_action=settings.DRIFT_ACTION,
               max_missing_label_fraction=settings.MAX_MISSING_LABEL_FRACTION,
               min_domain_mass=settings.SCHEMA_MIN_DOMAIN_MASS)


@dataclasses.dataclass(frozen=True)
class VertexAI:
  """Training and serving on Vertex AI; without args or target, neither.

  Attributes:
    region: the Vertex AI region; required with `training_args`.
    training_args: a Vertex AI CustomJob (plus 'project') to train in; None
      trains inside the Trainer's own process or container.
    serving: where to serve blessed models on Vertex AI
      (pipeline/vertex_serving/target.py), after writing them to the
      serving folder; None writes the serving folder only.

  Raises:
    ValueError: on construction, when the region is missing.
  """
  region: Optional[str] = None
  training_args: Optional[Dict[str, Any]] = None
  serving: Optional[vertex_target.ServingTarget] = None

  def __post_init__(self):
    if self.training_args and not self.region:
      raise ValueError('VertexAI.region is required to train on Vertex AI.')


def _vertex():
  """TFX's Vertex AI Trainer (imported for cloud targets only)."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  return tfx.extensions.google_cloud_ai_platform


@dataclasses.dataclass(frozen=True)
class Runtime:
  """What differs between the runtimes, and nothing else: the local runner,
  the Kubeflow Pipelines 2.x spec and the Vertex AI spec are built by
  `build` from the same settings, and differ only in these fields (the
  runners add the runner object and, for the cloud, the image).

  Attributes:
    pipeline_root: where artifacts (and the record of accepted spans) are
      written: a local folder or gs://.
    data_path: where the CSV files or span folders are read.
    serving_model_dir: where blessed models are pushed.
    metadata_connection_config: the ML Metadata store; None lets the
      orchestrator provide it (Kubeflow, Vertex AI).
    beam_pipeline_args: the Beam-based components' arguments (Dataflow in
      the cloud, none locally).
    vertex_ai: train or serve on Vertex AI (the cloud targets' settings).
    baseline_from_serving_dir: the Evaluator's baseline is the newest pushed
      model (the LatestPushedModel step) instead of the newest blessed one in
      ML Metadata (the LatestBlessedModelResolver): for Kubeflow Pipelines
      on GKE, which runs no metadata query.
  """
  pipeline_root: str
  data_path: str
  serving_model_dir: str
  metadata_connection_config: Optional[
      metadata_store_pb2.ConnectionConfig] = None
  beam_pipeline_args: Sequence[str] = ()
  vertex_ai: VertexAI = VertexAI()
  baseline_from_serving_dir: bool = False


def build(settings: Any, runtime: Runtime, *, problem: features.Problem,
          reviewed_schema_text: Optional[str],
          spans: Sequence[int]) -> tfx_pipeline.Pipeline:
  """The pipeline for any runner: the one place settings become arguments.

  Args:
    settings: the loaded settings (pipeline/configs.py).
    runtime: what differs by runtime.
    problem: the problem the settings and the data describe
      (pipeline/problem_spec.py).
    reviewed_schema_text: the reviewed schema, or None to infer one.
    spans: the span numbers under DATA_PATH, oldest first ([] for a folder
      of CSV files; pipeline/data_files/spans.py list_spans).

  Returns:
    The pipeline.
  """
  return create_pipeline(
      pipeline_name=settings.PIPELINE_NAME,
      pipeline_root=runtime.pipeline_root,
      data_path=runtime.data_path,
      serving_model_dir=runtime.serving_model_dir,
      problem=problem,
      training=Training.from_settings(settings),
      evaluation=Evaluation.from_settings(settings),
      data_gates=DataGates.from_settings(settings, reviewed_schema_text),
      csv=csv_format.CsvFormat.from_settings(settings),
      vertex_ai=runtime.vertex_ai,
      spans=Spans.from_settings(settings, spans),
      baseline_from_serving_dir=runtime.baseline_from_serving_dir,
      metadata_connection_config=runtime.metadata_connection_config,
      beam_pipeline_args=list(runtime.beam_pipeline_args))


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_path: str,
    serving_model_dir: str,
    problem: features.Problem,
    training: Training,
    evaluation: Evaluation,
    data_gates: DataGates = DataGates(),
    csv: csv_format.CsvFormat = csv_format.CsvFormat(),
    vertex_ai: VertexAI = VertexAI(),
    spans: Spans = Spans(),
    baseline_from_serving_dir: bool = False,
    enable_cache: bool = True,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx_pipeline.Pipeline:
  """Assembles the TFX pipeline.

  Args:
    pipeline_name: the pipeline's name (Kubeflow rules, see configs.py).
    pipeline_root: where artifacts are written (a local folder or gs:// URI).
    data_path: a folder of CSV files with a header row, or of span folders
      of them (`spans`).
    serving_model_dir: where blessed models are pushed, one folder each.
    problem: what to predict and how to treat the columns
      (pipeline/problem_spec.py); handed to Transform and the Trainer.
    training: how the Trainer trains.
    evaluation: when the Evaluator blesses a model.
    data_gates: the reviewed schema and the anomalies that stop a run.
    csv: how the CSV files are written (CSV_DELIMITER, CSV_DECIMAL,
      CSV_ENCODING).
    vertex_ai: train or serve on Vertex AI (default: neither).
    spans: span folders and the training window (default: a plain folder).
    baseline_from_serving_dir: take the Evaluator's baseline from the newest
      model under `serving_model_dir` (a container step) instead of the
      latest blessed model in ML Metadata (a Resolver), for orchestrators that
      cannot run Resolvers.
    enable_cache: reuse outputs of components whose inputs did not change.
    metadata_connection_config: ML Metadata store; None lets the
      orchestrator provide it (Kubeflow, Vertex AI).
    beam_pipeline_args: arguments for the Beam-based components.

  Returns:
    The pipeline, ready for any TFX runner.

  Raises:
    ValueError: serving on Vertex AI from a `serving_model_dir` that is not
      on Cloud Storage.
  """
  record = accepted_spans.record_dir(pipeline_root)
  data = _data_steps(data_path, data_gates, csv, spans, record, problem,
                     serving_model_dir)
  train = _training_steps(data, problem, training, vertex_ai, spans, record)
  evaluate = _evaluation_steps(data, train.trainer, problem, evaluation,
                               serving_model_dir, baseline_from_serving_dir)
  pusher = _pusher(train.trainer, evaluate.evaluator, serving_model_dir,
                   vertex_ai)
  return tfx_pipeline.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[*data, *(step for step in train if step is not None),
                  *evaluate, pusher],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args,
  )


# --- Data: read, describe, check ----------------------------------------------


class _DataSteps(NamedTuple):
  """The data's components, in pipeline order."""
  example_gen: base_component.BaseComponent
  statistics_gen: base_component.BaseComponent
  schema_gen: base_component.BaseComponent
  example_validator: base_component.BaseComponent
  anomaly_gate: base_component.BaseComponent

  @property
  def examples(self) -> channel.BaseChannel:
    """The train and eval examples ExampleGen wrote."""
    return self.example_gen.outputs['examples']

  @property
  def checked_schema(self) -> channel.BaseChannel:
    """The schema, passed on only when the data has no blocking anomaly."""
    return self.anomaly_gate.outputs['checked_schema']

  @property
  def transform_schema(self) -> channel.BaseChannel:
    """The checked schema without the columns it checks for presence
    only, which Transform cannot parse and the model never reads."""
    return self.anomaly_gate.outputs['transform_schema']


def _data_steps(data_path: str, gates: DataGates,
                csv: csv_format.CsvFormat, spans: Spans,
                record: str, problem: features.Problem,
                serving_model_dir: str) -> _DataSteps:
  """Reads the CSV files and stops the run on data that breaks the schema
  (the reviewed one, or without one the schema of the data the model served
  from `serving_model_dir` was trained on); with span folders, records a
  span that passed in `record` (pipeline/components/accepted_spans.py)."""
  example_gen = _example_gen(
      data_path, csv, _integer_columns(gates.reviewed_schema_text), spans,
      columnar_csv_example_gen.LabelRows(problem.label_key,
                                         gates.max_missing_label_fraction))
  # Computes per-split statistics that the schema and validation build on
  # (TFDV's, without a Beam pipeline where Beam would run in the process;
  # with span folders, recording the span for the drift check).
  statistics_gen_class = (span_statistics_gen.SpanStatisticsGen
                          if spans.enabled
                          else columnar_statistics_gen.StatisticsGen)
  statistics_gen = statistics_gen_class(
      examples=example_gen.outputs['examples']).with_id(ids.STATISTICS_GEN)
  schema_gen = _schema(statistics_gen, gates, problem, serving_model_dir)
  example_validator = _example_validator(
      statistics_gen.outputs['statistics'], _reference_schema(schema_gen),
      spans, record)
  # Stops the run on anomalies that are not allowed, naming each column;
  # otherwise passes the schema on. Transform and the Trainer read the
  # gate's copy, so nothing after it starts on bad data.
  span_record = {}
  if spans.enabled:
    # A span that passes is recorded with its examples and statistics: the
    # spans later runs train on and compare with (accepted_spans.py).
    span_record = dict(examples=example_gen.outputs['examples'],
                       statistics=statistics_gen.outputs['statistics'],
                       accepted_spans_dir=record)
  gate = anomaly_gate.AnomalyGate(
      anomalies=example_validator.outputs['anomalies'],
      schema=schema_gen.outputs['schema'],
      allowed_anomalies=gates.allowed_anomalies,
      min_severity=gates.min_severity,
      drift_action=gates.drift_action,
      **span_record).with_id(ids.ANOMALY_GATE)
  return _DataSteps(example_gen, statistics_gen, schema_gen,
                    example_validator, gate)


def _reference_schema(schema_gen: base_component.BaseComponent
                      ) -> channel.BaseChannel:
  """What the data is checked against: the reviewed schema, or without one
  the schema of the served model's data (fitted_schema_gen.py)."""
  outputs = schema_gen.outputs
  return outputs.get('reference_schema', outputs['schema'])


def _integer_columns(reviewed_schema_text: Optional[str]) -> List[str]:
  """The columns the reviewed schema types as integers (none without one)."""
  if reviewed_schema_text is None:
    return []
  return [f.name for f in schema_file.parse(reviewed_schema_text).feature
          if f.type == schema_pb2.INT]


def _example_validator(statistics: channel.BaseChannel,
                       schema: channel.BaseChannel, spans: Spans,
                       record: str) -> base_component.BaseComponent:
  """Checks the statistics against the schema and records anomalies (the
  columns it checks for presence only, too); with span folders, also the
  drift from the previous span that passed the gate (the schema's drift
  comparators), found in `record`."""
  if not spans.enabled:
    return span_drift_validator.SpanDriftValidator(
        statistics=statistics, schema=schema).with_id(ids.EXAMPLE_VALIDATOR)
  return span_drift_validator.SpanDriftValidator(
      statistics=statistics, schema=schema,
      accepted_spans_dir=record).with_id(ids.EXAMPLE_VALIDATOR)


def _example_gen(data_path: str, csv: csv_format.CsvFormat,
                 integer_columns: Sequence[str], spans: Spans,
                 labels: columnar_csv_example_gen.LabelRows
                 ) -> base_component.BaseComponent:
  """Reads the data files under `data_path` into train and eval examples.

  Data files are `*.csv` and compressed ones (`*.csv.gz`, ...); other
  files, such as a README, are ignored. Rows with an empty label are left
  out (up to a share, `labels`). With span folders, only the
  newest span's files: ExampleGen's driver resolves `{SPAN}` in the pattern
  to the highest span number present. The rows are split 2:1 into train and
  eval by a hash of each row, so the split is stable. CsvExampleGen with a
  columnar reader: the same examples, many times faster
  (pipeline/components/columnar_csv_example_gen.py).

  Args:
    data_path: a folder of CSV files with a header row, or of span folders.
    csv: how the files are written.
    integer_columns: columns whose whole numbers written as floats (`3.0`)
      are read as integers: those the reviewed schema types so.
    spans: whether `data_path` holds span folders.
    labels: the label, and the share of rows without one that may be left
      out before the run stops.

  Returns:
    The ExampleGen component.
  """
  pattern = (span_layout.SPAN_SPLIT_PATTERN if spans.enabled else
             span_layout.PLAIN_SPLIT_PATTERN)
  return ColumnarCsvExampleGen(
      input_base=data_path,
      custom_config=columnar_csv_example_gen.custom_config(
          csv, integer_columns, labels),
      input_config=example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='all', pattern=pattern)
      ]),
      output_config=example_gen_pb2.Output(
          split_config=example_gen_pb2.SplitConfig(splits=[
              example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=2),
              example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1),
          ]))).with_id(ids.EXAMPLE_GEN)


def _schema(statistics_gen: base_component.BaseComponent, gates: DataGates,
            problem: features.Problem, serving_model_dir: str
            ) -> base_component.BaseComponent:
  """The reviewed schema if there is one, else one inferred from the data
  and the served model's as the reference."""
  if gates.reviewed_schema_text is not None:
    # The schema a person reviewed (schema/<name>/): new data is checked
    # against it, not against a schema inferred from the new data itself.
    return reviewed_schema.ReviewedSchema(
        schema_text=gates.reviewed_schema_text).with_id(ids.SCHEMA_GEN)
  # Infers types, domains and presence of each column from the statistics,
  # fitted to what a next batch brings, and takes the schema the served
  # model's data had as the reference (until a schema has been reviewed;
  # see `make schema`).
  return fitted_schema_gen.FittedSchemaGen(
      statistics=statistics_gen.outputs['statistics'],
      serving_model_dir=serving_model_dir,
      min_domain_mass=gates.min_domain_mass,
      presence_only='\n'.join(problem.drop_columns),
      label=problem.label_key).with_id(ids.SCHEMA_GEN)


# --- Training: transform, train -----------------------------------------------


class _TrainingSteps(NamedTuple):
  """The training window (span folders only), Transform and the Trainer, in
  pipeline order."""
  window: Optional[base_component.BaseComponent]
  transform: base_component.BaseComponent
  trainer: base_component.BaseComponent


def _training_steps(data: _DataSteps, problem: features.Problem,
                    training: Training, vertex_ai: VertexAI,
                    spans: Spans, record: str) -> _TrainingSteps:
  """Analyses the checked examples and trains the model on them: this run's,
  or with span folders the training window."""
  window, examples = None, data.examples
  if spans.enabled:
    # Once the gate passed this run's span: the newest accepted spans, this
    # one included, as one Examples artifact (training_window.py).
    window = training_window.TrainingWindow(
        examples=data.examples, checked_schema=data.checked_schema,
        accepted_spans_dir=record,
        num_spans=spans.train_window).with_id(ids.TRAINING_WINDOW)
    examples = window.outputs['window']
  transform = _transform(data, examples, problem)
  return _TrainingSteps(
      window, transform, _trainer(examples, transform, data.checked_schema,
                                  problem, training, vertex_ai))


def _transform(data: _DataSteps, examples: channel.BaseChannel,
               problem: features.Problem) -> base_component.BaseComponent:
  """Analyses `examples` for the graph that turns raw columns into model
  inputs (models/preprocessing.py); the Trainer applies it to its batches
  and saves it with the model, so serving sees the same transformation.

  With span folders it reads the training window: the newest
  `spans.train_window` spans that passed the anomaly gate, this run's
  included (it runs after the gate), and analyses them.
  """
  return shared_trace_transform.Transform(
      examples=examples,
      schema=data.transform_schema,
      preprocessing_fn=PREPROCESSING_FN,
      custom_config={
          features.PROBLEM_CONFIG_KEY: problem.to_config(),
          'code_version': _user_code_fingerprint(PREPROCESSING_FN),
      },
      # StatisticsGen already describes the data; skipping Transform's own
      # pre- and post-transform statistics saves a full pass over it.
      disable_statistics=True,
      # The analyzer cache only pays off for incremental runs over growing
      # span-based data; writing it costs Beam stages on every run.
      disable_analyzer_cache=True,
      # Tracing preprocessing_fn as a TF1 graph about halves Transform's time
      # (docs/performance.md); the saved transform graph loads the same way
      # in the Trainer and at serving time.
      force_tf_compat_v1=True,
      # No transformed copy of the data: the Trainer applies the saved
      # transform graph to the batches it reads (models/model.py
      # make_dataset), which skips a second read, transform, encode and
      # compressed write of every row (about half of Transform's time at a
      # million rows; on Dataflow a whole pass and a copy of the data on
      # Cloud Storage).
      materialize=False).with_id(ids.TRANSFORM)


def _trainer(examples: channel.BaseChannel,
             transform: base_component.BaseComponent,
             schema: channel.BaseChannel, problem: features.Problem,
             training: Training,
             vertex_ai: VertexAI) -> base_component.BaseComponent:
  """Trains the Keras model (models/model.py), in a Vertex AI custom job
  when `vertex_ai` has training args."""
  custom_config = {
      'batch_size': training.batch_size,
      'seed': training.seed,
      features.PROBLEM_CONFIG_KEY: problem.to_config(),
      'code_version': _user_code_fingerprint(RUN_FN),
  }
  trainer_args = dict(
      run_fn=RUN_FN,
      examples=examples,
      transform_graph=transform.outputs['transform_graph'],
      schema=schema,
      train_args=trainer_pb2.TrainArgs(num_steps=training.steps),
      eval_args=trainer_pb2.EvalArgs(num_steps=training.eval_steps))
  if not vertex_ai.training_args:
    return tfx_components.Trainer(
        custom_config=custom_config, **trainer_args).with_id(ids.TRAINER)
  vertex = _vertex()
  return vertex.Trainer(
      custom_config={
          **custom_config,
          vertex.ENABLE_VERTEX_KEY: True,
          vertex.VERTEX_REGION_KEY: vertex_ai.region,
          vertex.TRAINING_ARGS_KEY: vertex_ai.training_args,
      },
      **trainer_args).with_id(ids.TRAINER)


# --- Evaluation: baseline, evaluate -------------------------------------------


class _EvaluationSteps(NamedTuple):
  """The baseline step and the Evaluator, in pipeline order."""
  baseline: base_node.BaseNode
  evaluator: base_component.BaseComponent


def _evaluation_steps(data: _DataSteps,
                      trainer: base_component.BaseComponent,
                      problem: features.Problem, evaluation: Evaluation,
                      serving_model_dir: str,
                      baseline_from_serving_dir: bool) -> _EvaluationSteps:
  """Scores the new model (and the baseline) on the eval split and blesses
  it when it passes the thresholds of create_eval_config."""
  baseline, evaluator_class = _baseline(serving_model_dir,
                                        baseline_from_serving_dir)
  evaluator = evaluator_class(
      examples=data.examples,
      model=trainer.outputs['model'],
      baseline_model=baseline.outputs['model'],
      eval_config=create_eval_config(
          problem, evaluation.accuracy_threshold,
          evaluation.baseline_tolerance, evaluation.rmse_threshold,
          evaluation.slice_columns),
      gates=quality_gates(
          problem, evaluation.accuracy_threshold, evaluation.rmse_threshold,
          evaluation.trivial_margins, evaluation.slice_tolerance,
          evaluation.slice_min_examples)).with_id(ids.EVALUATOR)
  return _EvaluationSteps(baseline, evaluator)


def _baseline(serving_model_dir: str, from_serving_dir: bool
              ) -> Tuple[base_node.BaseNode,
                         Type[base_component.BaseComponent]]:
  """The model a new model must not fall behind, and the Evaluator class
  that accepts it."""
  if from_serving_dir:
    # Copies the newest model in the serving folder (empty before the first
    # push); this Evaluator drops an empty baseline.
    latest_pushed = serving_baseline.LatestPushedModel(
        serving_model_dir=serving_model_dir)
    return (latest_pushed.with_id(ids.PUSHED_MODEL_BASELINE),
            serving_baseline.Evaluator)
  # Finds the newest blessed model in ML Metadata.
  resolver = Resolver(
      strategy_class=LatestBlessedModelStrategy,
      model=channel.Channel(type=standard_artifacts.Model),
      model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing))
  # TFX's Evaluator, scoring the eval split in batches where TFMA's Beam
  # pipeline is not needed (pipeline/components/columnar_evaluator.py).
  return resolver.with_id(ids.MODEL_RESOLVER), columnar_evaluator.Evaluator


# --- Push ---------------------------------------------------------------------


def _pusher(trainer: base_component.BaseComponent,
            evaluator: base_component.BaseComponent, serving_model_dir: str,
            vertex_ai: VertexAI) -> base_component.BaseComponent:
  """Pushes a blessed model; does nothing otherwise.

  It copies the model to `serving_model_dir`, atomically on a local disk
  (pipeline/components/atomic_push.py); with a Vertex AI serving target it
  then serves it there as a new version of one model on one endpoint
  (pipeline/components/vertex_push.py).

  Args:
    trainer: gives the model.
    evaluator: gives the blessing, and the metrics a Vertex AI version is
      labelled with.
    serving_model_dir: where blessed models are copied, one folder each.
    vertex_ai: the Vertex AI settings.

  Returns:
    The Pusher component.
  """
  model = trainer.outputs['model']
  blessing = evaluator.outputs['blessing']
  if vertex_ai.serving is not None:
    return vertex_push.Pusher(
        model=model, model_blessing=blessing,
        model_evaluation=evaluator.outputs['evaluation'],
        serving_model_dir=serving_model_dir,
        target=vertex_ai.serving).with_id(ids.PUSHER)
  return atomic_push.Pusher(
      model=model,
      model_blessing=blessing,
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(
              base_directory=serving_model_dir))).with_id(ids.PUSHER)
