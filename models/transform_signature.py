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

`transform_function` calls the loaded signature itself when a call
gives every input the graph takes, with the types and shapes it takes,
which is how models/serving.py calls it (the Trainer's reader and the
signatures parse every raw column). Any other call, a graph saved with TF2
or with Python functions in it (TFT rebuilds those), graph mode, or a TFT
or TensorFlow whose objects no longer look as this module expects, goes
through the layer as released (which also raises TFT's own errors for
inputs it refuses). The layer stays attached to the model, so the graph's
assets and tables are saved with it; it is not called, as no loaded model
called it either (the Trainer saves no layer's traces).
"""
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import tensorflow as tf
from tensorflow_transform.saved import constants

Tensor = Any  # a tf.Tensor or a composite tensor (tf.SparseTensor, ...)


def flat_arguments(inputs: Mapping[str, Any]) -> Dict[str, Any]:
  """`inputs` (tensors, or their tf.TypeSpecs) by the argument names
  TensorFlow's TF1 loader gives a signature's flattened inputs
  (tensorflow/python/saved_model/load_v1_in_v2.py): a sparse input as
  `<name>_indices`, `<name>_values` and `<name>_dense_shape`, any other
  composite as `<name>_component_<i>` in its flattened order, a dense one
  under its own name."""
  arguments = {}
  for name, value in inputs.items():
    if isinstance(value, (tf.Tensor, tf.TensorSpec)):
      arguments[name] = value
      continue
    parts = tf.nest.flatten(value, expand_composites=True)
    if isinstance(value, (tf.SparseTensor, tf.SparseTensorSpec)):
      names = [f'{name}_{part}'
               for part in ('indices', 'values', 'dense_shape')]
    else:
      names = [f'{name}_component_{i}' for i in range(len(parts))]
    arguments.update(zip(names, parts))
  return arguments


class LoadedSignature:
  """The transform signature a TFT layer loaded: its flattened parameters
  (argument name, dtype, shape, in its order), the logical inputs they come
  from, and the structured outputs the layer sets shapes from."""

  def __init__(self, function, parameters: List[Tuple[str, tf.DType,
                                                      tf.TensorShape]],
               inputs, outputs):
    self.function = function
    self.parameters = parameters
    self.inputs = frozenset(inputs)
    self.outputs = outputs

  def arguments_for(self, inputs: Mapping[str, Any]
                    ) -> Optional[Dict[str, Any]]:
    """`inputs`' flat arguments (flat_arguments: tensors, or specs) where a
    call giving them is a call of the signature: every logical input it
    takes and nothing else, each part of its dtype and a compatible shape;
    None for any other call."""
    if set(inputs) != self.inputs:
      return None
    arguments = flat_arguments(inputs)
    if len(arguments) != len(self.parameters):
      return None
    for name, dtype, shape in self.parameters:
      value = arguments.get(name)
      if (value is None or value.dtype != dtype
          or not value.shape.is_compatible_with(shape)):
        return None
    return arguments

  def call(self, arguments: Mapping[str, tf.Tensor]) -> Dict[str, Tensor]:
    """The signature's outputs for flat `arguments` (`arguments_for`), with the
    static shapes the saved graph gives them (as the layer sets them)."""
    # pylint: disable=protected-access
    result = dict(self.function._call_flat(
        [arguments[name] for name, _, _ in self.parameters],
        self.function.captured_inputs))
    for name, output in self.outputs.items():
      if hasattr(result[name], 'set_shape'):
        result[name].set_shape(output.shape)
    return result


def loaded_signature(layer) -> Optional[LoadedSignature]:
  """The transform signature `layer` (TFT's TransformFeaturesLayer) applies
  by pruning, or None where the layer does not apply one (graph mode, a
  graph saved with TF2, or rebuilt for its Python functions) or no longer
  keeps it where TFT 1.16 and TensorFlow 2.16 do."""
  if not tf.compat.v1.executing_eagerly_outside_functions():
    return None  # the layer takes its TF1 path there
  # pylint: disable=protected-access
  loader = getattr(layer, '_saved_model_loader', None)
  if loader is None or not getattr(loader, 'load_v2_in_compat', False):
    return None
  signatures = getattr(getattr(loader, '_imported', None), 'signatures', {})
  function = getattr(loader, '_wrapped_function', None)
  if (constants.TRANSFORM_SIGNATURE not in signatures
      or function is not signatures[constants.TRANSFORM_SIGNATURE]):
    return None  # TFT rebuilt the graph (Python functions in it)
  inputs = getattr(loader, '_structured_inputs', None)
  names = getattr(function, '_arg_keywords', None)
  if (inputs is None or not names
      or not hasattr(function, '_call_flat')
      or len(function.inputs) - len(function.captured_inputs) != len(names)
      or len(set(names)) != len(names)):
    return None
  # The loader's argument names, in the order of the function's inputs.
  parameters = [(str(name), tensor.dtype, tensor.shape)
                for name, tensor in zip(names, function.inputs)]
  return LoadedSignature(function, parameters, inputs,
                         loader.structured_outputs)


def transform_function(
    layer, signature: Optional[LoadedSignature]
) -> Callable[[Mapping[str, Tensor]], Dict[str, Tensor]]:
  """raw inputs -> transformed features, as `dict(layer(inputs))` gives
  them, for use inside a tf.function: through `signature`
  (`loaded_signature(layer)`) where a call is a call of it, else through
  the layer; see the module's docstring."""

  def apply(inputs: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    arguments = (signature.arguments_for(inputs) if signature is not None
                 else None)
    if arguments is None:
      return dict(layer(inputs))
    return signature.call(arguments)

  return apply
