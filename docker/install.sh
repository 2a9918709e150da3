#!/usr/bin/env bash
# The one install recipe: the Makefile (`make setup`), CI and the Docker images all run this.
#   docker/install.sh VENV [runtime|dev]
# Creates VENV (if missing) with Python 3.11 and installs the pinned requirements and the
# facelive package. "dev" adds the test tools.
set -euo pipefail
venv=${1:-.venv}
profile=${2:-dev}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate
      break
    fi
  done
fi
[ -n "$python" ] || { echo "install.sh: Python 3.11 is required (set PYTHON=...)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
if [ "$profile" = dev ]; then
  "$venv/bin/python" -m pip install --quiet -r "$root/requirements_dev.txt"
else
  "$venv/bin/python" -m pip install --quiet -r "$root/requirements.txt"
fi
# --no-deps: everything it needs is pinned above; this keeps pip from re-resolving.
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$root" \
  || "$venv/bin/python" -m pip install --quiet --no-deps -e "$root"
echo "install.sh: $venv ready ($profile)"
