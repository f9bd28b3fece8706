"""The Pusher of the cloud targets: the serving folder, then Vertex AI.

A blessed model is first written to the serving folder in the bucket, as
atomic_push.py does (the Kubeflow target's baseline step reads it there),
and then served on Vertex AI from that folder
(pipeline/vertex_serving/rollout.py `push`): a new version of the one model,
labelled with the pipeline, the run and the Evaluator's overall metrics,
deployed to the endpoint, given the traffic and the alias once up, older
deployments removed. A model that is not blessed is neither written nor
served. A retried push finds the version it made by the model's digest and
finishes the job.

The pushed_model artifact records the version and the endpoint
(`vertex_model_version`, `vertex_endpoint`) next to TFX's own properties.
"""
import json
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import channel
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from pipeline import component_ids
from pipeline import eval_config
from pipeline.components import atomic_push
from pipeline.vertex_serving import provenance as provenance_lib
from pipeline.vertex_serving.target import ServingTarget

EVALUATION_KEY = 'model_evaluation'
VERTEX_SERVING_KEY = 'vertex_serving'
# The overall metrics a version is labelled with: each problem type's.
LABELLED_METRICS = frozenset(
    [eval_config.EXAMPLE_COUNT.key] +
    [metric.key for metrics in eval_config.METRICS.values()
     for metric in (metrics.gate, *metrics.extras)])


class VertexPushSpec(types.ComponentSpec):
  """TFX's Pusher spec, with the Evaluator's evaluation as an input."""
  PARAMETERS = dict(specs.PusherSpec.PARAMETERS)
  INPUTS = {
      **specs.PusherSpec.INPUTS,
      EVALUATION_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelEvaluation, optional=True),
  }
  OUTPUTS = dict(specs.PusherSpec.OUTPUTS)
  TYPE_ANNOTATION = specs.PusherSpec.TYPE_ANNOTATION


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
  """The new model's metrics on the whole eval split (LABELLED_METRICS)."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  metrics = {}
  for stored in tfma.load_metrics(evaluation_uri):
    if stored.slice_key.single_slice_keys:
      continue
    for item in stored.metric_keys_and_values:
      key = item.key
      if (key.is_diff or key.HasField('sub_key') or key.name not in
          LABELLED_METRICS or key.model_name not in ('', 'candidate')):
        continue
      if item.value.HasField('double_value'):
        metrics[key.name] = item.value.double_value.value
      elif item.value.HasField('bounded_value'):
        metrics[key.name] = item.value.bounded_value.value.value
  return metrics


def run_name(pipeline_run_id: Optional[str], pushed_model_uri: str) -> str:
  """The pipeline run that pushes.

  The local orchestrator names it; on Vertex AI and Kubeflow Pipelines it is
  the folder of the artifact's path just above the Pusher's own
  (<root>/.../<run>/Pusher_<task>/... or <root>/.../<run>/Pusher/<task>/...).
  """
  if pipeline_run_id:
    return pipeline_run_id
  parts = pushed_model_uri.rstrip('/').split('/')
  for index in range(len(parts) - 1, 0, -1):
    if parts[index].split('_')[0] == component_ids.PUSHER:
      return parts[index - 1]
  return 'unknown'


class Executor(atomic_push.AtomicPushExecutor):
  """Writes a blessed model to the serving folder, then serves it on Vertex
  AI (custom_config[VERTEX_SERVING_KEY]: a ServingTarget's config)."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    super().Do(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[specs.PUSHED_MODEL_KEY])
    if not model_push.get_int_custom_property('pushed'):
      return
    config = json.loads(exec_properties[specs.CUSTOM_CONFIG_KEY])
    target = ServingTarget.from_config(config[VERTEX_SERVING_KEY])
    folder = model_push.get_string_custom_property('pushed_destination')
    evaluations = input_dict.get(EVALUATION_KEY) or []
    provenance = provenance_lib.Provenance(
        pipeline=target.pipeline_name,
        run=run_name(self._context and self._context.pipeline_run_id,
                     model_push.uri),
        digest=provenance_lib.saved_model_digest(folder),
        metrics=overall_metrics(evaluations[0].uri) if evaluations else {})
    # The Vertex AI client, only when there is something to serve.
    from pipeline.vertex_serving import api  # pylint: disable=g-import-not-at-top
    from pipeline.vertex_serving import rollout  # pylint: disable=g-import-not-at-top
    served = rollout.push(api.connect(target), target, folder, provenance)
    logging.info('Serving %s on %s (uploaded: %s; undeployed versions: %s).',
                 served.version_name, served.endpoint, served.uploaded,
                 served.undeployed)
    model_push.set_string_custom_property('vertex_model_version',
                                          served.version_name)
    model_push.set_string_custom_property('vertex_endpoint', served.endpoint)


class Pusher(base_component.BaseComponent):
  """Pushes a blessed model to the serving folder and serves it on Vertex AI.

  Args:
    model: the Trainer's model.
    model_blessing: the Evaluator's blessing; nothing is pushed without it.
    model_evaluation: the Evaluator's evaluation, whose overall metrics label
      the version.
    serving_model_dir: the serving folder on Cloud Storage (gs://...), where
      Vertex AI reads the model from.
    target: where to serve it.

  Raises:
    ValueError: `serving_model_dir` is not on Cloud Storage.
  """
  SPEC_CLASS = VertexPushSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               model_evaluation: types.BaseChannel, serving_model_dir: str,
               target: ServingTarget):
    if not serving_model_dir.startswith('gs://'):
      raise ValueError(f'Vertex AI serves models from Cloud Storage, not from '
                       f'{serving_model_dir!r}: give a gs:// serving folder.')
    super().__init__(spec=VertexPushSpec(
        model=model, model_blessing=model_blessing,
        **{EVALUATION_KEY: model_evaluation},
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=serving_model_dir)),
        custom_config=json.dumps({VERTEX_SERVING_KEY: target.to_config()},
                                 sort_keys=True),
        pushed_model=channel.Channel(type=standard_artifacts.PushedModel)))
