#!/usr/bin/env bash
# Create benchmarks/.devinterp-venv: devinterp 1.3.2 on CPU-only PyTorch 2.13.0, for
# benchmarks/devinterp_compare.py (which runs benchmarks/devinterp_worker.py in it).
#
#   benchmarks/setup_devinterp.sh            # create it if missing (idempotent)
#   benchmarks/setup_devinterp.sh --force    # delete and recreate it
#
# Environment:
#   DEVINTERP_PYTHON   the interpreter for the venv (default: python3.11 on PATH or in pyenv,
#                      else python3 if it is 3.9-3.12; PyTorch 2.13.0 has wheels for those).
#   DEVINTERP_VENV     where to put the venv (default: benchmarks/.devinterp-venv).
#   TORCH_INDEX_URL    an extra index holding torch 2.13.0+cpu (default: pip's own configuration,
#                      then https://download.pytorch.org/whl/cpu). Never the CUDA build: torch is
#                      pinned to 2.13.0+cpu and installed before devinterp, which is then installed
#                      under a constraint that keeps that torch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${DEVINTERP_VENV:-$here/.devinterp-venv}"
torch_version="2.13.0"
devinterp_version="1.3.2"
stamp="$venv/.installed-devinterp-$devinterp_version-torch-$torch_version"

if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$venv"
fi
if [[ -f "$stamp" ]]; then
    echo "devinterp venv ready: $venv"
    exit 0
fi

find_python() {
    if [[ -n "${DEVINTERP_PYTHON:-}" ]]; then echo "$DEVINTERP_PYTHON"; return; fi
    local candidate
    for candidate in python3.11 python3.12 python3.10; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
            command -v "$candidate"; return
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in $(pyenv root)/versions/3.11*/bin/python3 $(pyenv root)/versions/3.12*/bin/python3; do
            if [[ -x "$candidate" ]]; then echo "$candidate"; return; fi
        done
    fi
    if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 12) else 1)'; then
        command -v python3; return
    fi
    echo "no Python 3.10-3.12 found for the devinterp venv; set DEVINTERP_PYTHON=/path/to/python3.11" >&2
    return 1
}

start=$(date +%s)
python="$(find_python)"
echo "Creating $venv with $python ($("$python" --version 2>&1))"
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

# torch first, pinned to the CPU build "2.13.0+cpu": PyPI's Linux wheel of torch is the CUDA
# build (gigabytes of nvidia-* packages) and has no "+cpu" version, so asking for "+cpu" can never
# pull it. pip's own configuration (e.g. a local wheel in find-links) is tried first, then
# PyTorch's CPU index.
torch_spec="torch==$torch_version+cpu"
if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
    "${pip[@]}" install --quiet "$torch_spec" --extra-index-url "$TORCH_INDEX_URL"
elif ! "${pip[@]}" install --quiet "$torch_spec" 2>/dev/null; then
    echo "no $torch_spec in pip's configured indexes; trying https://download.pytorch.org/whl/cpu"
    "${pip[@]}" install --quiet "$torch_spec" --extra-index-url https://download.pytorch.org/whl/cpu
fi
constraints="$venv/constraints.txt"
echo "$torch_spec" > "$constraints"
# devinterp, never allowed to replace torch.
"${pip[@]}" install --quiet -c "$constraints" "devinterp==$devinterp_version"
"$venv/bin/python" - <<'EOF'
import importlib.metadata as metadata
import torch
from devinterp.slt.sampler import estimate_learning_coeff_with_summary  # noqa: F401  (the API the worker uses)
print(f"devinterp {metadata.version('devinterp')}, torch {torch.__version__} (CUDA: {torch.version.cuda})")
EOF
touch "$stamp"
echo "devinterp venv ready: $venv ($(( $(date +%s) - start )) s)"
