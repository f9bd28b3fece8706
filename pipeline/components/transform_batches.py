"""Transform reads its examples in batches of a fixed number of rows.

TFX's Transform gives TFXIO no batch size for tf.Examples, so Beam tunes
one as the analysis runs: the first batches hold 1, 1, 2, 4, 8, ... rows, up
to tfx_bsl's cap of 1,000. Every batch costs a fixed amount per column
(decoding into Arrow, one tensor per column, one input per column fed to the
analysis graph), so a wide table's analysis spent much of its time in its
first, small batches (docs/performance.md, "Fixed batches in Transform").
And since a float sum depends on how the rows are grouped, while the tuned
sizes depend on how long each batch took, the means and variances in the
transform graph differed in their last digits from one local run to the
next; with fixed batches the same data gives the same graph there. (A
runner that splits a file into several bundles, as Dataflow does, still
ends each bundle with a short batch and merges in its own order: the size
is a maximum there.)

A batch holds `ROWS_PER_BATCH` rows (the size Beam's tuning reaches), fewer
on a table so wide that it would hold more than `VALUES_PER_BATCH` cells,
which bounds a batch's memory whatever the width (for single values a
cell; a multi-valued column's cells hold more).

The project's Transform executor reads them wherever it gives the
preprocessing_fn dense inputs (FixedBatchesProcessor is a base of
DenseInputsProcessor, dense_numeric_inputs.py), on every runner and in the
analysis in this process (in_process_transform.py), which reads batches of
the same size.
"""
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.transform import executor as transform_executor

# The largest batch Beam's tuning gives TFXIO (tfx_bsl 1.16 caps it there).
ROWS_PER_BATCH = 1000
# At most this many cells (rows x columns) in one batch: 2M, as 1,000 rows
# of 2,097 columns (8 MiB of float32 values).
VALUES_PER_BATCH = 2 ** 21


def batch_rows(num_columns: int) -> int:
  """Rows in each batch of a table of `num_columns` columns."""
  return max(1, min(ROWS_PER_BATCH, VALUES_PER_BATCH // max(1, num_columns)))


class FixedBatchesProcessor(transform_executor.TransformProcessor):
  """TFX's Transform processor, reading batches of `batch_rows` rows for
  the number of features in the data's schema wherever TFX gives no size
  (TFX reads SequenceExamples without tensor representations as raw
  records, one at a time: left so)."""

  def _GetDesiredBatchSize(self, data_format: int,
                           schema: schema_pb2.Schema) -> int:
    size = super()._GetDesiredBatchSize(data_format, schema)
    if size is not None:
      return size
    return batch_rows(len(schema.feature))
