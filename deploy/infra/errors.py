"""Turns Google API failures into one-line errors that name the fix."""
import json
from typing import Optional

from google.api_core import exceptions as api_exceptions
from googleapiclient import errors as http_errors

LOGIN_HINT = 'run `gcloud auth application-default login`'


class InfraError(RuntimeError):
  """A step failed; the message says what went wrong and how to fix it."""


def no_credentials() -> InfraError:
  return InfraError(
      'No Google Cloud credentials found: ' + LOGIN_HINT + ' (or set '
      'GOOGLE_APPLICATION_CREDENTIALS to a service account key file).')


def expired_credentials(exc: Exception) -> InfraError:
  return InfraError(f'Google Cloud credentials were refused ({exc}): '
                    + LOGIN_HINT + ' again.')


def _details(exc: http_errors.HttpError) -> dict:
  """Returns the `error` object of an API error response (or {})."""
  try:
    body = json.loads(exc.content.decode('utf-8'))
  except (ValueError, AttributeError):
    return {}
  error = body.get('error') if isinstance(body, dict) else None
  return error if isinstance(error, dict) else {}


def _reasons(error: dict) -> set:
  reasons = {e.get('reason', '') for e in error.get('errors', [])}
  reasons |= {d.get('reason', '') for d in error.get('details', [])}
  if error.get('status'):
    reasons.add(error['status'])
  return reasons - {''}


def _disabled_service(error: dict) -> str:
  for detail in error.get('details', []):
    service = detail.get('metadata', {}).get('service')
    if service:
      return service
  return 'the API'


def explain(code: int,
            message: str,
            reasons: set,
            action: str,
            project: str,
            role: Optional[str] = None,
            service: str = 'the API') -> InfraError:
  """Returns the InfraError for an API failure, naming the fix.

  Args:
    code: the HTTP status code.
    message: the message from the API.
    reasons: the machine-readable reasons and status of the error.
    action: what was being done, e.g. 'create the GKE cluster'.
    project: the Google Cloud project id.
    role: the IAM role that allows `action`, named on a permission error.
    service: the API's service name, used when the API is not enabled.

  Returns:
    The error to raise.
  """
  prefix = f'Could not {action} in project {project!r}'
  if reasons & {'SERVICE_DISABLED', 'accessNotConfigured'}:
    return InfraError(
        f'{prefix}: the {service} API is not enabled. Run this command '
        f'without --skip-apis, or: gcloud services enable {service} '
        f'--project {project}')
  if reasons & {'BILLING_DISABLED', 'billingNotEnabled', 'accountDisabled'} or (
      code in (400, 403) and 'billing' in message.lower()):
    return InfraError(
        f'{prefix}: billing is not enabled for the project. Link a billing '
        f'account: gcloud billing projects link {project} '
        f'--billing-account=ACCOUNT_ID')
  if code == 429 or reasons & {'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED',
                               'quotaExceeded', 'rateLimitExceeded'}:
    return InfraError(
        f'{prefix}: quota exceeded ({message}). Request more at '
        f'https://console.cloud.google.com/iam-admin/quotas?project={project}'
        ' or lower GKE_NODE_COUNT / GKE_MACHINE_TYPE in pipeline/configs.py.')
  if code in (401,) or reasons & {'UNAUTHENTICATED'}:
    return InfraError(f'{prefix}: not authenticated: ' + LOGIN_HINT + '.')
  if code == 403:
    needed = f'the role {role}' if role else 'the needed role'
    return InfraError(
        f'{prefix}: permission denied ({message}). Check that the project id '
        f'is right (gcloud projects list), then grant your account {needed}: '
        f'gcloud projects add-iam-policy-binding {project} '
        f'--member=user:YOUR_EMAIL --role={role or "ROLE"}')
  if code == 404 and 'project' in message.lower():
    return InfraError(
        f'{prefix}: project not found ({message}). Check --project / '
        'GOOGLE_CLOUD_PROJECT against `gcloud projects list`.')
  return InfraError(f'{prefix}: HTTP {code}: {message}')


def from_http_error(exc: http_errors.HttpError, action: str, project: str,
                    role: Optional[str] = None) -> InfraError:
  """Translates a googleapiclient HttpError (see `explain`)."""
  error = _details(exc)
  code = int(getattr(exc.resp, 'status', 0) or 0)
  message = error.get('message') or str(exc)
  return explain(code, message, _reasons(error), action, project, role,
                 _disabled_service(error))


def from_api_core(exc: api_exceptions.GoogleAPICallError, action: str,
                  project: str, role: Optional[str] = None) -> InfraError:
  """Translates a google-cloud-* client error (see `explain`)."""
  reasons = {e.get('reason', '') for e in getattr(exc, 'errors', []) or []
             if isinstance(e, dict)} - {''}
  reasons |= {getattr(exc, 'reason', None) or ''} - {''}
  return explain(int(exc.code or 0), exc.message, reasons, action, project,
                 role)


def from_operation_error(error: dict, action: str, project: str) -> InfraError:
  """Translates the `error` of a failed long-running operation.

  Args:
    error: a google.rpc.Status ({'code', 'message'}) or a Compute Engine
      operation error ({'errors': [{'code', 'message'}]}).
    action: what the operation was doing.
    project: the Google Cloud project id.

  Returns:
    The error to raise.
  """
  if 'errors' in error:  # Compute Engine style.
    reasons = {e.get('code', '') for e in error['errors']}
    message = '; '.join(e.get('message', '') for e in error['errors'])
    return explain(0, message, reasons, action, project)
  # google.rpc.Code: 7 PERMISSION_DENIED, 8 RESOURCE_EXHAUSTED.
  rpc = {7: 403, 8: 429}.get(error.get('code'), 0)
  return explain(rpc, error.get('message', str(error)), set(), action, project)


def is_status(exc: Exception, code: int) -> bool:
  """Whether `exc` is an HttpError with this HTTP status code."""
  return (isinstance(exc, http_errors.HttpError) and
          int(getattr(exc.resp, 'status', 0) or 0) == code)

