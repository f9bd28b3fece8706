#!/usr/bin/env bash
# Prints the path of a working Python 3.10 interpreter, or explains what is
# missing and exits 1. Looked for, in order: $PYTHON, python3.10 on PATH,
# pyenv's 3.10.x installs, then common install locations.
set -u

works() {  # a candidate counts only if it really runs as 3.10 with venv support
  "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1
}

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for p in $(ls -d "$root"/versions/3.10*/bin/python 2>/dev/null | sort -rV); do
    candidates+=("$p")
  done
fi
candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python)

for c in "${candidates[@]}"; do
  if [ -x "$c" ] && works "$c"; then
    echo "$c"
    exit 0
  fi
done

cat >&2 <<MSG
error: no working Python 3.10 found.
  TFX 1.16 needs Python 3.10. Tried: \$PYTHON, python3.10 on PATH, pyenv's
  3.10.x versions, /usr/bin/python3.10 and /usr/local/bin/python3.10.
  Install one (for example 'pyenv install 3.10.13' or your system's
  python3.10 and python3.10-venv packages), or point PYTHON at it:
    make setup PYTHON=/path/to/python3.10
MSG
exit 1
