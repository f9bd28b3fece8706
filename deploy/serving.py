"""Status and rollback of the model served on Vertex AI.

    python -m deploy.serving status                 # make serving-status
    python -m deploy.serving rollback               # make rollback
    python -m deploy.serving rollback --to VERSION  # make rollback VERSION=3

`status` says which version of the model serves on the endpoint, since when,
which pipeline run made it and with which metrics, and what else is
deployed. `rollback` moves the traffic and the alias back to the version
before the one serving (or to VERSION), deploying it again if it was
undeployed, and then removes the other deployments as a push does
(VERTEX_KEEP_DEPLOYED). Both read the model, endpoint, project and region
from pipeline/configs.py's settings, and call Vertex AI with the
application-default credentials (`gcloud auth application-default login`).

Exit status: 0 on success; 1 when the model or the endpoint does not exist,
there is no version to roll back to, or Vertex AI cannot be reached or
refuses a request; 2 for a bad setting. Errors are one line on stderr.
"""
import argparse
import os
import sys
from typing import List, Mapping, Optional

from pipeline import configs
from pipeline.errors import ConfigError
from pipeline.vertex_serving import api as vertex_api
from pipeline.vertex_serving import rollout
from pipeline.vertex_serving import target as vertex_target

SERVING_ERROR_STATUS = 1


def describe(status: rollout.Status, target: vertex_target.ServingTarget
             ) -> List[str]:
  """The lines `status` prints."""
  lines = [f'Endpoint {target.endpoint_name}: {status.endpoint}']
  serving = status.serving
  if serving is None:
    lines.append('Serving: nothing (no version of the model takes traffic).')
  else:
    since = (f', since {status.since:%Y-%m-%d %H:%M:%S} UTC'
             if status.since else '')
    aliased = (f' (alias {status.alias})'
               if status.alias in serving.version_aliases else '')
    lines.append(f'Serving: version {serving.version_id} of model '
                 f'{target.model_id}{aliased}, '
                 f'{status.deployed.get(serving.version_id, 0)} % of the '
                 f'traffic{since}.')
    made = status.provenance
    lines.append(f'Made by: pipeline {made.pipeline or "?"}, run '
                 f'{made.run or "?"}.')
    if made.metrics:
      lines.append('Metrics: ' + ', '.join(
          f'{k} {v:.4g}' for k, v in sorted(made.metrics.items())) + '.')
  others = [f'version {v} ({share} % of the traffic)'
            for v, share in status.deployed.items()
            if not serving or v != serving.version_id]
  if others:
    lines.append('Also deployed: ' + ', '.join(others) + '.')
  lines.append('Versions: ' + ', '.join(v.version_id for v in status.versions)
               + '.')
  return lines


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m deploy.serving', description=__doc__.split('\n\n')[0])
  commands = parser.add_subparsers(dest='command', required=True)
  commands.add_parser('status', help='what serves, since when, made by what')
  rollback = commands.add_parser(
      'rollback', help='serve the previous version (or --to VERSION) again')
  rollback.add_argument('--to', metavar='VERSION',
                        help='the version id to serve (default: the one '
                        'before the version serving now)')
  return parser


def _run(args: argparse.Namespace,
         target: vertex_target.ServingTarget) -> None:
  api = vertex_api.connect(target)
  if args.command == 'status':
    print('\n'.join(describe(rollout.status(api, target), target)))
    return
  served = rollout.rollback(api, target, args.to)
  undeployed = (f' Undeployed: version {", ".join(served.undeployed)}.'
                if served.undeployed else '')
  print(f'Rolled back: version {served.version_id} of model '
        f'{target.model_id} serves on {target.endpoint_name} with the alias '
        f'{target.alias}.{undeployed}')


def main(argv: Optional[List[str]] = None,
         environ: Mapping[str, str] = os.environ) -> int:
  args = _parser().parse_args(argv)
  settings = configs.load_or_exit(environ)
  try:
    target = vertex_target.from_settings(settings)
  except ConfigError as error:
    return configs.config_error_status(error)
  # pylint: disable=g-import-not-at-top
  from google.api_core import exceptions as api_exceptions
  from google.auth import exceptions as auth_exceptions
  import requests
  # pylint: enable=g-import-not-at-top
  try:
    _run(args, target)
  except rollout.ServingError as error:
    print(f'serving error: {error}', file=sys.stderr)
    return SERVING_ERROR_STATUS
  except api_exceptions.GoogleAPICallError as error:
    message = str(error.message).splitlines()[0] if error.message else ''
    print(f'Vertex AI error: {error.code} {message}'.rstrip(),
          file=sys.stderr)
    return SERVING_ERROR_STATUS
  except requests.exceptions.ConnectionError:
    print(f'Vertex AI error: cannot reach {target.api_host} '
          '(VERTEX_API_ENDPOINT, GOOGLE_CLOUD_REGION).', file=sys.stderr)
    return SERVING_ERROR_STATUS
  except auth_exceptions.DefaultCredentialsError:
    print('Vertex AI error: no Google Cloud credentials; run '
          '`gcloud auth application-default login`.', file=sys.stderr)
    return SERVING_ERROR_STATUS
  return 0


if __name__ == '__main__':
  sys.exit(main())
