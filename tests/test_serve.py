"""`make serve` (local/serving/serve.py, local/serving/serving_requests.py).

The request rules on their own, then the server over real HTTP: a werkzeug
server in a thread on a free loopback port, serving a copy of the suite's
pushed model (the session fixture `pushed_model`), asked with `requests`.
"""
import csv
import io
import json
import math
import os
import re
import shutil
import socket
import threading

import numpy as np
import pytest
import requests
import tensorflow as tf

from local.serving import predict
from local.serving import serve
from local.serving import serving_requests
from models import signatures
from pipeline import configs
from tests import helpers

NAME = 'e2e-test'  # the suite's run's pipeline name, served as the model
SPECS = {'fare': tf.TensorSpec([None], tf.float64, name='fare'),
         'company': tf.TensorSpec([None], tf.string, name='company')}
# Bundled rows the suite's run never trained on, with empty cells.
UNSEEN = slice(helpers.SLICE_ROWS + 2000, helpers.SLICE_ROWS + 2040)


# --- The request rules -------------------------------------------------------


def test_instances_become_one_typed_array_per_column():
  columns = serving_requests.instances_to_columns(
      {'instances': [{'fare': 7, 'company': 'A'},
                     {'fare': math.nan, 'company': ''}]}, SPECS)
  assert columns['fare'].dtype == np.float64
  assert columns['fare'][0] == 7 and math.isnan(columns['fare'][1])
  assert list(columns['company']) == ['A', '']


@pytest.mark.parametrize('instance, message', [
    ({'company': 'A'}, "instance 0 lacks column(s) 'fare'"),
    ({'fare': 1.0, 'company': 'A', 'tips': 2.0},
     "instance 0 has column(s) 'tips' that the model does not take"),
    ({'fare': '7.25', 'company': 'A'},
     "instance 0: column 'fare' is \"7.25\", expected a number (NaN when "
     'missing)'),
    ({'fare': None, 'company': 'A'}, "column 'fare' is null"),
    ({'fare': True, 'company': 'A'}, "column 'fare' is true"),
    ({'fare': 1.0, 'company': 3}, "column 'company' is 3, expected text"),
    (['fare', 1.0], 'instance 0 is not a JSON object'),
])
def test_a_bad_instance_is_named_with_its_column(instance, message):
  with pytest.raises(serving_requests.RequestError) as error:
    serving_requests.instances_to_columns({'instances': [instance]}, SPECS)
  assert message in str(error.value)


@pytest.mark.parametrize('body, message', [
    (b'{"instances": [', 'the body is not JSON'),
    (b'\xff', 'the body is not JSON'),
    (b'[1, 2]', 'the body must be a JSON object'),
])
def test_a_body_that_is_no_json_object_is_refused(body, message):
  with pytest.raises(serving_requests.RequestError, match=message):
    serving_requests.parse_body(body)


@pytest.mark.parametrize('body', [{}, {'instances': []},
                                  {'instances': {'fare': 1.0}}])
def test_a_body_without_instances_is_refused(body):
  with pytest.raises(serving_requests.RequestError, match='"instances"'):
    serving_requests.instances_to_columns(body, SPECS)


def test_only_the_rows_signature_is_served():
  body = {'instances': [{'fare': 1.0, 'company': 'A'}]}
  assert serving_requests.instances_to_columns(
      {**body, 'signature_name': 'serving_default'}, SPECS)
  with pytest.raises(serving_requests.RequestError,
                     match="signature_name 'predict'"):
    serving_requests.instances_to_columns(
        {**body, 'signature_name': 'predict'}, SPECS)


def test_predictions_are_tensorflow_servings_row_format():
  outputs = {'probabilities': np.array([[0.1], [0.7]], np.float32),
             'predicted_class': np.array([b'0', b'1'])}
  assert serving_requests.predictions(outputs) == [
      {'probabilities': [0.1], 'predicted_class': '0'},
      {'probabilities': [0.7], 'predicted_class': '1'}]
  single = {'predictions': np.array([[41.5], [7.25]], np.float32)}
  assert serving_requests.predictions(single) == [[41.5], [7.25]]


def test_a_csv_row_becomes_an_instance_with_nan_for_empty_numbers():
  instance = serving_requests.csv_row_to_instance(
      {'fare': '', 'company': '', 'tips': '1.0'}, SPECS)
  assert math.isnan(instance['fare']) and instance['company'] == ''
  assert set(instance) == set(SPECS)
  with pytest.raises(serving_requests.RequestError, match="'fare'"):
    serving_requests.csv_row_to_instance({'fare': 'x', 'company': ''}, SPECS)


# A model trained on a spreadsheet export: its inputs' names are derived from
# the columns' names (models/features.py input_name).
NORWEGIAN = {'Vekt__kg_': tf.TensorSpec([None], tf.float64, name='Vekt__kg_'),
             'Arsdogntrafikk': tf.TensorSpec([None], tf.float64,
                                             name='Arsdogntrafikk')}


def test_instances_may_name_columns_as_the_csv_or_the_signature_does():
  columns = serving_requests.instances_to_columns(
      {'instances': [{'Vekt (kg)': 7, 'Årsdøgntrafikk': 1200},
                     {'Vekt__kg_': 8, 'Arsdogntrafikk': 900}]}, NORWEGIAN)
  assert list(columns['Vekt__kg_']) == [7, 8]
  assert list(columns['Arsdogntrafikk']) == [1200, 900]
  with pytest.raises(serving_requests.RequestError,
                     match=re.escape("instance 0: columns 'Vekt (kg)' and "
                                     "'Vekt__kg_' would both be")):
    serving_requests.instances_to_columns(
        {'instances': [{'Vekt (kg)': 7, 'Vekt__kg_': 7,
                        'Årsdøgntrafikk': 1}]}, NORWEGIAN)


def test_a_csv_row_with_spreadsheet_column_names_becomes_an_instance():
  instance = serving_requests.csv_row_to_instance(
      {'Vekt (kg)': '7.5', 'Årsdøgntrafikk': '', 'label': '1'}, NORWEGIAN)
  assert instance['Vekt__kg_'] == 7.5
  assert math.isnan(instance['Arsdogntrafikk'])
  assert set(instance) == set(NORWEGIAN)


def test_without_a_pushed_model_serve_stops_with_one_line(tmp_path, capsys):
  assert serve.main(['--model-base-dir', str(tmp_path), '--port', '0']) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err == [f'serve: no model to serve under {tmp_path}: run the '
                 'pipeline until a model is blessed (make run), or pass '
                 '--model-base-dir']


def _version_dir(serving_dir, version):
  path = os.path.join(str(serving_dir), str(version))
  os.makedirs(path)
  open(os.path.join(path, 'saved_model.pb'), 'wb').close()
  return path


def test_watcher_serves_the_version_before_while_a_newer_one_loads(tmp_path):
  loading, release = threading.Event(), threading.Event()

  def load(path):
    if os.path.basename(path) == '2':
      loading.set()
      release.wait(10)
    return serve.ServedModel(int(os.path.basename(path)), path, None, {},
                             None)

  first = _version_dir(tmp_path, 1)
  watcher = serve.ModelWatcher(str(tmp_path), load=load, log=lambda _: None)
  assert watcher.current().path == first
  second = _version_dir(tmp_path, 2)
  loader = threading.Thread(target=watcher.current)
  loader.start()
  assert loading.wait(10)
  assert watcher.current().path == first  # not blocked by the load
  release.set()
  loader.join(10)
  assert watcher.current().path == second


# --- The server over HTTP ----------------------------------------------------


def _push(model_dir, serving_dir, version):
  """Copies a SavedModel in as `version`, appearing at once (as the Pusher
  writes: a copy, then a rename)."""
  staging = os.path.join(serving_dir, f'.{version}.tmp')
  shutil.copytree(model_dir, staging)
  os.rename(staging, os.path.join(serving_dir, str(version)))


def _constant_model(path, inputs, probability):
  """A SavedModel with the same rows inputs that answers `probability`."""

  @tf.function(input_signature=[dict(inputs)])
  def rows(columns):
    batch = tf.size(next(iter(columns.values())))
    return {signatures.PROBABILITIES: tf.fill([batch, 1], probability)}

  tf.saved_model.save(tf.Module(), str(path),
                      signatures={signatures.ROWS_SIGNATURE: rows})
  return str(path)


@pytest.fixture(scope='module')
def row_specs(pushed_model):
  """The inputs of the suite's model's rows signature."""
  return tf.saved_model.load(pushed_model.model_dir).signatures[
      signatures.ROWS_SIGNATURE].structured_input_signature[1]


@pytest.fixture(scope='module')
def server(pushed_model, tmp_path_factory):
  """(base URL, serving folder): a server of version 1, a copy of the
  suite's model, on a free port."""
  serving_dir = str(tmp_path_factory.mktemp('serving'))
  _push(pushed_model.model_dir, serving_dir, 1)
  httpd = serve.make_server(
      serving_dir, NAME, port=0,
      max_body_bytes=configs.load({}).SERVE_MAX_BODY_BYTES)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield f'http://{serve.HOST}:{httpd.port}/v1/models/{NAME}', (
      serving_dir)
  httpd.shutdown()
  httpd.server_close()


# A body of a few instances; the stand-in server below refuses larger ones.
SMALL_BODY_BYTES = 20_000


@pytest.fixture(scope='module')
def constant_server(tmp_path_factory):
  """The base URL of a server of a stand-in model with SPECS' inputs that
  answers 0.25 for every row, refusing bodies over SMALL_BODY_BYTES."""
  serving_dir = tmp_path_factory.mktemp('constant')
  _constant_model(serving_dir / '1', SPECS, 0.25)
  httpd = serve.make_server(str(serving_dir), NAME, port=0,
                            max_body_bytes=SMALL_BODY_BYTES)
  threading.Thread(target=httpd.serve_forever, daemon=True).start()
  yield f'http://{serve.HOST}:{httpd.port}/v1/models/{NAME}'
  httpd.shutdown()
  httpd.server_close()


def _json_error(answer, status):
  assert answer.status_code == status, answer.text
  assert answer.headers['Content-Type'] == 'application/json'
  return answer.json()['error']


def test_a_deeply_nested_body_gets_a_400_in_json(constant_server):
  for body in ('[' * 5000 + ']' * 5000,
               '{"instances": ' + '[' * 5000 + ']' * 5000 + '}'):
    error = _json_error(_post(constant_server, body), 400)
    assert 'nests arrays or objects too deeply' in error
  row = {'fare': 1.0, 'company': 'A'}
  # Deep, but parsed: a cell that is no value.
  deep = {'instances': [{**row, 'fare': json.loads('[' * 500 + ']' * 500)}]}
  assert "column 'fare' is an array" in _json_error(
      _post(constant_server, deep), 400)
  assert _post(constant_server, {'instances': [row]}).status_code == 200


def test_the_columnar_form_is_answered_in_columns(constant_server):
  answer = _post(constant_server,
                 {'inputs': {'fare': [1.0, float('nan')],
                             'company': ['A', '']}})
  assert answer.status_code == 200, answer.text
  assert answer.json() == {'outputs': [[0.25], [0.25]]}
  one = _post(constant_server, {'inputs': {'fare': 3, 'company': 'B'}})
  assert one.json() == {'outputs': [[0.25]]}
  for body, message in (
      ({'inputs': {'fare': [1.0, 2.0], 'company': ['A']}},
       "as many in each ('company': 1, 'fare': 2)"),
      ({'inputs': {'fare': [1.0]}}, "lacks column(s) 'company'"),
      ({'inputs': [1.0]}, '"inputs" is not a JSON object'),
      ({'inputs': {'fare': [1.0], 'company': ['A']},
        'instances': [{'fare': 1.0, 'company': 'A'}]},
       'has both "instances" and "inputs"')):
    assert message in _json_error(_post(constant_server, body), 400)


def test_a_body_over_the_size_setting_gets_413_naming_it(constant_server):
  rows = [{'fare': 1.0, 'company': 'A' * 40}] * 1000
  error = _json_error(_post(constant_server, {'instances': rows}), 413)
  assert error == (f'the body is over SERVE_MAX_BODY_BYTES={SMALL_BODY_BYTES} '
                   'bytes: send fewer rows per request, or raise '
                   'SERVE_MAX_BODY_BYTES')
  assert _post(constant_server, {'instances': rows[:5]}).status_code == 200


def _unseen(tmp_path):
  """(rows as CSV file, the same rows as instances), with empty cells."""
  header, rows = helpers.bundled_rows(UNSEEN.stop)
  rows = rows[UNSEEN]
  path = helpers.write_csv(tmp_path, header, rows, 'rows.csv')
  with open(path, newline='') as f:
    records = list(csv.DictReader(f))
  return path, records


def _post(url, body):
  data = body if isinstance(body, (bytes, str)) else json.dumps(body)
  return requests.post(url + ':predict', data=data, timeout=60)


@pytest.mark.slow
def test_predictions_equal_those_of_predict(server, pushed_model, row_specs,
                                            tmp_path):
  url, _ = server
  path, records = _unseen(tmp_path)
  instances = [serving_requests.csv_row_to_instance(r, row_specs)
               for r in records]
  assert any(math.isnan(v) for i in instances for v in i.values()
             if isinstance(v, float))
  answer = _post(url, {'instances': instances})
  assert answer.status_code == 200, answer.text
  served = answer.json()['predictions']

  out = io.StringIO()
  predict.predict(path, pushed_model.model_dir, pushed_model.schema_file,
                  out, unused_columns=['big_tipper', 'tips'])
  expected = list(csv.DictReader(io.StringIO(out.getvalue())))
  assert len(served) == len(expected) == len(records)
  for row, want in zip(served, expected):
    assert row[signatures.CLASS_NAMES] == ['0', '1']
    assert row[signatures.PROBABILITIES][0] == pytest.approx(
        float(want['probability']), abs=1e-6)
    assert row[signatures.PREDICTED_CLASS] == want['predicted_class']


@pytest.mark.slow
def test_bad_requests_get_400_naming_the_column_and_serving_goes_on(
    server, row_specs, tmp_path):
  url, _ = server
  _, records = _unseen(tmp_path)
  status = requests.get(url, timeout=60)
  assert status.status_code == 200
  good = {'instances': [serving_requests.csv_row_to_instance(records[0],
                                                             row_specs)]}
  lacking = {'instances': [{k: v for k, v in good['instances'][0].items()
                            if k != 'fare'}]}
  wrong_type = {'instances': [{**good['instances'][0], 'trip_miles': '1.2'}]}
  fraction = {'instances': [{**good['instances'][0], 'trip_seconds': 61.5}]}
  for body, column in ((lacking, 'fare'), (wrong_type, 'trip_miles'),
                       (fraction, 'trip_seconds'), ('not json', None)):
    answer = _post(url, body)
    assert answer.status_code == 400, answer.text
    assert answer.headers['Content-Type'] == 'application/json'
    message = answer.json()['error']
    assert (column or 'the body is not JSON') in message
    assert _post(url, good).status_code == 200  # still serving
  assert requests.get(url + ':predict', timeout=60).status_code == 405
  other = requests.get(url.replace(NAME, 'other-model'), timeout=60)
  assert other.status_code == 404 and 'other-model' in other.json()['error']


@pytest.mark.slow
def test_a_new_push_is_served_without_a_restart(server, row_specs, tmp_path):
  url, serving_dir = server
  _, records = _unseen(tmp_path)
  body = {'instances': [serving_requests.csv_row_to_instance(records[0],
                                                             row_specs)]}
  assert requests.get(url, timeout=60).json()['model_version_status'][0][
      'version'] == '1'
  _push(_constant_model(tmp_path / 'constant', row_specs, 0.25),
        serving_dir, 2)
  answer = _post(url, body)
  assert answer.json()['predictions'] == [[0.25]]  # its one output
  status = requests.get(url, timeout=60).json()['model_version_status']
  assert status == [{'version': '2', 'state': 'AVAILABLE',
                     'status': {'error_code': 'OK', 'error_message': ''}}]
  # A version that does not load is skipped; the one before goes on.
  broken = os.path.join(serving_dir, '3')
  os.makedirs(broken)
  with open(os.path.join(broken, 'saved_model.pb'), 'wb') as f:
    f.write(b'not a model')
  assert _post(url, body).json()['predictions'] == [[0.25]]
  assert requests.get(url, timeout=60).json()['model_version_status'][0][
      'version'] == '2'


@pytest.mark.slow
def test_a_busy_port_stops_serve_with_one_line(pushed_model, tmp_path, capsys):
  serving_dir = str(tmp_path / 'serving')
  os.makedirs(serving_dir)
  _push(pushed_model.model_dir, serving_dir, 1)
  with socket.socket() as busy:
    busy.bind((serve.HOST, 0))
    busy.listen()
    port = busy.getsockname()[1]
    assert serve.main(['--model-base-dir', serving_dir,
                       '--port', str(port)]) == 1
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert err.startswith(f'serve: cannot listen on {serve.HOST}:{port}: ')
  assert err.endswith('set SERVE_PORT to a free port')
