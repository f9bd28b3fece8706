"""Scores a CSV of raw rows with the newest pushed model.

    python -m local.serving.predict --input rows.csv [--output preds.csv]
                               [--model-dir DIR] [--schema schema.pbtxt]

The rows need the columns the model reads (the label and the excluded columns
may be absent). The output is the input columns plus the prediction: for a
model with one probability per row (the bundled binary model) `probability`
and `predicted_class` (1 when the probability is at least 0.5); for a vector
of class probabilities `predicted_class` (its index), `probability` (its
value) and `probabilities` (all of them); for any other single value
`prediction`. Written as CSV to --output, or to stdout.

The model defaults to the newest version under
<output dir>/serving_model/<pipeline>/ (LOCAL_OUTPUT_DIR and PIPELINE_NAME
unless --output-dir and --pipeline-name say otherwise); the schema that types
the columns to the newest run's SchemaGen output, found in the metadata
store. The input is read, and the output written, as CSV_DELIMITER,
CSV_DECIMAL and CSV_ENCODING say (a `;`-separated Windows-1252 spreadsheet
export with decimal commas in, the same out); the input may be compressed
(`rows.csv.gz`). Bad input stops with a one-line error and exit status 1; a bad
setting with `configuration error: ...` and exit status 2.
"""
import csv
import io
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

if __name__ == '__main__':
  from local.quiet import quiet  # pylint: disable=g-import-not-at-top
  quiet()

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top
from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top

from local import csv_examples  # pylint: disable=g-import-not-at-top
from local import output_layout  # pylint: disable=g-import-not-at-top
from local import run_artifacts  # pylint: disable=g-import-not-at-top
from models import signatures  # pylint: disable=g-import-not-at-top
from pipeline import configs  # pylint: disable=g-import-not-at-top
from pipeline.data_files import csv_format  # pylint: disable=g-import-not-at-top
from pipeline import problem_spec  # pylint: disable=g-import-not-at-top
from pipeline.errors import ConfigError  # pylint: disable=g-import-not-at-top

SIGNATURE = signatures.EXAMPLES_SIGNATURE
EXAMPLES_INPUT = signatures.EXAMPLES_INPUT
BINARY_CUTOFF = 0.5  # a probability at least this predicts class 1
BATCH_ROWS = 1024  # rows scored per call of the signature


class PredictError(Exception):
  """Bad input, a missing model or schema: the message is the whole story."""


def required_columns(schema: schema_pb2.Schema,
                     unused: Sequence[str] = ()) -> List[str]:
  """Schema columns the model reads: all but `unused` (the label and the
  DROP_COLUMNS of pipeline/configs.py)."""
  return [f.name for f in schema.feature if f.name not in set(unused)]


def read_rows(path: str,
              fmt: csv_format.CsvFormat = csv_format.CsvFormat()
              ) -> Tuple[List[str], List[Dict[str, str]]]:
  """The header and rows of a CSV file written in the format `fmt`
  (CSV_DELIMITER, CSV_DECIMAL, CSV_ENCODING), or PredictError naming the problem."""
  try:
    with fmt.open_text(path) as f:
      reader = csv.DictReader(f, delimiter=fmt.delimiter)
      rows = list(reader)
      header = [name.strip() for name in reader.fieldnames or []]
  except UnicodeDecodeError as error:
    raise PredictError(fmt.text_error(path, error)) from None
  except (*csv_format.DECOMPRESSION_ERRORS, csv.Error) as error:
    raise PredictError(f'cannot read {path}: {error}') from None
  if not header:
    raise PredictError(f'{path} is empty: expected a header row and data rows')
  advice = csv_format.delimiter_advice(path, fmt.delimiter.join(header), fmt)
  if advice:
    raise PredictError(advice)
  if not rows:
    raise PredictError(f'{path} has a header but no data rows')
  return header, [{(k or '').strip(): v for k, v in row.items()}
                  for row in rows]


def check_columns(header: Sequence[str], schema: schema_pb2.Schema,
                  path: str, unused: Sequence[str] = ()) -> None:
  missing = [c for c in required_columns(schema, unused) if c not in header]
  if missing:
    raise PredictError(f'{path} lacks the column(s) the model needs: '
                       f'{", ".join(missing)}')


def examples_signature(loaded, model_dir: str):
  """The signature of a loaded SavedModel that scores serialized
  tf.Examples: SIGNATURE, or, in a model pushed before 'serving_default'
  took rows, 'serving_default'."""
  for name in (SIGNATURE, signatures.ROWS_SIGNATURE):
    signature = loaded.signatures.get(name)
    if signature is not None and list(
        signature.structured_input_signature[1]) == [EXAMPLES_INPUT]:
      return signature
  raise PredictError(f'{model_dir} has no signature that takes serialized '
                     f'tf.Examples ({SIGNATURE!r})')


def score(model_dir: str, examples: List[bytes]) -> Dict[str, np.ndarray]:
  """The serialized-example signature's outputs for serialized tf.Examples."""
  loaded = tf.saved_model.load(model_dir)
  signature = examples_signature(loaded, model_dir)
  outputs: Dict[str, List[np.ndarray]] = {}
  for start in range(0, len(examples), BATCH_ROWS):
    batch = tf.constant(examples[start:start + BATCH_ROWS])
    for name, tensor in signature(**{EXAMPLES_INPUT: batch}).items():
      outputs.setdefault(name, []).append(tensor.numpy())
  return {name: np.concatenate(parts) for name, parts in outputs.items()}


def _texts(values) -> List[str]:
  return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def prediction_columns(outputs: Dict[str, np.ndarray]
                      ) -> Dict[str, List[str]]:
  """Output column -> one text cell per row, from the serving signature's
  named outputs (models/signatures.py).

  Classification: `probability` and `predicted_class` (the class name; for a
  binary model the positive class when its probability is at least
  BINARY_CUTOFF), plus every class's probability when there are more than
  two. Regression: `prediction`.
  """
  probabilities = outputs.get(signatures.PROBABILITIES)
  if probabilities is not None:
    values = probabilities.reshape(len(probabilities), -1)
    names = outputs.get(signatures.CLASS_NAMES)
    if values.shape[1] == 1:
      classes = _texts(names[0]) if names is not None else ['0', '1']
      return {'probability': [f'{p:.6f}' for p in values[:, 0]],
              'predicted_class': [classes[int(p >= BINARY_CUTOFF)]
                                  for p in values[:, 0]]}
    classes = (_texts(names[0]) if names is not None else
               [str(i) for i in range(values.shape[1])])
    best = values.argmax(axis=1)
    return {'predicted_class': [classes[i] for i in best],
            'probability': [f'{row[i]:.6f}' for row, i in zip(values, best)],
            'probabilities': [' '.join(f'{c}:{p:.6f}'
                                       for c, p in zip(classes, row))
                              for row in values]}
  predictions = outputs.get(signatures.PREDICTIONS)
  if predictions is not None:
    return {'prediction': [f'{v:.6g}' for v in predictions.reshape(-1)]}
  raise PredictError(
      f'the model\'s {SIGNATURE} signature returns neither '
      f'{signatures.PROBABILITIES!r} nor {signatures.PREDICTIONS!r} '
      f'(it returns {", ".join(sorted(outputs))})')


def _decimal_mark(column: str, cell: str, mark: str) -> str:
  """The numbers of a prediction cell written with `mark` (class names
  unchanged)."""
  if column == 'predicted_class':
    return cell
  return re.sub(r'(\d)\.(\d)', rf'\1{mark}\2', cell)


def write_predictions(out: TextIO, header: Sequence[str],
                      rows: List[Dict[str, str]],
                      predictions: Dict[str, List[str]],
                      fmt: csv_format.CsvFormat = csv_format.CsvFormat()
                      ) -> None:
  """The input rows and the prediction columns, as CSV in the input's
  format (numbers with its decimal mark)."""
  if fmt.decimal != '.':
    predictions = {name: [_decimal_mark(name, cell, fmt.decimal)
                          for cell in cells]
                   for name, cells in predictions.items()}
  writer = csv.writer(out, delimiter=fmt.delimiter, lineterminator='\n')
  writer.writerow(list(header) + list(predictions))
  for i, row in enumerate(rows):
    writer.writerow([row.get(c, '') for c in header] +
                    [cells[i] for cells in predictions.values()])


def newest_schema_file(output_dir: str, pipeline_name: str) -> str:
  """The schema.pbtxt of the newest run that has one."""
  try:
    run = run_artifacts.load_run(output_dir, pipeline_name)
  except (FileNotFoundError, ValueError) as error:
    raise PredictError(f'no schema: {error}') from None
  if not run.schema_file or not os.path.isfile(run.schema_file):
    raise PredictError(f'no schema in the newest run {run.run_id} of '
                       f'{pipeline_name!r}; pass --schema')
  return run.schema_file


def predict(input_path: str, model_dir: str, schema_file: str,
            out: TextIO, unused_columns: Sequence[str] = (),
            fmt: csv_format.CsvFormat = csv_format.CsvFormat()) -> int:
  """Scores `input_path` into `out`; returns the number of rows.

  `unused_columns` (the label, dropped columns) may be missing from the CSV;
  `fmt` is how it is written (CSV_DELIMITER, CSV_DECIMAL, CSV_ENCODING;
  the file may be compressed, `rows.csv.gz`), and the output is written so
  too (uncompressed).
  """
  try:
    schema = csv_examples.load_schema(schema_file)
  except Exception as error:  # pylint: disable=broad-except
    raise PredictError(f'cannot read the schema {schema_file}: {error}'
                      ) from None
  header, rows = read_rows(input_path, fmt)
  check_columns(header, schema, input_path, unused_columns)
  try:
    examples = [csv_examples.row_to_example(row, schema, fmt)
                .SerializeToString() for row in rows]
  except ValueError as error:
    raise PredictError(f'{input_path}: {error}') from None
  predictions = prediction_columns(score(model_dir, examples))
  clashes = [c for c in predictions if c in header]
  if clashes:
    raise PredictError(f'{input_path} already has the column(s) '
                       f'{", ".join(clashes)} that the predictions are '
                       'written to: rename or drop them')
  write_predictions(out, header, rows, predictions, fmt)
  return len(rows)


def main(argv: Optional[List[str]] = None) -> int:
  settings = configs.load_or_exit(os.environ)
  parser = run_artifacts.run_argument_parser(
      'python -m local.serving.predict',
      'Score a CSV of raw rows with the newest pushed model.', settings)
  parser.add_argument('--input', required=True, help='CSV with a header row')
  parser.add_argument('--output', help='CSV to write (default: stdout)')
  parser.add_argument('--model-dir', help='a SavedModel folder (default: the '
                      'newest under LOCAL_OUTPUT_DIR/serving_model/'
                      'PIPELINE_NAME/)')
  parser.add_argument('--schema', help='schema.pbtxt typing the columns '
                      "(default: the newest run's SchemaGen output)")
  args = parser.parse_args(argv)
  output_dir, name = args.output_dir, args.pipeline_name
  fmt = csv_format.CsvFormat.from_settings(settings)
  try:
    unused = problem_spec.unread_columns(settings)
  except ConfigError as error:
    return configs.config_error_status(error)
  try:
    model_dir = args.model_dir
    if model_dir is None:
      serving = output_layout.serving_model_dir(output_dir, name)
      model_dir = run_artifacts.newest_pushed_model(serving)
      if model_dir is None:
        raise PredictError(f'no pushed model under {serving}: run the '
                           'pipeline until a model is blessed (make run), '
                           'or pass --model-dir')
    elif not os.path.isfile(os.path.join(model_dir, 'saved_model.pb')):
      raise PredictError(f'{model_dir} is not a SavedModel folder '
                         '(no saved_model.pb)')
    schema_file = args.schema or newest_schema_file(output_dir, name)
    if args.output:
      buffer = io.StringIO()
      count = predict(args.input, model_dir, schema_file, buffer, unused, fmt)
      try:
        with open(args.output, 'w', encoding=fmt.encoding,
                  newline='') as f:
          f.write(buffer.getvalue())
      except OSError as error:
        raise PredictError(f'cannot write {args.output}: {error}') from None
      print(f'Scored {count} rows with {model_dir}: {args.output}',
            file=sys.stderr)
    else:
      predict(args.input, model_dir, schema_file, sys.stdout, unused, fmt)
  except PredictError as error:
    print(f'predict: {error}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
