"""pipeline/components/equi_width_histogram.py writes TFDV's standard
histogram bit for bit: on quantile sketches of every shape TFDV hands it,
and through TFDV's own statistics generator."""
import numpy as np
import pyarrow as pa
import pytest
from tensorflow_data_validation.statistics.generators import basic_stats_generator
from tensorflow_data_validation.utils import quantiles_util

from pipeline.components import equi_width_histogram

_TFDV = quantiles_util.generate_equi_width_histogram
_TFDV_BIN_WEIGHTS = quantiles_util._get_bin_weights  # pylint: disable=protected-access


def _sketch(rng, kind):
  """(quantiles, cumulative_counts, finite_min, finite_max, num_pos_inf)
  as basic_stats_generator passes them: sorted boundaries, rising counts."""
  size = int(rng.choice([2, 3, 11, 101, 1001]))
  if kind == 'ties':  # few distinct values: runs of equal boundaries
    values = np.sort(rng.integers(-3, 4, size)).astype(np.float64)
  elif kind == 'constant':
    values = np.full(size, float(rng.normal()))
  elif kind == 'tiny range':  # min and max a few floats apart
    values = np.sort(1.0 + rng.integers(0, 3, size) * np.finfo(float).eps)
  else:  # spread, some ties from rounding
    values = np.sort(np.round(rng.lognormal(0, 2, size) * rng.choice([-1, 1]),
                              int(rng.integers(0, 4))))
  steps = (rng.random(size) * 3 if kind == 'weighted' or rng.random() < 0.3
           else rng.integers(0, 5, size).astype(np.float64))
  counts = np.cumsum(steps)
  num_pos_inf = 0.0
  finite_min, finite_max = values[0], values[-1]
  if kind == 'infinities' and size > 2:
    neg, pos = int(rng.integers(0, size // 3 + 1)), int(
        rng.integers(0, size // 3 + 1))
    values = values.copy()
    values[:neg] = -np.inf
    if pos:
      values[size - pos:] = np.inf
      num_pos_inf = float(rng.integers(1, 4))
    finite = values[np.isfinite(values)]
    if finite.size:
      finite_min, finite_max = finite[0], finite[-1]
    else:
      finite_min, finite_max = np.inf, -np.inf
  return values, counts, finite_min, finite_max, num_pos_inf


@pytest.mark.parametrize('kind', ['spread', 'ties', 'constant', 'tiny range',
                                  'weighted', 'infinities'])
def test_same_histogram_as_tfdv(kind):
  rng = np.random.default_rng(sum(map(ord, kind)))
  full = 0  # histograms with every standard bucket: not all trivial
  # (a constant column has one)
  for _ in range(150):
    quantiles, counts, low, high, pos_inf = _sketch(rng, kind)
    buckets = int(rng.choice([1, 3, 10]))
    expected = _TFDV(quantiles, counts, low, high, buckets, pos_inf)
    got = equi_width_histogram.equi_width_histogram(
        quantiles, counts, low, high, buckets, pos_inf)
    assert got.SerializeToString() == expected.SerializeToString(), (
        quantiles, counts, low, high, buckets, pos_inf)
    full += len(got.buckets) >= (1 if low == high else buckets)
  assert full >= 100


@pytest.mark.parametrize('kind', ['spread', 'ties', 'constant', 'tiny range',
                                  'weighted', 'infinities'])
def test_same_bin_weights_as_tfdv(kind):
  rng = np.random.default_rng(sum(map(ord, kind)) + 1)
  for _ in range(150):
    quantiles, counts, _, _, _ = _sketch(rng, kind)
    if rng.random() < 0.2:  # ties at the start, and nothing but the start
      quantiles[:int(rng.integers(1, quantiles.size + 1))] = quantiles[0]
    for size in (quantiles.size, 1, 2):  # no bucket, one, several
      expected = _TFDV_BIN_WEIGHTS(quantiles[:size], counts[:size])
      got = equi_width_histogram.bin_weights(quantiles[:size], counts[:size])
      for mine, tfdvs in zip(got, expected):
        assert mine.tobytes() == tfdvs.tobytes(), (quantiles, counts)


def test_tfdv_statistics_are_the_same_through_its_generator():
  rng = np.random.default_rng(7)
  rows = 500
  columns = {
      'spread': rng.lognormal(0, 3, rows),
      'ties': rng.integers(0, 4, rows).astype(np.float64),
      'constant': np.full(rows, 2.5),
      'with_inf': np.where(rng.random(rows) < 0.1, np.inf,
                           rng.normal(size=rows)),
      'integers': rng.integers(-1000, 1000, rows),
  }
  batch = pa.RecordBatch.from_arrays(
      [pa.array([[v] for v in values]) for values in columns.values()],
      list(columns))
  generator = basic_stats_generator.BasicStatsGenerator(
      num_histogram_buckets=10, num_quantiles_histogram_buckets=10)

  def statistics():  # a sketch is compacted once: a new one each time
    accumulator = generator.add_input(generator.create_accumulator(), batch)
    return generator.extract_output(generator.compact(accumulator))

  expected = statistics()
  with equi_width_histogram.used_by_tfdv():
    assert (quantiles_util.generate_equi_width_histogram is
            equi_width_histogram.equi_width_histogram)
    assert (quantiles_util._get_bin_weights is  # pylint: disable=protected-access
            equi_width_histogram.bin_weights)
    got = statistics()
  assert quantiles_util.generate_equi_width_histogram is _TFDV
  assert quantiles_util._get_bin_weights is _TFDV_BIN_WEIGHTS  # pylint: disable=protected-access
  # Bytes: a column with infinities has a NaN standard deviation.
  assert got.SerializeToString(deterministic=True) == (
      expected.SerializeToString(deterministic=True))
  standard = [h for f in got.features for h in f.num_stats.histograms
              if h.type == h.STANDARD]
  assert len(standard) == len(columns)
  assert sum(b.sample_count for b in standard[0].buckets) == pytest.approx(
      rows)


def test_a_count_of_negative_zero_terms_is_zero_as_tfdvs_sum_from_zero():
  # A quantile bucket ending at -0.0 against a standard bucket starting at
  # 0.0 overlaps it by (-0.0 - 0.0) / 1 = -0.0; TFDV adds that to 0.
  counts = equi_width_histogram._sample_counts(  # pylint: disable=protected-access
      np.array([0.0, 1.0]), np.array([-1.0]), np.array([-0.0]),
      np.array([2.0]))
  assert counts.tolist() == [0.0] and not np.signbit(counts[0])


def test_tfdv_keeps_its_function_when_the_body_fails():
  with pytest.raises(RuntimeError):
    with equi_width_histogram.used_by_tfdv():
      raise RuntimeError('failed')
  assert quantiles_util.generate_equi_width_histogram is _TFDV
  assert quantiles_util._get_bin_weights is _TFDV_BIN_WEIGHTS  # pylint: disable=protected-access
