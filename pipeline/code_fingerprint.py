"""Fingerprints of the user code that components load by dotted path.

TFX caches a component's output while its inputs and exec properties are
unchanged. Code referenced by a dotted path ('models.model.run_fn') is just a
string to TFX, so an edited models/model.py would still hit the cache, and a
stale model would be reused silently. Each component that runs user code
therefore gets a fingerprint of that code as an exec property: edit the model
and only the Trainer (and what depends on it) runs again; edit the
preprocessing and Transform does.

The fingerprint covers the entry module and every project module it imports,
transitively, found by reading the sources (`ast`), never by importing them:
a helper module the user adds and imports (models/layers.py) counts as soon
as it is imported, with no list of modules to keep up to date. Imports are
counted wherever they are written (inside functions, `try` blocks,
`if TYPE_CHECKING:`): a module that might run belongs in a cache key.
Modules outside the project (the standard library, site-packages) are left
out: their versions are the image's or the environment's, not the user's
code. Not followed: imports whose module name is computed at run time
(a string literal given to importlib.import_module is), and data files the
code reads.
"""
import ast
import hashlib
import importlib.util
import os
from typing import Dict, List, Optional, Set

_PACKAGE_INIT = '__init__.py'
# Folders that hold installed packages; a root inside one is not a project.
_INSTALLED = frozenset({'site-packages', 'dist-packages'})


def import_closure_fingerprint(entry_module: str,
                               root: Optional[str] = None) -> str:
  """16 hex digits of SHA-256 over the project modules `entry_module` runs.

  The digest covers the name and the bytes of each module that
  `project_modules_imported_by` returns, in that (sorted) order: it changes
  when one of them changes, or a module is imported or no longer imported,
  and not when a project file that nothing here imports does.

  Args:
    entry_module: a dotted module name, such as 'models.model'.
    root: the project root; by default the folder that holds the entry
      module's top-level package (see `project_root`).

  Raises:
    ValueError: the entry module is not a source file of the project.
  """
  root = project_root(entry_module) if root is None else root
  files = _closure(entry_module, root)
  digest = hashlib.sha256()
  for name in sorted(files):
    with open(files[name], 'rb') as source:
      content = source.read()
    digest.update(b'%s\0%d\0' % (name.encode(), len(content)) + content)
  return digest.hexdigest()[:16]


def project_modules_imported_by(entry_module: str,
                                root: Optional[str] = None) -> List[str]:
  """The sorted names of `entry_module`, the project modules it imports,
  directly or through others, and every package that holds one of them
  (its __init__.py runs on import).

  Args:
    entry_module: a dotted module name, such as 'models.model'.
    root: the project root; by default `project_root(entry_module)`.

  Raises:
    ValueError: the entry module is not a source file of the project.
  """
  root = project_root(entry_module) if root is None else root
  return sorted(_closure(entry_module, root))


def project_root(entry_module: str) -> str:
  """The folder that holds `entry_module`'s top-level package (or module),
  found on sys.path as Python would find it, without importing anything.

  Raises:
    ValueError: it cannot be found, has no source folder, or is an
      installed package (site-packages) rather than project code.
  """
  top = entry_module.split('.')[0]
  # A top-level name has no parent package: finding it runs no user code.
  spec = importlib.util.find_spec(top)
  if spec is None:
    raise ValueError(f'cannot find module {entry_module!r}: no {top!r} on '
                     'sys.path')
  if spec.submodule_search_locations:
    location = list(spec.submodule_search_locations)[0]
  elif spec.origin and spec.origin.endswith('.py'):
    location = spec.origin
  else:
    raise ValueError(f'module {entry_module!r} has no source folder')
  root = os.path.dirname(os.path.abspath(location))
  if _INSTALLED & set(root.split(os.sep)):
    raise ValueError(f'module {entry_module!r} is an installed package '
                     f'({root}), not project code')
  return root


def _closure(entry_module: str, root: str) -> Dict[str, str]:
  """{module name: source file} of the import closure of `entry_module`."""
  root = os.path.abspath(root)
  if _module_file(entry_module, root) is None:
    raise ValueError(f'cannot find the source of module {entry_module!r} in '
                     f'the project {root}')
  files: Dict[str, str] = {}
  pending = [entry_module]
  while pending:
    name = pending.pop()
    if name in files:
      continue
    path = _module_file(name, root)
    if path is None:
      continue  # a namespace folder, or an import that would fail anyway
    files[name] = path
    parts = name.split('.')
    pending.extend('.'.join(parts[:i]) for i in range(1, len(parts)))
    pending.extend(_imported_names(name, path, root))
  return files


def _module_file(name: str, root: str) -> Optional[str]:
  """The source file of module `name` under `root`, as Python's path finder
  picks it (a package's __init__.py before a module file), or None when
  `name` is not a project module with a source file."""
  base = os.path.join(root, *name.split('.'))
  for path in (os.path.join(base, _PACKAGE_INIT), base + '.py'):
    if os.path.isfile(path):
      return path
  return None


def _is_project_package(name: str, root: str) -> bool:
  """Whether `name` is a folder of the project, with or without an
  __init__.py (a namespace package)."""
  return os.path.isdir(os.path.join(root, *name.split('.')))


def _imported_names(name: str, path: str, root: str) -> Set[str]:
  """Every project module name the source of `name` may import: the
  modules named by its import statements and, for `from package import x`,
  the submodule `package.x` where there is one. Names that do not resolve
  to a project file are dropped by the caller."""
  with open(path, 'rb') as source:
    try:
      tree = ast.parse(source.read(), filename=path)
    except (SyntaxError, ValueError):
      # Its bytes are in the digest; running it fails before any import.
      return set()
  is_package = os.path.basename(path) == _PACKAGE_INIT
  package = name if is_package else name.rpartition('.')[0]
  found: Set[str] = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = _absolute(node.module, node.level, package)
      if base is None:
        continue
      found.add(base)
      if _is_project_package(base, root):
        found.update(f'{base}.{alias.name}' for alias in node.names
                     if alias.name != '*')
    elif isinstance(node, ast.Call):
      found.update(_dynamic_import(node))
  return {module for module in found
          if _is_project_name(module.split('.')[0], root)}


def _absolute(module: Optional[str], level: int,
              package: str) -> Optional[str]:
  """The absolute name `from <level dots><module> import ...` means inside
  `package`, or None when it reaches above the top-level package."""
  if not level:
    return module
  parts = package.split('.') if package else []
  if level - 1 >= len(parts):
    return None  # beyond the top-level package: the import fails
  base = parts[:len(parts) - (level - 1)]
  if module:
    base.append(module)
  return '.'.join(base) or None


def _dynamic_import(node: ast.Call) -> List[str]:
  """The module of `importlib.import_module('a.b')` or `__import__('a.b')`
  when it is an absolute name in a string literal."""
  function = node.func
  called = (function.attr if isinstance(function, ast.Attribute) else
            function.id if isinstance(function, ast.Name) else None)
  if called not in ('import_module', '__import__') or not node.args:
    return []
  first = node.args[0]
  if (isinstance(first, ast.Constant) and isinstance(first.value, str) and
      first.value and not first.value.startswith('.')):
    return [first.value]
  return []


def _is_project_name(top: str, root: str) -> bool:
  """Whether top-level name `top` is a package or module directly in the
  project root (never .venv/ or another folder that is not a name)."""
  return top.isidentifier() and (
      os.path.isdir(os.path.join(root, top)) or
      os.path.isfile(os.path.join(root, top + '.py')))
