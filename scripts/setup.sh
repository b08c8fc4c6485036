#!/usr/bin/env bash
# Install Vocalis with every extra (CPU torch from the local wheel, no torchaudio).
# Chromium + chromedriver (Debian) are installed when apt is available and we are root,
# for the end-to-end browser test of the web page; without them that test is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".[dev]"
# The full GE2E encoder weights (layers 1-2 ship with Vocalis; layer 3 and the speaker
# embedding, and the tests that compare against the original file, need this wheel).
# Vocalis reads resemblyzer/pretrained.pt and never imports resemblyzer (no webrtcvad build).
python -m pip install -q --disable-pip-version-check --no-deps "resemblyzer==0.1.4" \
    || echo "setup: resemblyzer not installed; the tests that need its weights will be skipped"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromedriver >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
        || echo "setup: chromium not installed; the browser test will be skipped"
fi
