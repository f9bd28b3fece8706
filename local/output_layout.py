"""The folder layout of a local run's outputs under LOCAL_OUTPUT_DIR, defined
once (local_runner.py, the run report, the predict command, the notebooks and
the benchmarks use it). Standard library only, so the runner's checks before
a run stay fast.

    pipelines/<name>/            every artifact
    metadata/<name>/metadata.db  the ML Metadata store
    serving_model/<name>/<n>/    each pushed model
    reports/<name>/<run>.html    the run reports
    monitoring/<name>/<window>/  each monitoring window: its statistics and
                                 report (make monitor)
"""
import dataclasses
import os
import re


def pipeline_root(output_dir: str, pipeline_name: str) -> str:
  return os.path.join(output_dir, 'pipelines', pipeline_name)


def metadata_path(output_dir: str, pipeline_name: str) -> str:
  return os.path.join(output_dir, 'metadata', pipeline_name, 'metadata.db')


def serving_model_dir(output_dir: str, pipeline_name: str) -> str:
  return os.path.join(output_dir, 'serving_model', pipeline_name)


def report_path(output_dir: str, pipeline_name: str, run_id: str) -> str:
  """reports/<name>/<run id>.html, the run id made safe as a file name."""
  safe = re.sub(r'[^A-Za-z0-9._-]', '-', run_id)
  return os.path.join(output_dir, 'reports', pipeline_name, safe + '.html')


def monitoring_dir(output_dir: str, pipeline_name: str) -> str:
  """monitoring/<name>/: one folder per monitoring window, oldest first."""
  return os.path.join(output_dir, 'monitoring', pipeline_name)


@dataclasses.dataclass(frozen=True)
class PipelineLayout:
  """Where one pipeline's run writes: its artifacts, its metadata store and
  its pushed models."""
  pipeline_root: str
  metadata_path: str
  serving_model_dir: str

  @classmethod
  def of(cls, output_dir: str, pipeline_name: str) -> 'PipelineLayout':
    return cls(pipeline_root(output_dir, pipeline_name),
               metadata_path(output_dir, pipeline_name),
               serving_model_dir(output_dir, pipeline_name))
