#!/usr/bin/env bash
# The one install recipe: the Makefile (`make setup`), CI and the Docker images all run this.
#   docker/install.sh VENV [runtime|dev|gpu|notebook]
# Creates VENV (if missing) with Python 3.11 and installs the pinned requirements and the
# facelive package. "dev" adds the test tools. "gpu" swaps tensorflow_cpu for the GPU build of
# the same release (docker/Dockerfile.gpu). "notebook" adds notebooks/requirements.txt
# (Jupyter, matplotlib, scikit-learn) to the runtime set.
set -euo pipefail
venv=${1:-.venv}
profile=${2:-dev}
case "$profile" in
  runtime|dev|gpu|notebook) ;;
  *) echo "install.sh: unknown profile '$profile' (runtime, dev, gpu or notebook)" >&2; exit 2 ;;
esac
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
venv_args=()
if [ "$profile" = gpu ]; then
  # On a TensorFlow GPU base image the system site already holds tensorflow with its CUDA
  # libraries, matched by the TensorFlow team: seeing it saves a second multi-GB copy. Where
  # the system has none (or another version), pip installs tensorflow[and-cuda] into VENV.
  venv_args=(--system-site-packages)
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv ${venv_args[@]+"${venv_args[@]}"} "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
if [ "$profile" = dev ]; then
  "$venv/bin/python" -m pip install --quiet -r "$root/requirements_dev.txt"
elif [ "$profile" = gpu ]; then
  # The same pins, with tensorflow[and-cuda] at the tensorflow_cpu version: one version to bump.
  gpu_requirements=$(mktemp)
  trap 'rm -f "$gpu_requirements"' EXIT
  sed -E 's/^tensorflow[-_]cpu==/tensorflow[and-cuda]==/' "$root/requirements.txt" \
    >"$gpu_requirements"
  grep -q '^tensorflow\[and-cuda\]==' "$gpu_requirements" \
    || { echo "install.sh: no tensorflow_cpu pin in requirements.txt" >&2; exit 1; }
  "$venv/bin/python" -m pip install --quiet -r "$gpu_requirements"
elif [ "$profile" = notebook ]; then
  "$venv/bin/python" -m pip install --quiet -r "$root/notebooks/requirements.txt"
else
  "$venv/bin/python" -m pip install --quiet -r "$root/requirements.txt"
fi
# --no-deps: everything it needs is pinned above; this keeps pip from re-resolving.
# pyproject.toml's build backend needs setuptools >= 77 (its `license = "MIT"`). A venv whose
# own setuptools is that new builds without isolation (no download); an older one (ensurepip's
# 65.5 in Python 3.11) would fail with a long "project.license" error, so pip gets the backend
# into an isolated build environment instead: the path that works, taken first.
if "$venv/bin/python" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$root"
else
  echo "install.sh: the venv's setuptools is older than 77: pip builds facelive in an isolated environment"
  "$venv/bin/python" -m pip install --quiet --no-deps -e "$root"
fi
echo "install.sh: $venv ready ($profile)"
