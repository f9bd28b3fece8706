"""python -m local.serving.predict on rows of the bundled data and on bad input."""
import csv
import gzip
import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipeline import configs

from local import csv_examples
from local.serving import predict
from models import signatures
from tests import helpers

DEFAULTS = configs.load({})  # the bundled taxi data's settings

ROWS = 25
LABEL = DEFAULTS.LABEL_KEY  # the bundled data's label, big_tipper


def _rows_csv(folder, drop=(), name='rows.csv') -> str:
  """The first ROWS rows of the bundled data (the suite's run trained on the
  first SLICE_ROWS), without the columns in `drop`."""
  header, rows = helpers.drop_columns(*helpers.bundled_rows(ROWS), drop)
  return helpers.write_csv(folder, header, rows, name)


def _args(pushed_model, *extra):
  output_dir, name = pushed_model.output_dir, pushed_model.pipeline_name
  return ['--output-dir', output_dir, '--pipeline-name', name, *extra]


@pytest.mark.slow
def test_scores_rows_with_the_newest_pushed_model(pushed_model, tmp_path,
                                                  capsys):
  rows = _rows_csv(str(tmp_path))
  target = tmp_path / 'predictions.csv'
  assert predict.main(_args(pushed_model, '--input', rows,
                            '--output', str(target))) == 0
  assert (f'Scored {ROWS} rows with {pushed_model.model_dir}' in
          capsys.readouterr().err)
  with open(target) as f:
    scored = list(csv.DictReader(f))
  with open(rows) as f:
    original = list(csv.DictReader(f))
  assert len(scored) == ROWS
  assert list(scored[0])[-2:] == ['probability', 'predicted_class']
  for before, after in zip(original, scored):
    assert all(after[k] == v for k, v in before.items())  # inputs kept
  probabilities = np.array([float(r['probability']) for r in scored])
  classes = np.array([int(r['predicted_class']) for r in scored])
  assert np.all((probabilities >= 0) & (probabilities <= 1))
  assert np.array_equal(classes, (probabilities >= 0.5).astype(int))
  # The same numbers as the served signature on the same rows.
  schema = csv_examples.load_schema(pushed_model.schema_file)
  with open(rows) as f:
    examples = helpers.csv_to_examples(f, schema)
  expected = tf.saved_model.load(pushed_model.model_dir).signatures[
      signatures.EXAMPLES_SIGNATURE](
      examples=tf.constant(examples))['probabilities'].numpy().ravel()
  np.testing.assert_allclose(probabilities, expected, atol=1e-6)


@pytest.mark.slow
def test_a_spreadsheet_export_is_scored_with_its_two_settings(
    pushed_model, tmp_path, capsys, monkeypatch):
  """A ';'-separated export with decimal commas (and integers written as
  floats, as pandas writes them): the original rows' probabilities, written
  back in the export's own format."""
  rows = _rows_csv(str(tmp_path))
  export = str(tmp_path / 'export.csv')
  pd.read_csv(rows).to_csv(export, sep=';', decimal=',', index=False,
                           encoding='utf-8-sig')
  expected = tmp_path / 'expected.csv'
  assert predict.main(_args(pushed_model, '--input', rows,
                            '--output', str(expected))) == 0
  monkeypatch.setenv('CSV_DELIMITER', ';')
  monkeypatch.setenv('CSV_DECIMAL', ',')
  target = tmp_path / 'predictions.csv'
  assert predict.main(_args(pushed_model, '--input', export,
                            '--output', str(target))) == 0
  capsys.readouterr()
  scored = pd.read_csv(target, sep=';', decimal=',')
  np.testing.assert_allclose(scored['probability'],
                             pd.read_csv(expected)['probability'], atol=1e-6)
  assert ';0,' in target.read_text()  # probabilities with decimal commas
  # The same export compressed and in Windows-1252 (CSV_ENCODING): the same
  # probabilities, written back in Windows-1252.
  monkeypatch.setenv('CSV_ENCODING', 'cp1252')
  windows = str(tmp_path / 'export.csv.gz')
  with open(export, encoding='utf-8-sig') as f, gzip.open(windows, 'wb') as out:
    out.write(f.read().encode('cp1252'))
  assert predict.main(_args(pushed_model, '--input', windows,
                            '--output', str(target))) == 0
  capsys.readouterr()
  scored = pd.read_csv(target, sep=';', decimal=',', encoding='cp1252')
  np.testing.assert_allclose(scored['probability'],
                             pd.read_csv(expected)['probability'], atol=1e-6)


@pytest.mark.slow
def test_command_line_writes_csv_to_stdout(pushed_model, tmp_path):
  rows = _rows_csv(str(tmp_path), drop=(LABEL, 'tips'))
  done = subprocess.run(
      [sys.executable, '-m', 'local.serving.predict', *_args(pushed_model, '--input',
                                                        rows)],
      cwd=helpers.REPO, capture_output=True, text=True, timeout=300,
      check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  scored = list(csv.DictReader(io.StringIO(done.stdout)))
  assert len(scored) == ROWS and 'probability' in scored[0]
  assert LABEL not in scored[0]  # not needed, not invented


@pytest.mark.slow
def test_missing_column_is_named(pushed_model, tmp_path, capsys):
  rows = _rows_csv(str(tmp_path), drop=('fare', 'company'))
  assert predict.main(_args(pushed_model, '--input', rows)) == 1
  error = capsys.readouterr().err.strip()
  prefix = f'predict: {rows} lacks the column(s) the model needs: '
  assert error.startswith(prefix) and '\n' not in error, error
  assert set(error[len(prefix):].split(', ')) == {'fare', 'company'}


@pytest.mark.slow
def test_bad_input_gets_one_line_errors(pushed_model, tmp_path, capsys):
  missing = str(tmp_path / 'nope.csv')
  assert predict.main(_args(pushed_model, '--input', missing)) == 1
  assert capsys.readouterr().err.startswith(f'predict: cannot read {missing}')

  empty = tmp_path / 'empty.csv'
  empty.write_text('')
  assert predict.main(_args(pushed_model, '--input', str(empty))) == 1
  assert 'is empty' in capsys.readouterr().err

  rows = _rows_csv(str(tmp_path))
  with open(rows) as f:
    text = f.read()
  bad = tmp_path / 'bad.csv'
  lines = text.splitlines()
  header = lines[0].split(',')
  cells = lines[1].split(',')
  cells[header.index('fare')] = 'twelve'
  bad.write_text('\n'.join([lines[0], ','.join(cells)]) + '\n')
  assert predict.main(_args(pushed_model, '--input', str(bad))) == 1
  assert "column 'fare': 'twelve' is not FLOAT" in capsys.readouterr().err

  clash = tmp_path / 'clash.csv'
  clash.write_text(text.replace(lines[0], lines[0] + ',probability', 1)
                   .replace(lines[1], lines[1] + ',0.5', 1))
  assert predict.main(_args(pushed_model, '--input', str(clash))) == 1
  assert 'already has the column(s) probability' in capsys.readouterr().err

  nowhere = ['--output-dir', str(tmp_path), '--pipeline-name', 'nothing']
  assert predict.main(nowhere + ['--input', rows]) == 1
  error = capsys.readouterr().err
  assert error.startswith('predict: no pushed model under ') and (
      error.count('\n') == 1)
  assert predict.main(_args(pushed_model, '--input', rows, '--model-dir',
                            str(tmp_path))) == 1
  assert 'is not a SavedModel folder' in capsys.readouterr().err


def test_output_shapes_other_than_one_probability():
  names = np.array([[b'setosa', b'versicolor', b'virginica']] * 2)
  multiclass = predict.prediction_columns(
      {'probabilities': np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]),
       'class_names': names})
  assert multiclass['predicted_class'] == ['versicolor', 'setosa']
  assert multiclass['probability'] == ['0.700000', '0.500000']
  assert multiclass['probabilities'][0] == (
      'setosa:0.100000 versicolor:0.700000 virginica:0.200000')
  binary_text = predict.prediction_columns(
      {'probabilities': np.array([[0.2], [0.9]]),
       'class_names': np.array([[b'benign', b'malignant']] * 2)})
  assert binary_text == {'probability': ['0.200000', '0.900000'],
                         'predicted_class': ['benign', 'malignant']}
  regression = predict.prediction_columns(
      {'predictions': np.array([[12.5], [-3.25]], dtype=np.float32)})
  assert regression == {'prediction': ['12.5', '-3.25']}
  with pytest.raises(predict.PredictError, match='neither'):
    predict.prediction_columns({'logits': np.array([[1.0]])})
  binary = predict.prediction_columns(
      {'probabilities': np.array([[0.5], [0.49]], dtype=np.float32)})
  assert binary == {'probability': ['0.500000', '0.490000'],
                    'predicted_class': ['1', '0']}


@pytest.mark.parametrize('module', ['local.serving.predict', 'local.report'])
def test_a_bad_setting_is_a_one_line_error(module):
  env = dict(os.environ, TRAIN_NUM_STEPS='abc')
  done = subprocess.run(
      [sys.executable, '-m', module, '--input', 'rows.csv'],
      cwd=helpers.REPO, env=env, capture_output=True, text=True,
      timeout=300, check=False)
  assert done.returncode == 2  # as the runners exit on a bad setting
  assert done.stderr.strip().splitlines()[-1] == (
      "configuration error: TRAIN_NUM_STEPS='abc' is not an integer.")
  assert 'Traceback' not in done.stderr
