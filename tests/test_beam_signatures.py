"""pipeline/kfp_runtime/beam_signatures.py: Beam reads each function's
signature once."""
import functools
import inspect

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to
from apache_beam.transforms import core
from apache_beam.transforms import userstate
from apache_beam.typehints import decorators

from pipeline.kfp_runtime import beam_signatures


def _scaled(x, factor=2, *rest, key=None):
  del rest, key
  return x * factor


class _Scale:

  def apply(self, x, factor=3):
    return x * factor


def _counting_cache():
  reads = []

  def read(func):
    reads.append(func)
    return inspect.signature(func)

  return beam_signatures.SignatureCache(read), reads


def test_a_function_is_read_once_and_answers_as_inspect_does():
  cache, reads = _counting_cache()
  for _ in range(3):
    assert cache(_scaled) == inspect.signature(_scaled)
  assert reads == [_scaled]


def test_a_bound_method_drops_self_and_is_kept_apart_from_its_function():
  cache, reads = _counting_cache()
  first, second = _Scale(), _Scale()
  assert list(cache(first.apply).parameters) == ['x', 'factor']
  assert cache(second.apply) == inspect.signature(second.apply)
  assert list(cache(_Scale.apply).parameters) == ['self', 'x', 'factor']
  assert len(reads) == 2  # one bound, one unbound


def test_other_callables_are_read_every_time():
  cache, reads = _counting_cache()
  partial = functools.partial(_scaled, factor=5)
  for _ in range(2):
    assert cache(partial) == inspect.signature(partial)
    assert cache(len) == inspect.signature(len)
  assert len(reads) == 4


class _RunningSum(beam.DoFn):
  """A stateful DoFn: Beam finds its state in process()'s defaults."""
  TOTAL = userstate.ReadModifyWriteStateSpec('total', VarIntCoder())

  def process(self, element, total=beam.DoFn.StateParam(TOTAL)):
    key, value = element
    running = (total.read() or 0) + value
    total.write(running)
    yield key, running


def test_beam_sees_the_same_arguments_and_state_and_runs_a_stateful_dofn():
  dofn = _RunningSum()
  before = (core.get_function_arguments(dofn, 'process'),
            userstate.get_dofn_specs(dofn))
  original = decorators.get_signature
  beam_signatures.remember_signatures()
  beam_signatures.remember_signatures()  # a second call changes nothing
  try:
    assert isinstance(core.get_signature, beam_signatures.SignatureCache)
    assert core.get_signature.read is original
    assert (core.get_function_arguments(dofn, 'process'),
            userstate.get_dofn_specs(dofn)) == before
    with beam.Pipeline() as pipeline:
      sums = (pipeline | beam.Create([('a', 1), ('a', 2), ('b', 5)])
              | beam.ParDo(_RunningSum()))
      assert_that(sums, equal_to([('a', 1), ('a', 3), ('b', 5)]))
  finally:
    for module in beam_signatures._USERS:  # pylint: disable=protected-access
      module.get_signature = original
