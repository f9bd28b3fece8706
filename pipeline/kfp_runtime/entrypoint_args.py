"""Reading one flag of a TFX Kubeflow V2 entrypoint's command line.

The image's start-up hooks read the entrypoint's arguments before TFX parses
them: kfp_compat.py its inputs spec, beam_runner.py its executor input. TFX
passes each flag as `--flag value` or `--flag=value`.
"""
from typing import Optional, Sequence

# TFX's executor entrypoint takes the ExecutorInput (`{{$}}`) with this flag.
INVOCATION_FLAG = '--json_serialized_invocation_args'


def flag_value(argv: Sequence[str], flag: str) -> Optional[str]:
  """The value of `flag` in `argv` (the last one given); None if absent."""
  value = None
  for index, arg in enumerate(argv):
    if arg == flag and index + 1 < len(argv):
      value = argv[index + 1]
    elif arg.startswith(flag + '='):
      value = arg.split('=', 1)[1]
  return value
