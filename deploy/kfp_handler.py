"""`tfx ... --engine=kubeflow`: TFX's CLI handler for Kubeflow Pipelines 2.x.

TFX 1.16 dropped its Kubeflow Pipelines v1 handler; this one implements TFX's
handler interface on `kfp.Client` (API v2beta1), so TFX's own commands and
flags work unchanged:

    tfx pipeline create --engine=kubeflow --endpoint=URL --pipeline-path=kubeflow_runner.py
    tfx pipeline update --engine=kubeflow --endpoint=URL --pipeline-path=kubeflow_runner.py
    tfx run create --pipeline_name=taxi-tips --endpoint=URL --engine=kubeflow [--wait]

- `pipeline create|update` compile the Kubeflow target (deploy/kfp_spec.py)
  and upload it as a new pipeline, or as a new version `<name>-<UTC time>`.
- `run create` runs the newest version in the experiment named after the
  pipeline and prints the run's link; with `--wait` it polls until the run
  ends and exits 1 unless it succeeded.
- `pipeline list|delete|compile`, `run list|status|terminate|delete`.

Every failure is one line and exit status 1 (deploy/kfp_connection.py).
"""
import datetime
import functools
import tempfile
import time
from typing import Any, Callable, Dict, List

import click
from tfx.tools.cli import labels
from tfx.tools.cli.handler import base_handler

from deploy import kfp_connection
from deploy import kfp_spec
from deploy.kfp_connection import KfpCliError

# Flags of `run create` that TFX's CLI lacks (deploy/tfx_cli.py adds them).
WAIT = 'wait'
POLL_INTERVAL = 'poll_interval'
TIMEOUT = 'timeout'

# The states after which a Kubeflow Pipelines run changes no more.
SUCCEEDED = 'SUCCEEDED'
FINAL_STATES = (SUCCEEDED, 'FAILED', 'SKIPPED', 'CANCELED')
_PAGE_SIZE = 100


def _timestamp() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')


def _all_pages(list_page: Callable[[str], Any], field: str) -> List[Any]:
  items, token = [], ''
  while True:
    page = list_page(token)
    items.extend(getattr(page, field) or [])
    token = page.next_page_token
    if not token:
      return items


def _api_call(method: Callable[..., None]) -> Callable[..., None]:
  """Runs a handler method with one-line errors for API failures."""

  @functools.wraps(method)
  def wrapper(self, *args, **kwargs):
    with kfp_connection.one_line_errors():
      return method(self, *args, **kwargs)

  return wrapper


class KubeflowPipelinesHandler(base_handler.BaseHandler):
  """TFX's CLI commands on a Kubeflow Pipelines 2.x API."""

  def __init__(self, flags_dict: Dict[str, Any]):
    super().__init__(flags_dict)
    self._connected = None
    if flags_dict.get(labels.BUILD_IMAGE):
      raise KfpCliError('--build-image is not supported with --engine='
                        'kubeflow: build the pipeline image with `make image`')

  @property
  def _client(self):
    """The kfp.Client, connected on first use (compiling needs none)."""
    if self._connected is None:
      self._connected = kfp_connection.connect(
          self.flags_dict.get(labels.ENDPOINT),
          self.flags_dict.get(labels.IAP_CLIENT_ID),
          self.flags_dict.get(labels.NAMESPACE))
    return self._connected

  @property
  def _namespace(self):
    return kfp_connection.namespace_filter(
        self.flags_dict.get(labels.NAMESPACE))

  def _pipeline_id(self, name: str, required: bool = True):
    try:
      pipeline_id = self._client.get_pipeline_id(name)
    except ValueError as error:  # several pipelines of that name
      raise KfpCliError(str(error)) from None
    if required and not pipeline_id:
      raise KfpCliError(f'pipeline "{name}" does not exist at this endpoint; '
                        'create it with `tfx pipeline create`')
    return pipeline_id

  # --- Pipelines -----------------------------------------------------------

  @_api_call
  def create_pipeline(self) -> None:
    """Compiles and uploads a new pipeline."""
    client = self._client  # An unreachable endpoint fails before compiling.
    with tempfile.TemporaryDirectory() as output_dir:
      spec = kfp_spec.compile_spec(
          self.flags_dict[labels.PIPELINE_DSL_PATH], output_dir)
      name = kfp_spec.pipeline_name(spec)
      if self._pipeline_id(name, required=False):
        raise KfpCliError(f'pipeline "{name}" already exists; upload a new '
                          'version with `tfx pipeline update`')
      pipeline = client.upload_pipeline(spec, pipeline_name=name,
                                        namespace=self._namespace)
    click.echo(f'Pipeline "{name}" created (id {pipeline.pipeline_id}).')

  @_api_call
  def update_pipeline(self) -> None:
    """Compiles and uploads a new version of an existing pipeline."""
    client = self._client
    with tempfile.TemporaryDirectory() as output_dir:
      spec = kfp_spec.compile_spec(
          self.flags_dict[labels.PIPELINE_DSL_PATH], output_dir)
      name = kfp_spec.pipeline_name(spec)
      version = client.upload_pipeline_version(
          spec, pipeline_version_name=f'{name}-{_timestamp()}',
          pipeline_id=self._pipeline_id(name))
    click.echo(f'Pipeline "{name}" updated: version "{version.display_name}" '
               f'(id {version.pipeline_version_id}).')

  def compile_pipeline(self) -> None:
    """Compiles the Kubeflow target where the pipeline file writes it."""
    kfp_spec.run_pipeline_file(self.flags_dict[labels.PIPELINE_DSL_PATH],
                               [kfp_spec.KUBEFLOW_TARGET])
    click.echo('Pipeline compiled successfully.')

  @_api_call
  def list_pipelines(self) -> None:
    """Lists the pipelines."""
    pipelines = _all_pages(
        lambda token: self._client.list_pipelines(
            page_token=token, page_size=_PAGE_SIZE, namespace=self._namespace),
        'pipelines')
    if not pipelines:
      click.echo('No pipelines to display.')
      return
    click.echo(self._format_table(
        ['pipeline_name', 'pipeline_id', 'created_at'],
        [[p.display_name, p.pipeline_id, p.created_at] for p in pipelines]))

  @_api_call
  def delete_pipeline(self) -> None:
    """Deletes a pipeline and all its versions (the API wants them gone)."""
    name = self.flags_dict[labels.PIPELINE_NAME]
    pipeline_id = self._pipeline_id(name)
    versions = _all_pages(
        lambda token: self._client.list_pipeline_versions(
            pipeline_id=pipeline_id, page_token=token, page_size=_PAGE_SIZE),
        'pipeline_versions')
    for version in versions:
      self._client.delete_pipeline_version(
          pipeline_id=pipeline_id,
          pipeline_version_id=version.pipeline_version_id)
    self._client.delete_pipeline(pipeline_id)
    click.echo(f'Pipeline "{name}" deleted with {len(versions)} version(s).')

  def get_schema(self) -> None:
    raise KfpCliError('`tfx pipeline schema` is not supported with --engine='
                      'kubeflow: export the schema of a local run with '
                      '`make schema`')

  # --- Runs ----------------------------------------------------------------

  @_api_call
  def create_run(self) -> None:
    """Runs the newest version of a pipeline in the pipeline's experiment."""
    name = self.flags_dict[labels.PIPELINE_NAME]
    pipeline_id = self._pipeline_id(name)
    versions = self._client.list_pipeline_versions(
        pipeline_id=pipeline_id, sort_by='created_at desc', page_size=1)
    if not versions.pipeline_versions:
      raise KfpCliError(f'pipeline "{name}" has no version to run')
    version = versions.pipeline_versions[0]
    experiment = self._client.create_experiment(name,
                                                namespace=self._namespace)
    run = self._client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=f'{name}-{_timestamp()}',
        params=self.flags_dict.get(labels.RUNTIME_PARAMETER) or None,
        pipeline_id=pipeline_id,
        version_id=version.pipeline_version_id)
    click.echo(f'Run {run.run_id} created for pipeline "{name}", version '
               f'"{version.display_name}": {self._run_link(run.run_id)}')
    if self.flags_dict.get(WAIT):
      self._wait_for(run.run_id)

  def _run_link(self, run_id: str) -> str:
    # kfp.Client's own rule for its links (UI endpoint, else the API's).
    return f'{self._client._get_url_prefix()}/#/runs/details/{run_id}'  # pylint: disable=protected-access

  def _wait_for(self, run_id: str) -> None:
    """Polls a run, printing each state change, until it is final.

    Raises:
      KfpCliError: the run ended other than SUCCEEDED, or was still going
        after --timeout seconds.
    """
    timeout = self.flags_dict.get(TIMEOUT) or 0
    deadline = time.monotonic() + timeout if timeout else None
    last_state = None
    while True:
      run = self._client.get_run(run_id)
      state = run.state or 'PENDING'
      if state != last_state:
        click.echo(f'{datetime.datetime.now():%H:%M:%S} run {run_id}: {state}')
        last_state = state
      if state == SUCCEEDED:
        click.echo(f'Run {run_id} succeeded.')
        return
      if state in FINAL_STATES:
        error = run.error.message if run.error and run.error.message else ''
        raise KfpCliError(f'run {run_id} ended {state}' +
                          (f': {" ".join(error.split())}' if error else ''))
      if deadline is not None and time.monotonic() > deadline:
        raise KfpCliError(f'run {run_id} still {state} after {timeout:g} s')
      time.sleep(self.flags_dict.get(POLL_INTERVAL) or 30.0)

  def _print_runs(self, runs: List[Any]) -> None:
    click.echo(self._format_table(
        ['pipeline_name', 'run_id', 'status', 'created_at', 'link'],
        [[self.flags_dict.get(labels.PIPELINE_NAME, ''), run.run_id,
          run.state, run.created_at, self._run_link(run.run_id)]
         for run in runs]))

  @_api_call
  def list_runs(self) -> None:
    """Lists the runs in the pipeline's experiment, newest first."""
    name = self.flags_dict[labels.PIPELINE_NAME]
    self._pipeline_id(name)
    try:
      experiment = self._client.get_experiment(experiment_name=name,
                                               namespace=self._namespace)
    except ValueError:  # no experiment yet: the pipeline never ran
      experiment = None
    runs = [] if experiment is None else _all_pages(
        lambda token: self._client.list_runs(
            page_token=token, page_size=_PAGE_SIZE, sort_by='created_at desc',
            experiment_id=experiment.experiment_id), 'runs')
    if runs:
      self._print_runs(runs)
    else:
      click.echo('No runs found.')

  @_api_call
  def get_run(self) -> None:
    """Prints a run's state and link."""
    self._print_runs([self._client.get_run(self.flags_dict[labels.RUN_ID])])

  @_api_call
  def terminate_run(self) -> None:
    """Asks Kubeflow Pipelines to stop a run."""
    self._client.terminate_run(self.flags_dict[labels.RUN_ID])
    click.echo(f'Run {self.flags_dict[labels.RUN_ID]} terminated.')

  @_api_call
  def delete_run(self) -> None:
    """Deletes a run."""
    self._client.delete_run(self.flags_dict[labels.RUN_ID])
    click.echo(f'Run {self.flags_dict[labels.RUN_ID]} deleted.')

