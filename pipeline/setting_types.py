"""Typed settings that an environment variable of the same name can override.

`pipeline/configs.py` declares every setting once, as `NAME = setting(default,
check)`; `load(configs_module, environ)` turns those declarations into one
frozen settings object: each value is the environment's override if it has
one (converted to the default's type), else the default, and is checked.
Nothing is read at import time, so a program loads settings once, from the
environment it chooses, and passes the object on.
"""
import dataclasses
import re
import types
from typing import (Any, Callable, Dict, Generic, Mapping, Optional, Sequence,
                    Tuple, TypeVar)

from pipeline.errors import ConfigError

T = TypeVar('T')
Check = Callable[[str, Any], None]

_TRUE = {'1', 'true', 'yes', 'on'}
_FALSE = {'0', 'false', 'no', 'off'}


@dataclasses.dataclass(frozen=True)
class Derived(Generic[T]):
  """A default computed from the settings declared before it."""
  compute: Callable[[Any], T]  # called with the earlier settings' values


def derived(compute: Callable[[Any], T]) -> Derived[T]:
  """A default computed from earlier settings: `derived(lambda s: ...)`.

  Args:
    compute: takes an object whose attributes are the settings declared
      above this one (already overridden and checked) and returns the
      default. An environment override of this setting wins over it.
  """
  return Derived(compute)


@dataclasses.dataclass(frozen=True)
class Setting:
  """One declaration of pipeline/configs.py (see `setting`)."""
  default: Any
  check: Optional[Check] = None
  parse: Optional[Callable[[Any], Any]] = None

  def value(self, name: str, environ: Mapping[str, str], earlier: Any) -> Any:
    """This setting's value in `environ`, given the `earlier` settings."""
    default = (self.default.compute(earlier)
               if isinstance(self.default, Derived) else self.default)
    raw = environ.get(name)
    value = default if raw is None else _convert(name, raw, type(default))
    if self.check is not None:
      self.check(name, value)
    return value if self.parse is None else self.parse(value)


def setting(default: Any,
            check: Optional[Check] = None,
            parse: Optional[Callable[[Any], Any]] = None) -> Setting:
  """Declares a setting; the variable it is assigned to names it.

  Args:
    default: the value used when the environment variable of the same name
      is unset; its type (bool, int, float or str) is the type an override
      is converted to. A `derived(...)` default is computed from earlier
      settings.
    check: called with (name, value); raises ConfigError for a bad value.
    parse: turns the checked value into the one programs use (for example
      a comma-separated list into a tuple).

  Returns:
    The declaration, which `load` evaluates.
  """
  return Setting(default, check, parse)


def declarations(module: types.ModuleType) -> Dict[str, Setting]:
  """The settings `module` declares, by name, in the order declared."""
  return {name: value for name, value in vars(module).items()
          if isinstance(value, Setting) and name.isupper()}


def defaulted(module: types.ModuleType, environ: Mapping[str, str]
              ) -> Tuple[str, ...]:
  """The settings of `module` with a derived default that `environ` does
  not override: those whose value was inferred, for a program to say so."""
  return tuple(name for name, declared in declarations(module).items()
               if isinstance(declared.default, Derived)
               and name not in environ)


def settings_class(module: types.ModuleType) -> type:
  """A frozen dataclass with one field per setting of `module`."""
  return dataclasses.make_dataclass(
      'Settings', list(declarations(module)), frozen=True,
      namespace={'__doc__': f'The settings of {module.__name__}, loaded from '
                            'an environment (see its load()).',
                 'names': classmethod(
                     lambda cls: tuple(f.name for f in dataclasses.fields(cls)))})


def load(module: types.ModuleType, cls: type, environ: Mapping[str, str],
         checks: Sequence[Callable[[Any], None]] = ()) -> Any:
  """Evaluates the declarations of `module` in `environ`.

  Args:
    module: the module that declares the settings (pipeline.configs).
    cls: the settings class made by `settings_class(module)`.
    environ: the environment to read overrides from (os.environ, or a dict
      in tests and tools).
    checks: called with the whole settings object, for rules that involve
      several settings; each raises ConfigError.

  Returns:
    An instance of `cls`.

  Raises:
    ConfigError: an override cannot be converted, or a value fails a check;
      the message names the setting.
  """
  values = types.SimpleNamespace()
  for name, declared in declarations(module).items():
    setattr(values, name, declared.value(name, environ, values))
  settings = cls(**vars(values))
  for check in checks:
    check(settings)
  return settings


def _convert(name: str, raw: str, kind: type) -> Any:
  text = raw.strip()
  if kind is bool:
    if text.lower() in _TRUE:
      return True
    if text.lower() in _FALSE:
      return False
    raise ConfigError(f'{name}={raw!r} is not a boolean: use true or false.')
  if kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      raise ConfigError(
          f'{name}={raw!r} is not {"an integer" if kind is int else "a number"}.'
      ) from None
  return raw


# --- Checks ------------------------------------------------------------------


def positive(name: str, value) -> None:
  if value <= 0:
    raise ConfigError(f'{name}={value!r} must be greater than 0.')


def non_negative(name: str, value) -> None:
  if value < 0:
    raise ConfigError(f'{name}={value!r} must be 0 or more.')


def fraction(name: str, value) -> None:
  if not 0.0 <= value <= 1.0:
    raise ConfigError(f'{name}={value!r} must lie between 0 and 1.')


def non_empty(name: str, value) -> None:
  if not str(value).strip():
    raise ConfigError(f'{name} must not be empty.')


def one_of(*allowed: str) -> Check:
  """A check that the value is one of `allowed`."""

  def check(name: str, value: str) -> None:
    if value not in allowed:
      raise ConfigError(f'{name}={value!r} is invalid: use one of '
                        f'{", ".join(allowed)}.')

  return check


def matches(pattern: str, rule: str) -> Check:
  """A check that the whole value matches `pattern`; `rule` explains it in words."""
  compiled = re.compile(pattern)

  def check(name: str, value: str) -> None:
    if not compiled.fullmatch(value):
      raise ConfigError(f'{name}={value!r} is invalid: {rule}.')

  return check


def optional(check: Check) -> Check:
  """Applies `check` only to a non-empty value."""

  def check_if_set(name: str, value: str) -> None:
    if value:
      check(name, value)

  return check_if_set


def comma_separated(value: str) -> Tuple[str, ...]:
  """'a, b,,c' -> ('a', 'b', 'c')."""
  return tuple(item.strip() for item in value.split(',') if item.strip())

