"""Recurring runs on a cron schedule, on Kubeflow Pipelines or Vertex AI.

    python -m deploy.schedules create --target=kubeflow --cron='0 3 * * *' --endpoint=URL
    python -m deploy.schedules create --target=vertex --cron='0 3 * * *' \\
        --pipeline-file=tfx_output/compiled/taxi-tips.vertex.json
    python -m deploy.schedules list   --target=kubeflow|vertex
    python -m deploy.schedules pause  --target=kubeflow|vertex [--name=NAME]
    python -m deploy.schedules resume --target=kubeflow|vertex [--name=NAME]
    python -m deploy.schedules delete --target=kubeflow|vertex [--name=NAME]

A schedule is named `<PIPELINE_NAME>-schedule` unless --name says otherwise,
and starts at most one run at a time. `--cron` takes the usual five fields
(minute hour day-of-month month day-of-week, UTC; Vertex AI also takes a
`CRON_TZ=Europe/Oslo ` prefix).

Kubeflow Pipelines (deploy/kfp_schedules.py): a recurring run of the newest
version of the uploaded pipeline PIPELINE_NAME (`tfx pipeline create|update
--engine=kubeflow`), reached and authenticated as that command does
(--endpoint, --iap_client_id, a bearer token in KF_PIPELINES_TOKEN). Vertex AI Pipelines
(deploy/vertex_schedules.py): a pipeline job schedule of the compiled job
(`make compile`) in GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_REGION, run as
PIPELINE_SERVICE_ACCOUNT, with the machine's default credentials.

Exit status: 0 on success; 1 when the orchestrator cannot be reached or
refuses the request, or the schedule does not exist (one line says which);
2 for bad usage or a bad setting.
"""
import argparse
import os
import sys
from typing import List, Optional
import warnings

from deploy import kfp_connection
from deploy import kfp_schedules
from deploy import vertex_schedules
from deploy.schedule_types import KUBEFLOW, TARGETS, VERTEX
from deploy.schedule_types import ScheduleError, target_cron
from pipeline import configs

COMMANDS = ('create', 'list', 'pause', 'resume', 'delete')


def _parser(settings: configs.Settings) -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='python -m deploy.schedules',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('command', choices=COMMANDS)
  parser.add_argument('--target', choices=TARGETS, required=True)
  parser.add_argument('--name', default=f'{settings.PIPELINE_NAME}-schedule',
                      help="the schedule's display name (default %(default)s)")
  parser.add_argument('--cron', help="create: five cron fields, e.g. "
                      "'0 3 * * *' (03:00 UTC every day)")
  kubeflow = parser.add_argument_group('Kubeflow Pipelines')
  kubeflow.add_argument('--endpoint', help='Kubeflow Pipelines URL (default: '
                        '$KF_PIPELINES_ENDPOINT)')
  kubeflow.add_argument('--iap_client_id', '--iap-client-id')
  kubeflow.add_argument('--namespace', default='kubeflow')
  kubeflow.add_argument('--experiment', help='create: the experiment of the '
                        'runs (default: PIPELINE_NAME)')
  vertex = parser.add_argument_group('Vertex AI Pipelines')
  vertex.add_argument('--pipeline-file', help='create: the compiled pipeline '
                      'job (make compile writes <output dir>/compiled/'
                      '<pipeline>.vertex.json)')
  vertex.add_argument('--api-endpoint', help='the Vertex AI API endpoint '
                      '(default: <region>-aiplatform.googleapis.com)')
  return parser


def _kubeflow(args, settings: configs.Settings):
  cron = target_cron(args.cron, KUBEFLOW) if args.command == 'create' else ''
  client = kfp_connection.connect(args.endpoint, args.iap_client_id,
                                  args.namespace)
  if args.command == 'create':
    return kfp_schedules.create(
        client, args.name, cron,
        settings.PIPELINE_NAME, args.experiment,
        None if args.namespace == 'kubeflow' else args.namespace)
  if args.command == 'list':
    return kfp_schedules.list_all(client)
  return getattr(kfp_schedules, args.command)(client, args.name)


def _vertex(args, settings: configs.Settings, credentials):
  cron = target_cron(args.cron, VERTEX) if args.command == 'create' else ''
  if not settings.GOOGLE_CLOUD_PROJECT:
    raise ScheduleError('GOOGLE_CLOUD_PROJECT is not set: Vertex AI '
                        'schedules live in a project (set it in '
                        'pipeline/configs.py or as an environment variable)')
  location = vertex_schedules.VertexLocation(
      settings.GOOGLE_CLOUD_PROJECT, settings.GOOGLE_CLOUD_REGION,
      credentials, args.api_endpoint)
  if args.command == 'create':
    if not args.pipeline_file:
      raise ScheduleError('create --target=vertex needs --pipeline-file, the '
                          'compiled pipeline job (make compile)')
    return vertex_schedules.create(
        location, args.name, cron, args.pipeline_file,
        f'{settings.PIPELINE_SERVICE_ACCOUNT}@{settings.GOOGLE_CLOUD_PROJECT}'
        '.iam.gserviceaccount.com')
  if args.command == 'list':
    return vertex_schedules.list_all(location)
  return getattr(vertex_schedules, args.command)(location, args.name)


def _report(command: str, target: str, result) -> None:
  if isinstance(result, list):
    if not result:
      print(f'No schedules on {target}.')
    for schedule in result:
      print(schedule.line())
    return
  done = {'create': 'created', 'pause': 'paused', 'resume': 'resumed',
          'delete': 'deleted'}[command]
  print(f'Schedule "{result.name}" {done} on {target} ({result.cron}; '
        f'{result.id}).')


def _refusal(error: Exception) -> Optional[str]:
  """One line for an orchestrator's refusal or a lost connection."""
  # pylint: disable=g-import-not-at-top
  from google.api_core import exceptions as api_exceptions
  from google.auth import exceptions as auth_exceptions
  import kfp_server_api
  import urllib3
  # pylint: enable=g-import-not-at-top
  if isinstance(error, kfp_server_api.ApiException):
    return (f'Kubeflow Pipelines refused the request: HTTP {error.status} '
            f'{error.reason} {(error.body or "").strip()}').strip()
  if isinstance(error, urllib3.exceptions.HTTPError):
    return f'lost the connection to Kubeflow Pipelines: {error}'
  if isinstance(error, api_exceptions.GoogleAPIError):
    return f'Vertex AI refused the request: {getattr(error, "message", error)}'
  if isinstance(error, auth_exceptions.GoogleAuthError):
    return (f'no Google Cloud credentials ({error}): run `gcloud auth '
            'application-default login`')
  return None


def main(argv: Optional[List[str]] = None, credentials=None) -> int:
  """Runs one schedule command; `credentials` (default: the machine's
  default credentials) are for Vertex AI."""
  # The Google client libraries' Python-version notices say nothing here.
  warnings.filterwarnings('ignore', category=FutureWarning)
  settings = configs.load_or_exit(os.environ)
  parser = _parser(settings)
  args = parser.parse_args(argv)
  if args.command == 'create' and not args.cron:
    parser.error('create needs --cron')
  try:
    try:
      result = (_kubeflow(args, settings) if args.target == KUBEFLOW else
                _vertex(args, settings, credentials))
    except Exception as error:  # pylint: disable=broad-except
      line = _refusal(error)
      if line is None:
        raise
      raise ScheduleError(line) from None
  except (ScheduleError, kfp_connection.KfpCliError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  _report(args.command, args.target, result)
  return 0


if __name__ == '__main__':
  sys.exit(main())
