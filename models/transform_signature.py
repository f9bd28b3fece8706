"""Applies the saved Transform graph through the signature it was loaded as.

Transform saves its graph as a TF1 graph (pipeline/pipeline.py). TFT's Keras
layer (TFTransformOutput.transform_features_layer) loads it with TensorFlow's
TF1 loader, which prunes the graph down to its signature: a copy of every op,
built one by one in Python. Each call of the layer then prunes that
signature again, down to the outputs the given inputs can compute. Given
every input, that second copy computes exactly what the signature does, yet
it costs as much to build as the first and rides along in every saved model
made from it: the serving model held the transform graph twice, once for
the layer's loaded signature and once for the pruned copy its signatures
call. At 1,000 columns the copy took 0.6 s of the Trainer and 0.3 s of each
load of the serving model (the Evaluator's, the server's);
docs/performance.md has the figures.

`transform_function(layer)` calls the loaded signature itself when a call
gives every input the graph takes, which is how models/serving.py calls it
(the Trainer's reader and the signatures parse every raw column). Any other
call, a graph saved with TF2 or with Python functions in it (TFT rebuilds
those), or a TFT whose layer no longer looks as this module expects, goes
through the layer as released.
"""
from typing import Any, Callable, Dict, Mapping, Optional

import tensorflow as tf
from tensorflow_transform.saved import constants

Tensor = Any  # a tf.Tensor or a composite tensor (tf.SparseTensor, ...)


def flat_arguments(inputs: Mapping[str, Tensor]) -> Dict[str, tf.Tensor]:
  """`inputs` as the keyword arguments of a signature that TensorFlow's TF1
  loader made (tensorflow/python/saved_model/load_v1_in_v2.py): a sparse
  input as `<name>_indices`, `<name>_values` and `<name>_dense_shape`, any
  other composite as `<name>_component_<i>` in its flattened order, a
  tensor under its own name."""
  arguments = {}
  for name, value in inputs.items():
    if isinstance(value, tf.SparseTensor):
      arguments[f'{name}_indices'] = value.indices
      arguments[f'{name}_values'] = value.values
      arguments[f'{name}_dense_shape'] = value.dense_shape
    elif isinstance(value, tf.__internal__.CompositeTensor):
      for i, part in enumerate(tf.nest.flatten(value, expand_composites=True)):
        arguments[f'{name}_component_{i}'] = part
    else:
      arguments[name] = value
  return arguments


class _LoadedSignature:
  """The transform signature a TFT layer loaded, what it takes (logical
  input names) and gives (the structured outputs the layer sets shapes
  from)."""

  def __init__(self, function, inputs, outputs):
    self.function = function
    self.inputs = frozenset(inputs)
    self.outputs = outputs
    # The keyword arguments TensorFlow's loader gave the signature.
    self.arguments = frozenset(getattr(function, '_arg_keywords', None) or ())

  def takes(self, names) -> bool:
    """Whether a call giving the inputs `names` is a call of the signature:
    every input it takes, and nothing else."""
    return set(names) == self.inputs


def loaded_signature(layer) -> Optional[_LoadedSignature]:
  """The transform signature `layer` (TFT's TransformFeaturesLayer) applies
  by pruning, or None where the layer does not apply one (a graph saved
  with TF2, or rebuilt for its Python functions) or no longer keeps it where
  TFT 1.16 does."""
  # pylint: disable=protected-access
  loader = getattr(layer, '_saved_model_loader', None)
  if loader is None or not getattr(loader, 'load_v2_in_compat', False):
    return None
  imported = getattr(loader, '_imported', None)
  function = getattr(loader, '_wrapped_function', None)
  signatures = getattr(imported, 'signatures', {})
  if (constants.TRANSFORM_SIGNATURE not in signatures
      or function is not signatures[constants.TRANSFORM_SIGNATURE]):
    return None  # TFT rebuilt the graph (Python functions in it)
  inputs = getattr(loader, '_structured_inputs', None)
  if inputs is None:
    return None
  return _LoadedSignature(function, inputs, loader.structured_outputs)


def transform_function(
    layer) -> Callable[[Mapping[str, Tensor]], Dict[str, Tensor]]:
  """raw inputs -> transformed features, as `dict(layer(inputs))` gives
  them, for use inside a tf.function; see the module's docstring."""
  signature = loaded_signature(layer)

  def apply(inputs: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    if signature is None or not signature.takes(inputs):
      return dict(layer(inputs))
    arguments = flat_arguments(inputs)
    if set(arguments) != signature.arguments:
      return dict(layer(inputs))
    result = dict(signature.function(**arguments))
    # What the layer does after calling its pruned copy: the outputs keep
    # the static shapes the saved graph gives them.
    for name, output in signature.outputs.items():
      if hasattr(result[name], 'set_shape'):
        result[name].set_shape(output.shape)
    return result

  return apply
