"""TFDV's equi-width histogram of a numeric column, computed on floats
instead of protos: the same histogram, bit for bit, in a fraction of the
time.

TFDV 1.16 (`tensorflow_data_validation.utils.quantiles_util`) builds each
numeric column's standard histogram from a fine quantiles histogram (100
quantile buckets per standard bucket, 1,000 by default): it first writes
every quantile bucket into a Histogram proto, then walks the buckets for
each standard bucket, reading their bounds back from the proto and calling
a function per bucket. Before that it spreads the weight of tied quantiles
comparing numpy scalars one pair at a time. On a table of 1,000 numeric
columns the two were about half of StatisticsGen's time.

`equi_width_histogram` takes the same arguments and does the same steps
with the same float arithmetic (TFDV's own helper strips the infinities),
on arrays: `bin_weights` finds the tied quantiles with array comparisons
and spreads each run's weight with the same additions as TFDV, and
`_sample_counts` computes every standard bucket's overlap fractions at once
and adds them up in TFDV's order. So every bound and count they give is the
one TFDV gives (tests/test_equi_width_histogram.py compares them on
sketches with ties, point masses, infinities and weights).
`used_by_tfdv()` substitutes them for TFDV's functions while the columnar
StatisticsGen extracts its statistics.
"""
import contextlib
from typing import Iterator, Tuple

import numpy as np
from tensorflow_data_validation.utils import quantiles_util
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.components import library_substitution

# TFDV's functions this module replaces or calls (TFDV 1.16's, two of them
# private); another TFDV without them keeps its own.
_TFDV_HELPERS = ('generate_equi_width_histogram', '_strip_infinities',
                 '_get_bin_weights')
# numpy's sum adds fewer floats than this one after the other, and more in
# eight interleaved partial sums (pairwise summation).
_SEQUENTIAL_SUM = 8


def equi_width_histogram(quantiles: np.ndarray,
                         cumulative_counts: np.ndarray, finite_min: float,
                         finite_max: float, num_buckets: int,
                         num_pos_inf: float) -> statistics_pb2.Histogram:
  """quantiles_util.generate_equi_width_histogram's result for the same
  arguments: the standard histogram of `num_buckets` equal-width buckets
  between the finite min and max, each counting the quantile buckets it
  overlaps by their overlapping fraction; infinities in a bucket of their
  own at either end."""
  result = statistics_pb2.Histogram()
  result.type = statistics_pb2.Histogram.STANDARD
  if not np.isfinite(finite_min) and not np.isfinite(finite_max):
    result.buckets.add(low_value=finite_min, high_value=finite_max,
                       sample_count=cumulative_counts[-1])
    return result
  assert np.isfinite(finite_min)
  assert np.isfinite(finite_max)
  assert np.all(quantiles[:-1] <= quantiles[1:])
  quantiles, cumulative_counts, num_neg_inf = (
      quantiles_util._strip_infinities(  # pylint: disable=protected-access
          quantiles, cumulative_counts, finite_max, num_pos_inf))
  # The quantiles histogram's buckets as TFDV writes them into its proto
  # (doubles), without the proto.
  lows, highs, weights = bin_weights(quantiles, cumulative_counts)
  if finite_min == finite_max:
    boundaries = np.array([finite_min, finite_max])
  else:
    boundaries = np.linspace(finite_min, finite_max, num_buckets + 1)
    if not np.isfinite(boundaries).all():
      return result  # overflow: TFDV's empty histogram
  if num_neg_inf:
    result.buckets.add(low_value=float('-inf'), high_value=float('-inf'),
                       sample_count=num_neg_inf)
  counts = _sample_counts(boundaries, lows, highs, weights)
  for low_bound, high_bound, sample_count in zip(
      boundaries[:-1].tolist(), boundaries[1:].tolist(), counts.tolist()):
    result.buckets.add(low_value=low_bound, high_value=high_bound,
                       sample_count=sample_count)
  if num_pos_inf:
    result.buckets.add(low_value=float('inf'), high_value=float('inf'),
                       sample_count=num_pos_inf)
  return result


def _sample_counts(boundaries: np.ndarray, lows: np.ndarray,
                   highs: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """Each standard bucket's count: the sum, in quantile bucket order, of
  each quantile bucket's weight times the fraction of it the standard
  bucket overlaps, with quantiles_util._overlap's cases in its order.

  TFDV adds the terms of the quantile buckets from the first that does not
  precede the standard bucket to the last that does not follow it, one
  after the other. Here each standard bucket gets a row of those terms
  (quantile buckets are sorted, so they are a band found by bisection),
  padded with exact zeros, and np.cumsum adds along each row one term after
  the other; zeros leave a sum of non-negative terms as it was, and adding
  0.0 at the end does what TFDV's start from 0 does to a sum of -0.0. So
  each count has TFDV's bits.
  """
  low_bound, high_bound = boundaries[:-1], boundaries[1:]
  # The band: from the first bucket that does not end before the standard
  # bucket starts to the last that does not start after it ends.
  first = np.searchsorted(highs, low_bound, side='left')
  stop = np.searchsorted(lows, high_bound, side='right')
  width = np.maximum(stop - first, 0)
  if not width.size or not width.max():
    return np.zeros(len(low_bound))
  columns = np.arange(width.max())
  index = np.minimum(first[:, None] + columns, lows.size - 1)
  in_band = columns < width[:, None]
  low, high, weight = lows[index], highs[index], weights[index]
  low_bound, high_bound = low_bound[:, None], high_bound[:, None]
  # In the band no bucket precedes or follows the standard bucket, and each
  # of _overlap's other cases for a bucket of non-zero width is the length
  # of the intersection over the bucket's width, with the same operands:
  # (high - low) / (high - low) = 1 inside, (high_bound - low) / (high -
  # low) across the right edge, (high - low_bound) / ... across the left
  # one, (high_bound - low_bound) / ... across both. A point counts whole,
  # except on the left edge of any standard bucket but the first.
  later = (np.arange(len(boundaries) - 1) > 0)[:, None]
  # Out of the band (masked below) a division may overflow or be 0/0.
  with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
    size = high - low
    overlap = np.where(
        size > 0,
        (np.minimum(high, high_bound) - np.maximum(low, low_bound)) / size,
        np.where(later & (low == low_bound), 0.0, 1.0))
    terms = np.where(in_band, overlap * weight, 0.0)
  unmatched = np.argwhere(in_band & np.isnan(overlap))
  if unmatched.size:
    i, k = unmatched[0]
    raise ValueError(
        f'Unable to compute overlap between ({boundaries[i]}, '
        f'{boundaries[i + 1]}) and the bucket ({low[i, k]}, {high[i, k]})')
  # TFDV's sums start from 0, which makes a sum of -0.0 terms 0.0.
  return np.cumsum(terms, axis=1)[:, -1] + 0.0


def bin_weights(boundaries: np.ndarray, cumulative_weights: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """quantiles_util._get_bin_weights's result for the same arguments: the
  quantile buckets' low bounds, high bounds and weights, the weight of
  buckets with the same high bound spread evenly over them and the first
  boundary's weight over the buckets equal to the first. TFDV finds those
  buckets comparing numpy scalars one by one; this finds them with array
  comparisons and spreads each run's weight with numpy's sum, or, for runs
  shorter than 8, the same additions in the same order for every run of one
  length at once."""
  cumulative_weights = cumulative_weights.astype(np.float64)
  lows, highs = boundaries[:-1], boundaries[1:]
  weights = np.diff(cumulative_weights)
  size = lows.size
  if not size:
    return lows, highs, weights
  starts = np.flatnonzero(np.concatenate(([True], highs[1:] != highs[:-1])))
  lengths = np.diff(np.append(starts, size))
  for length in np.unique(lengths[lengths > 1]).tolist():
    runs = starts[lengths == length]
    if length < _SEQUENTIAL_SUM:
      # numpy sums fewer than 8 floats in order, as np.cumsum adds along a
      # row: all runs of this length at once.
      cells = runs[:, np.newaxis] + np.arange(length)
      total = np.cumsum(weights[cells], axis=1)[:, -1]
      weights[cells] = (total / length)[:, np.newaxis]
    else:
      for start in runs.tolist():
        weights[start:start + length] = (
            weights[start:start + length].sum() / length)
  differs = np.flatnonzero((lows != lows[0]) | (highs != highs[0]))
  first = int(differs[0]) if differs.size else size
  if first > 0:
    weights[0:first] += cumulative_weights[0] / first
  return lows, highs, weights


@contextlib.contextmanager
def used_by_tfdv() -> Iterator[None]:
  """TFDV's statistics generators call `equi_width_histogram` and
  `bin_weights` in place of their own functions while this is entered (one
  thread at a time)."""
  if not all(hasattr(quantiles_util, name) for name in _TFDV_HELPERS):
    yield  # another TFDV: its own function, as released
    return
  with library_substitution.substituted(
      quantiles_util, generate_equi_width_histogram=equi_width_histogram,
      _get_bin_weights=bin_weights):
    yield
