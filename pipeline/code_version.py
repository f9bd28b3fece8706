"""Fingerprints of the user code that components load by dotted path.

TFX caches a component's output while its inputs and properties are
unchanged. Code referenced by a dotted path ('models.model.run_fn') is just a
string to TFX, so an edited models/model.py would still hit the cache. Each
component that runs user code therefore gets the fingerprint of the source
files it depends on as a property: edit the model and only the Trainer (and
what depends on it) runs again; edit the preprocessing and Transform does.
"""
import hashlib
import importlib.util
from typing import Iterable


def source_fingerprint(module_names: Iterable[str]) -> str:
  """A short SHA-256 over the source files of `module_names`, in order.

  Args:
    module_names: importable module names, such as 'models.model'.

  Returns:
    16 hex digits that change whenever any of the files' contents change.

  Raises:
    ValueError: a module cannot be found or has no source file.
  """
  digest = hashlib.sha256()
  for name in module_names:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith('.py'):
      raise ValueError(f'cannot find the source of module {name!r}')
    with open(spec.origin, 'rb') as source:
      digest.update(name.encode() + b'\0' + source.read() + b'\0')
  return digest.hexdigest()[:16]
