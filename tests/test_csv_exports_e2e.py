"""The bundled data as people export it, through the whole local pipeline.

A Norwegian spreadsheet's export of the suite's slice of the bundled data:
`;`-separated, decimal commas, CRLF, a byte order mark, written by pandas (so
integer columns with empty cells hold `17031081500,0`). With CSV_DELIMITER
and CSV_DECIMAL it passes the reviewed schema and trains to the original's
accuracy (the same examples, so the same split); without them it is refused
before anything runs, naming `;` and the settings. (ExampleGen's examples of
such exports are compared with the original's in
test_columnar_csv_example_gen.py.)
"""
import os

import pandas as pd
import pytest

from tests import helpers

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def semicolon_export(tmp_path_factory, data_slice):
  folder = str(tmp_path_factory.mktemp('semicolon_export'))
  pd.read_csv(helpers.csv_path(data_slice)).to_csv(
      helpers.csv_path(folder), sep=';', decimal=',', index=False,
      encoding='utf-8-sig', lineterminator='\r\n')
  return folder


def test_without_its_settings_the_export_is_refused_naming_semicolon(
    semicolon_export, tmp_path, monkeypatch, capsys):
  # In-process: the check before any Beam job takes milliseconds.
  monkeypatch.setenv('DATA_PATH', semicolon_export)
  monkeypatch.setenv('LOCAL_OUTPUT_DIR', str(tmp_path / 'out'))
  import local_runner  # pylint: disable=g-import-not-at-top
  assert local_runner.main([]) == 1
  err = capsys.readouterr().err
  assert err.startswith(f'data error: {helpers.csv_path(semicolon_export)}:1:'
                        " the header is one column 'pickup_community_area;")
  assert ("but splits into 19 columns on ';': the file looks ';'-separated; "
          "set CSV_DELIMITER=';' (and CSV_DECIMAL=','") in err
  assert not os.path.exists(tmp_path / 'out')


def test_with_its_two_settings_it_trains_as_the_original(
    semicolon_export, local_runs, tmp_path_factory):
  original = local_runs[0].summary()
  run = helpers.run_local_pipeline(
      semicolon_export, tmp_path_factory.mktemp('semicolon_out'),
      'e2e-semicolon', CSV_DELIMITER=';', CSV_DECIMAL=',')
  assert run.returncode == 0, run.output[-3000:]
  assert (f'against the reviewed schema {helpers.REVIEWED_SCHEMA}'
          in run.output)
  assert "Column settings: the bundled taxi data's DROP_COLUMNS" in run.output
  summary = run.summary()
  assert summary.metrics['example_count'] == original.metrics['example_count']
  # The same examples and split, the same seed: the same model, within
  # floating-point noise.
  assert abs(summary.metrics['binary_accuracy'] -
             original.metrics['binary_accuracy']) <= 0.005, (
                 summary.metrics, original.metrics)
  assert summary.blessed is True and summary.pushed_to
