"""Creates the pipeline's Google Cloud infrastructure in one idempotent command.

    python pipeline/gcp_infrastructure.py --dry-run    # print the plan only
    python pipeline/gcp_infrastructure.py              # create what is missing
    python pipeline/gcp_infrastructure.py --destroy    # delete the cluster

(`make infra-plan` and `make infra` run the first two; the module form
`python -m pipeline.gcp_infrastructure` works too.)

In order: the APIs, the bucket and its uploads, the VPC network and firewall
rules, the Artifact Registry repository, the pipeline service account and its
roles, the GKE cluster, Workload Identity, and Kubeflow Pipelines; with
WORKBENCH=true, a Vertex AI Workbench instance to drive it from. Each step
creates only what is missing, so running it again reports every resource as
already present. Names and sizes come from pipeline/configs.py; see
docs/cloud_setup.md for a walk-through.
"""
import argparse
import os
import sys
import time
from typing import Callable, List, Mapping, Optional

from deploy.infra import apis, errors, gke, iam, kfp_install, network
from deploy.infra import registry, storage, workbench
from deploy.infra.context import Clients, Cloud, Target, Workbench
from pipeline import configs
from pipeline.errors import ConfigError


def load_settings(project: Optional[str],
                  environ: Mapping[str, str] = os.environ):
  """The settings of pipeline/configs.py, with GOOGLE_CLOUD_PROJECT=`project`.

  Loading them with the project in the environment keeps configs.py the one
  source of the names derived from it (the bucket name above all).
  """
  if project:
    environ = {**environ, 'GOOGLE_CLOUD_PROJECT': project}
  return configs.load(environ)


def target_from(settings) -> Target:
  """The Target described by the settings of pipeline/configs.py.

  Raises:
    ConfigError: no project is set.
  """
  if not settings.GOOGLE_CLOUD_PROJECT:
    raise ConfigError('No Google Cloud project: pass --project PROJECT_ID or '
                      'set GOOGLE_CLOUD_PROJECT (gcloud projects list shows '
                      'yours).')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
  return Target(
      project=settings.GOOGLE_CLOUD_PROJECT,
      region=settings.GOOGLE_CLOUD_REGION,
      zone=settings.GOOGLE_CLOUD_ZONE,
      pipeline_name=settings.PIPELINE_NAME,
      bucket=settings.GCS_BUCKET_NAME,
      network=settings.NETWORK_NAME,
      repository=settings.ARTIFACT_REGISTRY_REPOSITORY,
      service_account_id=settings.PIPELINE_SERVICE_ACCOUNT,
      cluster=settings.GKE_CLUSTER_NAME,
      machine_type=settings.GKE_MACHINE_TYPE,
      node_count=settings.GKE_NODE_COUNT,
      kfp_version=settings.KFP_VERSION,
      data_dir=settings.DATA_PATH,
      models_dir=os.path.join(root, 'models'),
      workbench=Workbench(
          instance=settings.WORKBENCH_INSTANCE_NAME,
          machine_type=settings.WORKBENCH_MACHINE_TYPE,
          idle_shutdown_minutes=settings.WORKBENCH_IDLE_SHUTDOWN_MINUTES,
          service_account_id=settings.WORKBENCH_SERVICE_ACCOUNT)
      if settings.WORKBENCH else None)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python pipeline/gcp_infrastructure.py',
      description=__doc__.splitlines()[0])
  parser.add_argument('--project', help='Google Cloud project id (default: '
                      'GOOGLE_CLOUD_PROJECT from pipeline/configs.py)')
  parser.add_argument('--dry-run', action='store_true',
                      help='print the plan; send no request')
  parser.add_argument('--destroy', action='store_true',
                      help='delete the GKE cluster to stop its costs')
  parser.add_argument('--delete-bucket', action='store_true',
                      help='with --destroy: also delete the bucket and all '
                      'its objects (asks you to type its name)')
  parser.add_argument('--disable-kfp-cache', action='store_true',
                      help="turn off Kubeflow Pipelines' cache webhook")
  parser.add_argument('--skip-apis', action='store_true',
                      help='do not check or enable APIs')
  parser.add_argument('--skip-cluster', action='store_true',
                      help='stop before the GKE cluster (and KFP)')
  parser.add_argument('--skip-kfp', action='store_true',
                      help='create the cluster but do not install KFP')
  args = parser.parse_args(argv)
  if args.delete_bucket and not args.destroy:
    parser.error('--delete-bucket needs --destroy')
  return args


def steps_for(args: argparse.Namespace, target: Target) -> list:
  """The step classes to run, in order."""
  with_workbench = target.workbench is not None
  if args.destroy:
    return ([workbench.DeleteInstance] if with_workbench else []) + [
        gke.DeleteCluster] + ([storage.DeleteBucket] if args.delete_bucket
                              else [])
  steps = [] if args.skip_apis else [apis.EnableApis]
  steps += [storage.Bucket, storage.Uploads, network.Network,
            network.Firewalls, registry.Repository, iam.ServiceAccount,
            iam.Roles]
  if with_workbench:
    steps.append(workbench.Account)
  if not args.skip_cluster:
    steps += [gke.Cluster, iam.WorkloadIdentity]
    if not args.skip_kfp:
      steps += [kfp_install.KfpInstall, kfp_install.RunnerIdentity]
      if args.disable_kfp_cache:
        steps.append(kfp_install.DisableCache)
      if with_workbench:
        steps.append(workbench.KfpAccess)
  if with_workbench:
    steps.append(workbench.Instance)
  return steps


def print_plan(target: Target, steps: list, out: Callable[[str], None]):
  out(f'Plan for project {target.project} (dry run: no request is sent):')
  for number, step in enumerate(steps, 1):
    for line in step.plan(target):
      out(f'  {number}. {line}')


def apply(target: Target, steps: list, clients: Clients,
          out: Callable[[str], None] = print,
          ask: Callable[[str], str] = input,
          sleep: Callable[[float], None] = time.sleep) -> Cloud:
  """Runs each step's apply in order; returns the context with its results."""
  cloud = Cloud(target, clients, out=out, sleep=sleep)
  clients.credentials()  # Fails first, and clearly, without credentials.
  for number, step in enumerate(steps, 1):
    out(f'[{number}/{len(steps)}] {step.name}')
    instance = step(cloud, ask=ask) if step is storage.DeleteBucket else step(
        cloud)
    instance.apply()
  if kfp_install.KfpInstall in steps:
    for line in kfp_install.endpoint_lines(target):
      out(line)
  if workbench.Instance in steps:
    for line in workbench.next_steps(target):
      out(line)
  return cloud


def main(argv: Optional[List[str]] = None,
         clients: Optional[Clients] = None,
         out: Callable[[str], None] = print,
         ask: Callable[[str], str] = input) -> int:
  """Entry point; returns the process exit code.

  Args:
    argv: command-line arguments (default: sys.argv[1:]).
    clients: API clients to use (default: built from Application Default
      Credentials when first needed).
    out: prints one progress line.
    ask: reads the typed bucket-deletion confirmation.
  """
  args = parse_args(argv)
  try:
    target = target_from(load_settings(args.project))
    steps = steps_for(args, target)
    if args.dry_run:
      print_plan(target, steps, out)
      return 0
    if clients is None:
      clients = Clients(target.project)
    try:
      apply(target, steps, clients, out=out, ask=ask)
    finally:
      clients.close()
  except (errors.InfraError, ConfigError) as exc:
    print(f'error: {exc}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print('interrupted: run the command again to pick up where it stopped.',
          file=sys.stderr)
    return 130
  out('Done.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
