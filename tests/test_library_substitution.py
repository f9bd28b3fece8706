"""The swap of a library's function that three executors share
(pipeline/components/library_substitution.py)."""
import threading
import time
import types

import pytest

from pipeline.components import library_substitution


def _module():
  module = types.ModuleType('a_library')
  module.step = 'released'
  module.other = 'released other'
  return module


def test_the_replacement_holds_only_while_inside_also_on_an_error():
  module = _module()
  with library_substitution.substituted(module, step='ours', other='ours 2'):
    assert (module.step, module.other) == ('ours', 'ours 2')
  assert (module.step, module.other) == ('released', 'released other')
  with pytest.raises(RuntimeError):
    with library_substitution.substituted(module, step='ours'):
      raise RuntimeError('the executor failed')
  assert module.step == 'released'


def test_callers_for_one_module_take_turns():
  module = _module()
  seen = []

  def caller(name):
    with library_substitution.substituted(module, step=name):
      time.sleep(0.05)
      seen.append(module.step)  # nobody swapped it meanwhile

  threads = [threading.Thread(target=caller, args=(f'caller {i}',))
             for i in range(4)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert sorted(seen) == [f'caller {i}' for i in range(4)]
  assert module.step == 'released'


def test_takes_checks_the_parameters_and_their_order():
  def traced(preprocessing_fn, input_specs, base_temp_dir=None):
    del preprocessing_fn, input_specs, base_temp_dir
  assert library_substitution.takes(
      traced, ('preprocessing_fn', 'input_specs', 'base_temp_dir'))
  assert not library_substitution.takes(
      traced, ('input_specs', 'preprocessing_fn', 'base_temp_dir'))
  assert not library_substitution.takes(traced,
                                        ('preprocessing_fn', 'input_specs'))
