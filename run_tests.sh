#!/usr/bin/env bash
# Tests: ./run_tests.sh [pytest args…]. Creates .venv/ on first use.
set -euo pipefail
cd "$(dirname "$0")"
source tools/venv.sh
ruff check .
ruff format --check .
exec python -m pytest "$@"
