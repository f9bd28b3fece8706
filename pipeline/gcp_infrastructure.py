"""The cloud set-up command, where the proof of concept had it:

    python pipeline/gcp_infrastructure.py --dry-run   # or: make infra-plan
    python pipeline/gcp_infrastructure.py             # or: make infra

A thin entry point: the steps live in deploy/ (deploy/provision.py), a tool
package outside the pipeline. This file is not part of the pipeline image
(.dockerignore) and nothing in pipeline/ imports it.
"""
import os
import sys

if __name__ == '__main__' and not __package__:
  # Run as a script, Python puts pipeline/ first on sys.path, where
  # pipeline/pipeline.py would shadow the package: use the repository root.
  _REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path[0] = _REPO_ROOT

from deploy import provision  # pylint: disable=g-import-not-at-top,wrong-import-position

main = provision.main

if __name__ == '__main__':
  sys.exit(main())
