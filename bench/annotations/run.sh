#!/bin/sh
# bench/annotations: latency of the annotation POST merge and of GET/POST
# over HTTP with the real 3-4 MB ASAP files (../shared/data/asap), aapi
# against the old way in Python (lxml parse of both files, shapely
# intersects with the box, lxml write), side by side in the same run.
# Prints p50/p99 in ms and the ratios.
# Usage: bench/annotations/run.sh [RUNS]   (default 30)
# Environment: BUILD (default build), AAPI_SHARED_DIR (default ../shared),
# SKIP_HTTP=1 for the in-process part only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-$top/build}
case $build in /*) ;; *) build=$top/$build ;; esac
if [ ! -f "$build/build.ninja" ]; then
    echo "no build in $build (run make build first or set BUILD)" >&2
    exit 1
fi
ninja -C "$build" aapi tests/annot/bench-merge >/dev/null
exec /usr/bin/python3 "$here/bench.py" "$build" "$@"
