#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the locked dependencies.
# Called by `make setup` (and so by `make run` and `make test`) only when
# python_requirements.txt or requirements.lock changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
python=$(scripts/find_python.sh)

if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
  echo "setup: $venv is not a Python 3.10 environment; recreating it"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $python"
  "$python" -m venv "$venv"
fi

rm -f "$venv/.installed"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check pip==24.3.1
echo "setup: installing python_requirements.txt pinned by requirements.lock (first time: about 5 minutes)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r python_requirements.txt -c requirements.lock
"$venv/bin/python" -m pip check
# `tfx` is the project's entry point (TFX's CLI with a Kubeflow Pipelines 2.x
# engine), in place of TFX's console script that pip installed.
{ echo "#!$("$venv/bin/python" -c 'import sys; print(sys.executable)')"
  tail -n +2 scripts/tfx_entry_point.py; } > "$venv/bin/tfx"
chmod +x "$venv/bin/tfx"
date -u +%FT%TZ > "$venv/.installed"
echo "setup: done"
