#!/bin/bash
# bench/tiles: Deep Zoom tiles per second with 8 concurrent clients (wrk,
# tiles.lua walking the tiles of the five finest levels) on one slide,
# side by side:
#   - aapi serve (its tile cache as configured, AAPI_TILE_CACHE_MB);
#   - Flask + openslide-python's DeepZoomGenerator (flask_deepzoom.py), the
#     way the Python tools serve tiles;
#   - iipsrv (Debian iipimage-server) under Apache mod_fcgid with 8
#     processes, reading the same .svs directly (its Deep Zoom tiles are
#     256 px without overlap, the file's own tiling).
# Prints requests per second of each and the ratios to the Flask server,
# for each tile order of ORDERS (default "shuffled revisit"): shuffled
# (thousands of distinct tiles in random order: every tile is read and
# encoded, the worst case for every cache), rows (row by row, as a viewer
# pans) and revisit (300 tiles asked again and again, as viewers looking
# at the same slide do).
#
#   bench/tiles/run.sh [SLIDE]     (DURATION=15 seconds per run)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
aapi=${AAPI_BINARY:-$top/build/aapi}
shared=${AAPI_SHARED_DIR:-$top/../shared}
slide=$(readlink -f "${1:-$shared/data/slides/kidney_val.svs}")
duration=${DURATION:-15}
python=/usr/bin/python3

[ -x "$aapi" ] || { echo "no aapi binary at $aapi (build it first)"; exit 1; }
[ -f "$slide" ] || { echo "no slide at $slide"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed"; exit 1; }

work=$(mktemp -d /tmp/aapi-bench-tiles-XXXXXX)
chmod 755 "$work"
pids=()
apache_conf=""

cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$apache_conf" ]; then
    apache2 -f "$apache_conf" -k stop 2>/dev/null || true
    sleep 1
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until a URL answers 200 (at most 60 s).
wait_for() {
  for _ in $(seq 600); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ]; then
      return 0
    fi
    sleep 0.1
  done
  echo "no answer from $1"
  return 1
}

# run_wrk NAME BASE PREFIX SUFFIX TILE_SIZE: one timed run; prints and
# records requests per second.
declare -A rate errors
run_wrk() {
  local name=$1 base=$2 prefix=$3 suffix=$4 tile=$5 out order
  for order in $orders; do
    run_one "$name|$order" "$base" "$prefix" "$suffix" "$tile" "$order"
  done
}

run_one() {
  local name=$1 base=$2 prefix=$3 suffix=$4 tile=$5 order=$6 out
  out=$(TILE_ORDER=$order TILE_PREFIX=$prefix TILE_SUFFIX=$suffix TILE_SIZE=$tile \
    TILE_WIDTH=$width TILE_HEIGHT=$height \
    wrk -t 2 -c 8 -d "${duration}s" --timeout 30s -s "$here/tiles.lua" \
    "$base")
  echo "--- $name"
  echo "$out" | grep -E "Latency|Requests/sec|requests in|Non-2xx|Socket"
  rate[$name]=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
  errors[$name]=$(echo "$out" | awk '/Non-2xx/ { print $5 }')
  errors[$name]=${errors[$name]:-0}
}

# aapi: a data dir of its own with the slide registered.
start_aapi() {
  local cache_mb=$1 data="$work/aapi-$1"
  mkdir -p "$data/slides"
  ln -s "$slide" "$data/slides/"
  AAPI_DATA_DIR=$data "$aapi" init-data --slide-dir "$data/slides" \
    >/dev/null
  aapi_port=$(free_port)
  AAPI_DATA_DIR=$data AAPI_TILE_CACHE_MB=$cache_mb AAPI_PORT=$aapi_port \
    "$aapi" serve >"$data/serve.log" 2>&1 &
  pids+=($!)
  aapi_pid=$!
  wait_for "http://127.0.0.1:$aapi_port/api/v1/health"
}

stop_last() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

id=$(md5sum "$slide" | cut -c1-32)
orders=${ORDERS:-shuffled revisit}
echo "slide $slide ($id), 8 connections, ${duration} s per run," \
  "tile orders: $orders"

start_aapi "${AAPI_TILE_CACHE_MB:-256}"
dzi=$(curl -s "http://127.0.0.1:$aapi_port/api/v1/slides/$id.dzi")
width=$(echo "$dzi" | sed -n 's/.*Width="\([0-9]*\)".*/\1/p')
height=$(echo "$dzi" | sed -n 's/.*Height="\([0-9]*\)".*/\1/p')
echo "Deep Zoom size ${width}x${height}"
run_wrk "aapi" "http://127.0.0.1:$aapi_port" \
  "/api/v1/slides/${id}_files/" ".jpeg" 254
stop_last "$aapi_pid"

flask_port=$(free_port)
"$python" "$here/flask_deepzoom.py" "$slide" "$flask_port" \
  >"$work/flask.log" 2>&1 &
pids+=($!)
flask_pid=$!
wait_for "http://127.0.0.1:$flask_port/slide.dzi"
run_wrk "flask + DeepZoomGenerator" "http://127.0.0.1:$flask_port" \
  "/slide_files/" ".jpeg" 254
stop_last "$flask_pid"

# iipsrv speaks FastCGI only: Apache with mod_fcgid in front of it.
iipsrv=/usr/lib/iipimage-server/iipsrv.fcgi
fcgid=/usr/lib/apache2/modules/mod_fcgid.so
if [ -x "$iipsrv" ] && [ -f "$fcgid" ] && command -v apache2 >/dev/null
then
  iip_port=$(free_port)
  mkdir -p "$work/iip/fcgid"
  chown nobody "$work/iip/fcgid" 2>/dev/null || true
  apache_conf="$work/iip/httpd.conf"
  cat >"$apache_conf" <<EOF
ServerRoot $work/iip
Listen 127.0.0.1:$iip_port
PidFile $work/iip/httpd.pid
ErrorLog $work/iip/error.log
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule fcgid_module $fcgid
User nobody
Group nogroup
ServerName localhost
ScriptAlias /fcgi-bin/ /usr/lib/iipimage-server/
FcgidIPCDir $work/iip/fcgid
FcgidProcessTableFile $work/iip/fcgid_shm
FcgidMaxProcessesPerClass 8
FcgidMinProcessesPerClass 8
FcgidInitialEnv VERBOSITY 0
FcgidInitialEnv JPEG_QUALITY 75
<Location /fcgi-bin/>
  SetHandler fcgid-script
  Options +ExecCGI
  Require all granted
</Location>
EOF
  apache2 -f "$apache_conf" -k start
  iip_base="http://127.0.0.1:$iip_port"
  wait_for "$iip_base/fcgi-bin/iipsrv.fcgi?DeepZoom=$slide.dzi"
  run_wrk "iipsrv (Apache mod_fcgid, 8 processes)" "$iip_base" \
    "/fcgi-bin/iipsrv.fcgi?DeepZoom=${slide}_files/" ".jpg" 256
else
  echo "--- iipsrv: not installed (iipimage-server, apache2, mod_fcgid)"
fi

for order in $orders; do
  echo
  echo "=== tiles per second, 8 connections, order $order (ratio to Flask)"
  base=${rate["flask + DeepZoomGenerator|$order"]}
  for server in "aapi" "flask + DeepZoomGenerator" \
                "iipsrv (Apache mod_fcgid, 8 processes)"; do
    name="$server|$order"
    [ -n "${rate[$name]:-}" ] || continue
    ratio=$(awk -v a="${rate[$name]}" -v b="$base" \
      'BEGIN { printf "%.1f", a / b }')
    printf "%-40s %10s /s  %6sx  non-2xx %s\n" "$server" \
      "${rate[$name]}" "$ratio" "${errors[$name]}"
  done
done
