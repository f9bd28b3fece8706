"""What the schedule commands of both targets share: a schedule in words, the
one-line error, and the cron expression each target reads."""
import dataclasses
import re

KUBEFLOW = 'kubeflow'
VERTEX = 'vertex'
TARGETS = (KUBEFLOW, VERTEX)

_FIELD = re.compile(r'[0-9A-Za-z*/,?#LW-]+')
_TIME_ZONE = re.compile(r'(CRON_TZ|TZ)=\S+')


class ScheduleError(Exception):
  """A failure the schedule command reports in one line and exits 1 for."""


@dataclasses.dataclass
class Schedule:
  """One recurring run or pipeline job schedule."""
  name: str  # display name
  id: str  # the orchestrator's id or resource name
  state: str  # active, paused, ...
  cron: str

  def line(self) -> str:
    return f'{self.name}\t{self.state}\t{self.cron}\t{self.id}'


def target_cron(expression: str, target: str) -> str:
  """`expression` as `target` reads it.

  Both take the usual five fields (minute hour day-of-month month
  day-of-week): Kubeflow Pipelines reads six, seconds first, so '0 ' is put
  in front; Vertex AI also takes a 'CRON_TZ=Europe/Oslo ' prefix.

  Raises:
    ScheduleError: not a cron expression of five fields.
  """
  fields = expression.split()
  zone = fields[:1] if fields and _TIME_ZONE.fullmatch(fields[0]) else []
  fields = fields[len(zone):]
  if len(fields) != 5 or not all(_FIELD.fullmatch(f) for f in fields):
    raise ScheduleError(
        f'--cron {expression!r} is not a cron expression of five fields '
        "(minute hour day-of-month month day-of-week): e.g. '0 3 * * *' for "
        '03:00 every day')
  if target == KUBEFLOW:
    if zone:
      raise ScheduleError(f'--cron {expression!r}: Kubeflow Pipelines '
                          'schedules in its own time zone (UTC); leave out '
                          f'{zone[0]!r}')
    return ' '.join(['0'] + fields)
  return ' '.join(zone + fields)
