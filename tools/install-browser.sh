#!/bin/sh
# Headless Chromium + chromedriver for the Prefect UI test (the `chromium` fixture of
# tests/e2e/ops/conftest.py, used by tests/e2e/ops/test_observability.py), from Debian's
# packages. `make test` runs this; it does nothing when both are present, and only warns when
# it cannot install (not root, or no apt-get): the UI test then says why it skipped.
set -e
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install chromium and chromedriver to run the UI test" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "install-browser: not root; run: sudo apt-get install chromium chromium-driver" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q chromium chromium-driver >/dev/null
}
