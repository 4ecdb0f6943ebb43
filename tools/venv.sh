# Sourced by run_tests.sh and run_all.sh: create .venv on first use; reinstall what changed since.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
stamp() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$(stamp "$ROOT/requirements.txt")" ]; then
  echo "[peakmixer] installing the pinned requirements into $VENV (first use or requirements changed)…" >&2
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements.txt"
  stamp "$ROOT/requirements.txt" > "$VENV/.requirements"
  rm -f "$VENV/.package"
fi
if [ "$(cat "$VENV/.package" 2>/dev/null)" != "$(stamp "$ROOT/pyproject.toml")" ]; then
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT"
  stamp "$ROOT/pyproject.toml" > "$VENV/.package"
fi
export PATH="$VENV/bin:$PATH"
export MPLBACKEND="${MPLBACKEND:-agg}"
export PYTHONHASHSEED="${PYTHONHASHSEED:-0}"
