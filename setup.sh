#!/usr/bin/env bash
# Fresh-machine set-up and entry point. Idempotent: installs only what is missing.
#   bash setup.sh demo [ARGS...]   install, then run the main job (`stemlink demo`)
#   bash setup.sh test [ARGS...]   install, then ruff check, ruff format --check, mypy, pytest [ARGS]
#   bash setup.sh install          install only
# Env: STEMLINK_VENV (default .venv), STEMLINK_GPU=1|0 (default: auto-detect nvidia-smi).
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(fluidsynth fluid-soundfont-gm libportaudio2 dpf-source mma ardour xvfb xauth jackd2)
VENV="${STEMLINK_VENV:-.venv}"
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1 torchaudio==2.11.0)

install_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "[setup] apt: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_python() {
  [ -x "$VENV/bin/python" ] || { echo "[setup] creating $VENV"; python3 -m venv "$VENV"; }
  local py="$VENV/bin/python"
  local gpu="${STEMLINK_GPU:-}"
  if [ -z "$gpu" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; else gpu=0; fi
  fi
  local extra=cpu other=onnxruntime-gpu
  [ "$gpu" = "1" ] && { extra=gpu; other=onnxruntime; }
  local stamp="$VENV/.stemlink-install"
  local want
  want="$(sha256sum < pyproject.toml | cut -c1-16)-$extra"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  # torch first (the machine's local build), so nothing below pulls a different one.
  if ! "$py" -c "import torch, torchaudio, torchvision; assert torch.__version__.startswith('2.14.1')" >/dev/null 2>&1; then
    echo "[setup] pip: ${TORCH_PINS[*]}"
    "$py" -m pip install -q "${TORCH_PINS[@]}"
  fi
  # onnxruntime and onnxruntime-gpu must never share an environment.
  if "$py" -m pip show -q "$other" >/dev/null 2>&1; then
    "$py" -m pip uninstall -y -q "$other"
  fi
  echo "[setup] pip: stemlink[$extra,test,byo] (editable)"
  "$py" -m pip install -q -e ".[$extra,test,byo]"
  echo "$want" > "$stamp"
}

cmd="${1:-install}"
shift || true
install_apt
install_python
export PATH="$PWD/$VENV/bin:$PATH"
case "$cmd" in
  install) echo "[setup] done" ;;
  demo) exec stemlink demo "$@" ;;
  test)
    # The project's checks, in this order; every one runs, and any failure fails the command.
    status=0
    echo "[test] ruff check"; ruff check . || status=1
    echo "[test] ruff format --check"; ruff format --check . || status=1
    echo "[test] mypy (pyproject.toml [tool.mypy]: the stemlink package)"; mypy || status=1
    echo "[test] pytest"; python -m pytest -q "$@" || status=$?
    exit "$status" ;;
  *) echo "usage: bash setup.sh demo|test|install" >&2; exit 2 ;;
esac
