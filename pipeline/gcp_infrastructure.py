"""The cloud set-up command, at the path the docs and users' scripts name:

    python pipeline/gcp_infrastructure.py --dry-run   # or: make infra-plan
    python pipeline/gcp_infrastructure.py             # or: make infra

A launcher, not a module of the pipeline: it runs the deploy tool's command
(deploy/provision.py) as a program, with the same arguments, so pipeline/
imports nothing of deploy/. It is not part of the pipeline image
(.dockerignore) and nothing imports it.
"""
import os
import runpy
import sys

if __name__ == '__main__':
  if not __package__:
    # Run as a script, Python puts pipeline/ first on sys.path, where
    # pipeline/pipeline.py would shadow the package: use the repository root.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  runpy.run_module('deploy.provision', run_name='__main__', alter_sys=True)
