"""Transform's numeric matrix columns as dense inputs, a missing value filled
in, instead of sparse ones.

The fitted schema lets any column the model reads have an empty cell
(fitted_schema_gen.py), so TFX hands every such column to the
preprocessing_fn as a SparseTensor: three placeholders per column in each
trace, three tensors per column for every graph that copies the transform
graph (the Trainer's reader, each serving signature, the Evaluator's model
load). On a table of 1,000 numeric columns that was most of Transform's and
the Trainer's time, and it grew with the columns, not with the cells.

The columns that go into the numeric matrix (models/preprocessing.py
`numeric_columns`) are single values that the preprocessing_fn fills in
anyway, so this executor gives them to it as dense [batch, 1] tensors:
a `dense_tensor` representation with a default (NaN for a float column,
`features.MISSING_INT` for an integer one) in the schema that Transform reads
and saves as the transform graph's raw metadata. TFX's own mechanism does
the rest: the raw feature spec (TFTransformOutput.raw_feature_spec) then
holds a FixedLenFeature([1], default) for each such column, which the
Trainer's reader and the serving signatures parse with
models/serving.py `parse_examples` (an empty list counts as missing, as an
absent feature does). The Schema artifact is not changed: data validation,
statistics and the schema saved with the model see the columns as before.

ExampleGen writes an empty CSV cell as an empty list (as TFX's CsvExampleGen
does), which TFXIO's dense conversion refuses; the reader below turns empty
lists of these columns into missing values (nulls) before the conversion;
the examples must be TFRecords of tf.Examples, as ExampleGen writes them
(another reader stops Transform, naming it). A row with more than one value
in such a column still fails Transform, as a multi-valued column does not
fit the numeric matrix.

TFX's Transform executor makes its TransformProcessor by name, so
`dense_inputs` stands DenseInputsProcessor (which also reads the examples in
fixed batches, transform_batches.py, and analyses in this process where
Beam would run here, in_process_transform.py) in for it while the project's
executor runs (pipeline/components/shared_trace_transform.py), under a lock,
where TFX's processor has the methods it was written for (tfx 1.16);
another TFX keeps its own processor and sparse inputs, with a warning.
"""
import contextlib
import json
import math
from typing import Any, Iterator, List, Mapping, Optional

from absl import logging
import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.transform import executor as transform_executor
from tfx_bsl.tfxio import tensor_representation_util
from tfx_bsl.tfxio import tf_example_record

from models import features
from models import preprocessing
from pipeline.components import in_process_transform
from pipeline.components import library_substitution

# TFX's tensor representation group: the one TFXIO and TFT read.
_GROUP = ''


def problem_of(exec_properties: Mapping[str, Any]) -> Optional[
    features.Problem]:
  """The problem description in Transform's custom_config, or None where
  the config has none (a preprocessing_fn other than the project's)."""
  config = exec_properties.get('custom_config')
  if isinstance(config, str):
    config = json.loads(config or 'null')
  if not config or features.PROBLEM_CONFIG_KEY not in config:
    return None
  return features.Problem.from_config(config)


def dense_columns(schema: schema_pb2.Schema,
                  problem: features.Problem) -> List[str]:
  """The columns of the numeric matrix that TFXIO would give as sparse
  tensors of one numeric type: those that get a dense representation."""
  sparse = {}
  for name, representation in (
      tensor_representation_util.InferTensorRepresentationsFromMixedSchema(
          schema).items()):
    if representation.WhichOneof('kind') == 'varlen_sparse_tensor':
      sparse[representation.varlen_sparse_tensor.column_name] = name
  types = {feature.name: feature.type for feature in schema.feature}
  numeric = {}
  for column, name in sparse.items():
    if column != name or types.get(column) not in (schema_pb2.FLOAT,
                                                   schema_pb2.INT):
      continue
    numeric[column] = tf.TensorSpec(
        [None], tf.float32 if types[column] == schema_pb2.FLOAT else tf.int64)
  return preprocessing.numeric_columns(numeric, problem)


def with_dense_inputs(schema: schema_pb2.Schema,
                      columns: List[str]) -> schema_pb2.Schema:
  """A copy of `schema` whose default tensor representation group gives
  each of `columns` as a dense [batch, 1] tensor with the missing-value
  default of its type, and every other column as TFXIO gives it without
  the group (TFX reads only the group's columns where there is one)."""
  result = schema_pb2.Schema()
  result.CopyFrom(schema)
  types = {feature.name: feature.type for feature in schema.feature}
  group = result.tensor_representation_group[_GROUP].tensor_representation
  for name, representation in (
      tensor_representation_util.InferTensorRepresentationsFromMixedSchema(
          schema).items()):
    group[name].CopyFrom(representation)
  for column in columns:
    group[column].Clear()
    dense = group[column].dense_tensor
    dense.column_name = column
    dense.shape.dim.add().size = 1
    if types[column] == schema_pb2.FLOAT:
      dense.default_value.float_value = math.nan
    else:
      dense.default_value.int_value = features.MISSING_INT
  return result


def empty_lists_as_missing(batch: pa.RecordBatch,
                           columns: List[str]) -> pa.RecordBatch:
  """`batch` with each empty list in `columns` made a missing value (null),
  as TFXIO fills a dense tensor's default only for a missing value."""
  arrays = list(batch.columns)
  for column in columns:
    index = batch.schema.get_field_index(column)
    if index < 0:
      continue
    array = arrays[index]
    empty = pc.equal(pc.list_value_length(array), 0)
    if not pc.any(empty).as_py():
      continue
    offsets, values = array.offsets, array.values
    if array.offset:  # a slice: offsets from 0, into the slice's values
      start = offsets[0].as_py()
      values = values.slice(start, offsets[-1].as_py() - start)
      offsets = pc.subtract(offsets, start)
    arrays[index] = type(array).from_arrays(
        offsets, values,
        mask=pc.fill_null(pc.or_kleene(pc.is_null(array), empty), True))
  return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


class EmptyCellsAsMissingRecord(tf_example_record.TFExampleRecord):
  """TFX's tf.Example reader, with empty lists in `columns` decoded as
  missing values."""

  def __init__(self, columns: List[str], **kwargs):
    super().__init__(**kwargs)
    self._empty_as_missing = list(columns)

  def _RawRecordToRecordBatchInternal(self, batch_size=None):
    decode = super()._RawRecordToRecordBatchInternal(batch_size)
    columns = self._empty_as_missing

    def expand(raw_records):
      return (raw_records
              | 'DecodeExamples' >> decode
              | 'EmptyCellsAsMissing' >> beam.Map(empty_lists_as_missing,
                                                   columns))

    return beam.ptransform_fn(expand)()

  def RecordBatches(self, options):
    """TFX's in-process reading (the analysis in this process,
    in_process_transform.py), reading empty lists as the Beam source does."""
    for batch in super().RecordBatches(options):
      yield empty_lists_as_missing(batch, self._empty_as_missing)

  def _ProjectImpl(self, tensor_names: List[str]):
    """The projection TFX's reader makes (Transform reads only the columns
    the preprocessing_fn uses), reading empty lists as this one does."""
    projected = super()._ProjectImpl(tensor_names)
    return EmptyCellsAsMissingRecord(
        [c for c in self._empty_as_missing if c in tensor_names],
        file_pattern=self._file_pattern, schema=projected._schema,  # pylint: disable=protected-access
        raw_record_column_name=self.raw_record_column_name,
        telemetry_descriptors=self.telemetry_descriptors)


def dense_columns_in(schema: schema_pb2.Schema) -> List[str]:
  """The columns `with_dense_inputs` gave a dense representation with a
  default."""
  group = schema.tensor_representation_group.get(_GROUP)
  if group is None:
    return []
  return sorted(
      representation.dense_tensor.column_name
      for representation in group.tensor_representation.values()
      if representation.WhichOneof('kind') == 'dense_tensor' and
      representation.dense_tensor.HasField('default_value'))


class DenseInputsProcessor(in_process_transform.InProcessAnalysisProcessor):
  """TFX's Transform processor, giving the numeric matrix's columns of
  `problem` to the preprocessing_fn as dense inputs, read in fixed batches
  (transform_batches.py) and analysed in this process where `in_process`
  (in_process_transform.py)."""

  problem = None  # set on the subclass `dense_inputs` makes

  def _GetSchema(self, schema_path: str):
    """The data's schema, with dense representations for the numeric
    matrix's columns; TFX reads the data with it and saves it as the
    transform graph's raw metadata."""
    schema = super()._GetSchema(schema_path)
    columns = dense_columns(schema, self.problem)
    if not columns:
      return schema
    logging.info('Transform reads %d numeric columns as dense inputs, a '
                 'missing value filled in.', len(columns))
    return with_dense_inputs(schema, columns)

  def _CreateTFXIO(self, dataset, schema):
    """TFX's reader, reading an empty list in a dense input's column as a
    missing value."""
    made = super()._CreateTFXIO(dataset, schema)
    columns = dense_columns_in(schema)
    if not columns:
      return made
    if type(made) is not tf_example_record.TFExampleRecord:  # pylint: disable=unidiomatic-typecheck
      raise ValueError(
          f'Transform reads {type(made).__name__}; dense numeric inputs '
          'need tf.Examples read by TFExampleRecord')
    return EmptyCellsAsMissingRecord(
        columns, file_pattern=dataset.file_pattern, schema=schema,
        raw_record_column_name=made.raw_record_column_name,
        telemetry_descriptors=made.telemetry_descriptors)


# The methods of TFX's processor that DenseInputsProcessor overrides, with
# their parameters (tfx 1.16); another TFX gets TFX's processor.
_PROCESSOR_METHODS = {'_GetSchema': ('self', 'schema_path'),
                      '_CreateTFXIO': ('self', 'dataset', 'schema'),
                      '_GetDesiredBatchSize': ('self', 'data_format',
                                               'schema'),
                      '_RunBeamImpl': in_process_transform.RUN_BEAM_PARAMETERS}


def _can_substitute() -> bool:
  """Whether TFX's processor is the one DenseInputsProcessor was written
  for."""
  processor = getattr(transform_executor, 'TransformProcessor', None)
  methods = {name: getattr(processor, name, None)
             for name in _PROCESSOR_METHODS}
  return all(method is not None and
             library_substitution.takes(method, parameters)
             for method, parameters in zip(methods.values(),
                                           _PROCESSOR_METHODS.values()))


@contextlib.contextmanager
def dense_inputs(problem, in_process: bool = False) -> Iterator[None]:
  """While inside, TFX's Transform executor runs DenseInputsProcessor for
  `problem` (nothing changes where it is None), analysing in this process
  where `in_process` (in_process_transform.py)."""
  if problem is None:
    yield
    return
  if not _can_substitute():
    logging.warning(
        'Transform gives the numeric columns as sparse tensors and reads '
        'batches of the sizes Beam tunes: this TFX\'s TransformProcessor '
        'does not have %s as written for.', ', '.join(_PROCESSOR_METHODS))
    yield
    return
  processor = type('DenseInputsProcessor', (DenseInputsProcessor,),
                   {'problem': problem, 'in_process': in_process})
  with library_substitution.substituted(transform_executor,
                                       TransformProcessor=processor):
    yield
