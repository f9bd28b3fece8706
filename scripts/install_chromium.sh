#!/usr/bin/env bash
# Installs Debian's chromium package, which the run report's browser test
# (tests/test_run_report.py) renders the report in. Called by `make setup`;
# also runs on its own: sudo scripts/install_chromium.sh
# Does nothing when chromium is already on PATH. Installs only where apt-get
# can run without a password (as root, or with passwordless sudo); elsewhere
# it prints one line saying the browser test will be skipped and how to get
# chromium. Never fails the set-up: the test says the same when it runs.
set -uo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
skipped="setup: chromium is not installed, so the report's browser test will be skipped"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$skipped; install Chromium and put it on PATH as 'chromium'"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root="sudo -n"
else
  echo "$skipped; install it with: sudo scripts/install_chromium.sh"
  exit 0
fi
echo "setup: installing chromium with apt-get (for the report's browser test)"
if ! { $as_root apt-get update -qq &&
       $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends chromium; }; then
  echo "$skipped; apt-get could not install it (see above)"
fi
exit 0
