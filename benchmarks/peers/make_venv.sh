#!/usr/bin/env bash
# Create (or refresh) the peers' virtual environment benchmarks/peers/.venv from PyPI with the
# pinned requirements.txt. Does nothing when the venv exists and was made from the same
# requirements.txt. Usage: bash benchmarks/peers/make_venv.sh [PYTHON]   (default: python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
stamp="$venv/.requirements-stamp"
python="${1:-${PYTHON:-python3}}"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
echo "peers: creating $venv from $req (a few minutes)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$req"
"$venv/bin/python" -c "import wandb, mlflow, hydra, hydra_plugins.hydra_joblib_launcher, sklearn, matplotlib"
echo "$want" > "$stamp"
echo "peers: $venv ready" >&2
