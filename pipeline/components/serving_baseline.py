"""The Evaluator's baseline without ML Metadata queries, for Kubeflow Pipelines.

TFX's Resolver compiles to a `resolver` executor (an ML Metadata query) that
Vertex AI Pipelines runs and the open-source Kubeflow Pipelines backend does
not: it only runs container and importer executors. On that target the
baseline is instead the newest model the Pusher wrote to the serving folder,
found by `LatestPushedModel`, an ordinary container step.

That step always produces a Model artifact, empty until a first model has been
pushed. The stock Evaluator would try to load the empty one, so this module's
`Evaluator` drops an empty baseline before TFMA sees it; TFMA then ignores the
change thresholds (TFX's Evaluator executor calls
`update_eval_config_with_defaults(has_baseline=False, rubber_stamp=True)`),
exactly as on a first run with the Resolver.
"""
import os
from typing import Any, Dict, List, Optional

from absl import logging
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import path_utils

from pipeline.components import columnar_evaluator

_SAVED_MODEL = 'saved_model.pb'


def newest_pushed_model(serving_model_dir: str) -> Optional[str]:
  """The newest model version the Pusher wrote under `serving_model_dir`.

  The Pusher writes each blessed model to `<serving_model_dir>/<seconds since
  the epoch>/`; the largest number is the newest.

  Args:
    serving_model_dir: the Pusher's base directory (local or gs://).

  Returns:
    The version folder holding a SavedModel, or None when there is none.
  """
  if not fileio.isdir(serving_model_dir):
    return None
  versions = []
  for name in fileio.listdir(serving_model_dir):
    name = name.rstrip('/')
    path = os.path.join(serving_model_dir, name)
    if name.isdigit() and fileio.exists(os.path.join(path, _SAVED_MODEL)):
      versions.append((int(name), path))
  return max(versions)[1] if versions else None


@component
def LatestPushedModel(  # pylint: disable=invalid-name
    serving_model_dir: Parameter[str],
    model: OutputArtifact[
        standard_artifacts.Model],
) -> None:
  """Copies the newest pushed model into `model`; leaves it empty if none.

  Args:
    serving_model_dir: the Pusher's base directory.
    model: the baseline for the Evaluator.
  """
  newest = newest_pushed_model(serving_model_dir)
  if newest is None:
    logging.info('No model under %s yet: the Evaluator runs without a '
                 'baseline.', serving_model_dir)
    return
  logging.info('Baseline: %s', newest)
  io_utils.copy_dir(src=newest, dst=path_utils.serving_model_dir(model.uri))
  model.set_string_custom_property('pushed_model', newest)


def has_saved_model(model: artifact.Artifact) -> bool:
  """Whether the Model artifact `model` holds a serving SavedModel."""
  path = path_utils.serving_model_path(
      model.uri, path_utils.is_old_model_artifact(model))
  return fileio.exists(os.path.join(path, _SAVED_MODEL))


def without_empty_baseline(
    input_dict: Dict[str, List[artifact.Artifact]]
) -> Dict[str, List[artifact.Artifact]]:
  """`input_dict` minus its baseline model when that holds no SavedModel.

  Args:
    input_dict: the Evaluator's inputs, keyed like standard_component_specs.

  Returns:
    `input_dict` itself, or a copy without the baseline key.
  """
  key = standard_component_specs.BASELINE_MODEL_KEY
  baselines = input_dict.get(key)
  if not baselines or has_saved_model(baselines[0]):
    return input_dict
  logging.info('The baseline model %s is empty (nothing pushed yet): '
               'evaluating without a baseline.', baselines[0].uri)
  return {k: v for k, v in input_dict.items() if k != key}


class BaselineOptionalExecutor(columnar_evaluator.Executor):
  """The Evaluator's executor (columnar_evaluator.py), tolerating an empty
  baseline model."""

  def Do(self, input_dict: Dict[str, List[artifact.Artifact]],
         output_dict: Dict[str, List[artifact.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    super().Do(without_empty_baseline(input_dict), output_dict,
               exec_properties)


class Evaluator(columnar_evaluator.Evaluator):
  """The pipeline's Evaluator (columnar_evaluator.py), tolerating an empty
  baseline model."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(BaselineOptionalExecutor)
