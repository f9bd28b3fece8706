"""The HTML run report of the suite's small run, also rendered in Chromium."""
import dataclasses
import html.parser
import os
import re
import shutil
import subprocess
import tempfile
from typing import Dict, List

import pytest
from PIL import Image  # Pillow, pinned in requirements.lock

from local import artifact_readers
from pipeline import configs
from models import features
from pipeline import component_ids
from pipeline import eval_config
from local import output_layout
from local import run_artifacts
from local.report import run_report
from local.html import svg_plots
from models import signatures as model_signatures

DEFAULTS = configs.load({})  # the bundled taxi data's settings

pytestmark = pytest.mark.slow

# The gate metric of the suite's run (the bundled data: binary).
_ACCURACY = eval_config.METRICS[features.BINARY].gate.key

NO_CHROMIUM = ('chromium is not installed, so the report cannot be rendered in '
               'a browser: install it with `sudo scripts/install_chromium.sh` '
               "(Debian's chromium package, through apt-get)")


class _Page(html.parser.HTMLParser):
  """Collects section ids, svg elements and the text of a page."""

  def __init__(self):
    super().__init__()
    self.sections: List[str] = []
    self.svg_children: List[Dict[str, int]] = []
    self.classes: List[str] = []
    self.text: List[str] = []
    self._svg_depth = 0

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == 'section':
      self.sections.append(attrs.get('id'))
    if attrs.get('class'):
      self.classes.append(attrs['class'])
    if tag == 'svg':
      self.svg_children.append({})
      self._svg_depth += 1
    elif self._svg_depth:
      counts = self.svg_children[-1]
      counts[tag] = counts.get(tag, 0) + 1

  def handle_endtag(self, tag):
    if tag == 'svg':
      self._svg_depth -= 1

  def handle_data(self, data):
    self.text.append(data)


def _visible_text(page) -> str:
  """The page's text (markup or parsed) as one line, spaces collapsed."""
  page = _parse(page) if isinstance(page, str) else page
  return re.sub(r'\s+', ' ', ''.join(page.text))


def _parse(markup: str) -> _Page:
  page = _Page()
  page.feed(markup)
  return page


@pytest.fixture(scope='module')
def latest(local_runs):
  """The second run of the suite's pipeline: it has a baseline model."""
  _, second = local_runs
  return run_artifacts.load_run(second.output_dir, second.pipeline_name)


@pytest.fixture(scope='module')
def report(latest, local_runs):
  _, second = local_runs
  assert second.report_path, second.output[-2000:]
  with open(second.report_path, encoding='utf-8') as f:
    return f.read()


def test_local_runner_prints_one_report_per_run(local_runs, latest):
  first, second = local_runs
  assert first.report_path != second.report_path
  for run in (first, second):
    assert os.path.isfile(run.report_path), run.output[-2000:]
  assert second.report_path == output_layout.report_path(
      second.output_dir, second.pipeline_name, latest.run_id)


def test_report_has_every_section_and_nothing_unreadable(report):
  page = _parse(report)
  assert page.sections == [key for key, _ in run_report.SECTIONS]
  assert run_report.UNAVAILABLE_CLASS not in page.classes, [
      t for t in page.text if 'Could not' in t or 'did not' in t]


def test_outcome_names_the_decision_model_and_signature(report, latest):
  summary = latest.summary
  assert summary.blessed and summary.pushed_to
  text = _visible_text(report)
  assert 'Blessed: the model passed every threshold and was pushed.' in text
  assert summary.pushed_to in text
  signatures = {s.name: s for s in artifact_readers.signatures(
      summary.pushed_to)}
  examples = signatures[model_signatures.EXAMPLES_SIGNATURE]
  assert [t.name for t in examples.inputs] == ['examples']
  rows = signatures[model_signatures.ROWS_SIGNATURE]
  assert 'trip_miles' in [t.name for t in rows.inputs]
  for tensor in examples.inputs + rows.inputs + rows.outputs:
    assert f'<code>{tensor.name}</code>' in report


def test_evaluation_shows_candidate_baseline_and_threshold(report, latest):
  summary = latest.summary
  assert summary.baseline_metrics  # the first run's model
  metric = _ACCURACY
  row = re.search(rf'<tr><td>{metric}</td>(.*?)</tr>', report).group(1)
  cells = re.findall(r'<td[^>]*>(.*?)</td>', row)
  assert float(cells[0]) == pytest.approx(summary.metrics[metric], abs=1e-4)
  assert float(cells[1]) == pytest.approx(summary.baseline_metrics[metric],
                                          abs=1e-4)
  assert f'&gt;= {DEFAULTS.EVAL_ACCURACY_THRESHOLD:g}' in cells[3]
  assert 'pass' in cells[4]
  # Which gate applied, and the three models side by side per slice.
  gates = summary.gates
  assert gates['gate'] == 'absolute threshold'  # the bundled data's 0.85
  assert (f'Gate: absolute threshold: accuracy &gt;= '
          f'{gates["bound"]:.4g}.') in report
  for row in gates['rows']:
    name = row['slice'] or 'whole eval split'
    cells = re.findall(r'<td[^>]*>(.*?)</td>', re.search(
        rf'<tr><td>{re.escape(name)}</td>(.*?)</tr>', report).group(1))
    assert [float(c) for c in cells] == pytest.approx(
        [row['examples'], row['model'], row['trivial'], row['baseline']],
        abs=1e-3)
  assert gates['held_slices']  # payment types with enough trips


def test_evaluation_has_a_chart_and_table_per_slice_column(report, latest):
  assert DEFAULTS.EVAL_SLICE_COLUMNS  # the default slices something
  slices = artifact_readers.slice_metrics(latest.evaluation)
  for column in DEFAULTS.EVAL_SLICE_COLUMNS:
    assert f'Per slice: {column}</h3>' in report
    values = [s.value for s in slices if s.column == column]
    assert len(values) > 1, column
    assert (f'aria-label="{_ACCURACY} per {column} '
            '(candidate model)"') in report
    for value in values:
      assert f'<tr><td>{value}</td>' in report


def test_training_curves_come_from_the_tensorboard_logs(report, latest):
  curves = artifact_readers.training_scalars(latest.model_run)
  assert 'loss' in curves
  train = curves['loss']['train']
  assert len(train) > 10  # step-level, not one point per epoch
  assert curves['loss']['validation'][-1][0] == train[-1][0]  # same axis
  page = _parse(report)
  loss_charts = [c for c in page.svg_children if c.get('polyline')]
  assert loss_charts, 'no line chart in the report'
  assert 'aria-label="loss"' in report


def test_statistics_schema_and_anomalies(report, latest):
  schema = artifact_readers.load_schema(latest.schema_file)
  for feature in schema.feature:
    assert f'<b>{feature.name}</b>' in report
  statistics = dict(latest.split_files(latest.statistics, 'FeatureStats.pb'))
  assert set(statistics) == {'train', 'eval'}
  for split, path in statistics.items():
    plotted = 0
    for feature in artifact_readers.feature_statistics(path):
      chart = f'aria-label="{feature.name} ({split}): '
      has_values = bool(feature.histogram or feature.top_values)
      assert (chart in report) == has_values, (feature.name, split)
      plotted += has_values
      assert f'{feature.missing_share:.1%}' in report
    assert plotted >= len(schema.feature) - 1  # all but the empty column
  for split, path in latest.split_files(latest.anomalies, 'SchemaDiff.pb'):
    found = artifact_readers.anomalies(path)
    assert (f'{split}: {len(found)} anomalies' if found else
            f'{split}: no anomalies.') in report


def test_report_command_and_its_errors(local_runs, latest, tmp_path, capsys):
  _, second = local_runs
  target = tmp_path / 'report.html'
  assert run_report.main([
      '--output-dir', second.output_dir, '--pipeline-name',
      second.pipeline_name, '--run-id', latest.run_id,
      '--output', str(target)]) == 0
  assert capsys.readouterr().out.strip() == str(target)
  assert '<section id="evaluation">' in target.read_text()
  assert run_report.main(['--output-dir', str(tmp_path),
                          '--pipeline-name', 'no-such-pipeline']) == 1
  error = capsys.readouterr().err.strip()
  assert error.startswith('run_report: no metadata store at ')
  assert '\n' not in error
  assert run_report.main(['--output-dir', second.output_dir,
                          '--pipeline-name', second.pipeline_name,
                          '--run-id', 'no-such-run']) == 1
  assert "no run 'no-such-run'" in capsys.readouterr().err


def test_all_text_is_escaped():
  hostile = '<script>alert(1)</script>'
  chart = svg_plots.horizontal_bars([hostile], [1.0], title=hostile)
  assert '<script>' not in chart and '&lt;script&gt;' in chart
  chart = svg_plots.line_chart({hostile: [(0, 1), (1, 2)]}, title=hostile)
  assert '<script>' not in chart
  feature = artifact_readers.FeatureStats(
      name=hostile, kind='STRING', count=1, missing=0, numbers={},
      histogram=[], top_values=[(hostile, 1.0)], unique=1)
  assert '<script>' not in run_report._distribution(feature, hostile)  # pylint: disable=protected-access


def test_plots_reject_empty_data_with_a_clear_error():
  with pytest.raises(ValueError, match='len\\(edges\\)'):
    svg_plots.histogram([0.0], [], title='x')
  with pytest.raises(ValueError, match='at least one point'):
    svg_plots.line_chart({'a': []}, title='x')


def _png_colours(path: str) -> int:
  """The number of distinct colours in an image file."""
  with Image.open(path) as image:
    assert image.format == 'PNG', image.format
    return len(image.convert('RGB').getcolors(maxcolors=1 << 24))


def _chromium() -> str:
  """The chromium on PATH; skips the test without one, but fails it in CI."""
  found = shutil.which('chromium') or shutil.which('chromium-browser')
  if not found:
    if os.environ.get('CI') == 'true':
      pytest.fail(NO_CHROMIUM)
    pytest.skip(NO_CHROMIUM)
  return found


def _headless(chromium: str, *extra: str) -> subprocess.CompletedProcess:
  with tempfile.TemporaryDirectory() as profile:
    return subprocess.run(
        [chromium, '--headless', '--no-sandbox', '--disable-gpu',
         '--disable-background-networking', '--disable-component-update',
         '--no-first-run', f'--user-data-dir={profile}', *extra],
        capture_output=True, text=True, timeout=120, check=False)


def test_chromium_renders_the_sections_and_plots(report, local_runs,
                                                 tmp_path):
  chromium = _chromium()
  _, second = local_runs
  url = 'file://' + os.path.abspath(second.report_path)
  dom = _headless(chromium, '--dump-dom', url)
  assert dom.returncode == 0, dom.stderr[-2000:]
  page = _parse(dom.stdout)
  assert page.sections == [key for key, _ in run_report.SECTIONS]
  # Plots with data: bars (rect) and curves (polyline) inside <svg>.
  assert sum(1 for c in page.svg_children if c.get('rect', 0) > 2) > 10
  assert any(c.get('polyline') for c in page.svg_children)

  screenshot = tmp_path / 'report.png'
  shot = _headless(chromium, f'--screenshot={screenshot}',
                   '--window-size=1200,2400', '--hide-scrollbars', url)
  assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
  assert _png_colours(str(screenshot)) > 20  # text, charts: not blank


def test_not_blessed_run_says_why_and_shows_the_trained_model(latest):
  summary = dataclasses.replace(
      latest.summary, blessed=False, pushed_to=None,
      blessing_failures=['binary_accuracy 0.8000 is below the threshold 0.85'])
  page = run_report.render(dataclasses.replace(latest, summary=summary))
  text = _visible_text(page)
  assert ('Not blessed, so not pushed: binary_accuracy 0.8000 is below the '
          'threshold 0.85.') in text
  served = run_artifacts.newest_pushed_model(output_layout.serving_model_dir(
      latest.output_dir, latest.pipeline_name))
  assert f'the served model is still {served}' in text
  assert "Serving signature of this run's trained (unpushed) model" in text


def test_failed_run_reports_what_it_has(latest):
  components = dict(latest.summary.components)
  for component_id in (component_ids.TRAINER, component_ids.EVALUATOR,
                       component_ids.PUSHER):
    components[component_id] = dataclasses.replace(
        components[component_id], state='FAILED')
  summary = dataclasses.replace(latest.summary, components=components,
                                blessed=None, pushed_to=None, metrics={},
                                baseline_metrics={})
  page = _parse(run_report.render(dataclasses.replace(latest,
                                                      summary=summary)))
  text = _visible_text(page)
  assert 'No blessing decision: the Evaluator did not complete' in text
  assert 'The Trainer did not complete in this run.' in text
  assert page.classes.count(run_report.UNAVAILABLE_CLASS) == 2
  assert any(c.get('rect', 0) > 2 for c in page.svg_children)  # data plots


def test_a_report_failure_does_not_fail_the_run(monkeypatch, capsys):
  from local.run import outcome  # pylint: disable=g-import-not-at-top

  def broken(*unused_args, **unused_kwargs):
    raise OSError('disk full')

  monkeypatch.setattr(run_report, 'write_report', broken)
  outcome.print_report_path(DEFAULTS, 'some-run')
  captured = capsys.readouterr()
  assert captured.err == 'Warning: no run report: OSError: disk full\n'
  assert 'Report:' not in captured.out
