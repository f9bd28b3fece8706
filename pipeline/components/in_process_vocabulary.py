"""TFT's frequency vocabularies computed in this process: counting the
tokens of each batch, adding up the counts, applying the thresholds and
top_k, ordering the result and writing the vocabulary file, as TFT's Beam
implementation of its vocabulary operations (tensorflow_transform/beam/
analyzer_impls.py) does for a vocabulary ordered by frequency, with or
without weights (in_process_analysis.py calls these).

Counts add up in the order the batches arrive, as a local Beam runner adds
them (one bundle): the same sums, so the same file.
"""
import hashlib
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_transform import analyzer_nodes
from tensorflow_transform import analyzers
from tensorflow_transform.beam import analyzer_impls

# TFT's kinds of vocabulary order, which its Beam implementation reads
# (None in a TFT without them: in_process_analysis.missing_from_tft names it).
_ORDERING = getattr(analyzers, '_VocabOrderingType', None)
# The orders computed here: by frequency, without and with weights.
_ORDERINGS = ((_ORDERING.FREQUENCY, _ORDERING.WEIGHTED_FREQUENCY)
             if _ORDERING else ())


def is_weighted(operation) -> bool:
  """Whether a vocabulary operation adds up weights (or counts tokens)."""
  return operation.vocab_ordering_type == _ORDERING.WEIGHTED_FREQUENCY
# The vocabulary file formats TFT writes.
FILE_FORMATS = ('text', 'tfrecord_gzip')
# Lines written to a vocabulary file at a time.
_LINES_PER_WRITE = 65536


def unsupported_reason(operation) -> Optional[str]:
  """Why a vocabulary operation is not computed here (None: it is)."""
  ordering = getattr(operation, 'vocab_ordering_type', None)
  if ordering is not None and ordering not in _ORDERINGS:
    return f'a vocabulary ordered by {ordering}'
  if isinstance(operation, analyzer_nodes.VocabularyPrune) and (
      operation.key_fn):
    return 'a vocabulary with coverage (key_fn)'
  if isinstance(operation, analyzer_nodes.VocabularyOrderAndWrite) and (
      operation.file_format not in FILE_FORMATS):
    return f'vocabulary file format {operation.file_format!r}'
  return None


class TokenCounts:
  """The accumulating half of VocabularyAccumulate: each distinct token's
  number of occurrences, or sum of weights."""

  def __init__(self, weighted: bool):
    self._weighted = weighted
    self._counts: Dict[Any, Any] = {}

  def add(self, element: Tuple[np.ndarray, ...]) -> None:
    """Adds a batch: (tokens,) or (tokens, weights), flat arrays."""
    counts = self._counts
    if self._weighted:
      tokens, weights = element
      pairs = zip(tokens.tolist(), weights.tolist())
    else:
      (tokens,) = element
      pairs = ((token, 1) for token in tokens.tolist())
    for token, count in pairs:
      counts[token] = counts.get(token, 0) + count

  def result(self) -> List[Tuple[Any, Any]]:
    """(token, count) per distinct token."""
    return list(self._counts.items())


def merge(token_counts: Iterable[Tuple[Any, Any]]) -> List[Tuple[Any, Any]]:
  """VocabularyMerge: (count, token) per token, counts of the same token
  (from several datasets) added up."""
  totals: Dict[Any, Any] = {}
  for token, count in token_counts:
    totals[token] = totals.get(token, 0) + count
  return [(count, token) for token, count in totals.items()]


def prune(counts: List[Tuple[Any, Any]], operation) -> List[Tuple[Any, bytes]]:
  """VocabularyPrune: the (count, token) pairs at or over the thresholds,
  each count a single number, tokens as bytes, then the `top_k` largest
  (largest first; TFT's placeholder entry if none is left)."""
  frequency_threshold = operation.frequency_threshold or 0
  informativeness_threshold = operation.informativeness_threshold
  if frequency_threshold > 0 or informativeness_threshold > float('-inf'):
    counts = [pair for pair in counts if _over_thresholds(
        pair[0], frequency_threshold, informativeness_threshold)]
  as_text = operation.input_dtype != tf.string.name
  counts = [(count[0] if isinstance(count, tuple) else count,
             tf.compat.as_bytes(tf.compat.as_str_any(token)) if as_text
             else token)
            for count, token in counts]
  if operation.top_k is None:
    return counts
  return analyzer_impls.maybe_add_empty_vocabulary_dummy(
      sorted(counts, reverse=True)[:operation.top_k], operation.input_dtype)


def _over_thresholds(count, frequency_threshold,
                     informativeness_threshold) -> bool:
  """Whether a count (a frequency, or (informativeness, frequency)) is at
  or over both thresholds."""
  if isinstance(count, tuple):
    informativeness, frequency = count
  else:
    informativeness, frequency = float('inf'), count
  return (frequency >= frequency_threshold and
          informativeness >= informativeness_threshold)


def ordered(counts: List[Tuple[Any, bytes]], operation,
            reserved_tokens: Optional[List[bytes]]) -> List[Tuple[Any, bytes]]:
  """VocabularyOrderAndWrite's order: as given where TFT's top_k sorted
  them already, otherwise by count and then token, largest first (or by
  the tokens' fingerprints), reserved tokens first."""
  if operation.input_is_sorted and reserved_tokens is None:
    return counts
  if operation.fingerprint_shuffle:
    result = sorted(counts, key=lambda pair: hashlib.sha1(pair[1]).digest())
  else:
    result = sorted(counts, reverse=True)
  if reserved_tokens is not None:
    reserved = set(reserved_tokens)
    result = [(-1, token) for token in reserved_tokens] + [
        pair for pair in result if pair[1] not in reserved]
  return analyzer_impls.maybe_add_empty_vocabulary_dummy(
      result, operation.input_dtype)


def write(counts: List[Tuple[Any, bytes]], operation,
          base_temp_dir: str) -> str:
  """Writes the vocabulary file of `operation` (one entry per line, or per
  record), `counts` in their order; its path."""
  path = os.path.join(base_temp_dir, operation.vocab_filename)
  if operation.store_frequency:
    entries = (analyzer_impls._count_and_token_to_bytes(count, token)  # pylint: disable=protected-access
               for count, token in counts)
  else:
    entries = (token for _, token in counts)
  tf.io.gfile.makedirs(base_temp_dir)
  if operation.file_format == 'text':
    with tf.io.gfile.GFile(path, 'wb') as f:
      chunk = []
      for entry in entries:
        chunk.append(tf.compat.as_bytes(entry))
        if len(chunk) == _LINES_PER_WRITE:
          f.write(b'\n'.join(chunk) + b'\n')
          chunk = []
      if chunk:
        f.write(b'\n'.join(chunk) + b'\n')
  else:
    path = f'{path}.tfrecord.gz'
    with tf.io.TFRecordWriter(path, 'GZIP') as writer:
      for entry in entries:
        writer.write(tf.compat.as_bytes(entry))
  return path
