"""`tfx`: TFX's own command-line interface, with a Kubeflow Pipelines 2.x engine.

    tfx pipeline create --engine=kubeflow --endpoint=URL --pipeline-path=kubeflow_runner.py
    tfx pipeline update --engine=kubeflow --endpoint=URL --pipeline-path=kubeflow_runner.py
    tfx run create --pipeline_name=taxi-tips --endpoint=URL --engine=kubeflow [--wait]
    tfx pipeline compile --engine=vertex --pipeline_path=kubeflow_runner.py

TFX 1.16's commands, flags and help (tfx.tools.cli), with two changes to how
a command picks its handler (TFX's `handler_factory.create_handler`):

- `--engine=kubeflow` is served by deploy/kfp_handler.py, on the Kubeflow
  Pipelines 2.x API; TFX's own handler needs the KFP v1 SDK and no longer
  imports.
- Whether `kfp` or Airflow is installed is read from this interpreter's
  packages, not from `pip freeze` of whichever `pip` comes first on PATH, so
  the command works without an activated virtual environment.

`run create` gains `--wait`, `--poll_interval` and `--timeout` (Kubeflow
only). Every other engine keeps TFX's handler and behaviour.

scripts/setup_venv.sh installs scripts/tfx_entry_point.py as `.venv/bin/tfx`,
which runs `main`; `python -m deploy.tfx_cli` is the same command.
"""
import contextlib
import importlib
from importlib import metadata
import os
import sys
from typing import Any, Dict, Iterator, List, Optional
import warnings

# Before TensorFlow loads (TFX's CLI imports it): keep its start-up notices and
# the Google clients' Python-version warnings out of the output.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
warnings.filterwarnings('ignore', category=FutureWarning)

import click  # pylint: disable=g-import-not-at-top
from tfx.tools.cli import cli_context  # pylint: disable=g-import-not-at-top
from tfx.tools.cli import cli_main  # pylint: disable=g-import-not-at-top
from tfx.tools.cli import labels  # pylint: disable=g-import-not-at-top
from tfx.tools.cli.commands import run as run_commands  # pylint: disable=g-import-not-at-top
from tfx.tools.cli.handler import base_handler  # pylint: disable=g-import-not-at-top
from tfx.tools.cli.handler import handler_factory  # pylint: disable=g-import-not-at-top

from deploy import kfp_handler  # pylint: disable=g-import-not-at-top

AIRFLOW_PACKAGE = labels.AIRFLOW_PACKAGE_NAME
KFP_PACKAGE = labels.KUBEFLOW_PACKAGE_NAME

# engine -> (the distribution it needs or None, TFX's handler class).
_TFX_HANDLERS = {
    labels.AIRFLOW_ENGINE: (
        AIRFLOW_PACKAGE, 'tfx.tools.cli.handler.airflow_handler.AirflowHandler'),
    labels.BEAM_ENGINE: (
        None, 'tfx.tools.cli.handler.beam_handler.BeamHandler'),
    labels.LOCAL_ENGINE: (
        None, 'tfx.tools.cli.handler.local_handler.LocalHandler'),
    labels.VERTEX_ENGINE: (
        KFP_PACKAGE, 'tfx.tools.cli.handler.vertex_handler.VertexHandler'),
}
ENGINES = sorted(list(_TFX_HANDLERS) + [labels.KUBEFLOW_ENGINE])


def installed(distribution: str) -> bool:
  """Whether `distribution` is installed for this interpreter."""
  try:
    metadata.version(distribution)
  except metadata.PackageNotFoundError:
    return False
  return True


def _detect_engine() -> str:
  """`--engine=auto`: TFX's rule, on this interpreter's packages."""
  airflow, kfp = installed(AIRFLOW_PACKAGE), installed(KFP_PACKAGE)
  if airflow and kfp:
    sys.exit('Multiple orchestrators found. Choose one using --engine flag.')
  engine = (labels.AIRFLOW_ENGINE if airflow else
            labels.KUBEFLOW_ENGINE if kfp else labels.LOCAL_ENGINE)
  click.echo(f'Detected {engine.capitalize()}.')
  click.echo('Use --engine flag if you intend to use a different orchestrator.')
  return engine


def _tfx_handler(engine: str,
                 flags_dict: Dict[str, Any]) -> base_handler.BaseHandler:
  package, dotted_class = _TFX_HANDLERS[engine]
  if package and not installed(package):
    sys.exit(f'--engine={engine} needs the `{package}` package, which is not '
             f'installed for {sys.executable}.')
  module_name, class_name = dotted_class.rsplit('.', 1)
  return getattr(importlib.import_module(module_name), class_name)(flags_dict)


def create_handler(flags_dict: Dict[str, Any]) -> base_handler.BaseHandler:
  """The handler for the command's `--engine`, in place of TFX's factory.

  Args:
    flags_dict: the command's flags (TFX's `Context.flags_dict`).

  Returns:
    deploy/kfp_handler.py's handler for `kubeflow`, TFX's for the others.

  Raises:
    click.UsageError: an unknown engine, or --wait with another engine.
  """
  engine = flags_dict[labels.ENGINE_FLAG]
  if engine == 'auto':
    engine = flags_dict[labels.ENGINE_FLAG] = _detect_engine()
  if engine not in ENGINES:
    raise click.UsageError(f'--engine={engine} is not supported; use one of '
                           f'{", ".join(ENGINES)}')
  if flags_dict.get(kfp_handler.WAIT) and engine != labels.KUBEFLOW_ENGINE:
    raise click.UsageError('--wait works with --engine=kubeflow only')
  if engine == labels.KUBEFLOW_ENGINE:
    return kfp_handler.KubeflowPipelinesHandler(flags_dict)
  return _tfx_handler(engine, flags_dict)


def _run_create_with_wait(create: click.Command) -> click.Command:
  """TFX's `run create`, plus --wait, --poll_interval and --timeout."""

  def callback(wait: bool, poll_interval: float, timeout: float, **kwargs):
    context = click.get_current_context().ensure_object(cli_context.Context)
    context.flags_dict.update({kfp_handler.WAIT: wait,
                               kfp_handler.POLL_INTERVAL: poll_interval,
                               kfp_handler.TIMEOUT: timeout})
    return create.callback(**kwargs)

  options = [
      click.Option(['--wait'], is_flag=True, default=False,
                   help='Kubeflow: poll until the run ends; exit 1 unless it '
                   'succeeded.'),
      click.Option(['--poll_interval', '--poll-interval'], type=float,
                   default=30.0, show_default=True,
                   help='Seconds between two polls of --wait.'),
      click.Option(['--timeout'], type=float, default=0.0,
                   help='Give up waiting after this many seconds (default: '
                   'no limit).'),
  ]
  return click.Command(create.name, callback=callback,
                       params=list(create.params) + options, help=create.help)


def command_group() -> click.Group:
  """TFX's `tfx` command group, with the extended `run create`."""
  run_group = run_commands.run_group
  commands = dict(run_group.commands)
  commands['create'] = _run_create_with_wait(commands['create'])
  groups = dict(cli_main.cli_group.commands)
  groups['run'] = click.Group(run_group.name, commands=commands,
                              callback=run_group.callback, help=run_group.help)
  return click.Group(cli_main.cli_group.name, commands=groups,
                     callback=cli_main.cli_group.callback,
                     help=cli_main.cli_group.help)


@contextlib.contextmanager
def project_engines() -> Iterator[None]:
  """TFX's commands pick their handler with `create_handler` (above)."""
  tfx_factory = handler_factory.create_handler
  handler_factory.create_handler = create_handler
  try:
    yield
  finally:
    handler_factory.create_handler = tfx_factory


def main(argv: Optional[List[str]] = None) -> None:
  """Runs the command in `argv` (default: sys.argv) and exits with its status.

  Raises:
    SystemExit: always, as click's commands end.
  """
  with project_engines():
    command_group().main(args=argv, prog_name='tfx')


if __name__ == '__main__':
  main()
