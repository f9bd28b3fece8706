"""bench/measure.py's side-by-side timing, on made-up runs."""
import pytest

from bench import measure


def _run(seconds: float, cpu: float) -> measure.Measured:
  return measure.Measured(seconds=seconds, cpu_seconds=cpu, peak_rss=0,
                          samples=[], output='')


def test_the_pairs_alternate_which_command_goes_first():
  calls = []
  times = iter([(9.0, 9.5), (6.0, 6.5), (5.0, 5.5), (10.0, 9.0),
                (8.0, 8.0), (4.0, 4.2)])

  def command(name):
    def run(index):
      calls.append((name, index))
      return _run(*next(times))
    return run

  pairs = measure.side_by_side(3, command('run'), command('yardstick'))
  assert calls == [('run', 0), ('yardstick', 0), ('yardstick', 1),
                   ('run', 1), ('run', 2), ('yardstick', 2)]
  # Pair by pair: 9 / 6, 10 / 5, 8 / 4 (whichever ran first).
  assert pairs.pair_ratios() == [1.5, 2.0, 2.0]
  assert pairs.ratio() == 2.0
  assert pairs.pair_ratios(cpu=True) == pytest.approx(
      [9.5 / 6.5, 9.0 / 5.5, 8.0 / 4.2])
  assert pairs.ratio(cpu=True) == pytest.approx(9.0 / 5.5)
  assert pairs.median_yardstick().seconds == 5.0
  assert pairs.describe().startswith('9.0 s / 6.0 s = 1.50 (1.46 CPU); ')


def test_an_even_number_of_pairs_is_refused():
  with pytest.raises(AssertionError):
    measure.side_by_side(2, lambda i: _run(1, 1), lambda i: _run(1, 1))
