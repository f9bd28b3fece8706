"""The notebooks run headless without errors: the two that inspect a local
run against the suite's small run, the cloud quick start against the
Kubeflow Pipelines and Vertex AI stand-ins."""
import json
import os
import re
import sys
from typing import Optional

import nbformat
import pytest
from nbclient import NotebookClient

from models import features
from pipeline import configs
from pipeline import eval_config
from pipeline.vertex_serving import api as vertex_api
from pipeline.vertex_serving import provenance
from pipeline.vertex_serving import rollout
from pipeline.vertex_serving import target as vertex_target
from tests import helpers
from tests import kfp_standin
from tests.vertex_standin_models import VertexModelsStandin

pytestmark = pytest.mark.slow

NOTEBOOKS = os.path.join(helpers.REPO, 'notebooks')
KERNEL = 'tfx-template-venv'


@pytest.fixture(scope='module')
def jupyter_path(tmp_path_factory):
  """A kernel spec for this interpreter in a private JUPYTER_PATH (nothing
  registered globally)."""
  path = tmp_path_factory.mktemp('jupyter')
  spec_dir = path / 'kernels' / KERNEL
  spec_dir.mkdir(parents=True)
  (spec_dir / 'kernel.json').write_text(json.dumps({
      'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f',
               '{connection_file}'],
      'display_name': 'tfx template venv', 'language': 'python'}))
  return str(path)


@pytest.fixture(scope='module')
def kernel_env(local_runs, jupyter_path):
  """The kernel, and the run's settings in the environment."""
  _, second = local_runs
  patch = pytest.MonkeyPatch()
  patch.setenv('JUPYTER_PATH', jupyter_path)
  patch.setenv('LOCAL_OUTPUT_DIR', second.output_dir)
  patch.setenv('PIPELINE_NAME', second.pipeline_name)
  patch.setenv('TF_CPP_MIN_LOG_LEVEL', '3')
  yield second
  patch.undo()


def _execute(name: str,
             parameters: Optional[str] = None) -> nbformat.NotebookNode:
  """Runs a notebook; `parameters` (code) goes right after the cell tagged
  `parameters`, as papermill injects it."""
  notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  # Stored without outputs, so a diff shows only code changes.
  assert all(not cell.get('outputs') for cell in notebook.cells
             if cell.cell_type == 'code'), f'{name} is saved with outputs'
  if parameters:
    (index,) = [i for i, cell in enumerate(notebook.cells)
                if 'parameters' in cell.metadata.get('tags', [])]
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(
        parameters, metadata={'tags': ['injected-parameters']}))
  NotebookClient(notebook, kernel_name=KERNEL, timeout=300,
                 resources={'metadata': {'path': NOTEBOOKS}}).execute()
  for cell in notebook.cells:
    if cell.cell_type == 'code':
      assigns_only = {'parameters', 'injected-parameters'} & set(
          cell.metadata.get('tags', []))
      assert cell.outputs or assigns_only, (
          f'{name}: no output from\n{cell.source}')
      assert not [o for o in cell.outputs if o.output_type == 'error']
  return notebook


def _mime_types(notebook) -> set:
  return {mime for cell in notebook.cells if cell.cell_type == 'code'
          for output in cell.outputs for mime in output.get('data', {})}


def _text(notebook) -> str:
  return '\n'.join(
      output.get('text', '') + output.get('data', {}).get('text/plain', '')
      + output.get('data', {}).get('text/markdown', '')
      for cell in notebook.cells if cell.cell_type == 'code'
      for output in cell.outputs)


def test_data_validation_notebook(kernel_env):
  notebook = _execute('data_validation.ipynb')
  text = _text(notebook)
  assert f"of '{kernel_env.pipeline_name}' in {kernel_env.output_dir}" in text
  assert 'Splits: eval, train' in text or 'Splits: train, eval' in text
  assert 'text/html' in _mime_types(notebook)  # TFDV's statistics and tables


def test_model_analysis_notebook(kernel_env):
  notebook = _execute('model_analysis.ipynb')
  text = _text(notebook)
  assert 'Blessed: the model passed every threshold.' in text
  assert 'validation_ok: True' in text
  assert eval_config.METRICS[features.BINARY].gate.key in text
  mimes = _mime_types(notebook)
  assert 'text/html' in mimes  # the metrics table
  assert 'application/vnd.jupyter.widget-view+json' in mimes  # TFMA views


@pytest.fixture
def cloud_standins(jupyter_path, tmp_path):
  """Kubeflow Pipelines and Vertex AI stand-ins, a model version serving on
  the latter, and a user's cloud settings in the environment."""
  vertex = VertexModelsStandin().start()
  patch = pytest.MonkeyPatch()
  for name in set(configs.Settings.names()) | {
      k for k in os.environ if k.startswith('KF_PIPELINES_')}:
    patch.delenv(name, raising=False)
  patch.setenv('JUPYTER_PATH', jupyter_path)
  patch.setenv('GOOGLE_CLOUD_PROJECT', 'test-project-123')
  patch.setenv('PIPELINE_IMAGE_TAG', 'quickstart-test')
  patch.setenv('LOCAL_OUTPUT_DIR', str(tmp_path / 'tfx_output'))
  patch.setenv('VERTEX_API_ENDPOINT', vertex.url)
  patch.setenv('NO_PROXY', '127.0.0.1')
  patch.setenv('no_proxy', '127.0.0.1')
  patch.setenv('TF_CPP_MIN_LOG_LEVEL', '3')
  target = vertex_target.from_settings(configs.load(os.environ))
  rollout.push(vertex_api.connect(target), target,
               'gs://test-project-123-taxi-tips/serving_model/taxi-tips/1',
               provenance.Provenance('taxi-tips', 'taxi-tips-earlier-run',
                                     '1' * 40, {'binary_accuracy': 0.9}))
  try:
    with kfp_standin.serve() as (fake, endpoint):
      yield fake, endpoint
  finally:
    patch.undo()
    vertex.stop()


def test_kubeflow_quickstart_notebook(cloud_standins):
  fake, endpoint = cloud_standins
  notebook = _execute('kubeflow_quickstart.ipynb', parameters=(
      f'ENDPOINT = {endpoint!r}\nRUN_SETUP = False\nPOLL_INTERVAL = 0'))
  text = _text(notebook)
  # The compiled spec was uploaded as a new pipeline, and one run started.
  (pipeline_id,) = fake.pipelines
  assert fake.pipelines[pipeline_id]['display_name'] == 'taxi-tips'
  (version,) = fake.pipelines[pipeline_id]['versions']
  assert 'pipelineInfo:\n  name: taxi-tips' in version['spec']
  assert ('europe-west3-docker.pkg.dev/test-project-123/tfx-pipelines/'
          'taxi-tips:quickstart-test') in version['spec']
  (run_id, body), = fake.runs.items()
  assert body['pipeline_version_reference']['pipeline_id'] == pipeline_id
  # Its link is printed, and the notebook waited until it succeeded.
  link = f'{endpoint}/#/runs/details/{run_id}'
  assert f'Run link: [{link}]({link})' in text
  assert re.search(rf'run {run_id}: RUNNING\n.*run {run_id}: SUCCEEDED', text,
                   re.S)
  assert len(fake.requests_to('GET', f'/runs/{run_id}')) == 3
  assert 'make setup: skipped' in text
  assert 'Serving: version 1 of model taxi-tips' in text
  assert 'Made by: pipeline taxi-tips, run taxi-tips-earlier-run.' in text
