#!/usr/bin/env bash
# Make sure a headless Chromium is there for the dashboard's browser tests (tests/dashboard).
#
# Debian's `chromium` package, installed with apt when /usr/bin/chromium is missing: Playwright
# drives it through `executable_path` (its own browser download is never used). Idempotent and
# fast when the browser is already there. It never fails the build: when the browser cannot be
# installed (no apt, no root, no network) it says why, and the browser tests skip with that
# reason.
set -euo pipefail

CHROMIUM="${STANCH_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

say() { echo "ensure-browser: $*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: install Chromium yourself (or set STANCH_CHROMIUM); browser tests will skip"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    say "not root and no password-less sudo: cannot install chromium; browser tests will skip"
    exit 0
  fi
fi

say "installing Debian's chromium (once; about a minute)"
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -qq; then
  say "apt-get update failed; trying with the package lists already here"
fi
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
  say "apt-get could not install chromium; browser tests will skip"
  exit 0
fi
say "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
