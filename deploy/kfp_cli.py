"""`tfx pipeline|run` for Kubeflow Pipelines 2.x, where `--engine=kubeflow` is gone.

    python -m deploy.kfp_cli pipeline create --endpoint=URL --pipeline_path=kubeflow_runner.py
    python -m deploy.kfp_cli pipeline update --endpoint=URL --pipeline_path=kubeflow_runner.py
    python -m deploy.kfp_cli pipeline list   --endpoint=URL
    python -m deploy.kfp_cli pipeline delete --endpoint=URL --pipeline_name=taxi-tips
    python -m deploy.kfp_cli run create      --endpoint=URL --pipeline_name=taxi-tips --wait

`--pipeline_path` is a pipeline file that compiles itself when run with
`--target=kubeflow --output_dir=DIR` (kubeflow_runner.py), or an already
compiled pipeline spec (.yaml). Built on `kfp.Client` (Kubeflow Pipelines API
v2beta1) and authenticates as it does: `--iap_client_id` for an endpoint
behind Identity-Aware Proxy, `--token` (or KF_PIPELINES_TOKEN) for a bearer
token, nothing for a port-forward or, with no endpoint, from inside the
cluster. KF_PIPELINES_ENDPOINT is the default endpoint.

Exit status: 0 on success; 1 when a run fails, the endpoint cannot be reached
or the API refuses a request; 2 for bad usage.
"""
import argparse
import datetime
import glob
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Optional
import urllib.error
import urllib.request
import warnings

import yaml

# The states after which a Kubeflow Pipelines run changes no more.
SUCCEEDED = 'SUCCEEDED'
FINAL_STATES = (SUCCEEDED, 'FAILED', 'SKIPPED', 'CANCELED')

_TOKEN_ENV = 'KF_PIPELINES_TOKEN'
_ENDPOINT_ENV = 'KF_PIPELINES_ENDPOINT'


class CliError(Exception):
  """A failure the CLI reports in one line and exits 1 for."""


# --- Pipeline files --------------------------------------------------------


def compile_pipeline(pipeline_path: str, output_dir: str) -> str:
  """The pipeline spec YAML for `pipeline_path`, compiling a .py first.

  Args:
    pipeline_path: a pipeline file (run with `--target=kubeflow
      --output_dir=...`) or a compiled spec (.yaml/.yml).
    output_dir: where a compiled spec is written.

  Returns:
    The path of the pipeline spec YAML.

  Raises:
    CliError: the file is missing, of an unknown kind, or fails to compile.
  """
  if not os.path.isfile(pipeline_path):
    raise CliError(f'no pipeline file at {pipeline_path}')
  if pipeline_path.endswith(('.yaml', '.yml')):
    return pipeline_path
  if not pipeline_path.endswith('.py'):
    raise CliError(f'{pipeline_path} is neither a .py pipeline file nor a '
                   'compiled .yaml spec')
  print(f'Compiling {pipeline_path} for Kubeflow Pipelines...', flush=True)
  result = subprocess.run(
      [sys.executable, os.path.abspath(pipeline_path), '--target=kubeflow',
       f'--output_dir={output_dir}'],
      cwd=os.path.dirname(os.path.abspath(pipeline_path)), check=False)
  specs = glob.glob(os.path.join(output_dir, '*.yaml'))
  if result.returncode != 0 or len(specs) != 1:
    raise CliError(f'compiling {pipeline_path} failed (exit status '
                   f'{result.returncode}); see the messages above')
  return specs[0]


def spec_pipeline_name(spec_path: str) -> str:
  """The pipeline name recorded in the pipeline spec at `spec_path`."""
  with open(spec_path) as spec_file:
    spec = yaml.safe_load(spec_file)
  try:
    return spec['pipelineInfo']['name']
  except (KeyError, TypeError):
    raise CliError(f'{spec_path} is not a pipeline spec (no pipelineInfo.name);'
                   ' a Vertex AI PipelineJob JSON cannot be uploaded to '
                   'Kubeflow Pipelines') from None


# --- Connection ------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):

  def redirect_request(self, *args, **kwargs):  # pylint: disable=unused-argument
    return None  # An IAP login redirect still proves the endpoint is up.


def check_reachable(endpoint: str, timeout: float = 10.0) -> None:
  """Fails fast when nothing answers HTTP at `endpoint`.

  kfp.Client would otherwise retry its health check for about half a minute.

  Args:
    endpoint: the Kubeflow Pipelines URL.
    timeout: seconds to wait for an answer.

  Raises:
    CliError: the connection failed (any HTTP answer counts as reachable).
  """
  url = endpoint if endpoint.startswith('http') else 'https://' + endpoint
  opener = urllib.request.build_opener(_NoRedirect)
  try:
    opener.open(url.rstrip('/') + '/apis/v2beta1/healthz', timeout=timeout)
  except urllib.error.HTTPError:
    return
  except (urllib.error.URLError, OSError) as error:
    reason = getattr(error, 'reason', error)
    raise CliError(f'cannot reach Kubeflow Pipelines at {endpoint}: '
                   f'{reason}') from None


def connect(args: argparse.Namespace):
  """A kfp.Client for the endpoint and credentials in `args`."""
  endpoint = args.endpoint or os.environ.get(_ENDPOINT_ENV)
  if endpoint:
    check_reachable(endpoint)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', FutureWarning)
    import kfp  # pylint: disable=g-import-not-at-top
    return kfp.Client(
        host=endpoint,
        client_id=args.iap_client_id,
        existing_token=args.token or os.environ.get(_TOKEN_ENV),
        namespace=args.namespace)


def _pipeline_id(client, name: str) -> Optional[str]:
  try:
    return client.get_pipeline_id(name)
  except ValueError as error:
    raise CliError(str(error)) from None


def _require_pipeline_id(client, name: str) -> str:
  pipeline_id = _pipeline_id(client, name)
  if not pipeline_id:
    raise CliError(f'pipeline "{name}" does not exist; create it with '
                   '`pipeline create`')
  return pipeline_id


def _timestamp() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')


# --- Commands --------------------------------------------------------------


def pipeline_create(client, args: argparse.Namespace) -> int:
  """Compiles and uploads a new pipeline."""
  with tempfile.TemporaryDirectory() as output_dir:
    spec = compile_pipeline(args.pipeline_path, output_dir)
    name = args.pipeline_name or spec_pipeline_name(spec)
    if _pipeline_id(client, name):
      raise CliError(f'pipeline "{name}" already exists; upload a new version '
                     'with `pipeline update`')
    pipeline = client.upload_pipeline(spec, pipeline_name=name,
                                      description=args.description)
  print(f'Pipeline "{name}" created (id {pipeline.pipeline_id}).')
  return 0


def pipeline_update(client, args: argparse.Namespace) -> int:
  """Compiles and uploads a new version of an existing pipeline."""
  with tempfile.TemporaryDirectory() as output_dir:
    spec = compile_pipeline(args.pipeline_path, output_dir)
    name = args.pipeline_name or spec_pipeline_name(spec)
    pipeline_id = _require_pipeline_id(client, name)
    version = client.upload_pipeline_version(
        spec, pipeline_version_name=f'{name}-{_timestamp()}',
        pipeline_id=pipeline_id, description=args.description)
  print(f'Pipeline "{name}" updated: version "{version.display_name}" '
        f'(id {version.pipeline_version_id}).')
  return 0


def _all_pages(list_page: Callable[[str], object], field: str) -> List:
  items, token = [], ''
  while True:
    page = list_page(token)
    items.extend(getattr(page, field) or [])
    token = page.next_page_token
    if not token:
      return items


def pipeline_delete(client, args: argparse.Namespace) -> int:
  """Deletes a pipeline and all its versions."""
  pipeline_id = _require_pipeline_id(client, args.pipeline_name)
  versions = _all_pages(
      lambda token: client.list_pipeline_versions(
          pipeline_id=pipeline_id, page_token=token, page_size=100),
      'pipeline_versions')
  for version in versions:
    client.delete_pipeline_version(
        pipeline_id=pipeline_id,
        pipeline_version_id=version.pipeline_version_id)
  client.delete_pipeline(pipeline_id)
  print(f'Pipeline "{args.pipeline_name}" deleted with {len(versions)} '
        'version(s).')
  return 0


def pipeline_list(client, args: argparse.Namespace) -> int:
  """Lists the pipelines."""
  pipelines = _all_pages(
      lambda token: client.list_pipelines(
          page_token=token, page_size=100, namespace=args.namespace_filter),
      'pipelines')
  if not pipelines:
    print('No pipelines.')
  for pipeline in pipelines:
    print(f'{pipeline.display_name}\t{pipeline.pipeline_id}')
  return 0


def wait_for_run(client, run_id: str, poll_interval: float,
                 timeout: float) -> str:
  """Polls run `run_id`, printing each state change, until it is final.

  Args:
    client: a kfp.Client.
    run_id: the run to watch.
    poll_interval: seconds between two status requests.
    timeout: seconds to wait at most; 0 waits as long as it takes.

  Returns:
    The run's final state, such as SUCCEEDED or FAILED.

  Raises:
    CliError: the run was still going after `timeout` seconds.
  """
  deadline = time.monotonic() + timeout if timeout else None
  last_state = None
  while True:
    run = client.get_run(run_id)
    state = run.state or 'PENDING'
    if state != last_state:
      print(f'{datetime.datetime.now():%H:%M:%S} run {run_id}: {state}',
            flush=True)
      last_state = state
    if state in FINAL_STATES:
      if state != SUCCEEDED and run.error and run.error.message:
        print(f'Error: {run.error.message}', file=sys.stderr)
      return state
    if deadline is not None and time.monotonic() > deadline:
      raise CliError(f'run {run_id} still {state} after {timeout:g} s')
    time.sleep(poll_interval)


def run_create(client, args: argparse.Namespace) -> int:
  """Runs the newest version of a pipeline in an experiment."""
  name = args.pipeline_name
  pipeline_id = _require_pipeline_id(client, name)
  versions = client.list_pipeline_versions(
      pipeline_id=pipeline_id, sort_by='created_at desc', page_size=1)
  if not versions.pipeline_versions:
    raise CliError(f'pipeline "{name}" has no version to run')
  version = versions.pipeline_versions[0]
  experiment = client.create_experiment(args.experiment or name,
                                        namespace=args.namespace_filter)
  run = client.run_pipeline(
      experiment_id=experiment.experiment_id,
      job_name=f'{name}-{_timestamp()}',
      pipeline_id=pipeline_id,
      version_id=version.pipeline_version_id)
  print(f'Run {run.run_id} created for pipeline "{name}", version '
        f'"{version.display_name}".')
  if not args.wait:
    return 0
  state = wait_for_run(client, run.run_id, args.poll_interval, args.timeout)
  if state != SUCCEEDED:
    print(f'Run {run.run_id} ended {state}.', file=sys.stderr)
    return 1
  print(f'Run {run.run_id} succeeded.')
  return 0


# --- Command line ----------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
  connection = argparse.ArgumentParser(add_help=False)
  connection.add_argument(
      '--endpoint', help='Kubeflow Pipelines URL, e.g. https://HOST or '
      'http://localhost:8080 (default: $KF_PIPELINES_ENDPOINT; none: '
      'in-cluster or kubeconfig)')
  connection.add_argument('--iap_client_id', '--iap-client-id',
                          help='OAuth client id of the Identity-Aware Proxy '
                          'in front of the endpoint')
  connection.add_argument('--token', help='bearer token (default: '
                          f'${_TOKEN_ENV})')
  connection.add_argument('--namespace', default='kubeflow',
                          help='Kubernetes namespace of a multi-user '
                          'deployment (default: kubeflow)')

  def add(subparsers, name, function, help_text):
    parser = subparsers.add_parser(name, parents=[connection], help=help_text,
                                   description=help_text)
    parser.set_defaults(function=function)
    return parser

  def pipeline_path(parser):
    parser.add_argument('--pipeline_path', '--pipeline-path', required=True,
                        help='kubeflow_runner.py, or a compiled spec .yaml')
    parser.add_argument('--pipeline_name', '--pipeline-name',
                        help='name in Kubeflow Pipelines (default: the '
                        'compiled pipeline name)')
    parser.add_argument('--description', help='shown in the UI')

  def pipeline_name(parser):
    parser.add_argument('--pipeline_name', '--pipeline-name', required=True)

  parser = argparse.ArgumentParser(
      prog='python -m deploy.kfp_cli',
      description=__doc__.split('\n\n')[0])
  groups = parser.add_subparsers(dest='group', required=True)
  pipeline = groups.add_parser('pipeline', help='create, update, delete, '
                               'list pipelines').add_subparsers(
                                   dest='command', required=True)
  pipeline_path(add(pipeline, 'create', pipeline_create,
                    'compile and upload a new pipeline'))
  pipeline_path(add(pipeline, 'update', pipeline_update,
                    'compile and upload a new version of a pipeline'))
  pipeline_name(add(pipeline, 'delete', pipeline_delete,
                    'delete a pipeline and its versions'))
  add(pipeline, 'list', pipeline_list, 'list the pipelines')
  run = groups.add_parser('run', help='create runs').add_subparsers(
      dest='command', required=True)
  create = add(run, 'create', run_create,
               'run the newest version of a pipeline')
  pipeline_name(create)
  create.add_argument('--experiment',
                      help='experiment to run in (default: the pipeline name)')
  create.add_argument('--wait', action='store_true',
                      help='poll until the run ends; exit 1 unless it '
                      'succeeded')
  create.add_argument('--poll_interval', '--poll-interval', type=float,
                      default=30.0, help='seconds between polls (default 30)')
  create.add_argument('--timeout', type=float, default=0.0,
                      help='give up waiting after this many seconds '
                      '(default: no limit)')
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = _parser().parse_args(argv)
  # kfp.Client treats 'kubeflow' as "not set" and asks the cluster instead.
  args.namespace_filter = (None if args.namespace == 'kubeflow' else
                           args.namespace)
  try:
    # kfp_server_api is importable once kfp.Client has loaded.
    client = connect(args)
    import kfp_server_api  # pylint: disable=g-import-not-at-top
    import urllib3  # pylint: disable=g-import-not-at-top
    try:
      return args.function(client, args)
    except kfp_server_api.ApiException as error:
      body = (error.body or '').strip()
      raise CliError(f'Kubeflow Pipelines refused the request: HTTP '
                     f'{error.status} {error.reason} {body}'.strip()) from None
    except urllib3.exceptions.HTTPError as error:
      raise CliError(f'lost the connection to Kubeflow Pipelines: {error}'
                     ) from None
  except (CliError, TimeoutError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 1


if __name__ == '__main__':
  sys.exit(main())
