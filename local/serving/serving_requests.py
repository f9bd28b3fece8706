"""TensorFlow Serving's REST request and response bodies, for `make serve`.

`body_to_columns` checks a request body against the inputs of the model's
'serving_default' signature (one [batch] input per raw column,
models/serving.py) and turns it into one numpy array per column, from either
of TensorFlow Serving's forms: the row form
`{"instances": [{column: value, ...}, ...]}` (`instances_to_columns`), answered
`{"predictions": [...]}` (`predictions`), or the columnar form
`{"inputs": {column: [value, ...], ...}}` (`inputs_to_columns`), answered
`{"outputs": {...}}` (`outputs`). The rules are TensorFlow Serving's, which
Vertex AI's prebuilt TensorFlow container applies to the same body, so a
request that works here works there: every instance has exactly the model's
columns, each named by its signature input name (features.input_name: the
column's own name where TensorFlow accepts it, 'Vekt__kg_' for 'Vekt (kg)');
here, unlike on Vertex AI, the CSV's own column names are accepted too; a number column takes a JSON number (NaN when the value is missing),
a text column a string ('' when missing); null is not a value. Anything else
is a `RequestError` naming the instance and the column.
`csv_row_to_instance` writes a CSV row as such an instance.
"""
import json
from typing import Any, Dict, List, Mapping

import numpy as np
import tensorflow as tf

from models import features
from models import signatures

SIGNATURE = signatures.ROWS_SIGNATURE  # the one signature served


class RequestError(ValueError):
  """A bad request body: the message names the problem and the fix."""


ROW_FORM = '{"instances": [{column: value, ...}, ...]}'
COLUMNAR_FORM = '{"inputs": {column: [value, ...], ...}}'


def parse_body(body: bytes) -> Dict[str, Any]:
  """The JSON object of a request body (NaN and Infinity accepted, as
  TensorFlow Serving accepts them)."""
  try:
    value = json.loads(body.decode('utf-8'))
  except (UnicodeDecodeError, ValueError) as error:
    raise RequestError(f'the body is not JSON: {error}') from None
  except RecursionError:
    raise RequestError(
        'the body nests arrays or objects too deeply to be a request: send '
        f'{ROW_FORM} or {COLUMNAR_FORM}') from None
  if not isinstance(value, dict):
    raise RequestError(f'the body must be a JSON object: {ROW_FORM} or '
                       f'{COLUMNAR_FORM}')
  return value


def is_columnar(body: Mapping[str, Any]) -> bool:
  """Whether a parsed body is in the columnar form ("inputs")."""
  return 'inputs' in body


def _expected(dtype: tf.DType) -> str:
  return ('text ("" when missing)' if dtype == tf.string else
          'a number (NaN when missing)')


def _shown(value: Any) -> str:
  """A JSON value as a message shows it: short, and never too deep."""
  if value is None:
    return 'null'
  if isinstance(value, (list, dict)):
    return 'an array' if isinstance(value, list) else 'an object'
  return json.dumps(value)[:80]


def _value(instance: int, column: str, value: Any, dtype: tf.DType) -> Any:
  """One cell, checked against the column's input type."""
  if dtype == tf.string:
    ok = isinstance(value, str)
  else:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  if not ok:
    raise RequestError(f'instance {instance}: column {column!r} is '
                       f'{_shown(value)}, expected {_expected(dtype)}')
  return value


def _check_signature(body: Mapping[str, Any]) -> None:
  signature = body.get('signature_name') or SIGNATURE
  if signature != SIGNATURE:
    raise RequestError(f'signature_name {signature!r}: this server answers '
                       f'{SIGNATURE!r} only, the signature that takes rows')


def _typed_columns(instances: List[Dict[str, Any]],
                   specs: Mapping[str, tf.TensorSpec]) -> Dict[str, np.ndarray]:
  """Column -> [instances] array of the input's dtype, each cell checked."""
  columns = {}
  for column, spec in specs.items():
    values = [_value(i, column, instance[column], spec.dtype)
              for i, instance in enumerate(instances)]
    columns[column] = np.array(values, dtype=(
        object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype))
  return columns


def _by_input_name(where: str, instance: Any) -> Dict[str, Any]:
  """An instance keyed by input name: column names as the CSV has them
  ('Vekt (kg)') or as the signature has them ('Vekt__kg_')."""
  if not isinstance(instance, dict):
    raise RequestError(f'{where} is not a JSON object of {{column: value}}')
  try:
    names = features.input_names(instance)
  except ValueError as error:
    raise RequestError(f'{where}: {error}') from None
  return {names[column]: value for column, value in instance.items()}


def _instance_columns(index: int, instance: Dict[str, Any],
                      specs: Mapping[str, tf.TensorSpec]) -> None:
  """Checks that an instance has exactly the model's columns."""
  _instance_columns_of(f'instance {index}', instance, specs)


def _instance_columns_of(where: str, instance: Dict[str, Any],
                         specs: Mapping[str, tf.TensorSpec]) -> None:
  missing = sorted(c for c in specs if c not in instance)
  if missing:
    raise RequestError(f'{where} lacks column(s) '
                       f'{", ".join(map(repr, missing))} that the model '
                       'needs')
  unknown = sorted(c for c in instance if c not in specs)
  if unknown:
    raise RequestError(f'{where} has column(s) '
                       f'{", ".join(map(repr, unknown))} that the model '
                       'does not take (it takes: '
                       f'{", ".join(sorted(specs))})')


def instances_to_columns(body: Mapping[str, Any],
                         specs: Mapping[str, tf.TensorSpec]
                        ) -> Dict[str, np.ndarray]:
  """The signature's inputs for a request body's instances.

  Args:
    body: the parsed request body.
    specs: the signature's inputs (name -> [batch] TensorSpec).

  Returns:
    Column -> [instances] array of the input's dtype.

  Raises:
    RequestError: no instances, or an instance that does not fit `specs`.
  """
  _check_signature(body)
  instances = body.get('instances')
  if not isinstance(instances, list) or not instances:
    raise RequestError(f'expected {ROW_FORM} with at least one instance, or '
                       f'the columnar {COLUMNAR_FORM}')
  instances = [_by_input_name(f'instance {i}', instance)
               for i, instance in enumerate(instances)]
  for index, instance in enumerate(instances):
    _instance_columns(index, instance, specs)
  return _typed_columns(instances, specs)


def inputs_to_columns(body: Mapping[str, Any],
                      specs: Mapping[str, tf.TensorSpec]
                     ) -> Dict[str, np.ndarray]:
  """The signature's inputs for a columnar body, as TensorFlow Serving reads
  it: "inputs" maps each column to a list of its values, one per row, every
  list as long (a single value stands for a list of one).

  Raises:
    RequestError: "instances" too, not an object of columns, lists of
      different lengths, or a column that does not fit `specs`.
  """
  _check_signature(body)
  if 'instances' in body:
    raise RequestError('the body has both "instances" and "inputs": send '
                       f'one form, {ROW_FORM} or {COLUMNAR_FORM}')
  inputs = _by_input_name('"inputs"', body['inputs'])
  _instance_columns_of('"inputs"', inputs, specs)
  lists = {column: (value if isinstance(value, list) else [value])
           for column, value in inputs.items()}
  lengths = {len(values) for values in lists.values()}
  if len(lengths) != 1 or 0 in lengths:
    shown = ', '.join(f'{column!r}: {len(values)}'
                      for column, values in sorted(lists.items()))
    raise RequestError('"inputs" needs one value per row in every column, '
                       f'as many in each ({shown})')
  count = lengths.pop()
  rows = [{column: values[i] for column, values in lists.items()}
          for i in range(count)]
  return _typed_columns(rows, specs)


def body_to_columns(body: Mapping[str, Any],
                    specs: Mapping[str, tf.TensorSpec]
                   ) -> Dict[str, np.ndarray]:
  """The signature's inputs for a body in either form."""
  if is_columnar(body):
    return inputs_to_columns(body, specs)
  return instances_to_columns(body, specs)


def _json_value(value: Any) -> Any:
  """A numpy cell or row as JSON: text decoded, float32 written as its
  shortest form (as TensorFlow Serving writes it)."""
  if isinstance(value, np.ndarray):
    return [_json_value(v) for v in value]
  if isinstance(value, bytes):
    return value.decode('utf-8', errors='replace')
  if isinstance(value, np.floating):
    return float(str(value))
  if isinstance(value, np.generic):
    return value.item()
  return value


def outputs(values: Mapping[str, np.ndarray]) -> Any:
  """TensorFlow Serving's columnar answer: an object of the outputs, each a
  list of one value per row (or that list itself when there is one
  output)."""
  names = sorted(values)
  if len(names) == 1:
    return _json_value(values[names[0]])
  return {name: _json_value(values[name]) for name in names}


def predictions(outputs: Mapping[str, np.ndarray]) -> List[Any]:
  """TensorFlow Serving's row-format answer: one entry per instance, an
  object of the outputs (or the value itself when there is one output)."""
  names = sorted(outputs)
  count = len(outputs[names[0]])
  if len(names) == 1:
    return [_json_value(outputs[names[0]][i]) for i in range(count)]
  return [{name: _json_value(outputs[name][i]) for name in names}
          for i in range(count)]



def csv_row_to_instance(row: Mapping[str, str],
                        specs: Mapping[str, tf.TensorSpec]) -> Dict[str, Any]:
  """A CSV row (column -> cell text) as one instance for `specs`, keyed by
  input name: text as it is, numbers parsed, an empty number cell NaN;
  columns `specs` lacks (the label, dropped columns) left out.

  Raises:
    RequestError: a column is missing, or a number cell is not a number.
  """
  row = _by_input_name('the row', dict(row))
  instance = {}
  for column, spec in specs.items():
    if column not in row:
      raise RequestError(f'the row lacks column {column!r} that the model '
                         'needs')
    text = row[column]
    if spec.dtype == tf.string:
      instance[column] = text
      continue
    try:
      instance[column] = float(text) if text.strip() else float('nan')
    except ValueError:
      raise RequestError(f'column {column!r}: {text!r} is not a number'
                        ) from None
  return instance
