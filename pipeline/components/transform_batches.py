"""Transform reads its examples in batches of a fixed number of rows.

TFX's Transform gives TFXIO no batch size for tf.Examples, so Beam tunes one
as the analysis runs: the first batches hold 1, 1, 2, 4, 8, ... rows, up to
tfx_bsl's cap of 1,000. Every batch costs a fixed amount per column
(decoding into Arrow, one tensor per column, one input per column fed to the
analysis graph), so on the 1,000-column bench table (1,011 training rows)
the analysis ran 11 batches, 8 of them of under 100 rows; read in one batch
of 1,000 rows and one of 11, Transform's executor took 4.8 s instead of
5.4 s (docs/performance.md). And since a float sum depends on how the rows
are grouped, while the tuned sizes depend on how long each batch took, the
means and variances in the transform graph differed in their last digits
from one run to the next; with fixed batches, the same data gives the same
graph.

A batch holds `ROWS_PER_BATCH` rows (the size Beam's tuning reaches), fewer
on a table so wide that it would hold more than `VALUES_PER_BATCH` values,
which bounds a batch's memory whatever the width. The same sizes on every
runner (the local DirectRunner, in a container, on Dataflow).
"""
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.transform import executor as transform_executor

# The largest batch Beam's tuning gives TFXIO (tfx_bsl 1.16 caps it there).
ROWS_PER_BATCH = 1000
# At most this many values (rows x columns) in one batch: 2M, 16 MB of
# float64, as a batch of 2,097 rows of 1,000 columns.
VALUES_PER_BATCH = 2 ** 21


def batch_rows(num_columns: int) -> int:
  """Rows in each batch of a table of `num_columns` columns."""
  return max(1, min(ROWS_PER_BATCH, VALUES_PER_BATCH // max(1, num_columns)))


class FixedBatchesProcessor(transform_executor.TransformProcessor):
  """TFX's Transform processor, reading batches of `batch_rows` rows for
  the number of columns in the data's schema where TFX gives no size (it
  reads SequenceExamples as raw records one at a time, as before)."""

  def _GetDesiredBatchSize(self, data_format: int,
                           schema: schema_pb2.Schema):
    size = super()._GetDesiredBatchSize(data_format, schema)
    if size is not None:
      return size
    return batch_rows(len(schema.feature))
