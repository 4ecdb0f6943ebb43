#!/usr/bin/env bash
# Download (and optionally prepare) one real dataset: data_download/download.sh NAME [--prepare] [...]
# A thin wrapper over `python -m peakmixer data download`; see data_download/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/venv.sh
exec python -m peakmixer data download "$@"
