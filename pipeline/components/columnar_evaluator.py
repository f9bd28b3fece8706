"""TFX's Evaluator with a columnar executor: the same evaluation, without
TFMA's per-example Python on Beam's local runner.

TFMA's Beam pipeline unbatches the eval split into single examples and runs
slicing and every metric combiner on each in Python; on Beam's local runner
that is about 0.8 ms an example (270 s for the 333,000 eval rows of a
million-row data set). This executor reads the eval split in large batches,
scores each batch with one call of the model's serving signature (and of its
transform signature where the label is the transformed one), keeps the
labels, predictions and slice columns as numpy columns, and computes the
metrics with TFMA's own metric code over those columns
(pipeline/components/columnar_metrics.py).

The contract is TFX's Evaluator's: the same component (inputs, outputs,
properties, id, caching), the same output files (eval_config.json, metrics,
plots, attributions and validations records, which tfma.load_eval_result, the
run report and the notebooks read), the same blessing on the same data, and
the metrics TFMA computes (equal to 1e-6; sums may run in another order).

It steps aside, and TFX's executor runs TFMA as always, where it does not
cover the work: a Beam runner other than the local DirectRunner (Dataflow
keeps its scale-out), an EvalConfig with metrics, slices or options it does
not compute (only binary classification's example count, confusion-matrix
metrics and AUC are covered: multiclass and regression metrics go to TFMA),
custom extractors or model loaders, or models whose signatures it does not
recognise. The log says which. Thresholds of every kind (value, change, per
slice) it validates with TFMA's own validator, so they never make it step
aside.

Either way the component first settles the gates that depend on the data
(the trivial model's bar, the slices held to the baseline;
pipeline/components/quality_gates.py): its `quality_gates` parameter, which
TFX's Evaluator does not have, says which.
"""
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence

from absl import logging
import numpy as np
import pyarrow as pa
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.writers import eval_config_writer
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as tfma_writer
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.utils import model_util
from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils
from tfx.utils import json_utils
from tfx.utils import path_utils
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder

from pipeline import eval_config as eval_config_lib
from pipeline.components import columnar_metrics
from pipeline.components import quality_gates
from pipeline.components.columnar_metrics import Unsupported
from pipeline.kfp_runtime import in_process_runner

# Serialized examples per call of a model's signature: large enough that the
# per-call overhead vanishes, small enough that memory stays flat.
BATCH_SIZE = 8192


def beam_runner(beam_pipeline_args: Sequence[Any]) -> str:
  """The --runner of `beam_pipeline_args`, lower case ('' when unset)."""
  args = [str(arg) for arg in beam_pipeline_args]
  for i, arg in enumerate(args):
    if arg.startswith('--runner='):
      return arg.split('=', 1)[1].lower()
    if arg == '--runner' and i + 1 < len(args):
      return args[i + 1].lower()
  return ''


# --- Reading and scoring the eval split -----------------------------------------


def _record_batches(examples: List[types.Artifact],
                    splits: Sequence[str]) -> Iterator[np.ndarray]:
  """The serialized tf.Examples of `splits`, BATCH_SIZE at a time."""
  files = []
  for split in splits:
    for uri in artifact_utils.get_split_uris(examples, split):
      files += sorted(fileio.glob(io_utils.all_files_pattern(uri)))
  if not files:
    raise Unsupported('no example files (TFMA reports the error)')
  compression = 'GZIP' if all(f.endswith('.gz') for f in files) else ''
  dataset = tf.data.TFRecordDataset(files, compression_type=compression)
  for batch in dataset.batch(BATCH_SIZE).as_numpy_iterator():
    yield batch


def _single_values(batch: pa.RecordBatch, column: str,
                   required: bool) -> List[Any]:
  """One Python value per example of a list column (None: empty)."""
  index = batch.schema.get_field_index(column)
  if index < 0:
    if required:
      raise Unsupported(f'no feature {column!r} in the examples')
    return [None] * batch.num_rows
  values = batch.column(index)
  lengths = values.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
  if lengths.max(initial=0) > 1 or (required and lengths.min(initial=1) < 1):
    raise Unsupported(f'feature {column!r} has not one value per example')
  flat = iter(values.flatten().to_pylist())
  return [next(flat) if n else None for n in lengths]


class _Model:
  """A saved model's prediction and (optionally) label signatures."""

  def __init__(self, spec: tfma.ModelSpec, path: str, loaded=None):
    self.spec = spec
    self.path = path
    if loaded is None:
      loaded = tf.saved_model.load(path)
    self.loaded = loaded  # keeps the signatures' variables alive
    # No name in the spec: the signature TFMA itself would call ('predict'
    # when the model has one, else 'serving_default').
    self._predict = self._signature(
        loaded, spec.signature_name or
        model_util.get_default_signature_name_from_model(loaded))
    self._transform = None
    if len(spec.preprocessing_function_names) > 1:
      raise Unsupported('more than one preprocessing function')
    if spec.preprocessing_function_names:
      self._transform = self._signature(
          loaded, spec.preprocessing_function_names[0])

  @staticmethod
  def _signature(loaded, name: str):
    if name not in loaded.signatures:
      raise Unsupported(f'no signature {name!r} in the model')
    signature = loaded.signatures[name]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1 or next(iter(inputs.values())).dtype != tf.string:
      raise Unsupported(f'signature {name!r} does not take serialized '
                        'examples')
    return signature, next(iter(inputs))

  @staticmethod
  def _call(signature_and_input, serialized: np.ndarray) -> Dict[str, Any]:
    signature, input_name = signature_and_input
    return signature(**{input_name: tf.constant(serialized)})

  @staticmethod
  def _one_per_example(tensor, name: str, rows: int) -> np.ndarray:
    values = np.asarray(tensor)
    if values.size != rows:
      raise Unsupported(f'{name!r} has not one value per example')
    return values.reshape(rows).astype(np.float64)

  def predictions(self, serialized: np.ndarray) -> np.ndarray:
    """The model spec's prediction for each serialized example."""
    outputs = self._call(self._predict, serialized)
    key = self.spec.prediction_key
    if key not in outputs:
      raise Unsupported(f'no output {key!r} in the model')
    return self._one_per_example(outputs[key], key, len(serialized))

  def transformed_labels(self, serialized: np.ndarray) -> Optional[np.ndarray]:
    """The label as the preprocessing function returns it, or None when
    the model spec reads the label from the raw examples."""
    if self._transform is None:
      return None
    outputs = self._call(self._transform, serialized)
    key = self.spec.label_key
    if key not in outputs:
      raise Unsupported(f'no output {key!r} in the transform signature')
    return self._one_per_example(outputs[key], key, len(serialized))


def _check_model_specs(eval_config: tfma.EvalConfig) -> None:
  """Raises Unsupported unless each model spec has one label and one
  prediction key and nothing else this module would ignore. The model is
  called through its signatures, as TFMA calls a TF_GENERIC model."""
  for spec in eval_config.model_specs:
    if (not spec.prediction_key or not spec.label_key or spec.label_keys or
        spec.prediction_keys or spec.model_type not in ('', tfma.TF_GENERIC) or
        spec.inference_batch_size or spec.HasField('padding_options')):
      raise Unsupported('model specs without one label and prediction key')


def score(models: Sequence[_Model], batches: Iterator[np.ndarray],
          slice_columns: Sequence[str]) -> columnar_metrics.Columns:
  """Labels, predictions and slice values of every example in `batches`.

  A model that is both candidate and baseline (a rerun with nothing
  changed) is scored once. Of the examples' own columns, only the slice
  columns and a raw label are decoded (every column until a batch holds
  them all), so the cost does not grow with a wide table's other columns.
  """
  # The columns read from the examples themselves; only those are decoded.
  own_columns = sorted({*slice_columns, *(
      m.spec.label_key for m in models
      if not m.spec.preprocessing_function_names)})
  decoder = None
  labels = {m.spec.name: [] for m in models}
  predictions = {m.spec.name: [] for m in models}
  slices = {c: [] for c in slice_columns}
  distinct: Dict[Any, Any] = {}
  for serialized in batches:
    if decoder is None and own_columns:
      decoder = quality_gates.column_decoder(serialized, own_columns)
    features = (decoder or example_coder.ExamplesToRecordBatchDecoder()
               ).DecodeBatch(list(serialized)) if own_columns else None
    scored, read = {}, {}  # a model's outputs, by what determines them
    for model in models:
      spec = model.spec
      key = (model.path, spec.signature_name, spec.prediction_key)
      if key not in scored:
        scored[key] = model.predictions(serialized)
      predictions[spec.name].append(scored[key])
      key = (model.path, tuple(spec.preprocessing_function_names),
             spec.label_key)
      if key not in read:
        read[key] = model.transformed_labels(serialized)
        if read[key] is None:
          read[key] = np.asarray(_single_values(
              features, spec.label_key, required=True), np.float64)
      labels[spec.name].append(read[key])
    for column in slice_columns:
      # One object per distinct value: memory grows by a pointer a row.
      slices[column] += [distinct.setdefault(v, v) for v in (
          v.decode() if isinstance(v, bytes) else v
          for v in _single_values(features, column, False))]
  join = lambda parts: (np.concatenate(parts) if parts  # pylint: disable=g-long-lambda
                        else np.zeros(0, np.float64))
  return columnar_metrics.Columns(
      labels={k: join(v) for k, v in labels.items()},
      predictions={k: join(v) for k, v in predictions.items()},
      slice_values=slices)


# --- Writing what TFMA writes ---------------------------------------------------


def _write_records(path: str, messages) -> None:
  with tf.io.TFRecordWriter(path) as writer:
    for message in messages:
      writer.write(message.SerializeToString())


def write_evaluation(output_uri: str, eval_config: tfma.EvalConfig,
                     results, model_locations: Dict[str, str]) -> None:
  """Writes the files TFMA's ExtractEvaluateAndWriteResults writes.

  Args:
    output_uri: the evaluation artifact's folder.
    eval_config: the EvalConfig after TFMA's defaults.
    results: (slice key, metrics dict) per slice (columnar_metrics).
    model_locations: model name -> the SavedModel's path.
  """
  fileio.makedirs(output_uri)
  with fileio.open(os.path.join(output_uri, 'eval_config.json'), 'w') as f:
    f.write(eval_config_writer._serialize_eval_run(  # pylint: disable=protected-access
        eval_config, '<user provided PCollection>', '<unknown>',
        model_locations) + '\n')
  split = [(key, columnar_metrics.split_by_kind(metrics))
           for key, metrics in results]
  shard = '-00000-of-00001.tfrecord'
  _write_records(os.path.join(output_uri, 'metrics' + shard), (
      tfma_writer.convert_slice_metrics_to_proto((key, kinds[0]), [])
      for key, kinds in split))
  _write_records(os.path.join(output_uri, 'plots' + shard), (
      tfma_writer.convert_slice_plots_to_proto((key, kinds[1]), [])
      for key, kinds in split))
  _write_records(os.path.join(output_uri, 'attributions' + shard), (
      tfma_writer.convert_slice_attributions_to_proto((key, kinds[2]))
      for key, kinds in split))
  combine = tfma_writer.CombineValidations(eval_config, rubber_stamp=False)
  validation = combine.create_accumulator()
  for key, kinds in split:
    validation = combine.add_input(validation, metrics_validator.validate_metrics(
        (key, kinds[0]), eval_config))
  _write_records(os.path.join(output_uri, 'validations.tfrecord'),
                 [combine.extract_output(validation)])


# --- The executor ---------------------------------------------------------------


class Executor(evaluator_executor.Executor):
  """TFX's Evaluator executor, columnar where it covers the evaluation."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    plan = None
    if exec_properties.get(quality_gates.PARAMETER):
      plan = quality_gates.plan(
          eval_config_lib.QualityGates.from_json(
              exec_properties[quality_gates.PARAMETER]),
          proto_utils.json_to_proto(exec_properties[specs.EVAL_CONFIG_KEY],
                                    tfma.EvalConfig()),
          input_dict[specs.EXAMPLES_KEY], _example_splits(exec_properties),
          has_baseline=bool(input_dict.get(specs.BASELINE_MODEL_KEY)))
      exec_properties = {**exec_properties, specs.EVAL_CONFIG_KEY:
                         proto_utils.proto_to_json(plan.eval_config)}
    self._evaluate(input_dict, output_dict, exec_properties)
    if plan is not None:
      plan.write(artifact_utils.get_single_uri(
          output_dict[specs.EVALUATION_KEY]))

  def _evaluate(self, input_dict: Dict[str, List[types.Artifact]],
                output_dict: Dict[str, List[types.Artifact]],
                exec_properties: Dict[str, Any]) -> None:
    """The evaluation and the blessing, columnar or by TFMA."""
    try:
      eval_config, models = self._plan(input_dict, exec_properties)
      splits = _example_splits(exec_properties)
      slice_columns = sorted({c for s in eval_config.slicing_specs
                              for c in s.feature_keys})
      columns = score(models, _record_batches(
          input_dict[specs.EXAMPLES_KEY], splits), slice_columns)
    except Unsupported as reason:  # nothing is written yet
      logging.info('Evaluating with TFMA\'s Beam pipeline: %s.', reason)
      super().Do(input_dict, output_dict, exec_properties)
      return
    logging.info('Scored %d examples; computing metrics.',
                 len(next(iter(columns.predictions.values()))))
    output_uri = artifact_utils.get_single_uri(
        output_dict[specs.EVALUATION_KEY])
    write_evaluation(output_uri, eval_config, columnar_metrics.sliced_metrics(
        eval_config, columnar_metrics.computations(eval_config), columns),
                     {m.spec.name: m.path for m in models})
    logging.info('Evaluation complete. Results written to %s.', output_uri)
    if tfma.metrics.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config=eval_config):
      write_blessing(input_dict, output_dict, exec_properties, output_uri)

  def _plan(self, input_dict, exec_properties):
    """The EvalConfig (with TFMA's defaults) and the loaded models.

    Raises:
      Unsupported: TFMA's Beam pipeline must evaluate (the reason).
    """
    if not in_process_runner.runs_in_process(self._beam_pipeline_args):
      raise Unsupported(
          f'the Beam runner is {beam_runner(self._beam_pipeline_args)}')
    if (exec_properties.get(specs.MODULE_FILE_KEY) or
        exec_properties.get(specs.MODULE_PATH_KEY)):
      raise Unsupported('a module file with custom extractors or loaders')
    if not exec_properties.get(specs.EVAL_CONFIG_KEY):
      raise Unsupported('no eval_config')
    if specs.SCHEMA_KEY in input_dict:
      raise Unsupported('a schema input')
    eval_config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[specs.EVAL_CONFIG_KEY],
                              eval_config)
    # As TFX's executor does: change thresholds are ignored without a
    # baseline (the first model is rubber-stamped).
    eval_config = tfma.utils.update_eval_config_with_defaults(
        eval_config, has_baseline=bool(input_dict.get(
            specs.BASELINE_MODEL_KEY)), rubber_stamp=True)
    tfma.utils.verify_eval_config(eval_config)
    _check_model_specs(eval_config)
    columnar_metrics.computations(eval_config)
    models = []
    for spec in eval_config.model_specs:
      artifact = artifact_utils.get_single_instance(input_dict[
          specs.BASELINE_MODEL_KEY if spec.is_baseline else specs.MODEL_KEY])
      path = path_utils.serving_model_path(
          artifact.uri, path_utils.is_old_model_artifact(artifact))
      logging.info('Using %s as %s model.', path, spec.name)
      same = next((m for m in models if m.path == path), None)
      models.append(_Model(spec, path, same and same.loaded))
    return eval_config, models


def _example_splits(exec_properties: Dict[str, Any]) -> List[str]:
  """The splits the Evaluator evaluates on (TFX's default: 'eval')."""
  return json_utils.loads(
      exec_properties.get(specs.EXAMPLE_SPLITS_KEY, 'null')) or ['eval']


def write_blessing(input_dict: Dict[str, List[types.Artifact]],
                   output_dict: Dict[str, List[types.Artifact]],
                   exec_properties: Dict[str, Any], output_uri: str) -> None:
  """Writes the ModelBlessing as TFX's Evaluator executor does: BLESSED or
  NOT_BLESSED from the validation result, and the same properties."""
  blessing = artifact_utils.get_single_instance(
      output_dict[specs.BLESSING_KEY])
  model = input_dict[specs.MODEL_KEY][0]
  blessing.set_string_custom_property(
      constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
  blessing.set_int_custom_property(
      constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
  if input_dict.get(specs.BASELINE_MODEL_KEY):
    baseline = input_dict[specs.BASELINE_MODEL_KEY][0]
    blessing.set_string_custom_property(
        constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri)
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id)
  if 'current_component_id' in exec_properties:
    blessing.set_string_custom_property(
        'component_id', exec_properties['current_component_id'])
  ok = tfma.load_validation_result(output_uri).validation_ok
  io_utils.write_string_file(os.path.join(
      blessing.uri, constants.BLESSED_FILE_NAME if ok
      else constants.NOT_BLESSED_FILE_NAME), '')
  blessing.set_int_custom_property(
      constants.ARTIFACT_PROPERTY_BLESSED_KEY,
      constants.BLESSED_VALUE if ok else constants.NOT_BLESSED_VALUE)
  logging.info('Blessing result %s written to %s.', ok, blessing.uri)


class EvaluatorSpec(specs.EvaluatorSpec):
  """TFX's Evaluator's spec, with the gates settled from the data."""

  PARAMETERS = {
      **specs.EvaluatorSpec.PARAMETERS,
      # eval_config.QualityGates.to_json(); absent: the EvalConfig's gates.
      quality_gates.PARAMETER: component_spec.ExecutionParameter(
          type=str, optional=True),
  }


class Evaluator(evaluator_component.Evaluator):
  """TFX's Evaluator with the columnar executor (same inputs and outputs),
  and the gates that depend on the data (quality_gates.py)."""

  SPEC_CLASS = EvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

  def __init__(self,  # pylint: disable=super-init-not-called
               examples: types.BaseChannel,
               model: types.BaseChannel,
               baseline_model: Optional[types.BaseChannel],
               eval_config: tfma.EvalConfig,
               gates: Optional[eval_config_lib.QualityGates] = None):
    """TFX's Evaluator's arguments this pipeline uses, and `gates`.

    Args:
      examples: the examples (the eval split is evaluated; the train split
        teaches the trivial model).
      model: the candidate model.
      baseline_model: the model to compare with, if any.
      eval_config: the metrics, slices and fixed thresholds.
      gates: the gates to settle from the data (None: only the EvalConfig's).
    """
    spec = EvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        eval_config=eval_config,
        fairness_indicator_thresholds=json_utils.dumps(None),
        example_splits=json_utils.dumps(None),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        **({quality_gates.PARAMETER: gates.to_json()} if gates else {}))
    base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
