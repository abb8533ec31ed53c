#!/bin/sh
# bench/train: training throughput (patches per second) of a depth-5 wf-4
# U-Net (batch norm, upconv, padding, 2 classes) on one batch of
# BATCH x 3 x SIZE x SIZE: aapi's NnTrainer (bench-train, K Adam steps in
# one process) against PyTorch (Debian's python3-torch, same net, same
# batch, same optimiser) in the same run with the same thread count.
# Prints both lines and the ratio aapi / PyTorch.
# Usage: bench/train/run.sh [STEPS [BATCH [SIZE]]]   (default 5 8 256)
# Environment: BUILD (default build), THREADS (default 2).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-$top/build}
case $build in /*) ;; *) build=$top/$build ;; esac
steps=${1:-5}
batch=${2:-8}
size=${3:-256}
threads=${THREADS:-2}
if [ ! -f "$build/build.ninja" ]; then
    echo "no build in $build (run make build first or set BUILD)" >&2
    exit 1
fi
ninja -C "$build" tests/nn-train/bench-train >/dev/null
export OMP_NUM_THREADS=$threads
echo "batch ${batch}x3x${size}x${size}, $steps steps after one warm-up," \
     "$threads threads"
aapi=$("$build/tests/nn-train/bench-train" "$steps" "$batch" "$size")
echo "$aapi"
torch=$(/usr/bin/python3 "$here/train_torch.py" "$steps" "$batch" "$size" \
        "$threads")
echo "$torch"
a=$(echo "$aapi" | sed 's/.*patches_per_s \([0-9.]*\).*/\1/')
t=$(echo "$torch" | sed 's/.*patches_per_s \([0-9.]*\).*/\1/')
/usr/bin/python3 -c "print('ratio aapi/torch %.2fx' % ($a / $t))"
