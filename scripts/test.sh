#!/usr/bin/env bash
# Installs what is needed (scripts/install.sh) and runs the test suite (CPU, tiny models).
#   bash scripts/test.sh [pytest options]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/install.sh"
source "$here/env.sh"
cd "$root"
# pytest's status goes out unchanged: 5 ("no tests collected") fails the command too.
exec "$PY" -m pytest "$@"
