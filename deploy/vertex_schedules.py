"""Pipeline job schedules on Vertex AI Pipelines, through aiplatform.

A schedule starts the compiled pipeline job (`make compile` writes it) at
most one run at a time (`max_concurrent_run_count` 1), as the pipeline's
service account. Schedules are found by display name, so `create` refuses a
name that exists instead of making a second one.
"""
import dataclasses
import logging
from typing import List, Optional

from deploy.schedule_types import Schedule, ScheduleError


@dataclasses.dataclass
class VertexLocation:
  """Where the schedules live, and how the client reaches the API."""
  project: str
  region: str
  credentials: object = None  # default: the machine's default credentials
  # Default: <region>-aiplatform.googleapis.com.
  api_endpoint: Optional[str] = None

  def init(self):
    """Configures aiplatform for this location; returns the module."""
    # pylint: disable=g-import-not-at-top
    from google.cloud import aiplatform
    # pylint: enable=g-import-not-at-top
    aiplatform.init(project=self.project, location=self.region,
                    credentials=self.credentials,
                    api_endpoint=self.api_endpoint,
                    api_transport='rest' if self.api_endpoint else None)
    # Each module logs every step of a call to stdout; the command prints
    # one line of its own.
    for name in list(logging.root.manager.loggerDict):
      if name.startswith('google.cloud.aiplatform'):
        logging.getLogger(name).setLevel(logging.WARNING)
    return aiplatform


def _describe(schedule) -> Schedule:
  resource = schedule.gca_resource
  state = type(resource).State(resource.state).name.lower()
  return Schedule(resource.display_name, resource.name, state, resource.cron)


def _list(aiplatform, location: VertexLocation,
          name: Optional[str] = None) -> List:
  return aiplatform.PipelineJobSchedule.list(
      filter=f'display_name="{name}"' if name else None,
      project=location.project, location=location.region,
      credentials=location.credentials)


def _find(aiplatform, location: VertexLocation, name: str):
  found = [s for s in _list(aiplatform, location, name)
           if s.display_name == name]
  if not found:
    raise ScheduleError(f'no pipeline job schedule named "{name}" in '
                        f'{location.project}/{location.region}; `list` shows '
                        'the ones there are')
  return found[0]


def create(location: VertexLocation, name: str, cron: str,
           pipeline_file: str,
           service_account: Optional[str] = None) -> Schedule:
  """A schedule that runs the compiled pipeline job in `pipeline_file`.

  Args:
    location: the project and region.
    name: the schedule's display name.
    cron: a 5-field cron expression, optionally with a CRON_TZ= prefix.
    pipeline_file: the compiled Vertex AI pipeline job (local or gs://);
      its pipeline root is where the runs write their artifacts.
    service_account: the runs' service account.
  """
  aiplatform = location.init()
  if any(s.display_name == name for s in _list(aiplatform, location, name)):
    raise ScheduleError(f'a pipeline job schedule named "{name}" exists '
                        'already; delete it first, or choose another --name')
  try:
    job = aiplatform.PipelineJob(
        display_name=name, template_path=pipeline_file,
        project=location.project,
        location=location.region, credentials=location.credentials)
  except (OSError, ValueError) as error:
    raise ScheduleError(f'cannot read the compiled pipeline {pipeline_file}: '
                        f'{error}; run make compile first') from None
  schedule = aiplatform.PipelineJobSchedule(pipeline_job=job,
                                            display_name=name)
  schedule.create(cron=cron, max_concurrent_run_count=1,
                  service_account=service_account)
  return _describe(schedule)


def list_all(location: VertexLocation) -> List[Schedule]:
  return [_describe(s) for s in _list(location.init(), location)]


def pause(location: VertexLocation, name: str) -> Schedule:
  schedule = _find(location.init(), location, name)
  schedule.pause()
  return _describe(schedule)


def resume(location: VertexLocation, name: str) -> Schedule:
  schedule = _find(location.init(), location, name)
  schedule.resume()
  return _describe(schedule)


def delete(location: VertexLocation, name: str) -> Schedule:
  schedule = _find(location.init(), location, name)
  described = _describe(schedule)
  schedule.delete()
  return described
