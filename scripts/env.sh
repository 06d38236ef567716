# Sourced by the scripts: picks the Python of the active virtual environment, or the
# repository's .venv (scripts/install.sh creates it when no environment is active).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${VIRTUAL_ENV:-}" ]; then
  PY="$VIRTUAL_ENV/bin/python"
else
  PY="$root/.venv/bin/python"
fi
export PY
