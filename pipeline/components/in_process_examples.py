"""Transform's examples read in its own process, where its Beam pipeline
runs there.

TFX's Transform reads the examples it analyses through TFXIO's Beam source:
Beam's TFRecord reader, in Python, one record at a time (a Beam element
each, with two checksums computed in Python), then batches of records
decoded to Arrow. Where the Beam pipeline runs in this process (a local run,
and a step below DATAFLOW_MIN_INPUT_BYTES in its container:
pipeline/kfp_runtime/in_process_runner.py), `InProcessExamples` gives
Transform the same TFXIO with one change: its Beam source reads the files
with the TFXIO's own `RecordBatches`, tf.data's reader in C++ on threads of
its own, and decodes them with the same decoder into record batches of
`BATCH_ROWS` rows (the last one fewer) with the same schema and rows.
Transform's Beam pipeline gets one element, the whole read happens in it,
and the analysis does with the batches what it did.

Two things differ, neither of which the analysis depends on:
- The order of the rows: tf.data interleaves the files, in an order fixed
  for a given number of processors (one file after another on up to three),
  where Beam's source promises none.
- The batches: always `BATCH_ROWS` rows, where Beam adapts their size to
  the time each takes; analyzers that sum floats (means, variances) may
  differ in their last digits, as between any two runs with Beam's source.
The Beam counters that TFXIO's source keeps of what it read are not kept;
nothing in the pipeline reads them.

Measured on the Transform executor alone (bench/profile_component.py
Transform --cpu, 2026-12-06, alternating): 300,000 resampled trips (200,000
rows analysed) 6.5, 6.5, 6.5 s before, 5.1, 4.7, 4.4 s after; on the
bundled data (10,000 rows) 1.6 s either way.

Dataflow keeps Beam's source, which splits the files between its workers.
Only TFX's tf.Example reader and the project's reader of it
(dense_numeric_inputs.EmptyCellsAsMissingRecord, whose `RecordBatches`
reads empty cells as its Beam source does) are read this way; any other
TFXIO is left as it is.
"""
from typing import Iterator, List, Optional

import apache_beam as beam
import pyarrow as pa
from tfx_bsl.tfxio import dataset_options
from tfx_bsl.tfxio import tf_example_record
from tfx_bsl.tfxio import tfxio as tfxio_module

# Rows per record batch: the largest batch that TFXIO's Beam source gives
# (tfx_bsl's batch_util caps its adaptive batching at 1,000 records) when
# Transform asks for no batch size, as TFX's Transform does for tf.Examples.
BATCH_ROWS = 1000


def _record_batches(unused_element, tfxio: tfxio_module.TFXIO,
                    batch_size: int) -> Iterator[pa.RecordBatch]:
  """Every example `tfxio` reads, as record batches of `batch_size` rows
  (the last one fewer)."""
  return tfxio.RecordBatches(dataset_options.RecordBatchesOptions(
      batch_size=batch_size, num_epochs=1, shuffle=False))


@beam.ptransform_fn
def _read_in_process(root, tfxio: tfxio_module.TFXIO, batch_size: int):
  """A Beam source of `tfxio`'s record batches, read by one element."""
  return (root
          | 'Once' >> beam.Create([None])
          | 'ReadRecordBatches' >> beam.FlatMap(
              _record_batches, tfxio, batch_size).with_output_types(
                  pa.RecordBatch))


class InProcessExamples:
  """A TFXIO of tf.Example records whose Beam source reads them in this
  process; everything else, its projections included, is the TFXIO's own."""

  # pylint: disable=invalid-name  (TFXIO's method names)

  def __init__(self, tfxio: tfxio_module.TFXIO):
    self._tfxio = tfxio

  def __getattr__(self, name: str):
    # Not for special names or the wrapped reader itself: a copy or an
    # unpickled instance asks for them before it has a reader.
    if name.startswith('__') or name == '_tfxio':
      raise AttributeError(name)
    return getattr(self._tfxio, name)

  def Project(self, tensor_names: List[str]) -> 'InProcessExamples':
    """The TFXIO's projection, its Beam source reading in this process."""
    return InProcessExamples(self._tfxio.Project(tensor_names))

  def BeamSource(self, batch_size: Optional[int] = None) -> beam.PTransform:
    """The TFXIO's record batches, read in one Beam element."""
    # pylint: disable-next=no-value-for-parameter
    return _read_in_process(self._tfxio, batch_size or BATCH_ROWS)


def read_in_process(tfxio: tfxio_module.TFXIO,
                    readers=(tf_example_record.TFExampleRecord,)):
  """`tfxio` as InProcessExamples where it is one of `readers` (exactly:
  a subclass may read otherwise in Beam), else `tfxio` itself."""
  if type(tfxio) in readers:  # pylint: disable=unidiomatic-typecheck
    return InProcessExamples(tfxio)
  return tfxio
