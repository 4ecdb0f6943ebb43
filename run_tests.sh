#!/usr/bin/env bash
# Tests: ./run_tests.sh [pytest args…]. Creates .venv/ on first use.
set -euo pipefail
cd "$(dirname "$0")"
source tools/venv.sh
ruff check .
ruff format --check .
lint-imports --no-cache  # the layers contract in pyproject.toml: no module imports from a layer above its own
# Two test processes (PYTEST_WORKERS; 0: one process), one torch thread each; the smoke run of the notebooks
# is made once and shared (tests/conftest.py).
exec python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
