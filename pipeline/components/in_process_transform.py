"""Transform without a Beam pipeline where its Beam runner would run here.

Where the Beam arguments run a pipeline in this process (a local run, or a
Kubeflow or Vertex step below DATAFLOW_MIN_INPUT_BYTES:
pipeline/kfp_runtime/in_process_runner.py), the analysis is computed here
(in_process_analysis.py) and the transform graph written as TFX's
executor writes it: the raw data's metadata, the transform_fn SavedModel and
the transformed data's metadata, under the same artifact. StatisticsGen,
ExampleGen and the Evaluator do the same where Beam runs here.

This covers what the pipeline asks of Transform: no statistics of its own,
no transformed copy of the data, no analyzer cache, a TF1 trace, tf.Examples
read by TFX's reader (`why_not`). Otherwise, with Dataflow, with an
analyzer that in_process_analysis.py does not compute, or with a
tensorflow-transform that lacks what it calls, TFX's Beam pipeline runs as
released, and the log says why. The examples are read file by file in
sorted order, in batches of the size TFX's Beam source would use
(transform_batches.py).
"""
import copy
import functools
import json
import os
from typing import Dict, Iterator, List, Optional

from absl import logging
import pyarrow as pa
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.beam import common as beam_common
from tensorflow_transform.beam.tft_beam_io import transform_fn_io
from tensorflow_transform.tf_metadata import metadata_io
from tfx.components.transform import executor as transform_executor
from tfx_bsl.tfxio import dataset_options
from tfx_bsl.tfxio import tf_example_record
from tfx_bsl.tfxio import tfxio as tfxio_base

from pipeline.components import in_process_analysis
from pipeline.components import transform_batches

# Where TFT's WriteTransformFn stages its outputs before it renames them into
# place (inside the output, so that the rename stays on one file system).
_STAGING = 'transform_tmp'


def _reader(tfxio):
  """The record reader that reads for `tfxio` (the projected one of a
  projection)."""
  while isinstance(getattr(tfxio, 'projected', None), tfxio_base.TFXIO):
    tfxio = tfxio.projected
  return tfxio


def _files(reader) -> List[str]:
  """The files a TFX record reader reads: each of its patterns' matches,
  sorted."""
  patterns = reader._file_pattern  # pylint: disable=protected-access
  if isinstance(patterns, str):
    patterns = [patterns]
  files = []
  for pattern in patterns:
    matched = sorted(tf.io.gfile.glob(pattern))
    if not matched:
      raise ValueError(f'Transform: no examples match {pattern}')
    files.extend(matched)
  return files


def _record_batches(tfxio, batch_size: int) -> Iterator[pa.RecordBatch]:
  """A dataset's examples as Arrow record batches of `batch_size` rows,
  one file after the other in sorted order (TFXIO's reader would interleave
  as many files at a time as the machine has cores, so the batches, and the
  analyzers' float sums, would depend on the machine)."""
  options = dataset_options.RecordBatchesOptions(
      batch_size=batch_size, num_epochs=1, shuffle=False)
  reader = _reader(tfxio)
  for path in _files(reader):
    one_file = copy.copy(reader)
    one_file._file_pattern = [path]  # pylint: disable=protected-access
    yield from one_file.RecordBatches(options)


def write_transform_graph(result: in_process_analysis.Result,
                          raw_metadata, transform_output_path: str) -> None:
  """Writes the transform graph artifact's folders as TFX's executor does:
  the raw metadata, then the transformed metadata (with the asset map) and
  the SavedModel, staged and renamed into place."""
  metadata_io.write_metadata(raw_metadata, os.path.join(
      transform_output_path, tft.TFTransformOutput.RAW_METADATA_DIR))
  staging = os.path.join(transform_output_path, _STAGING)
  staged_metadata = beam_common.get_unique_temp_path(staging)
  metadata_io.write_metadata(result.metadata, staged_metadata)
  if result.asset_map:
    with tf.io.gfile.GFile(os.path.join(
        staged_metadata, tft.TFTransformOutput.ASSET_MAP), 'w') as f:
      f.write(json.dumps(result.asset_map))
  staged_graph = transform_fn_io._copy_tree_to_unique_temp_dir(  # pylint: disable=protected-access
      result.saved_model_dir, staging)
  tf.io.gfile.rename(staged_metadata, os.path.join(
      transform_output_path, tft.TFTransformOutput.TRANSFORMED_METADATA_DIR),
                     overwrite=True)
  tf.io.gfile.rename(staged_graph, os.path.join(
      transform_output_path, tft.TFTransformOutput.TRANSFORM_FN_DIR),
                     overwrite=True)
  if tf.io.gfile.exists(staging):
    tf.io.gfile.rmtree(staging)


def why_not(in_process: bool, analyze_data_list, force_tf_compat_v1: bool,
            input_cache_dir: Optional[str], output_cache_dir: Optional[str],
            disable_statistics: bool, per_set_stats_output_paths,
            materialization_format: Optional[str],
            stats_output_paths: Dict[str, str]) -> Optional[str]:
  """Why TFX's Beam pipeline must run this Transform (None: it need not)."""
  if not in_process:
    return 'the Beam arguments run pipelines elsewhere'
  missing = in_process_analysis.missing_from_tft()
  if missing:
    return ("this tensorflow-transform lacks what the analysis here calls: "
            f"{', '.join(missing)}")
  if not force_tf_compat_v1:
    return 'the preprocessing_fn is traced in TF2 mode'
  if input_cache_dir or output_cache_dir:
    return 'the analyzer cache is on'
  if not disable_statistics or stats_output_paths or (
      per_set_stats_output_paths):
    return 'Transform computes statistics'
  if materialization_format is not None:
    return 'Transform writes the transformed examples'
  for dataset in analyze_data_list:
    reader = _reader(dataset.tfxio)
    if not isinstance(reader, tf_example_record.TFExampleRecord):
      return f'the examples are read by {type(reader).__name__}'
  return None


# The parameters of TFX's TransformProcessor._RunBeamImpl that the processor
# below takes (tfx 1.16).
RUN_BEAM_PARAMETERS = (
    'self', 'analyze_data_list', 'transform_data_list', 'preprocessing_fn',
    'stats_options_updater_fn', 'force_tf_compat_v1', 'save_options',
    'input_dataset_metadata', 'transform_output_path',
    'raw_examples_data_format', 'temp_path', 'input_cache_dir',
    'output_cache_dir', 'disable_statistics', 'per_set_stats_output_paths',
    'materialization_format', 'analyze_paths_count', 'stats_output_paths',
    'make_beam_pipeline_fn')


class InProcessAnalysisProcessor(transform_batches.FixedBatchesProcessor):
  """TFX's Transform processor, analysing in this process where
  `in_process` (set on the subclass the executor makes) and the run allows
  (`why_not`), TFX's Beam pipeline otherwise."""

  in_process = False

  def _RunBeamImpl(self, analyze_data_list, transform_data_list,
                   preprocessing_fn, stats_options_updater_fn,
                   force_tf_compat_v1, save_options, input_dataset_metadata,
                   transform_output_path, raw_examples_data_format, temp_path,
                   input_cache_dir, output_cache_dir, disable_statistics,
                   per_set_stats_output_paths, materialization_format,
                   analyze_paths_count, stats_output_paths,
                   make_beam_pipeline_fn):
    reason = why_not(self.in_process, analyze_data_list, force_tf_compat_v1,
                     input_cache_dir, output_cache_dir, disable_statistics,
                     per_set_stats_output_paths, materialization_format,
                     stats_output_paths)
    if reason is None:
      try:
        self._analyze_here(analyze_data_list, preprocessing_fn, save_options,
                           input_dataset_metadata, transform_output_path,
                           raw_examples_data_format, temp_path)
        return transform_executor._Status.OK()  # pylint: disable=protected-access
      except in_process_analysis.Unsupported as unsupported:
        reason = str(unsupported)
    logging.info("Transform runs TFT's Beam pipeline: %s.", reason)
    return super()._RunBeamImpl(
        analyze_data_list, transform_data_list, preprocessing_fn,
        stats_options_updater_fn, force_tf_compat_v1, save_options,
        input_dataset_metadata, transform_output_path,
        raw_examples_data_format, temp_path, input_cache_dir,
        output_cache_dir, disable_statistics, per_set_stats_output_paths,
        materialization_format, analyze_paths_count, stats_output_paths,
        make_beam_pipeline_fn)

  def _analyze_here(self, analyze_data_list, preprocessing_fn, save_options,
                    input_dataset_metadata, transform_output_path: str,
                    raw_examples_data_format: int, temp_path: str) -> None:
    self._AssertSameTFXIOSchema(analyze_data_list)
    typespecs = analyze_data_list[0].tfxio.TensorAdapter().OriginalTypeSpecs()
    # The columns the analyzers read (the traced graph is shared with the
    # analysis, shared_trace_transform.py); the datasets are left as they
    # are for TFX's pipeline, should the analysis be unsupported here.
    columns = tft.get_analyze_input_columns(preprocessing_fn, typespecs,
                                            force_tf_compat_v1=True)
    tfxios = {dataset.dataset_key: dataset.tfxio.Project(columns)
              for dataset in analyze_data_list}
    batch_size = self._GetDesiredBatchSize(raw_examples_data_format,
                                           input_dataset_metadata.schema)
    sources = {key: functools.partial(_record_batches, tfxio, batch_size)
               for key, tfxio in tfxios.items()}
    with tft_beam.Context(temp_dir=temp_path, desired_batch_size=batch_size,
                          force_tf_compat_v1=True, save_options=save_options):
      result = in_process_analysis.analyze(
          preprocessing_fn, sources,
          next(iter(tfxios.values())).TensorAdapterConfig(),
          tft_beam.Context.create_base_temp_dir())
    logging.info('Transform analysed %d dataset(s) in this process.',
                 len(sources))
    write_transform_graph(result, input_dataset_metadata,
                          transform_output_path)
