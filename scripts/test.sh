#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine (what CI runs).
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ruff check src tests bench
python -m pytest "$@"
