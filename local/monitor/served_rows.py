"""The rows a served model received, from a CSV file or a BigQuery table.

    rows.csv                    a CSV file with a header row
    bq://project.dataset.table  a Vertex AI endpoint's request-response log

Each row is a dict of column -> cell text, as csv.DictReader gives it, with
where it came from (`Row.where`: 'rows.csv line 7', 'bq://...: request 3,
instance 2') for one-line errors. The label and other columns the model does
not read may be absent.

A Vertex AI endpoint with request-response logging writes one table row per
logged request; its `request_payload` column holds the request's instances,
one JSON text each. With the model's JSON-rows signature an instance is an
object of column -> value, which is all this reader needs.
"""
import csv
import dataclasses
import datetime
import json
import re
from typing import Any, Dict, Iterable, List, Optional

from pipeline.data_files import csv_format

BIGQUERY_SCHEME = 'bq://'
# The request-response log's columns (Vertex AI fills them).
PAYLOAD_COLUMN = 'request_payload'
TIME_COLUMN = 'logging_time'
# Rows read from a table at most, newest first, unless --limit says otherwise.
DEFAULT_BIGQUERY_LIMIT = 100_000

_TABLE_ID = re.compile(r'[a-z][a-z0-9-]{4,61}[a-z0-9]\.[A-Za-z0-9_]{1,1024}\.'
                       r'[^.\s`]{1,1024}')


class ServedRowsError(Exception):
  """The rows cannot be read: the message names the source and the fix."""


@dataclasses.dataclass
class Row:
  """One served row: column -> cell text, and where it came from."""
  cells: Dict[str, str]
  where: str


def is_bigquery(source: str) -> bool:
  return source.startswith(BIGQUERY_SCHEME)


def read_csv(path: str,
             fmt: csv_format.CsvFormat = csv_format.CsvFormat()) -> List[Row]:
  """The data rows of a CSV file with a header row.

  The one place the monitor parses CSV: fields split on the pipeline's
  CSV_DELIMITER (`fmt`); numbers keep their decimal mark until they are
  typed by the schema (served_statistics.statistics).

  Raises:
    ServedRowsError: the file cannot be read, has no header or no rows, or
      its header splits on another delimiter than `fmt`'s.
  """
  try:
    with fmt.open_text(path) as f:
      reader = csv.DictReader(f, delimiter=fmt.delimiter)
      rows = [Row(cells, f'{path} line {reader.line_num}')
              for cells in reader]
      header = reader.fieldnames
  except UnicodeDecodeError as error:
    raise ServedRowsError(fmt.text_error(path, error)) from None
  except (*csv_format.DECOMPRESSION_ERRORS, csv.Error) as error:
    raise ServedRowsError(f'cannot read {path}: {error}') from None
  if not header:
    raise ServedRowsError(f'{path} is empty: expected a header row and data '
                          'rows')
  advice = csv_format.delimiter_advice(path, fmt.delimiter.join(header), fmt)
  if advice:
    raise ServedRowsError(advice)
  if not rows:
    raise ServedRowsError(f'{path} has a header but no data rows')
  return rows


def table_id(source: str) -> str:
  """'project.dataset.table' of 'bq://project.dataset.table'."""
  table = source[len(BIGQUERY_SCHEME):]
  if not _TABLE_ID.fullmatch(table):
    raise ServedRowsError(
        f'{source!r} is not a BigQuery table: write '
        'bq://PROJECT.DATASET.TABLE, e.g. bq://my-project.logging.'
        'request_response_logging')
  return table


def bigquery_query(table: str, since: Optional[datetime.datetime]):
  """The query text and its parameters: the newest logged requests."""
  # pylint: disable=g-import-not-at-top
  from google.cloud import bigquery
  # pylint: enable=g-import-not-at-top
  where = f'WHERE {TIME_COLUMN} >= @since ' if since else ''
  query = (f'SELECT {PAYLOAD_COLUMN} FROM `{table}` {where}'
           f'ORDER BY {TIME_COLUMN} DESC LIMIT @limit')
  return query, ([bigquery.ScalarQueryParameter('since', 'TIMESTAMP', since)]
                 if since else [])


def read_bigquery(source: str, since: Optional[datetime.datetime] = None,
                  limit: int = DEFAULT_BIGQUERY_LIMIT,
                  client: Any = None) -> List[Row]:
  """The instances of the newest logged requests in a BigQuery table.

  Args:
    source: 'bq://project.dataset.table', a request-response log table.
    since: only requests logged at or after this time.
    limit: at most this many requests (table rows), newest first.
    client: a google.cloud.bigquery.Client (default: one for the table's
      project, with the machine's default credentials).

  Raises:
    ServedRowsError: the table cannot be read or holds no instances.
  """
  # pylint: disable=g-import-not-at-top
  from google.api_core import exceptions
  from google.auth import exceptions as auth_exceptions
  from google.cloud import bigquery
  # pylint: enable=g-import-not-at-top
  table = table_id(source)
  query, parameters = bigquery_query(table, since)
  config = bigquery.QueryJobConfig(query_parameters=parameters + [
      bigquery.ScalarQueryParameter('limit', 'INT64', limit)])
  try:
    client = client or bigquery.Client(project=table.split('.')[0])
    results = list(client.query_and_wait(query, job_config=config))
  except (exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as error:
    message = getattr(error, 'message', None) or str(error)
    raise ServedRowsError(f'cannot read {source}: {message}') from None
  rows = list(_instances(source, (r[PAYLOAD_COLUMN] for r in results)))
  if not rows:
    raise ServedRowsError(f'{source} has no logged requests'
                          + (f' since {since.isoformat()}' if since else ''))
  return rows


def _instances(source: str, payloads: Iterable[Any]) -> Iterable[Row]:
  """One Row per instance in the logged requests' payloads."""
  for request, payload in enumerate(payloads, 1):
    texts = payload if isinstance(payload, (list, tuple)) else [payload]
    for number, text in enumerate(texts, 1):
      where = f'{source}: request {request}, instance {number}'
      try:
        instance = json.loads(text) if isinstance(text, str) else text
      except ValueError:
        raise ServedRowsError(f'{where} is not JSON: {str(text)[:80]!r}'
                             ) from None
      if isinstance(instance, dict) and 'instances' in instance:
        instance = instance['instances']
      for item in instance if isinstance(instance, list) else [instance]:
        if not isinstance(item, dict):
          raise ServedRowsError(
              f'{where} is not an object of column -> value: '
              f'{str(item)[:80]!r} (deploy the JSON-rows signature)')
        yield Row({k: _cell(v) for k, v in item.items()}, where)


def _cell(value: Any) -> str:
  """A JSON value as the CSV cell it would have been ('' for null)."""
  if value is None:
    return ''
  if isinstance(value, list):  # a feature sent as a one-element list
    return _cell(value[0]) if len(value) == 1 else json.dumps(value)
  if isinstance(value, bool):
    return str(int(value))
  return str(value)


def read(source: str, since: Optional[datetime.datetime] = None,
         limit: int = DEFAULT_BIGQUERY_LIMIT,
         fmt: csv_format.CsvFormat = csv_format.CsvFormat()) -> List[Row]:
  """The rows of a CSV file (written in `fmt`) or of a bq://
  request-response log table."""
  if is_bigquery(source):
    return read_bigquery(source, since, limit)
  return read_csv(source, fmt)
