#!/usr/bin/env bash
# Main job: ./run_all.sh [--profile smoke|default|full|paper] [--only NOTEBOOK…]
# Executes the notebooks with papermill and params/<profile>/<notebook>.yaml into figures/<profile>/.
set -euo pipefail
cd "$(dirname "$0")"
source tools/venv.sh
exec python -m peakmixer notebooks "$@"
