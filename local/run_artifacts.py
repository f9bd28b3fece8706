"""A local run's artifacts, found through ML Metadata (the folder layout under
LOCAL_OUTPUT_DIR is local/output_layout.py's).

`load_run` finds one run's artifacts (default: the newest run) through the
metadata store, so nothing has to guess artifact folders.
"""
import argparse
import dataclasses
import glob
import os
import sys
from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2

from local import run_summary
from local.output_layout import metadata_path
from pipeline import component_ids
from pipeline import configs
from pipeline.components import serving_baseline

# The newest model version under a serving folder (None if none): one
# implementation, shared with the Kubeflow baseline step.
newest_pushed_model = serving_baseline.newest_pushed_model


def run_argument_parser(prog: str, description: str,
                        settings: configs.Settings) -> argparse.ArgumentParser:
  """A command-line parser with --output-dir and --pipeline-name, whose
  defaults are `settings`' LOCAL_OUTPUT_DIR and PIPELINE_NAME."""
  parser = argparse.ArgumentParser(prog=prog, description=description)
  parser.add_argument('--output-dir', default=settings.LOCAL_OUTPUT_DIR,
                      help='the local output folder (default: '
                      'LOCAL_OUTPUT_DIR, %(default)s)')
  parser.add_argument('--pipeline-name', default=settings.PIPELINE_NAME,
                      help='default: PIPELINE_NAME, %(default)s')
  return parser


def connection_config(output_dir: str, pipeline_name: str
                     ) -> metadata_store_pb2.ConnectionConfig:
  """The SQLite metadata store of a local run; FileNotFoundError if absent."""
  path = metadata_path(output_dir, pipeline_name)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'no metadata store at {path}: run the pipeline {pipeline_name!r} '
        f'with LOCAL_OUTPUT_DIR={output_dir} first (make run)')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return config


@dataclasses.dataclass
class RunArtifacts:
  """One run's summary and the folders of the artifacts its report reads."""
  output_dir: str
  pipeline_name: str
  summary: run_summary.RunSummary

  def output_uri(self, component_id: str, key: str) -> Optional[str]:
    """The first artifact of a component's output `key`, if it completed."""
    component = self.summary.components.get(component_id)
    if component is None or component.state not in ('COMPLETE', 'CACHED'):
      return None
    uris = component.outputs.get(key) or []
    return uris[0] if uris else None

  @property
  def run_id(self) -> str:
    return self.summary.run_id

  @property
  def statistics(self) -> Optional[str]:
    """StatisticsGen's folder: Split-<name>/FeatureStats.pb per split."""
    return self.output_uri(component_ids.STATISTICS_GEN, 'statistics')

  @property
  def schema_file(self) -> Optional[str]:
    folder = self.output_uri(component_ids.SCHEMA_GEN, 'schema')
    return os.path.join(folder, 'schema.pbtxt') if folder else None

  @property
  def anomalies(self) -> Optional[str]:
    """ExampleValidator's folder: Split-<name>/SchemaDiff.pb per split."""
    return self.output_uri(component_ids.EXAMPLE_VALIDATOR, 'anomalies')

  @property
  def model_run(self) -> Optional[str]:
    """The Trainer's TensorBoard log folder."""
    return self.output_uri(component_ids.TRAINER, 'model_run')

  @property
  def evaluation(self) -> Optional[str]:
    """The Evaluator's TFMA output folder."""
    return self.output_uri(component_ids.EVALUATOR, 'evaluation')

  def split_files(self, folder: Optional[str], file_name: str) -> List[tuple]:
    """[(split name, path)] of Split-*/<file_name> in `folder`, by name."""
    if not folder:
      return []
    found = []
    for path in sorted(glob.glob(os.path.join(folder, 'Split-*', file_name))):
      split = os.path.basename(os.path.dirname(path))[len('Split-'):]
      found.append((split, path))
    return found


def load_run(output_dir: str, pipeline_name: str,
             run_id: Optional[str] = None) -> RunArtifacts:
  """Run `run_id` (default: the newest) of a local pipeline output folder.

  Raises:
    FileNotFoundError: there is no metadata store for the pipeline.
    ValueError: the store has no such run.
  """
  summary = run_summary.summarize(
      connection_config(output_dir, pipeline_name), pipeline_name, run_id)
  return RunArtifacts(output_dir, pipeline_name, summary)
