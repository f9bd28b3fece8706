"""Transform's examples read in its own process
(pipeline/components/in_process_examples.py): the same record batches as
TFXIO's Beam source, for TFX's tf.Example reader, its projections and the
project's reader of empty cells; other readers keep Beam's source. The
executor end to end: tests/test_shared_trace_transform.py."""
import copy
import os
import pickle
from typing import List

import apache_beam as beam
import pyarrow as pa
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.tfxio import raw_tf_record
from tfx_bsl.tfxio import tf_example_record

from local.run import direct_runner
from pipeline.components import dense_numeric_inputs
from pipeline.components import in_process_examples

_SCHEMA = text_format.Parse('''
    feature { name: "speed" type: FLOAT }
    feature { name: "count" type: INT }
    feature { name: "road" type: BYTES }
''', schema_pb2.Schema())
_ROWS_PER_FILE = 23


def _example(row: int) -> bytes:
  feature = {}
  if row % 5:
    feature['speed'] = tf.train.Feature(
        float_list=tf.train.FloatList(value=[row / 4]))
  # An empty list in every third row (as ExampleGen writes an empty cell).
  feature['count'] = tf.train.Feature(int64_list=tf.train.Int64List(
      value=[] if row % 3 == 0 else [row]))
  feature['road'] = tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[f'E{row % 4}'.encode()] * (row % 3)))
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope='module')
def file_pattern(tmp_path_factory) -> str:
  """Two gzipped TFRecord files of tf.Examples, as ExampleGen writes them."""
  folder = tmp_path_factory.mktemp('examples')
  for part in range(2):
    with tf.io.TFRecordWriter(str(folder / f'data_{part}.gz'),
                              options='GZIP') as writer:
      for row in range(part * _ROWS_PER_FILE, (part + 1) * _ROWS_PER_FILE):
        writer.write(_example(row))
  return os.path.join(str(folder), '*')


# What the pipeline in `_read` gives (the runner unpickles its functions in
# this process; a module's function is pickled by reference).
_READ: List[pa.RecordBatch] = []


def _keep(batch: pa.RecordBatch) -> None:
  _READ.append(batch)


def _read(tfxio, batch_size=None) -> List[pa.RecordBatch]:
  """The record batches `tfxio`'s Beam source gives, on the local runner."""
  _READ.clear()
  with direct_runner.direct_pipeline() as pipeline:
    _ = (pipeline | 'Read' >> tfxio.BeamSource(batch_size)
         | 'Keep' >> beam.Map(_keep))
  batches = list(_READ)
  assert batches, 'the source gave nothing'
  return batches


def _rows(batches: List[pa.RecordBatch]) -> List[dict]:
  """Every row of `batches`, in an order that depends neither on the batches
  nor on the order the files were read in."""
  rows = pa.Table.from_batches(batches).to_pylist()
  return sorted(rows, key=repr)


def _tfx_reader(file_pattern, **kwargs) -> tf_example_record.TFExampleRecord:
  return tf_example_record.TFExampleRecord(
      file_pattern=file_pattern, schema=_SCHEMA,
      telemetry_descriptors=['test'], **kwargs)


def test_the_same_record_batches_as_beams_source(file_pattern):
  tfxio = _tfx_reader(file_pattern)
  ours = in_process_examples.read_in_process(tfxio)
  assert isinstance(ours, in_process_examples.InProcessExamples)
  got, expected = _read(ours), _read(tfxio)
  assert got[0].schema.equals(expected[0].schema)
  assert got[0].schema.equals(tfxio.ArrowSchema())
  assert _rows(got) == _rows(expected)
  assert len(_rows(got)) == 2 * _ROWS_PER_FILE
  # Everything but the Beam source is the reader's own.
  config, expected_config = ours.TensorAdapterConfig(), (
      tfxio.TensorAdapterConfig())
  assert config.arrow_schema.equals(expected_config.arrow_schema)
  assert config.tensor_representations == (
      expected_config.tensor_representations)


def test_batches_of_the_batch_size_with_every_row_once(file_pattern):
  ours = in_process_examples.read_in_process(_tfx_reader(file_pattern))
  batches = _read(ours, batch_size=10)
  assert [b.num_rows for b in batches] == [10, 10, 10, 10, 6]
  # Every row once; tf.data interleaves the files in an order that depends
  # on the number of processors.
  speeds = pa.Table.from_batches(batches).column('speed').to_pylist()
  assert sorted(speeds, key=repr) == sorted(
      [None if row % 5 == 0 else [row / 4]
       for row in range(2 * _ROWS_PER_FILE)], key=repr)
  # Without a batch size: one batch up to BATCH_ROWS rows.
  assert [b.num_rows for b in _read(ours)] == [2 * _ROWS_PER_FILE]


def test_a_projection_reads_in_process_too(file_pattern):
  tfxio = _tfx_reader(file_pattern, raw_record_column_name='raw')
  ours = in_process_examples.read_in_process(tfxio).Project(['speed'])
  assert isinstance(ours, in_process_examples.InProcessExamples)
  expected = _read(tfxio.Project(['speed']))
  got = _read(ours)
  assert got[0].schema.equals(expected[0].schema)
  assert got[0].schema.names == ['speed', 'raw']
  assert _rows(got) == _rows(expected)


def test_empty_cells_read_as_missing_values_as_in_beam(file_pattern):
  schema = dense_numeric_inputs.with_dense_inputs(_SCHEMA, ['count'])
  tfxio = dense_numeric_inputs.EmptyCellsAsMissingRecord(
      ['count'], file_pattern=file_pattern, schema=schema,
      telemetry_descriptors=['test'])
  ours = in_process_examples.read_in_process(
      tfxio, (dense_numeric_inputs.EmptyCellsAsMissingRecord,))
  assert isinstance(ours, in_process_examples.InProcessExamples)
  got, expected = _rows(_read(ours)), _rows(_read(tfxio))
  assert got == expected
  counts = [row['count'] for row in got]
  assert counts.count(None) == len(range(0, 2 * _ROWS_PER_FILE, 3))
  assert [] not in counts


def test_the_reader_can_be_copied_and_pickled(file_pattern):
  ours = in_process_examples.read_in_process(_tfx_reader(file_pattern))
  for copied in (copy.copy(ours), pickle.loads(pickle.dumps(ours))):
    assert isinstance(copied, in_process_examples.InProcessExamples)
    assert copied.ArrowSchema().equals(ours.ArrowSchema())


def test_other_readers_keep_beams_source(file_pattern):
  raw = raw_tf_record.RawTfRecordTFXIO(file_pattern, 'raw', ['test'])
  assert in_process_examples.read_in_process(raw) is raw
  # A subclass may read otherwise in Beam: only the classes named are read
  # in process.
  cells = dense_numeric_inputs.EmptyCellsAsMissingRecord(
      ['count'], file_pattern=file_pattern, schema=_SCHEMA)
  assert in_process_examples.read_in_process(cells) is cells
