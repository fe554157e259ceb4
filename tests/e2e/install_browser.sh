#!/bin/sh
# Installs the Debian Chromium used by the graph-editor tests (tests/e2e/test_workflows_browser.py).
# Idempotent: does nothing when a chromium binary is already on PATH. Needs root (CI image) for apt-get.
set -eu
for bin in chromium chromium-browser google-chrome; do
    if command -v "$bin" >/dev/null 2>&1; then
        echo "install_browser: $bin already present ($(command -v "$bin"))"
        exit 0
    fi
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
# The package lists and downloaded .debs are not needed afterwards; the test environment is large enough.
apt-get clean
rm -rf /var/lib/apt/lists/*
