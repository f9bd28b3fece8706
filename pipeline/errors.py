"""Errors that the shipped pipeline and the local tools share.

Each carries a one-line message naming the problem and, where there is one,
the fix; the command-line tools print it as is, without a traceback.
"""


class ConfigError(ValueError):
  """A setting in pipeline/configs.py (or its environment override) is invalid."""


class DataError(ValueError):
  """The input data cannot be used; the message says why, in one line."""
