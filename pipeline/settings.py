"""Typed settings that an environment variable of the same name can override.

`pipeline/configs.py` declares every setting once, with its default and its check;
this module only knows how to read an override from the environment, convert it
to the default's type and reject bad values with a message that names the setting.
"""
import os
import re
from typing import Callable, Optional, TypeVar

T = TypeVar('T')

_TRUE = {'1', 'true', 'yes', 'on'}
_FALSE = {'0', 'false', 'no', 'off'}


from pipeline.errors import ConfigError  # the settings' checks raise it


def _convert(name: str, raw: str, kind: type):
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


def setting(name: str,
            default: T,
            check: Optional[Callable[[str, T], None]] = None) -> T:
  """Returns the setting `name`: its environment override if set, else `default`.

  Args:
    name: the setting's name, which is also the environment variable's name.
    default: the value used when the variable is unset; its type is the type
      the override is converted to (bool, int, float or str).
    check: called with (name, value); raises ConfigError for a bad value.

  Returns:
    The value, converted and checked.

  Raises:
    ConfigError: the override cannot be converted, or the value fails `check`.
  """
  raw = os.environ.get(name)
  value = default if raw is None else _convert(name, raw, type(default))
  if check is not None:
    check(name, value)
  return value


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


def one_of(*allowed: str) -> Callable[[str, str], None]:
  """A check that the value is one of `allowed`."""

  def check(name: str, value: str) -> None:
    if value not in allowed:
      raise ConfigError(f'{name}={value!r} is invalid: use one of '
                        f'{", ".join(allowed)}.')

  return check


def matches(pattern: str, rule: str) -> Callable[[str, str], None]:
  """A check that the whole value matches `pattern`; `rule` explains it in words."""
  compiled = re.compile(pattern)

  def check(name: str, value: str) -> None:
    if not compiled.fullmatch(value):
      raise ConfigError(f'{name}={value!r} is invalid: {rule}.')

  return check


def optional(check: Callable[[str, str], None]) -> Callable[[str, str], None]:
  """Applies `check` only to a non-empty value."""

  def check_if_set(name: str, value: str) -> None:
    if value:
      check(name, value)

  return check_if_set
