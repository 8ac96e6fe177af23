#!/usr/bin/env bash
# Build the CARLA environment (carla-recourse 0.0.5 on Python 3.7) from scratch and install this repo
# into it without touching CARLA's pins.
#
#   bash .ci/carla_env.sh [DIR]        # default DIR: ${TMPDIR:-/tmp}/lapace-carla-venv
#   DIR/bin/python -m pytest tests/carla
#
# carla-recourse 0.0.5 pins torch 1.7.0, numpy 1.19.4, pandas 1.1.4, scikit-learn 0.23.2 and
# tensorflow 1.14, which exist only for Python 3.7; `import carla` also needs protobuf<=3.20.
# About 2.5 minutes and 3.3 GB (torch 1.7.0's wheel carries CUDA libraries). Set PYTHON37 to a
# python3.7 executable to skip the search below.
set -euo pipefail

DIR="${1:-${TMPDIR:-/tmp}/lapace-carla-venv}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

find_python37() {
    local cand root
    if [ -n "${PYTHON37:-}" ]; then echo "$PYTHON37"; return 0; fi
    if command -v pyenv >/dev/null 2>&1; then
        root="$(pyenv root)"
    else
        root="${PYENV_ROOT:-$HOME/.pyenv}"
    fi
    for cand in "$root"/versions/3.7*/bin/python3.7 /root/.pyenv/versions/3.7*/bin/python3.7; do
        if [ -x "$cand" ]; then echo "$cand"; return 0; fi
    done
    if command -v python3.7 >/dev/null 2>&1; then command -v python3.7; return 0; fi
    return 1
}

if ! PY37="$(find_python37)"; then
    echo "carla_env.sh: ERROR: no Python 3.7 interpreter found." >&2
    echo "  carla-recourse 0.0.5 installs only on Python 3.7 (its pins torch 1.7.0 / tensorflow 1.14 have no" >&2
    echo "  wheels for newer Pythons). Install one (e.g. 'pyenv install 3.7.16') or set PYTHON37=/path/to/python3.7." >&2
    exit 1
fi
if ! "$PY37" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 7) else 1)'; then
    echo "carla_env.sh: ERROR: $PY37 is not Python 3.7 ($("$PY37" --version 2>&1))." >&2
    exit 1
fi
echo "carla_env.sh: using $PY37 ($("$PY37" --version 2>&1)); building $DIR"

if [ -e "$DIR" ] && [ ! -f "$DIR/pyvenv.cfg" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    echo "carla_env.sh: ERROR: $DIR exists and is not a virtual environment; refusing to clear it." >&2
    exit 1
fi
start=$(date +%s)
"$PY37" -m venv --clear "$DIR"
PY="$DIR/bin/python"
"$PY" -m pip install --quiet --upgrade "pip<24.1"
"$PY" -m pip install --quiet \
    "carla-recourse==0.0.5" "protobuf<=3.20" \
    "pytest>=7,<8" "hypothesis>=6,<7" "nbclient>=0.7,<0.8" "nbformat>=5.7,<5.9" "ipykernel>=6.16,<6.17" \
    "tqdm>=4.60" "matplotlib>=3.5,<3.6"
# The repo's own dependencies (numpy, pandas, scikit-learn, torch) are already provided by CARLA's
# pins; --no-deps keeps them exactly as CARLA needs them.
"$PY" -m pip install --quiet --no-deps -e "$REPO"

"$PY" - <<'PYEOF'
import sys
import warnings

warnings.filterwarnings("ignore")
import carla
import numpy
import pandas
import sklearn
import torch
from pkg_resources import get_distribution

import lapace_plugin

print("python", sys.version.split()[0])
print("carla-recourse", get_distribution("carla-recourse").version)
print("torch", torch.__version__)
print("numpy", numpy.__version__)
print("pandas", pandas.__version__)
print("scikit-learn", sklearn.__version__)
print("lapace-plugin", getattr(lapace_plugin, "__version__", "?"), "from", lapace_plugin.__file__)
expected = {"torch": "1.7.0", "numpy": "1.19.4", "pandas": "1.1.4", "scikit-learn": "0.23.2"}
found = {"torch": torch.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__,
         "scikit-learn": sklearn.__version__}
bad = {k: v for k, v in found.items() if v != expected[k]}
if bad:
    sys.exit("carla_env.sh: ERROR: CARLA's pins were changed: %s (expected %s)" % (bad, expected))
PYEOF
echo "carla_env.sh: CARLA environment ready in $DIR ($(( $(date +%s) - start )) s, $(du -sh "$DIR" | cut -f1))"
