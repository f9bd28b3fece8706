"""Recurring runs on Kubeflow Pipelines 2.x, through kfp.Client.

A recurring run starts the pipeline version that was newest when it was
created, at most one run at a time (`max_concurrency` 1), without catching up
on the runs a pause missed. Recurring runs are found by display name, so
`create` refuses a name that exists instead of making a second one.
"""
import json
from typing import List, Optional

from deploy.schedule_types import Schedule, ScheduleError

_PAGE_SIZE = 100


def _by_name_filter(name: str) -> str:
  return json.dumps({'predicates': [{'operation': 'EQUALS',
                                     'key': 'display_name',
                                     'stringValue': name}]})


def _describe(run) -> Schedule:
  cron = (run.trigger.cron_schedule.cron if run.trigger and
          run.trigger.cron_schedule else '')
  state = {'ENABLE': 'active', 'DISABLE': 'paused'}.get(run.mode or '',
                                                         run.mode or '')
  return Schedule(run.display_name, run.recurring_run_id, state, cron)


def _list(client, name: Optional[str] = None) -> List:
  found, token = [], ''
  while True:
    page = client.list_recurring_runs(
        page_token=token, page_size=_PAGE_SIZE,
        filter=_by_name_filter(name) if name else None)
    found.extend(page.recurring_runs or [])
    token = page.next_page_token
    if not token:
      return found


def _find(client, name: str):
  found = _list(client, name)
  if not found:
    raise ScheduleError(f'no recurring run named "{name}" on Kubeflow '
                        'Pipelines; `list` shows the ones there are')
  return found[0]


def create(client, name: str, cron: str, pipeline_name: str,
           experiment: Optional[str] = None,
           namespace: Optional[str] = None) -> Schedule:
  """A recurring run of the newest version of `pipeline_name`.

  Args:
    client: a kfp.Client.
    name: the recurring run's display name.
    cron: a 6-field cron expression (seconds first), as Kubeflow reads them.
    pipeline_name: the uploaded pipeline (`tfx pipeline create
      --engine=kubeflow`).
    experiment: the experiment its runs belong to (default: the pipeline's).
    namespace: the Kubernetes namespace of a multi-user deployment.
  """
  if _list(client, name):
    raise ScheduleError(f'a recurring run named "{name}" exists already; '
                        'delete it first, or choose another --name')
  pipeline_id = client.get_pipeline_id(pipeline_name)
  if not pipeline_id:
    raise ScheduleError(f'pipeline "{pipeline_name}" does not exist on '
                        'Kubeflow Pipelines; upload it with `tfx pipeline '
                        'create --engine=kubeflow --pipeline-path='
                        'kubeflow_runner.py`')
  versions = client.list_pipeline_versions(
      pipeline_id=pipeline_id, sort_by='created_at desc', page_size=1)
  if not versions.pipeline_versions:
    raise ScheduleError(f'pipeline "{pipeline_name}" has no version')
  version = versions.pipeline_versions[0]
  experiment_id = client.create_experiment(
      experiment or pipeline_name, namespace=namespace).experiment_id
  run = client.create_recurring_run(
      experiment_id=experiment_id, job_name=name, cron_expression=cron,
      pipeline_id=pipeline_id, version_id=version.pipeline_version_id,
      max_concurrency=1, no_catchup=True, enabled=True)
  return _describe(run)


def list_all(client) -> List[Schedule]:
  return [_describe(run) for run in _list(client)]


def pause(client, name: str) -> Schedule:
  run = _find(client, name)
  client.disable_recurring_run(run.recurring_run_id)
  return _describe(run)


def resume(client, name: str) -> Schedule:
  run = _find(client, name)
  client.enable_recurring_run(run.recurring_run_id)
  return _describe(run)


def delete(client, name: str) -> Schedule:
  run = _find(client, name)
  client.delete_recurring_run(run.recurring_run_id)
  return _describe(run)
