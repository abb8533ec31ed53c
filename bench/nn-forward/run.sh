#!/bin/sh
# bench/nn-forward: one eval-mode forward of a depth-5 wf-4 U-Net (batch
# norm, upconv, padding) on 1x3x256x256 and larger tiles: aapi (oneDNN,
# `aapi nn-eval --repeat`) against PyTorch (Debian's python3-torch) in the
# same run, same weights, same thread count.  Prints ms, GFLOP/s and the
# ratio.  Usage: bench/nn-forward/run.sh [SIZE ...]  (default 256 512 1024)
# Environment: AAPI_BINARY (default build/aapi), OMP_NUM_THREADS (default
# all cores), REPEAT (default 5).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
binary=${AAPI_BINARY:-$top/build/aapi}
if [ ! -x "$binary" ]; then
    echo "no aapi binary at $binary (build first or set AAPI_BINARY)" >&2
    exit 1
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
exec /usr/bin/python3 "$here/bench.py" "$binary" "$@"
