#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine (what CI runs).
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ruff check src tests bench
ruff format --check src tests bench
# the documentation site in strict mode: a broken cross-reference or link fails the run.
# Not --quiet: it hides the warnings from --strict too, and a broken link then passes.
site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --site-dir "$site" 2>&1 |
  { grep -v '^INFO ' || true; }
rm -rf "$site"
python -m pytest "$@"
