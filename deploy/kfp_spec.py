"""The Kubeflow Pipelines spec that `tfx pipeline create|update` uploads.

`--pipeline_path` names either a pipeline file that compiles itself when run
as `python FILE --target=kubeflow [--output_dir=DIR]` (kubeflow_runner.py) or
an already compiled pipeline spec (.yaml). The file runs in this process, as
TFX's own CLI runs a pipeline file: as `__main__`, with its folder first on
`sys.path`.
"""
import os
import runpy
import sys
from typing import List

import yaml

from deploy.kfp_connection import KfpCliError

KUBEFLOW_TARGET = '--target=kubeflow'


def run_pipeline_file(pipeline_path: str, args: List[str]) -> None:
  """Runs the pipeline file `pipeline_path` as a program with `args`.

  Args:
    pipeline_path: a .py file.
    args: its command-line arguments.

  Raises:
    KfpCliError: the file is missing or exits with a non-zero status.
  """
  if not os.path.isfile(pipeline_path):
    raise KfpCliError(f'no pipeline file at {pipeline_path}')
  if not pipeline_path.endswith('.py'):
    raise KfpCliError(f'{pipeline_path} is not a .py pipeline file')
  path = os.path.abspath(pipeline_path)
  old_argv, old_path = sys.argv, list(sys.path)
  sys.argv = [path] + args
  sys.path.insert(0, os.path.dirname(path))
  status = 0
  try:
    runpy.run_path(path, run_name='__main__')
  except SystemExit as system_exit:
    status = system_exit.code
  finally:
    sys.argv, sys.path[:] = old_argv, old_path
  if status not in (0, None):
    raise KfpCliError(f'compiling {pipeline_path} failed (exit status '
                      f'{status}); see the messages above')


def compile_spec(pipeline_path: str, output_dir: str) -> str:
  """The pipeline spec YAML for `pipeline_path`, compiling a .py first.

  Args:
    pipeline_path: a pipeline file or a compiled spec (.yaml/.yml).
    output_dir: an empty folder the compiled spec is written to.

  Returns:
    The path of the pipeline spec YAML.

  Raises:
    KfpCliError: the file is missing, of an unknown kind, or fails to compile.
  """
  if not os.path.isfile(pipeline_path):
    raise KfpCliError(f'no pipeline file at {pipeline_path}')
  if pipeline_path.endswith(('.yaml', '.yml')):
    return pipeline_path
  if not pipeline_path.endswith('.py'):
    raise KfpCliError(f'{pipeline_path} is neither a .py pipeline file nor a '
                      'compiled .yaml spec')
  run_pipeline_file(pipeline_path,
                    [KUBEFLOW_TARGET, f'--output_dir={output_dir}'])
  specs = [name for name in os.listdir(output_dir)
           if name.endswith(('.yaml', '.yml'))]
  if len(specs) != 1:
    raise KfpCliError(f'{pipeline_path} wrote {len(specs)} pipeline specs '
                      f'(.yaml) with {KUBEFLOW_TARGET}; expected one')
  return os.path.join(output_dir, specs[0])


def pipeline_name(spec_path: str) -> str:
  """The pipeline name recorded in the pipeline spec at `spec_path`.

  Raises:
    KfpCliError: the file is not a Kubeflow Pipelines spec.
  """
  try:
    with open(spec_path) as spec_file:
      spec = yaml.safe_load(spec_file)
    return spec['pipelineInfo']['name']
  except (KeyError, TypeError, yaml.YAMLError):
    raise KfpCliError(f'{spec_path} is not a pipeline spec (no pipelineInfo.'
                      'name); a Vertex AI PipelineJob cannot be uploaded to '
                      'Kubeflow Pipelines') from None
