"""pipeline/kfp_runtime/beam_option_views.py: Beam's options views, built
once each."""
import gc
import pickle

import apache_beam as beam
from apache_beam.options import pipeline_options
from apache_beam.options.pipeline_options import GoogleCloudOptions
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.options.pipeline_options import TypeOptions
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to
import pytest

from pipeline.kfp_runtime import beam_option_views

_ORIGINAL = PipelineOptions.__dict__['view_as']


@pytest.fixture
def counted():
  """A ViewCache over Beam's view_as that records each view it builds."""
  built = []

  def view_as(options, cls):
    built.append(cls)
    return _ORIGINAL(options, cls)

  return beam_option_views.ViewCache(view_as), built


@pytest.fixture
def remembered(monkeypatch):
  """remember_views() applied, Beam's own view_as back afterwards."""
  monkeypatch.setattr(PipelineOptions, 'view_as', _ORIGINAL)
  beam_option_views.remember_views()
  yield


def _values(view):
  return {name: getattr(view, name) for name in view._visible_option_list()}  # pylint: disable=protected-access


def test_a_view_is_built_once_and_answers_as_a_new_one(counted):
  cache, built = counted
  options = PipelineOptions(['--project=p', '--runner=DataflowRunner',
                             '--region=r'])
  first = cache(options, GoogleCloudOptions)
  assert cache(options, GoogleCloudOptions) is first
  assert built == [GoogleCloudOptions]
  assert _values(first) == _values(_ORIGINAL(options, GoogleCloudOptions))
  assert first.project == 'p' and first.region == 'r'
  assert cache(options, StandardOptions).runner == 'DataflowRunner'
  assert built == [GoogleCloudOptions, StandardOptions]


def test_writes_through_a_kept_view_reach_every_view(counted):
  cache, _ = counted
  options = PipelineOptions(['--project=p'])
  cache(options, GoogleCloudOptions).project = 'q'
  assert cache(options, GoogleCloudOptions).project == 'q'
  assert _ORIGINAL(options, GoogleCloudOptions).project == 'q'
  assert options.get_all_options()['project'] == 'q'
  cache(options, TypeOptions).disable_beartype = True
  assert _ORIGINAL(options, TypeOptions).disable_beartype is True


def test_views_of_other_options_are_their_own(counted):
  cache, built = counted
  one = PipelineOptions(['--project=one'])
  two = PipelineOptions(['--project=two'])
  assert cache(one, GoogleCloudOptions).project == 'one'
  assert cache(two, GoogleCloudOptions).project == 'two'
  assert len(built) == 2


# pylint: disable=protected-access
def test_new_flags_or_values_get_a_new_view(counted):
  cache, built = counted
  options = PipelineOptions(['--project=one'])
  first = cache(options, GoogleCloudOptions)
  options._all_options = {'project': 'two'}
  second = cache(options, GoogleCloudOptions)
  assert second is not first and second._all_options is options._all_options
  assert second.project == 'two'
  options._flags = ['--project=three']
  third = cache(options, GoogleCloudOptions)
  assert third is not second and third._flags is options._flags
  # A view whose values someone replaced is not handed out again.
  third._all_options = {'project': 'four'}
  assert cache(options, GoogleCloudOptions).project == 'two'
  assert len(built) == 4


def test_options_that_cannot_be_keys_still_get_views(counted):
  cache, built = counted

  class Unhashable(PipelineOptions):
    __hash__ = None

  options = Unhashable(['--project=p'])
  assert cache(options, GoogleCloudOptions).project == 'p'
  assert cache(options, GoogleCloudOptions).project == 'p'
  assert len(built) == 2
# pylint: enable=protected-access


def test_dropped_options_take_their_views_with_them(counted):
  cache, _ = counted
  options = PipelineOptions([])
  cache(options, StandardOptions)
  assert len(cache._views) == 1  # pylint: disable=protected-access
  del options
  gc.collect()
  assert len(cache._views) == 0  # pylint: disable=protected-access


def test_options_still_pickle_as_they_did(remembered):
  options = PipelineOptions(['--project=p'])
  options.view_as(GoogleCloudOptions).region = 'r'
  copy = pickle.loads(pickle.dumps(options))
  assert copy.view_as(GoogleCloudOptions).project == 'p'
  assert copy.view_as(GoogleCloudOptions).region == 'r'
  assert set(vars(copy)) == set(vars(PipelineOptions([])))


def test_remembering_twice_keeps_one_cache_and_beam_pipelines_run(
    remembered):
  cache = PipelineOptions.view_as.cache
  beam_option_views.remember_views()
  assert pipeline_options.PipelineOptions.view_as.cache is cache
  options = PipelineOptions([])
  assert options.view_as(StandardOptions) is options.view_as(StandardOptions)
  with beam.Pipeline(options=options) as pipeline:
    doubled = (pipeline | beam.Create([1, 2, 3])
               | beam.Map(lambda x: x * 2).with_output_types(int))
    assert_that(doubled, equal_to([2, 4, 6]))
