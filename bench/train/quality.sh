#!/bin/sh
# bench/train/quality.sh: online learning on real input.
#
# 1. A data dir with kidney_train.svs and its XML as the initial
#    annotation; `aapi train --bootstrap` trains each of the four classes
#    from scratch (timed per class).
# 2. A second data dir with kidney_val.svs and its XML; `aapi evaluate`
#    with the same model dir gives the pixel F1 per class of the promoted
#    models on kidney_val.
# 3. A correction posted over HTTP (the compatible POST /annotation/{id})
#    makes `aapi train --if-changed` run, and the class's patch cache is
#    re-cut from the slide's new version (the key names the version file).
#
# Usage: bench/train/quality.sh [CLASSES]   (default: all four)
# Environment: BUILD (default build), KEEP=1 keeps the temp dir, and the
# training sizes (defaults below): AAPI_BOOTSTRAP_DEPTH, AAPI_BOOTSTRAP_WF,
# AAPI_TRAIN_EPOCHS, AAPI_TRAIN_MAX_PATCHES, AAPI_TRAIN_BATCH,
# RETRAIN_EPOCHS (the cycle after the correction, default 1).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-$top/build}
case $build in /*) ;; *) build=$top/$build ;; esac
shared=${AAPI_SHARED:-$top/../shared}
classes=${1:-"Arteriole Artery Glomerulus Tubules"}
slides=$shared/data/slides
if [ ! -f "$slides/kidney_train.svs" ] || [ ! -f "$slides/kidney_val.svs" ]
then
    echo "no kidney slides in $slides" >&2
    exit 1
fi
ninja -C "$build" aapi >/dev/null
aapi=$build/aapi

export AAPI_BOOTSTRAP_DEPTH=${AAPI_BOOTSTRAP_DEPTH:-4}
export AAPI_BOOTSTRAP_WF=${AAPI_BOOTSTRAP_WF:-3}
export AAPI_TRAIN_EPOCHS=${AAPI_TRAIN_EPOCHS:-8}
export AAPI_TRAIN_MAX_PATCHES=${AAPI_TRAIN_MAX_PATCHES:-48}
export AAPI_TRAIN_BATCH=${AAPI_TRAIN_BATCH:-8}
# The cycle after the correction only has to show what it trains on.
retrain_epochs=${RETRAIN_EPOCHS:-1}
export AAPI_TRAIN_INTERVAL=0
unset AAPI_DATABASE_URL

tmp=$(mktemp -d /tmp/aapi-quality.XXXXXX)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM
export AAPI_MODEL_DIR=$tmp/model

# One data dir holding one slide and its XML.
make_data() {
    mkdir -p "$tmp/$1/slides"
    ln -s "$slides/$2.svs" "$slides/$2.xml" "$tmp/$1/slides/"
    AAPI_DATA_DIR=$tmp/$1/data "$aapi" init-db >/dev/null
    AAPI_DATA_DIR=$tmp/$1/data "$aapi" init-data \
        --slide-dir "$tmp/$1/slides" >/dev/null
}

now() { date +%s; }

echo "depth $AAPI_BOOTSTRAP_DEPTH wf $AAPI_BOOTSTRAP_WF," \
     "epochs $AAPI_TRAIN_EPOCHS x $AAPI_TRAIN_MAX_PATCHES patches," \
     "batch $AAPI_TRAIN_BATCH; $(nproc) cores, load $(cut -d' ' -f1 \
     /proc/loadavg)"
make_data train kidney_train
make_data val kidney_val
export AAPI_DATA_DIR=$tmp/train/data

echo "== bootstrap on kidney_train"
start=$(now)
for class in $classes; do
    t0=$(now)
    "$aapi" train --bootstrap --class "$class" 2>"$tmp/train-$class.log"
    grep -o "cut [0-9]* squares.*\|epoch [0-9/]*, mean loss.*" \
        "$tmp/train-$class.log" || true
    echo "$class: $(($(now) - t0)) s"
done
echo "all classes: $(($(now) - start)) s wall"
echo "== model files"
for f in "$AAPI_MODEL_DIR"/*/*.aapimodel; do
    echo "$(basename "$(dirname "$f")") $(stat -c %s "$f") bytes"
done

echo "== evaluate on kidney_val"
t0=$(now)
AAPI_DATA_DIR=$tmp/val/data "$aapi" evaluate
echo "evaluate: $(($(now) - t0)) s"

echo "== a posted correction is trained on"
class=Glomerulus
case " $classes " in *" $class "*) ;; *) class=${classes%% *} ;; esac
cache=$(ls "$AAPI_DATA_DIR/train-cache/$class/"*.patches)
echo "cache key before: $(sed -n 2p "$cache")"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket();
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$aapi" serve --port "$port" 2>"$tmp/serve.log" &
server=$!
url=http://127.0.0.1:$port
for _ in $(seq 100); do
    curl -sf "$url/api/v1/health" >/dev/null && break
    sleep 0.2
done
id=$(curl -sf "$url/api/v1/slides" | /usr/bin/python3 -c \
     'import json, sys; print(json.load(sys.stdin)["slides"][0]["id"])')
cat >"$tmp/fix.xml" <<EOF
<?xml version="1.0"?>
<ASAP_Annotations><Annotations>
<Annotation Name="${class}_fix" Type="Polygon" PartOfGroup="$class"
 Color="#4dd156"><Coordinates>
<Coordinate Order="0" X="7000" Y="7000"/>
<Coordinate Order="1" X="7400" Y="7000"/>
<Coordinate Order="2" X="7400" Y="7400"/>
<Coordinate Order="3" X="7000" Y="7400"/>
</Coordinates></Annotation>
</Annotations><AnnotationGroups>
<Group Name="$class" PartOfGroup="None" Color="#4dd156"><Attributes/>
</Group></AnnotationGroups></ASAP_Annotations>
EOF
echo "POST /annotation/$id: $(curl -s -o /dev/null -w '%{http_code}' \
     --data-binary @"$tmp/fix.xml" \
     "$url/annotation/$id?x=6900&y=6900&width=600&height=600")"
kill "$server"
wait "$server" 2>/dev/null || true
server=
t0=$(now)
echo "retrain with $retrain_epochs epoch(s)"
AAPI_TRAIN_EPOCHS=$retrain_epochs \
    "$aapi" train --if-changed --class "$class" 2>"$tmp/retrain.log"
grep -o "cut [0-9]* squares.*" "$tmp/retrain.log" || true
echo "retrain: $(($(now) - t0)) s"
echo "cache key after:  $(sed -n 2p "$cache")"
echo "== nothing changed since: skipped"
"$aapi" train --if-changed --class "$class" 2>&1 | grep -o "no annotation.*"
