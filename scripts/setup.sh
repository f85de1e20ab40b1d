#!/usr/bin/env bash
# Set up everything SceneMaker needs on a fresh Debian/Ubuntu machine:
# system libraries for headless OpenGL (EGL, Mesa) and a virtual environment in .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."

# bpy (Blender as a module) also loads X11 client libraries, even in the background
SYSTEM_PACKAGES=(python3-venv libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libgl1
                 libx11-6 libxext6 libxfixes3 libxi6 libxrender1 libxkbcommon0 libsm6)
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
# constraints.txt pins torch 2.13.0. Which build pip picks is up to its index: set
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for the small CPU build on a machine
# without a local wheel (PyPI's default build of torch bundles CUDA); see README "GPU users".
extra=()
[ -n "${TORCH_INDEX_URL:-}" ] && extra+=(--extra-index-url "$TORCH_INDEX_URL")
.venv/bin/python -m pip install -q -c constraints.txt "${extra[@]}" -e ".[dev,baselines,moge,formats,app,ray]"
# MoGe pins versions of its own that do not matter here: its package alone, its deps above
.venv/bin/python -m pip install -q -c constraints.txt --no-deps "dlr-moge>=2.0"
# the Khronos glTF validator (tests check every exported GLB with it): node + npm package
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
[ -d .venv/node/node_modules/gltf-validator ] || \
  npm install --silent --no-audit --no-fund --prefix .venv/node gltf-validator@2.0.0-dev.3.10
.venv/bin/python -c "import scenemaker" && echo "SceneMaker is set up in .venv/"
# the report page (OUT/report.html, src/scenemaker/report_page.py) inlines model-viewer's UMD
# build (three.js bundled: no peer dependency); its tests open the page in headless Chromium
MODEL_VIEWER=@google/model-viewer@4.4.0
grep -qs '"version": "4.4.0"' .venv/node/node_modules/@google/model-viewer/package.json || \
  npm install --silent --no-audit --no-fund --legacy-peer-deps --save-exact --prefix .venv/node \
    "$MODEL_VIEWER"
if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
echo "report page: model-viewer and chromium are installed"
# Blender (bpy 5.0.1 needs numpy < 2): its own environment in .venv/blender, for
# `scenemaker export --blend` and its tests (the same command a user runs)
.venv/bin/scenemaker blender setup --quiet
