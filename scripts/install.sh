#!/usr/bin/env bash
# Installs mmseg_iccld and everything it needs into the active virtual environment, or into
# .venv in the repository root when none is active. Safe to re-run: when everything is
# present at the right version it returns in seconds.
#
# Why the steps are ordered like this:
#   * torch 2.13.0 first, so nothing later pulls a newer CUDA build from the index.
#   * mmcv 2.1.0 has no wheel for current Python/torch: it is built from source with its ops
#     (mmseg 1.2.2 imports mmcv.ops), without build isolation (an isolated build would
#     download a fresh torch). pip caches the built wheel, so only the first install pays.
#   * Its setup.py imports pkg_resources, which setuptools >= 81 no longer has, while torch
#     requires a recent setuptools. The wheel is therefore built in a throwaway environment
#     holding setuptools<70 that sees this environment's packages (torch) behind its own; this
#     environment keeps the setuptools torch asks for, and pip finds no conflict to report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

source "$root/scripts/env.sh"
py="$PY"
if [ -z "${VIRTUAL_ENV:-}" ] && [ ! -x "$py" ]; then
  echo "[install] creating $root/.venv"
  python3 -m venv .venv
fi

check() {
  "$py" - "$root/scripts/requirements.txt" <<'PY'
import importlib.metadata as md, importlib.util, sys
want = {'torch': None, 'mmcv': '2.1.0', 'mmseg_iccld': None}
for line in open(sys.argv[1]):
    line = line.split('#')[0].strip()
    if line:
        name, _, version = line.partition('==')
        want[name] = version or None
for name, version in want.items():
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(f'missing {name}')
    if version and have != version:
        sys.exit(f'{name} {have} != {version}')
# mmcv must carry its compiled ops (mmseg imports mmcv.ops)
spec = importlib.util.find_spec('mmcv')
import pathlib
if not list(pathlib.Path(spec.origin).parent.glob('_ext*.so')):
    sys.exit('mmcv has no compiled ops')
# torch's own setuptools requirement (an earlier install downgraded setuptools for mmcv)
from packaging.requirements import Requirement
for line in md.requires('torch') or []:
    req = Requirement(line)
    if req.name == 'setuptools' and (req.marker is None or req.marker.evaluate()) \
            and not req.specifier.contains(md.version('setuptools'), prereleases=True):
        sys.exit(f'setuptools {md.version("setuptools")} does not satisfy torch ({line})')
PY
}

# torch's requirement on setuptools, e.g. "setuptools>=77.0.3" ("setuptools" when it has none)
torch_setuptools() {
  "$py" - <<'PY'
import importlib.metadata as md
reqs = [r.split(';')[0].replace(' ', '') for r in md.requires('torch') or []]
print(next((r for r in reqs if r.startswith('setuptools')), 'setuptools'))
PY
}

# Build the mmcv wheel with setuptools<70 in a throwaway environment that sees this
# environment's packages, then install the wheel here (with its dependencies).
build_mmcv() {
  local tmp build site build_site
  tmp="$(mktemp -d)"
  build="$tmp/env"
  "$py" -m venv "$build"
  # setuptools first, while the build environment sees nothing else: no conflict to report
  "$build/bin/python" -m pip install -q "setuptools<70" wheel ninja \
    2> >(grep -v "^WARNING: Location" >&2)
  site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  build_site="$("$build/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$site" > "$build_site/_install_target.pth"  # torch & co., behind the old setuptools
  PATH="$build/bin:$PATH" MMCV_WITH_OPS=1 "$build/bin/python" -m pip wheel -q \
    --no-build-isolation --no-deps mmcv==2.1.0 -w "$tmp/wheels" \
    2> >(grep -v "^WARNING: Location" >&2)
  pip install -q "$tmp"/wheels/mmcv-2.1.0-*.whl
  rm -rf "$tmp"
}

if check 2>/dev/null; then
  echo "[install] everything is installed ($py)"
  exit 0
fi

# pip's own notes about index locations it skips are noise here
pip() { "$py" -m pip "$@" 2> >(grep -v "^WARNING: Location" >&2); }
pip install -q --upgrade pip
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "[install] torch 2.13.0 (CPU wheel)"
  pip install -q torch==2.13.0
fi
pip install -q "$(torch_setuptools)" wheel
if ! "$py" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  echo "[install] mmcv 2.1.0 with ops (built from source the first time: ~10 minutes)"
  build_mmcv
fi
echo "[install] OpenMMLab, diffusers, kornia, cityscapesscripts and the plugin"
pip install -q -r "$root/scripts/requirements.txt"
pip install -q --no-build-isolation --no-deps -e .
check
echo "[install] done ($py)"
