"""Remembers the function signatures Apache Beam reads, in the processes
that build and run the pipeline's Beam pipelines: a local run
(local_runner.py) and each step of a cloud run (the image's start-up hook,
pipeline/kfp_runtime/kfp_compat.py).

Beam 2.74 reads the signature of every method of every DoFn each time it
builds a bundle processor, once per fused stage of each Beam pipeline, and
again while it checks and serialises the pipeline: about 184,000 calls of
`inspect.signature` in one local run of the bundled data, for a few hundred
distinct functions. With Beam's in-process runner each stage is one bundle,
so this costs a few seconds of a run that takes about twenty
(docs/performance.md); a step that runs Beam in its container repeats the
same reads (not timed there). Dataflow's workers run Beam as released: they
build each stage once for large bundles.

A plain function's signature is fixed by its code, its defaults and its
wrappers, and a bound method's is its function's without the first
parameter, so `remember_signatures` keeps the first answer per function (and
per bound or unbound use) and hands it out afterwards. Any other callable
(a builtin, a callable object, a functools.partial) is read as before.
Functions are held weakly: a DoFn's code that is dropped is forgotten.
"""
import types
from typing import Callable
import weakref

from apache_beam.transforms import core
from apache_beam.transforms import ptransform
from apache_beam.transforms import util
from apache_beam.typehints import decorators

# Every Beam module that calls it, under the name it imported it as.
_USERS = (decorators, core, ptransform, util)


class SignatureCache:
  """`get_signature` with its answers kept per function."""

  def __init__(self, read: Callable):
    self.read = read
    self._bound = weakref.WeakKeyDictionary()
    self._unbound = weakref.WeakKeyDictionary()

  def __call__(self, func):
    if isinstance(func, types.MethodType):
      function, answers = func.__func__, self._bound
    else:
      function, answers = func, self._unbound
    if not isinstance(function, types.FunctionType):
      return self.read(func)
    signature = answers.get(function)
    if signature is None:
      signature = answers[function] = self.read(func)
    return signature


def remember_signatures() -> None:
  """Makes Beam's `get_signature` keep its answers, in this process; applying
  it again changes nothing."""
  if isinstance(decorators.get_signature, SignatureCache):
    return
  cached = SignatureCache(decorators.get_signature)
  for module in _USERS:
    module.get_signature = cached
