"""Transform's fixed batch sizes (pipeline/components/transform_batches.py);
the executor reading them is tested in tests/test_shared_trace_transform.py."""
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.proto import example_gen_pb2

from pipeline.components import transform_batches


def _schema(columns: int) -> schema_pb2.Schema:
  schema = schema_pb2.Schema()
  for index in range(columns):
    schema.feature.add(name=f'c{index}', type=schema_pb2.FLOAT)
  return schema


def test_a_batch_holds_the_cap_or_as_many_rows_as_the_values_allow():
  cap, values = (transform_batches.ROWS_PER_BATCH,
                 transform_batches.VALUES_PER_BATCH)
  for columns in (0, 1, 30, values // cap):
    assert transform_batches.batch_rows(columns) == cap
  for columns in (values // cap + 1, 10_000, 300_000):
    rows = transform_batches.batch_rows(columns)
    # As many rows as fit in the values, fewer than the cap.
    assert rows < cap and rows * columns <= values < (rows + 1) * columns
  # Wider than the values allow: still a row at a time.
  assert transform_batches.batch_rows(values + 1) == 1


def test_examples_get_the_fixed_size_and_raw_sequence_examples_one_row():
  processor = transform_batches.FixedBatchesProcessor()
  assert processor._GetDesiredBatchSize(  # pylint: disable=protected-access
      example_gen_pb2.FORMAT_TF_EXAMPLE,
      _schema(10_000)) == transform_batches.batch_rows(10_000)
  # TFX reads SequenceExamples without tensor representations as raw
  # records, one at a time: left as TFX has it.
  assert processor._GetDesiredBatchSize(  # pylint: disable=protected-access
      example_gen_pb2.FORMAT_TF_SEQUENCE_EXAMPLE, _schema(3)) == 1
