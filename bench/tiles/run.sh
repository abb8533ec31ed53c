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
# For each tile order of ORDERS (default "shuffled rows revisit"), every
# server starts afresh (empty caches):
#   shuffled  thousands of distinct tiles in random order: every tile is
#             read and encoded, the worst case for every cache;
#   rows      row by row, as a viewer pans;
#   revisit   300 tiles asked again and again, as viewers looking at the
#             same slide do.
# Prints requests per second and the ratios to the Flask server.
#
#   bench/tiles/run.sh [SLIDE]     (DURATION=15 seconds per run)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
aapi=${AAPI_BINARY:-$top/build/aapi}
shared=${AAPI_SHARED_DIR:-$top/../shared}
slide=$(readlink -f "${1:-$shared/data/slides/kidney_val.svs}")
duration=${DURATION:-15}
orders=${ORDERS:-shuffled rows revisit}
python=/usr/bin/python3
iipsrv=/usr/lib/iipimage-server/iipsrv.fcgi
fcgid=/usr/lib/apache2/modules/mod_fcgid.so

[ -x "$aapi" ] || { echo "no aapi binary at $aapi (build it first)"; exit 1; }
[ -f "$slide" ] || { echo "no slide at $slide"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed"; exit 1; }

work=$(mktemp -d /tmp/aapi-bench-tiles-XXXXXX)
chmod 755 "$work"
server_pid=""
apache_conf=""

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$apache_conf" ]; then
    apache2 -f "$apache_conf" -k stop 2>/dev/null || true
    # Apache stops its children after it answers.
    for _ in $(seq 50); do
      [ -f "$work/iip/httpd.pid" ] || break
      sleep 0.1
    done
    apache_conf=""
  fi
}

cleanup() {
  stop_server
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

# The data dir of aapi, with the slide registered once.
data="$work/aapi"
mkdir -p "$data/slides"
ln -s "$slide" "$data/slides/"
AAPI_DATA_DIR=$data "$aapi" init-data --slide-dir "$data/slides" >/dev/null
id=$(md5sum "$slide" | cut -c1-32)

# start_SERVER: sets base, prefix, suffix, tile for tiles.lua.
start_aapi() {
  local port
  port=$(free_port)
  AAPI_DATA_DIR=$data AAPI_PORT=$port "$aapi" serve \
    >>"$data/serve.log" 2>&1 &
  server_pid=$!
  base="http://127.0.0.1:$port"
  prefix="/api/v1/slides/${id}_files/"
  suffix=".jpeg"
  tile=254
  wait_for "$base/api/v1/health"
}

start_flask() {
  local port
  port=$(free_port)
  "$python" "$here/flask_deepzoom.py" "$slide" "$port" \
    >>"$work/flask.log" 2>&1 &
  server_pid=$!
  base="http://127.0.0.1:$port"
  prefix="/slide_files/"
  suffix=".jpeg"
  tile=254
  wait_for "$base/slide.dzi"
}

# iipsrv speaks FastCGI only: Apache with mod_fcgid in front of it.
start_iipsrv() {
  local port
  port=$(free_port)
  mkdir -p "$work/iip/fcgid"
  chown nobody "$work/iip/fcgid" 2>/dev/null || true
  apache_conf="$work/iip/httpd.conf"
  cat >"$apache_conf" <<EOF
ServerRoot $work/iip
Listen 127.0.0.1:$port
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
  base="http://127.0.0.1:$port"
  prefix="/fcgi-bin/iipsrv.fcgi?DeepZoom=${slide}_files/"
  suffix=".jpg"
  tile=256
  wait_for "$base/fcgi-bin/iipsrv.fcgi?DeepZoom=$slide.dzi"
}

# One timed run against the started server; records requests per second.
declare -A rate errors
run_wrk() {
  local name=$1 order=$2 out
  out=$(TILE_ORDER=$order TILE_PREFIX=$prefix TILE_SUFFIX=$suffix \
    TILE_SIZE=$tile TILE_WIDTH=$width TILE_HEIGHT=$height \
    wrk -t 2 -c 8 -d "${duration}s" --timeout 30s -s "$here/tiles.lua" \
    "$base")
  echo "--- $name, $order"
  echo "$out" | grep -E "Latency|Requests/sec|requests in|Non-2xx|Socket"
  rate[$name|$order]=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
  errors[$name|$order]=$(echo "$out" | awk '/Non-2xx/ { print $5 }')
}

servers="aapi flask"
if [ -x "$iipsrv" ] && [ -f "$fcgid" ] && command -v apache2 >/dev/null
then
  servers="$servers iipsrv"
else
  echo "iipsrv: not installed (iipimage-server, apache2, mod_fcgid)"
fi

start_aapi
dzi=$(curl -s "$base/api/v1/slides/$id.dzi")
width=$(echo "$dzi" | sed -n 's/.*Width="\([0-9]*\)".*/\1/p')
height=$(echo "$dzi" | sed -n 's/.*Height="\([0-9]*\)".*/\1/p')
stop_server
echo "slide $slide ($id), Deep Zoom ${width}x${height}," \
  "8 connections, ${duration} s per run"

for order in $orders; do
  for server in $servers; do
    "start_$server"
    run_wrk "$server" "$order"
    stop_server
  done
done

declare -A label=(
  [aapi]="aapi"
  [flask]="flask + DeepZoomGenerator"
  [iipsrv]="iipsrv (Apache mod_fcgid, 8 procs)"
)
for order in $orders; do
  echo
  echo "=== tiles per second, 8 connections, order $order (ratio to Flask)"
  for server in $servers; do
    r=${rate[$server|$order]:-0}
    ratio=$(awk -v a="$r" -v b="${rate[flask|$order]:-0}" \
      'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
    printf "%-36s %10s /s  %6sx  non-2xx %s\n" "${label[$server]}" "$r" \
      "$ratio" "${errors[$server|$order]:-0}"
  done
done
