#!/usr/bin/env bash
# Install what tests/test_browser.py needs, idempotently:
#   * Debian's Chromium (apt package `chromium`, binary /usr/bin/chromium), as root only;
#   * the `playwright` Python package in the project's venv (it drives that Chromium; no
#     `playwright install`: its own browser downloads are not used).
# Usage: bash scripts/install-browser.sh        (from anywhere; run `make venv` first)
# Env:   PYTHON=path/to/venv/python   PLAYWRIGHT_VERSION=x.y.z   SHALLOWNET_CHROMIUM=/path
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION:-1.65.2}"   # tested with Debian 12's chromium 156
CHROMIUM="${SHALLOWNET_CHROMIUM:-/usr/bin/chromium}"
PY="${PYTHON:-.venv/bin/python}"

say()  { echo "install-browser: $*"; }
fail() { echo "install-browser: ERROR: $*" >&2; exit 1; }

[ -x "$PY" ] || fail "no Python at $PY: create the venv first (make venv), or set PYTHON=..."

# --- Chromium --------------------------------------------------------------------------------
if [ -x "$CHROMIUM" ]; then
    say "chromium already present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
    [ "$(id -u)" -eq 0 ] || fail "no Chromium at $CHROMIUM and not root: run as root, or" \
        "'sudo apt-get update && sudo apt-get install -y chromium'"
    command -v apt-get >/dev/null 2>&1 || fail "no Chromium at $CHROMIUM and no apt-get:" \
        "install Chromium yourself and set SHALLOWNET_CHROMIUM=/path/to/chromium"
    say "installing chromium with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed"
    apt-get install -y -qq chromium >/dev/null || fail "apt-get install chromium failed"
    [ -x "$CHROMIUM" ] || fail "apt-get installed chromium but $CHROMIUM is missing;" \
        "set SHALLOWNET_CHROMIUM=/path/to/chromium"
    say "installed chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
fi

# --- playwright (Python) ---------------------------------------------------------------------
if "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
    say "playwright already importable in $PY:" \
        "$("$PY" -c 'import importlib.metadata as m; print(m.version("playwright"))')"
else
    say "installing playwright==$PLAYWRIGHT_VERSION into $PY ..."
    "$PY" -m pip install -q "playwright==$PLAYWRIGHT_VERSION" \
        || fail "pip install playwright==$PLAYWRIGHT_VERSION failed"
    "$PY" -c "import playwright.sync_api" || fail "playwright installed but does not import"
    say "installed playwright==$PLAYWRIGHT_VERSION"
fi

say "ready: tests/test_browser.py will use $CHROMIUM"
