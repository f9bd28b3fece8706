#!/usr/bin/env python3
"""The project's `tfx` command: TFX's CLI with a Kubeflow Pipelines 2.x engine.

scripts/setup_venv.sh installs this file as `.venv/bin/tfx` (in place of
TFX's own console script, with the venv's Python in the first line). It runs
deploy/tfx_cli.py of the checkout whose `.venv` holds it, found from the path
this file was started by, never resolved: `.venv` may be a link to a venv
that several checkouts share, and each runs its own code. A checkout without
deploy/tfx_cli.py (an older commit) gets TFX's own CLI.
"""
import os
import sys


def checkout_of(script: str) -> str:
  """The checkout whose `.venv/bin/` holds `script` (links not followed)."""
  return os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(script))))


if __name__ == '__main__':
  checkout = checkout_of(sys.argv[0])
  if os.path.isfile(os.path.join(checkout, 'deploy', 'tfx_cli.py')):
    sys.path.insert(0, checkout)
    from deploy import tfx_cli  # pylint: disable=g-import-not-at-top
    tfx_cli.main()
  from tfx.tools.cli import cli_main  # pylint: disable=g-import-not-at-top
  sys.exit(cli_main.cli_group())
