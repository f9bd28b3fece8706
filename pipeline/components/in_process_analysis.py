"""Transform's analysis in this process, without a Beam pipeline.

TFT turns a preprocessing_fn's analyzers into a graph of operations
(`tensorflow_transform.nodes`: apply the phase's graph to the data, combine,
count a vocabulary, write it, bind the results into the next graph) and has
Beam run each operation as a PTransform. On the bundled data that Beam
pipeline cost most of Transform's executor: building it, converting it to
the runner's protos, 39 bundle processors and their runs, against about
0.3 s of TensorFlow and file work (docs/performance.md, "The analysis in
the process, without Beam").

`analyze` walks the same graph of operations with TFT's own traverser and
computes each operation here, with TFT's own pieces where TFT has them as
functions or objects: its combiners (the same CombineFns Beam calls), its
graph runner for a batch (with the session settings TFT gives it on Beam's
DirectRunner), its SavedModel writers, its metadata inference; the
vocabularies in in_process_vocabulary.py. Each phase reads the examples
once, in the order and batches its sources give, and feeds every analyzer
of the phase from that pass, so memory is what the analyzers accumulate,
not the data.

It computes the operations of TFT's common analyzers, those listed in
`_LIST_OPERATIONS`, `_ELEMENTWISE` and `_ACCUMULATORS` (means, variances,
min, max, sums, sizes, quantiles, vocabularies by frequency with or without
weights, thresholds, top-k, reserved tokens, approximate vocabularies), for
a preprocessing_fn traced in TF1 mode. For any other operation (a per-key
combine, a vocabulary by mutual information or with coverage, a PTransform
analyzer, the analyzer cache) it raises `Unsupported` before it writes
anything, and Transform runs TFT's Beam pipeline as TFX does
(pipeline/components/in_process_transform.py, which also keeps TF2 traces
for Beam).
"""
import collections
import dataclasses
import operator
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping
from typing import Optional, Sequence

import apache_beam
from apache_beam.utils import shared
import numpy as np
import pyarrow as pa
import tensorflow as tf
from tensorflow_transform import analyzer_nodes
from tensorflow_transform import analyzers
from tensorflow_transform import annotators
from tensorflow_transform import impl_helper
from tensorflow_transform import nodes
from tensorflow_transform import tf_utils
from tensorflow_transform.beam import analysis_graph_builder
from tensorflow_transform.beam import analyzer_impls
from tensorflow_transform.beam import beam_nodes
from tensorflow_transform.beam import common as beam_common
from tensorflow_transform.beam import impl as beam_impl
from tensorflow_transform.beam.tft_beam_io import transform_fn_io
from tensorflow_transform.saved import saved_transform_io
from tensorflow_transform.tf_metadata import dataset_metadata
from tfx_bsl.tfxio import tensor_adapter

from pipeline.components import in_process_vocabulary
from pipeline.components import library_substitution


class Unsupported(Exception):
  """The analysis needs an operation this module does not compute here."""


# What the analysis here calls of TFT beyond its public API (tensorflow-
# transform 1.16), by module; and the parameters of its batch runner.
_TFT_NAMES = (
    (analyzer_impls, ('_PackedCombinerWrapper', '_CombinerWrapper',
                      '_count_and_token_to_bytes',
                      'maybe_add_empty_vocabulary_dummy')),
    (analyzers, ('_VocabOrderingType', 'get_empy_vocabulary_dummy_value')),
    (beam_impl, ('_RunMetaGraphDoFn', '_replace_tensors_with_constant_values',
                 '_TensorBinding', '_infer_metadata_from_saved_model',
                 '_DEFAULT_TENSORFLOW_CONFIG_BY_BEAM_RUNNER_TYPE')),
    (transform_fn_io, ('_copy_tree_to_unique_temp_dir',)),
)
_RUNNER_PARAMETERS = ('self', 'tf_config', 'shared_graph_state_handle',
                      'passthrough_keys', 'use_tf_compat_v1',
                      'input_tensor_adapter_config', 'exclude_outputs')


def missing_from_tft() -> List[str]:
  """What the analysis here calls that this tensorflow-transform does not
  have as written for (empty: all there)."""
  missing = [f'{module.__name__}.{name}' for module, names in _TFT_NAMES
             for name in names if not hasattr(module, name)]
  runner = getattr(beam_impl, '_RunMetaGraphDoFn', None)
  if runner is not None and not library_substitution.takes(
      runner.__init__, _RUNNER_PARAMETERS):
    missing.append('_RunMetaGraphDoFn(' + ', '.join(_RUNNER_PARAMETERS[1:]) +
                   ')')
  return missing


def _session_config():
  """The session settings TFT gives the graph it applies to the data on
  Beam's DirectRunner (two threads of each kind), so that a sum the graph
  computes adds up the same way here."""
  return beam_impl._DEFAULT_TENSORFLOW_CONFIG_BY_BEAM_RUNNER_TYPE.get(  # pylint: disable=protected-access
      apache_beam.runners.DirectRunner)


# A source of the analysis data: a function giving a fresh pass over its
# Arrow record batches each time it is called.
RecordBatchSource = Callable[[], Iterable[pa.RecordBatch]]


@dataclasses.dataclass
class Result:
  """What the analysis made: the transform graph's SavedModel directory
  (under the base temporary folder), the transformed data's metadata that
  TFT infers from it, and TFT's asset map (vocabulary file names by the
  names the preprocessing_fn gave them)."""
  saved_model_dir: str
  metadata: dataset_metadata.DatasetMetadata
  asset_map: Dict[str, str]


class _Stream:
  """The per-batch outputs of one ApplySavedModel, or of the element-wise
  operations after it, not read yet: every accumulating operation fed from
  it gets its result from the phase's one pass."""

  def __init__(self, phase_pass: '_Pass'):
    self.phase_pass = phase_pass


@dataclasses.dataclass
class _Sink:
  """An accumulating operation fed from a pass: the element-wise
  operations between the pass and it, and its accumulator."""
  steps: List[Callable[[Any], Any]]
  accumulator: '_Accumulator'


class _Pass:
  """One read of the analysis data through one phase's graph, feeding each
  accumulating operation downstream of it (`sinks`, found before any of
  them is needed)."""

  def __init__(self, sinks: Dict[nodes.OperationNode, _Sink]):
    self._sinks = sinks
    self._read: Optional[RecordBatchSource] = None
    self._run_batch: Optional[Callable[[pa.RecordBatch], Dict[str, Any]]] = (
        None)
    self._results: Optional[Dict[nodes.OperationNode, list]] = None

  def start(self, read: RecordBatchSource,
            run_batch: Callable[[pa.RecordBatch], Dict[str, Any]]) -> None:
    """Gives the pass its data and the phase's graph (ApplySavedModel)."""
    self._read, self._run_batch = read, run_batch

  def result(self, sink: nodes.OperationNode) -> list:
    """The output of accumulating operation `sink`, reading the data the
    first time any sink's output is asked for."""
    if self._results is None:
      for batch in self._read():
        outputs = self._run_batch(batch)
        for fed in self._sinks.values():
          value = outputs
          for step in fed.steps:
            value = step(value)
          fed.accumulator.add(value)
      self._results = {node: fed.accumulator.result()
                       for node, fed in self._sinks.items()}
      self._sinks = {}  # the accumulators' memory, now in the results
    return self._results.pop(sink)


class _Accumulator:
  """An accumulating operation over the elements of a pass."""

  def add(self, element) -> None:
    raise NotImplementedError

  def result(self) -> list:
    raise NotImplementedError


class _CombineGlobally(_Accumulator):
  """What Beam's CombineGlobally computes with `combine_fn` (a
  beam.CombineFn of TFT's), its accumulator built element by element."""

  def __init__(self, combine_fn):
    self._fn = combine_fn
    self._accumulator = combine_fn.create_accumulator()

  def add(self, element) -> None:
    self._accumulator = self._fn.add_input(self._accumulator, element)

  def result(self) -> list:
    accumulator = self._fn.merge_accumulators(
        [self._fn.compact(self._accumulator)])
    return [self._fn.extract_output(accumulator)]


# Operations that accumulate the elements of a pass: each one's accumulator.
_ACCUMULATORS: Dict[type, Callable[[Any], _Accumulator]] = {
    analyzer_nodes.PackedCombineAccumulate: lambda operation: _CombineGlobally(
        analyzer_impls._PackedCombinerWrapper(  # pylint: disable=protected-access
            operation.combiners, is_combining_accumulators=False)),
    analyzer_nodes.CacheableCombineAccumulate: lambda operation: (
        _CombineGlobally(analyzer_impls._CombinerWrapper(  # pylint: disable=protected-access
            operation.combiner, is_combining_accumulators=False))),
    analyzer_nodes.VocabularyAccumulate: lambda operation: (
        in_process_vocabulary.TokenCounts(
            weighted=in_process_vocabulary.is_weighted(operation))),
}


def _extract_keys(operation) -> Callable[[Mapping[str, Any]], Any]:
  """ExtractFromDict's function of a dict: its value at `keys`, a tuple of
  values where `keys` is a tuple (of one key too)."""
  if not isinstance(operation.keys, tuple):
    return operator.itemgetter(operation.keys)
  pick = operator.itemgetter(*operation.keys)
  if len(operation.keys) == 1:
    return lambda values: (pick(values),)
  return pick


# Operations applied to each element of a pass on the way to an accumulator.
_ELEMENTWISE = {beam_nodes.ExtractFromDict: _extract_keys}


class _Analysis(nodes.Visitor):
  """Computes the value of each operation of TFT's analysis graph: a list of
  elements where Beam would have a PCollection, a `_Stream` for the outputs
  of ApplySavedModel and of the element-wise operations after it."""

  def __init__(self, graph, structured_inputs,
               sources: Mapping[Any, RecordBatchSource],
               tensor_adapter_config, base_temp_dir: str):
    self._graph = graph
    self._structured_inputs = structured_inputs
    self._sources = sources
    self._tensor_adapter_config = tensor_adapter_config
    self._base_temp_dir = base_temp_dir
    self._passes: Dict[nodes.OperationNode, _Pass] = {}
    # TFT's traverser visits an operation by its definition: the node of
    # each definition (by identity: some definitions cannot be hashed).
    self._node_of: Dict[int, nodes.OperationNode] = {}

  def plan(self, outputs: Sequence[nodes.ValueNode]) -> None:
    """Checks every operation that `outputs` need and finds, for each
    ApplySavedModel, the accumulating operations its pass feeds.

    Raises:
      Unsupported: an operation this module does not compute.
    """
    consumers = collections.defaultdict(list)
    seen = set()
    stack = [value.parent_operation for value in outputs]
    while stack:
      node = stack.pop()
      if node in seen:
        continue
      seen.add(node)
      self._node_of[id(node.operation_def)] = node
      kind = type(node.operation_def)
      if kind not in _SUPPORTED:
        raise Unsupported(f'operation {kind.__name__} '
                          f'({node.operation_def.label})')
      self._check(node.operation_def)
      for value in node.inputs:
        consumers[value.parent_operation].append(node)
        stack.append(value.parent_operation)
    for node in seen:
      if type(node.operation_def) is beam_nodes.ApplySavedModel:
        self._passes[node] = self._plan_pass(node, consumers)

  @staticmethod
  def _check(operation) -> None:
    """Raises Unsupported for a variant of a supported operation that is not
    computed here (found before anything is written)."""
    reason = in_process_vocabulary.unsupported_reason(operation)
    if reason:
      raise Unsupported(reason)

  def _plan_pass(self, apply: nodes.OperationNode, consumers) -> _Pass:
    """The pass of `apply`, with every accumulator downstream of it."""
    sinks: Dict[nodes.OperationNode, _Sink] = {}
    pending = [(apply, [])]
    while pending:
      node, steps = pending.pop()
      for consumer in consumers[node]:
        kind = type(consumer.operation_def)
        if kind in _ELEMENTWISE:
          pending.append(
              (consumer, steps + [_ELEMENTWISE[kind](consumer.operation_def)]))
        elif kind in _ACCUMULATORS:
          if consumer in sinks:
            raise Unsupported('an accumulator fed twice from one pass')
          sinks[consumer] = _Sink(steps, _ACCUMULATORS[kind](consumer.operation_def))
        else:
          raise Unsupported(
              f'{kind.__name__} ({consumer.operation_def.label}) reads '
              'the analysis data batch by batch')
    return _Pass(sinks)

  def visit(self, operation, inputs):
    node = self._node_of[id(operation)]
    kind = type(operation)
    if kind is beam_nodes.ApplySavedModel:
      return (self._start_pass(node, *inputs),)
    if kind in _ELEMENTWISE and isinstance(inputs[0], _Stream):
      return inputs  # applied in the pass, on the way to an accumulator
    if kind in _ACCUMULATORS:
      (stream,) = inputs
      return (stream.phase_pass.result(node),)
    return _LIST_OPERATIONS[kind](self, operation, *inputs)

  def validate_value(self, value):
    if not isinstance(value, (list, _Stream, _Datasets)):
      raise TypeError(f'expected a list of elements, got {type(value)}')

  def _start_pass(self, node, saved_model_dirs, source) -> _Stream:
    (saved_model_dir,) = saved_model_dirs
    runner = beam_impl._RunMetaGraphDoFn(  # pylint: disable=protected-access
        tf_config=_session_config(), shared_graph_state_handle=shared.Shared(),
        passthrough_keys=(), use_tf_compat_v1=True,
        input_tensor_adapter_config=self._tensor_adapter_config)
    runner.setup()

    def run_batch(batch):
      (outputs,) = runner.process(batch, saved_model_dir)
      return outputs

    phase_pass = self._passes[node]
    phase_pass.start(source.read, run_batch)
    return _Stream(phase_pass)

  # Operations on lists of elements, as TFT's PTransforms for them compute
  # them. Each returns a tuple of outputs.

  def extract_input(self, operation):
    # `analyze` gives TFT's graph builder the sources' keys: a key is one of
    # them or the flattened one.
    key = operation.dataset_key
    if key.is_flattened_dataset_key():
      return (_Datasets(list(self._sources.values())),)
    return (_Datasets([self._sources[key]]),)

  def create_saved_model(self, operation, *bindings):
    unbound = beam_common.get_unique_temp_path(self._base_temp_dir)
    with self._graph.as_default(), tf.compat.v1.Session(
        graph=self._graph) as session:
      initializers = tf.compat.v1.get_collection_ref(
          tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
      kept = list(initializers)
      initializers[:] = list(operation.table_initializers)
      try:
        session.run(tf.compat.v1.global_variables_initializer())
        saved_transform_io.write_saved_transform_from_session(
            session, self._structured_inputs, operation.output_signature,
            unbound)
      finally:
        initializers[:] = kept
    if not bindings:
      return ([unbound],)
    values = [_single(binding, operation.label) for binding in bindings]
    return ([beam_impl._replace_tensors_with_constant_values(  # pylint: disable=protected-access
        unbound, self._base_temp_dir, *values)],)

  def create_tensor_binding(self, operation, values):
    return ([beam_impl._TensorBinding(  # pylint: disable=protected-access
        value, operation.tensor_name, operation.dtype_enum,
        operation.is_asset_filepath) for value in values],)

  def extract_from_dict(self, operation, values):
    extract = _extract_keys(operation)
    return ([extract(value) for value in values],)

  def flatten(self, operation, *lists):
    del operation
    return ([element for values in lists for element in values],)

  def flatten_lists(self, operation, values):
    del operation
    return ([element for value in values for element in value],)

  def add_key(self, operation, values):
    return ([(operation.key, value) for value in values],)

  def extract_outputs(self, operation, values):
    (outputs,) = values
    if len(outputs) != operation.num_outputs:
      raise ValueError(f'{operation.label}: {len(outputs)} values for '
                       f'{operation.num_outputs} outputs')
    return tuple([output] for output in outputs)

  def merge_packed(self, operation, values):
    return self._merge(analyzer_impls._PackedCombinerWrapper(  # pylint: disable=protected-access
        operation.combiners, is_combining_accumulators=True), values)

  def merge_combine(self, operation, values):
    return self._merge(analyzer_impls._CombinerWrapper(  # pylint: disable=protected-access
        operation.combiner, is_combining_accumulators=True), values)

  @staticmethod
  def _merge(combine_fn, values):
    combined = _CombineGlobally(combine_fn)
    for value in values:
      combined.add(value)
    return (combined.result(),)

  def vocabulary_merge(self, operation, values):
    del operation
    return (in_process_vocabulary.merge(values),)

  def vocabulary_count(self, operation, values):
    del operation
    # At least one: an empty vocabulary is written with a placeholder token.
    return ([np.int64(max(len(values), 1))],)

  def vocabulary_prune(self, operation, counts):
    return (in_process_vocabulary.prune(counts, operation),)

  def vocabulary_write(self, operation, counts, reserved=None):
    reserved_tokens = None
    if reserved is not None:
      (reserved_tokens,) = _single(reserved, operation.label)
    return ([np.array(in_process_vocabulary.write(
        in_process_vocabulary.ordered(counts, operation, reserved_tokens),
        operation, self._base_temp_dir))],)

  def reserved_tokens(self, operation):
    return ([[tf_utils.fetch_vocabulary_reserved_tokens(
        self._graph, operation.name)]],)


class _Datasets:
  """The datasets an ExtractInputForSavedModel names: their record
  batches, one dataset after the other."""

  def __init__(self, sources: List[RecordBatchSource]):
    self._sources = sources

  def read(self) -> Iterator[pa.RecordBatch]:
    for source in self._sources:
      yield from source()


def _single(values: list, label: str):
  """The one element of `values` (Beam's AsSingleton)."""
  if len(values) != 1:
    raise ValueError(f'{label}: expected one value, got {len(values)}')
  return values[0]


_LIST_OPERATIONS = {
    beam_nodes.ExtractInputForSavedModel: _Analysis.extract_input,
    beam_nodes.CreateSavedModel: _Analysis.create_saved_model,
    beam_nodes.CreateTensorBinding: _Analysis.create_tensor_binding,
    beam_nodes.ExtractFromDict: _Analysis.extract_from_dict,
    beam_nodes.Flatten: _Analysis.flatten,
    analyzer_nodes.FlattenLists: _Analysis.flatten_lists,
    analyzer_nodes.AddKey: _Analysis.add_key,
    analyzer_nodes.ExtractCombineMergeOutputs: _Analysis.extract_outputs,
    analyzer_nodes.ExtractPackedCombineMergeOutputs: _Analysis.extract_outputs,
    analyzer_nodes.PackedCombineMerge: _Analysis.merge_packed,
    analyzer_nodes.CacheableCombineMerge: _Analysis.merge_combine,
    analyzer_nodes.VocabularyMerge: _Analysis.vocabulary_merge,
    analyzer_nodes.VocabularyCount: _Analysis.vocabulary_count,
    analyzer_nodes.VocabularyPrune: _Analysis.vocabulary_prune,
    analyzer_nodes.VocabularyOrderAndWrite: _Analysis.vocabulary_write,
    analyzer_nodes.ExtractVocabularyReservedTokens: _Analysis.reserved_tokens,
}

_SUPPORTED = frozenset(
    set(_LIST_OPERATIONS) | set(_ELEMENTWISE) | set(_ACCUMULATORS) |
    {beam_nodes.ApplySavedModel})


def analyze(preprocessing_fn, sources: Mapping[Any, RecordBatchSource],
            tensor_adapter_config, base_temp_dir: str) -> Result:
  """TFT's analysis of the data in `sources` (dataset key -> its batches)
  for `preprocessing_fn`, traced in TF1 mode, in this process.

  Raises:
    Unsupported: the analysis needs an operation computed only by TFT's
      Beam pipeline (nothing has been written then).
  """
  specs = (tensor_adapter_config.original_type_specs or
           tensor_adapter.TensorAdapter(
               tensor_adapter_config).OriginalTypeSpecs())
  graph, structured_inputs, structured_outputs = (
      impl_helper.trace_preprocessing_function(
          preprocessing_fn, specs, use_tf_compat_v1=True,
          base_temp_dir=base_temp_dir))
  if not isinstance(structured_outputs, dict) or not structured_outputs:
    raise ValueError('the preprocessing_fn gave no features: Transform '
                     'needs a non-empty dict of tensors, not '
                     f'{structured_outputs!r}')
  trainable = graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)
  if trainable:
    raise ValueError('the preprocessing_fn made trainable variables, which '
                     'a transform graph cannot hold: '
                     f'{[variable.name for variable in trainable]}')
  asset_map = annotators.get_asset_annotations(graph)
  annotators.clear_asset_annotations(graph)
  transform_fn, cache, side_effects = analysis_graph_builder.build(
      graph, structured_inputs, structured_outputs, list(sources),
      cache_dict=None)
  if cache:
    raise Unsupported('the analyzer cache')
  analysis = _Analysis(graph, structured_inputs, sources,
                       tensor_adapter_config, base_temp_dir)
  analysis.plan([transform_fn, *side_effects])
  traverser = nodes.Traverser(analysis)
  (saved_model_dir,) = traverser.visit_value_node(transform_fn)
  for node in side_effects:
    traverser.visit_value_node(node)
  metadata = beam_impl._infer_metadata_from_saved_model(  # pylint: disable=protected-access
      saved_model_dir, use_tf_compat_v1=True)
  return Result(str(saved_model_dir), metadata, dict(asset_map))
