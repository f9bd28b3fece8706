"""Both notebooks run headless against the suite's small run, without errors."""
import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from models import features
from pipeline import eval_config
from tests import helpers

pytestmark = pytest.mark.slow

NOTEBOOKS = os.path.join(helpers.REPO, 'notebooks')
KERNEL = 'tfx-template-venv'


@pytest.fixture(scope='module')
def kernel_env(local_runs, tmp_path_factory):
  """A kernel spec for this interpreter in a private JUPYTER_PATH (nothing
  registered globally), and the run's settings in the environment."""
  _, second = local_runs
  jupyter_path = tmp_path_factory.mktemp('jupyter')
  spec_dir = jupyter_path / 'kernels' / KERNEL
  spec_dir.mkdir(parents=True)
  (spec_dir / 'kernel.json').write_text(json.dumps({
      'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f',
               '{connection_file}'],
      'display_name': 'tfx template venv', 'language': 'python'}))
  patch = pytest.MonkeyPatch()
  patch.setenv('JUPYTER_PATH', str(jupyter_path))
  patch.setenv('LOCAL_OUTPUT_DIR', second.output_dir)
  patch.setenv('PIPELINE_NAME', second.pipeline_name)
  patch.setenv('TF_CPP_MIN_LOG_LEVEL', '3')
  yield second
  patch.undo()


def _execute(name: str) -> nbformat.NotebookNode:
  notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  # Stored without outputs, so a diff shows only code changes.
  assert all(not cell.get('outputs') for cell in notebook.cells
             if cell.cell_type == 'code'), f'{name} is saved with outputs'
  NotebookClient(notebook, kernel_name=KERNEL, timeout=300,
                 resources={'metadata': {'path': NOTEBOOKS}}).execute()
  for cell in notebook.cells:
    if cell.cell_type == 'code':
      assert cell.outputs, f'{name}: no output from\n{cell.source}'
      assert not [o for o in cell.outputs if o.output_type == 'error']
  return notebook


def _mime_types(notebook) -> set:
  return {mime for cell in notebook.cells if cell.cell_type == 'code'
          for output in cell.outputs for mime in output.get('data', {})}


def _text(notebook) -> str:
  return '\n'.join(
      output.get('text', '') + output.get('data', {}).get('text/plain', '')
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
