#!/usr/bin/env bash
# Set up everything SceneMaker needs on a fresh Debian/Ubuntu machine:
# system libraries for headless OpenGL (EGL, Mesa) and a virtual environment in .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libgl1)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# TORCH_SPEC lets GPU users choose a CUDA build (see README); CPU by default.
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]" ${EXTRA_PIP_ARGS:-}
.venv/bin/python -c "import scenemaker" && echo "SceneMaker is set up in .venv/"
