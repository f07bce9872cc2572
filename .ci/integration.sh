#!/usr/bin/env bash
# Integration step: the losses and checkpoints against the real BasicSR and spandrel, in a separate
# environment (they need torchvision, which does not import beside the CPU torch of the main suite).
#
#   bash .ci/integration.sh            create / reuse the environment, run tests/integrations/real_frameworks/run_integration.py
#   bash .ci/integration.sh --no-integration   (or CSR_NO_INTEGRATION=1): skip, saying so
# Where the pinned packages cannot be installed it skips with a line saying so (CSR_REQUIRE_INTEGRATION=1:
# fails instead).
#
# Pinned: torch 2.14.1 + torchvision 0.29.1 (the pair that installs and imports here; pip takes both from
# this machine's disk for Python 3.11), basicsr 1.4.2 (its latest release), spandrel 0.4.2. basicsr 1.4.2
# imports torchvision.transforms.functional_tensor, removed in torchvision 0.17: a one-line module of that
# name re-exporting rgb_to_grayscale from torchvision.transforms.functional is written into this
# environment's torchvision, and nowhere else. The environment lives in $CSR_INTEGRATION_VENV (default
# ~/.cache/contrastive-sr-losses/venv-integration) and is reused while it holds the pinned versions.
# basicsr 1.4.2 is an sdist whose setup.py asks for torch at build time (setup_requires): it is built
# without build isolation against the torch already installed (isolation would copy torch again).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--no-integration" || -n "${CSR_NO_INTEGRATION:-}" ]]; then
    echo "integration step SKIPPED (--no-integration / CSR_NO_INTEGRATION): BasicSR and spandrel were not tested"
    exit 0
fi

PINS=(torch==2.14.1 torchvision==0.29.1 basicsr==1.4.2 spandrel==0.4.2 "pywavelets>=1.4")
VENV="${CSR_INTEGRATION_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/contrastive-sr-losses/venv-integration}"
PY="$VENV/bin/python"
start=$(date +%s)

installed() {
    "$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as m, sys
want = {"torch": "2.14.1", "torchvision": "0.29.1", "basicsr": "1.4.2", "spandrel": "0.4.2"}
sys.exit(any(not m.version(k).startswith(v) for k, v in want.items()) or not m.version("pywavelets"))
EOF
}

if ! installed; then
    echo "integration: creating $VENV with ${PINS[*]}"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! { python3 -m venv "$VENV" \
            && "$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1 cython "setuptools>=70" wheel \
            && "$PY" -m pip install -q --no-build-isolation "${PINS[@]}"; } > "$VENV.install.log" 2>&1; then
        tail -20 "$VENV.install.log"
        echo "integration step SKIPPED: the pinned packages (${PINS[*]}) could not be installed (log: $VENV.install.log); BasicSR and spandrel were not tested"
        [[ -n "${CSR_REQUIRE_INTEGRATION:-}" ]] && exit 1
        exit 0
    fi
fi
SHIM="$("$PY" -c 'import importlib.util as u; print(u.find_spec("torchvision").submodule_search_locations[0])')/transforms/functional_tensor.py"
if [[ ! -f "$SHIM" ]]; then
    cat > "$SHIM" <<'EOF'
# Written by contrastive-sr-losses' .ci/integration.sh: torchvision 0.17 removed this module, which
# basicsr 1.4.2 imports for rgb_to_grayscale; the function lives on in the public functional API.
from torchvision.transforms.functional import rgb_to_grayscale  # noqa: F401
EOF
fi
echo "integration: environment ready after $(( $(date +%s) - start )) s"

# the driver prints the step's time (from CSR_INTEGRATION_START) and ends with "N passed, N failed"; the
# environment is shared between checkouts and does not install this one: PYTHONPATH puts this checkout's
# contrastive_sr_losses first
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" CSR_INTEGRATION_START=$start OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" \
    "$PY" tests/integrations/real_frameworks/run_integration.py
