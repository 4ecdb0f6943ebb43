#!/usr/bin/env bash
# Tests: ./run_tests.sh [pytest args…]. Creates .venv/ on first use.
set -euo pipefail
cd "$(dirname "$0")"
source tools/venv.sh
ruff check .
ruff format --check .
lint-imports --no-cache  # the layers contract in pyproject.toml: no module imports from a layer above its own
# Two test processes (PYTEST_WORKERS; 0: one process), one torch thread each (tests/conftest.py); the tests
# that share the smoke run stay in one process (xdist_group "smoke"), so it runs once.
exec python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
