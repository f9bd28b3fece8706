"""Span folders, drift between spans, the training window's span selection,
`make schema`'s comparators and the run lock, without running a pipeline
(tests/test_spans_e2e.py runs them together)."""
import fnmatch
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import standard_artifacts

from local.run import run_lock
from local.schema import schema_comparators
from pipeline.data_files import schema_file
from pipeline.data_files import spans
from pipeline.components import accepted_spans
from pipeline.components import anomaly_rules
from pipeline.components import span_drift_validator
from pipeline.components import span_statistics_gen
from pipeline.components import training_window
from pipeline.errors import DataError
from tests import helpers

# --- The span layout ----------------------------------------------------------


def test_span_folders_are_listed_in_numeric_order(tmp_path):
  for name in ('span-10', 'span-2', 'span-1', 'notes', 'span-x'):
    os.makedirs(tmp_path / name)
  (tmp_path / 'README.md').write_text('about the data')
  assert spans.list_spans(str(tmp_path)) == [1, 2, 10]
  assert spans.ingested_folder(str(tmp_path), [1, 2, 10]) == str(
      tmp_path / 'span-10')
  assert spans.split_pattern([1, 2, 10]) == 'span-{SPAN}/*.csv*'


def test_a_folder_of_csv_files_has_no_spans(tmp_path):
  helpers.write_slice(str(tmp_path), rows=5)
  assert spans.list_spans(str(tmp_path)) == []
  assert spans.ingested_folder(str(tmp_path), []) == str(tmp_path)
  assert fnmatch.filter(['data.csv', 'data.csv.gz', 'README.md'],
                        spans.split_pattern([])) == ['data.csv', 'data.csv.gz']
  assert spans.list_spans(str(tmp_path / 'missing')) == []


def test_csv_files_beside_span_folders_are_refused(tmp_path):
  helpers.write_slice(str(tmp_path / 'span-1'), rows=5)
  helpers.write_slice(str(tmp_path), rows=5)
  with pytest.raises(DataError, match=r'span folders \(span-1, ...\) and '
                     r'CSV files of its own \(data.csv\)'):
    spans.list_spans(str(tmp_path))


def test_gs_listing_with_trailing_slashes():
  listing = ['span-1/', 'span-3/', 'span-2/']
  assert spans.list_spans('gs://b/data', lambda _: listing) == [1, 2, 3]


# --- Drift between spans ------------------------------------------------------


@pytest.fixture(scope='module')
def drift_anomalies():
  """TFDV's anomalies for a span whose fares tripled, against the previous
  span, with the reviewed schema's comparators."""
  rng = np.random.default_rng(0)
  before = pd.DataFrame({'fare': rng.gamma(2.0, 6.0, 600),
                         'company': rng.choice(['Acme', 'Bolt'], 600)})
  after = before.assign(fare=before.fare * 3)
  schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(before))
  for feature in schema.feature:
    feature.drift_comparator.CopyFrom(
        schema_comparators.default_comparator(feature))
  return tfdv.validate_statistics(
      tfdv.generate_statistics_from_dataframe(after), schema,
      previous_statistics=tfdv.generate_statistics_from_dataframe(before))


def test_drift_names_the_column_and_its_distance(drift_anomalies):
  found = (anomaly_rules.from_proto(drift_anomalies, 'train', 'a/train') +
           anomaly_rules.from_proto(drift_anomalies, 'eval', 'a/eval'))
  assert {(a.column, a.kind) for a in found} == {
      ('fare', 'COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH')}
  assert all(a.is_drift for a in found)
  assert found[0].distance > found[0].threshold == pytest.approx(0.3)
  message = anomaly_rules.describe(found, baseline_span=2)
  assert message.startswith(
      'the new span drifted from span 2 in 1 column(s): fare: '
      f'Jensen-Shannon divergence {found[0].distance:.3g} > 0.3 '
      '[COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH in eval, train]')
  assert 'a/train' in message and 'DRIFT_ACTION=warn' in message
  assert 'ALLOWED_ANOMALIES' not in message  # no schema mismatch


def test_drift_action_warn_passes_drift_and_judges_the_rest(drift_anomalies):
  drift = anomaly_rules.from_proto(drift_anomalies, 'train', 'f')
  mismatch = anomaly_rules.Anomaly('train', 'company', 'SCHEMA_NEW_COLUMN',
                                   'ERROR', 'New column', 'New column', 'f')
  judged, warned = anomaly_rules.split_drift(drift + [mismatch], 'warn')
  assert judged == [mismatch] and warned == drift
  judged, warned = anomaly_rules.split_drift(drift + [mismatch], 'stop')
  assert judged == drift + [mismatch] and warned == []


# --- Which spans: the previous span, the newest per span ----------------------


def _artifact(artifact_type, artifact_id, span, created, custom_span=True):
  artifact = artifact_type()
  artifact.id = artifact_id
  artifact.mlmd_artifact.create_time_since_epoch = created
  if custom_span:  # as ExampleGen records it
    artifact.set_int_custom_property('span', span)
  else:
    artifact.span = span
  return artifact


def test_span_of_reads_examplegens_custom_property():
  examples = _artifact(standard_artifacts.Examples, 1, 7, 0)
  assert examples.span == 0  # the property TFX's LatestSpan reads
  assert span_statistics_gen.span_of(examples) == 7
  examples.set_string_custom_property('span', '8')  # older releases
  assert span_statistics_gen.span_of(examples) == 8


def _accept(folder, span, version=''):
  return accepted_spans.accept(str(folder), accepted_spans.AcceptedSpan(
      span, f'/examples/{span}{version}', f'/statistics/{span}{version}',
      ['train', 'eval']))


def test_the_record_keeps_the_newest_version_of_each_accepted_span(tmp_path):
  record = tmp_path / 'accepted_spans'
  assert accepted_spans.accepted_spans(str(record)) == []  # no run yet
  for span, version in ((1, 'a'), (3, 'a'), (2, 'a'), (2, 'b')):
    _accept(record, span, version)
  found = accepted_spans.accepted_spans(str(record))
  assert [(a.span, a.examples_uri) for a in found] == [
      (1, '/examples/1a'), (2, '/examples/2b'), (3, '/examples/3a')]
  assert found[1].splits == ['train', 'eval']
  assert sorted(os.listdir(record)) == [
      'span-1.json', 'span-2.json', 'span-3.json']  # no partial file left


def test_drift_reference_is_the_newest_accepted_span_below_the_new_one(
    tmp_path):
  record = str(tmp_path / 'accepted_spans')
  _accept(record, 1)
  _accept(record, 2)
  _accept(record, 4)  # span 3 was refused: it has no record
  assert accepted_spans.previous(record, 5).span == 4
  assert accepted_spans.previous(record, 4).span == 2
  assert accepted_spans.previous(record, 3).span == 2
  assert accepted_spans.previous(record, 1) is None
  assert span_drift_validator.split_of('/x/anomalies/7/Split-eval') == 'eval'


def test_the_window_is_the_new_span_and_the_newest_accepted_before_it(
    tmp_path):
  record = str(tmp_path / 'accepted_spans')
  for span in (1, 2, 4, 6):  # 3 and 5 refused; 6 newer than this run's
    _accept(record, span)
  new = accepted_spans.AcceptedSpan(5, '/examples/5', '', ['train'])
  assert [a.span for a in accepted_spans.window(record, new, 3)] == [2, 4, 5]
  assert [a.span for a in accepted_spans.window(record, new, 1)] == [5]
  assert [a.span for a in accepted_spans.window(record, new, 9)] == [
      1, 2, 4, 5]


def test_a_damaged_record_names_its_file(tmp_path):
  record = tmp_path / 'accepted_spans'
  _accept(record, 1)
  (record / 'span-2.json').write_text('{"span": 2}')
  with pytest.raises(DataError, match=r'span-2\.json: not a record of an '
                     r'accepted span .*delete the file'):
    accepted_spans.accepted_spans(str(record))


def test_the_window_copies_every_split_of_each_span(tmp_path):
  window = []
  for span in (1, 2):
    for split in ('train', 'eval'):
      folder = tmp_path / f'examples{span}' / f'Split-{split}'
      folder.mkdir(parents=True)
      (folder / 'data_tfrecord-00000-of-00001.gz').write_bytes(
          f'{span}{split}'.encode())
    window.append(accepted_spans.AcceptedSpan(
        span, str(tmp_path / f'examples{span}'), '', ['train', 'eval']))
  out = tmp_path / 'window'
  training_window.copy_window(window, ['train', 'eval'], str(out))
  for split in ('train', 'eval'):
    assert {name: (out / f'Split-{split}' / name).read_bytes() for name in
            os.listdir(out / f'Split-{split}')} == {
                f'span-{span}-data_tfrecord-00000-of-00001.gz':
                f'{span}{split}'.encode() for span in (1, 2)}


# --- make schema keeps the comparators ---------------------------------------


def _feature(schema, name, kind):
  return schema.feature.add(name=name, type=kind)


def test_comparators_are_carried_over_and_new_columns_get_defaults():
  old = schema_pb2.Schema()
  _feature(old, 'fare', schema_pb2.FLOAT).drift_comparator.\
      jensen_shannon_divergence.threshold = 0.5
  _feature(old, 'trip_start_month', schema_pb2.INT)  # reviewed: none
  new = schema_pb2.Schema()
  for name, kind in (('fare', schema_pb2.FLOAT),
                     ('trip_start_month', schema_pb2.INT),
                     ('company', schema_pb2.BYTES),
                     ('big_tipper', schema_pb2.INT)):
    _feature(new, name, kind)
  merged = {f.name: f for f in schema_comparators.carry_over(
      new, old, uncompared=['big_tipper']).feature}
  assert merged['fare'].drift_comparator.jensen_shannon_divergence.\
      threshold == 0.5
  assert not merged['trip_start_month'].HasField('drift_comparator')
  assert merged['company'].drift_comparator.infinity_norm.threshold == (
      schema_comparators.L_INFINITY_THRESHOLD)
  assert not merged['big_tipper'].HasField('drift_comparator')
  assert not new.feature[2].HasField('drift_comparator')  # a copy
  # Nothing to replace: an inferred schema gets the defaults, a reviewed one
  # (it has comparators) stays as it is.
  inferred = {f.name: f for f in schema_comparators.carry_over(
      new, None, uncompared=['big_tipper']).feature}
  assert inferred['trip_start_month'].drift_comparator.\
      jensen_shannon_divergence.threshold == (
          schema_comparators.JENSEN_SHANNON_THRESHOLD)
  assert schema_comparators.carry_over(old, None) == old


def test_reviewed_schema_compares_the_model_inputs():
  with open(helpers.REVIEWED_SCHEMA) as f:
    schema = schema_file.parse(f.read())
  compared = {f.name for f in schema.feature if f.HasField('drift_comparator')}
  assert {'fare', 'trip_miles', 'company', 'payment_type'} <= compared
  assert not {'big_tipper', 'trip_start_timestamp', 'tips'} & compared


# --- The run lock ---------------------------------------------------------------

_HOLD = '''
import sys, time
from local.run import run_lock
lock = run_lock.RunLock(sys.argv[1])
lock.hold()
lock.announce('first-run')
print('held', flush=True)
time.sleep(float(sys.argv[2]))
'''


def _hold_in_another_process(folder, seconds):
  process = subprocess.Popen(
      [sys.executable, '-c', _HOLD, str(folder), str(seconds)],
      cwd=helpers.REPO, stdout=subprocess.PIPE, text=True)
  assert process.stdout.readline().strip() == 'held'
  return process


def test_a_second_run_is_refused_naming_the_running_one(tmp_path):
  holder = _hold_in_another_process(tmp_path, 30)
  try:
    with pytest.raises(run_lock.RunInProgress) as refused:
      run_lock.RunLock(str(tmp_path)).hold(run_lock.REFUSE)
    assert f'run first-run (process {holder.pid} on' in str(refused.value)
    assert 'CONCURRENT_RUNS=wait' in str(refused.value)
  finally:
    holder.kill()
    holder.wait()
  # The operating system released the killed process's lock.
  lock = run_lock.RunLock(str(tmp_path))
  lock.hold(run_lock.REFUSE)
  lock.release()


def test_a_waiting_run_starts_when_the_first_has_ended(tmp_path):
  holder = _hold_in_another_process(tmp_path, 2)
  waited_for = []
  start = time.monotonic()
  lock = run_lock.RunLock(str(tmp_path))
  lock.hold(run_lock.WAIT, on_wait=waited_for.append)
  # Not before the first one's 2 s were over (it ends on its own).
  assert time.monotonic() - start > 1.5
  assert holder.wait(timeout=30) == 0
  assert [h.run_id for h in waited_for] == ['first-run']
  lock.announce('second-run')
  assert run_lock._read_holder(str(tmp_path)).run_id == 'second-run'  # pylint: disable=protected-access
  lock.release()
