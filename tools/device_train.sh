#!/usr/bin/env bash
# Train the full-size Fashion-MNIST recipes on this machine's GPU (python -m zoo.tools.device_train) and leave the
# slim best checkpoints, summary.json and train.log in OUT, for zoo-export on the CPU afterwards.
#
#   tools/device_train.sh OUT [device_train options]      e.g. tools/device_train.sh "$OUT" --budget-s 540
#
# From the repository root of a machine without internet (docs/guides/devices.md, "Training the full-size recipes
# on a GPU"): wheels in .whl/ (jsonargparse, gymnasium and what they need) are installed into /tmp/site when present;
# the Fashion-MNIST parts in .carry/fashion-mnist-*/ are joined into /tmp/fashion-mnist unless it holds the files.
# The runs themselves go to /tmp/device-runs; only the files that come back small are copied into OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: tools/device_train.sh OUT [python -m zoo.tools.device_train options]" >&2; exit 2; }
out=$1; shift
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
data=/tmp/fashion-mnist
[ -f "$data/train-images-idx3-ubyte.gz" ] || "$python" -m zoo.tools.carry_data join .carry "$data" --name fashion-mnist
runs=/tmp/device-runs
status=0
"$python" -m zoo.tools.device_train --out "$runs" --data-dir "$data" "$@" || status=$?
mkdir -p "$out"
cp "$runs"/*.ckpt "$runs"/summary.json "$runs"/train.log "$out"/ 2>/dev/null || true
exit $status
