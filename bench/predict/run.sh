#!/bin/sh
# bench/predict: aapi's region prediction against the old pipeline's
# reference (reference.py: PyTorch + OpenCV, 256 px tiles at stride 64),
# same region, same weights, in the same run.
#
# Region: 3000x3000 level-0 pixels of kidney_val.svs, four classes,
# depth-5 wf-4 U-Nets made by make_models.py (fixed seeds, batch norm
# calibrated and last layer fitted on kidney_train's annotations: confident,
# structure-following masks without hours of training).
#
# Usage: bench/predict/run.sh [BUILD_DIR]   (default build)
# Env: REGION=x,y,w,h  BENCH_VARIANTS="auto fast int8 bf16 fast-bf16
#      direct" (also time aapi with --tiling auto / fast, exact with
#      --precision int8 or bf16, fast with bf16, or exact without
#      Winograd kernels; the default run uses the exact tiling, float32)
#      BENCH_OUT=DIR (kept; default a temp dir)
#      WEIGHTS=synthetic (default: make_models.py) or trained: models aapi
#      trains itself (`aapi train --bootstrap`, depth 5 wf 4, on
#      kidney_train; TRAIN_EPOCHS x TRAIN_PATCHES, default 10 x 64, about
#      3 min per class), or TRAINED_DIR=DIR with <Class>/*.aapimodel
#      already trained; both sides then run those weights as checkpoints
#      BENCH_EMULATE="bf16 int8": also the reference with its
#      convolutions rounded to bf16 or to aapi's int8 (emulate.py), to
#      see whether a precision would keep the masks with these weights
set -eu

TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
AAPI=$TOP/$BUILD/aapi
HERE=$TOP/bench/predict
SHARED=${AAPI_SHARED_DIR:-$TOP/../shared}
SLIDE=$SHARED/data/slides/kidney_val.svs
REGION=${REGION:-500,6400,3000,3000}
PY=/usr/bin/python3
OUT=${BENCH_OUT:-$(mktemp -d /tmp/aapi-bench-predict.XXXXXX)}
VERSION=2026-01-01T00:00:00.ckpt
CLASSES="Glomerulus Artery Tubules Arteriole"

[ -x "$AAPI" ] || { echo "no $AAPI: build first" >&2; exit 1; }
[ -f "$SLIDE" ] || { echo "no $SLIDE" >&2; exit 1; }
mkdir -p "$OUT"
echo "output in $OUT"

# Trains depth-5 wf-4 models with aapi's own trainer into $1/model.
train_models() {
  mkdir -p "$1/slides"
  ln -sf "$SHARED/data/slides/kidney_train.svs" \
    "$SHARED/data/slides/kidney_train.xml" "$1/slides/"
  (
    export AAPI_DATA_DIR="$1/data" AAPI_MODEL_DIR="$1/model"
    export AAPI_BOOTSTRAP_DEPTH=5 AAPI_BOOTSTRAP_WF=4 AAPI_TRAIN_BATCH=8
    export AAPI_TRAIN_EPOCHS=${TRAIN_EPOCHS:-10}
    export AAPI_TRAIN_MAX_PATCHES=${TRAIN_PATCHES:-64}
    unset AAPI_DATABASE_URL
    "$AAPI" init-db >/dev/null
    "$AAPI" init-data --slide-dir "$1/slides" >/dev/null
    for c in $CLASSES; do
      "$AAPI" train --bootstrap --class "$c" 2>&1 | grep "promoted\|F1"
    done
  )
}

# Weights shared by both sides.
if [ ! -d "$OUT/model/Tubules" ]; then
  case ${WEIGHTS:-synthetic} in
    synthetic)
      $PY "$HERE/make_models.py" \
        --slide "$SHARED/data/slides/kidney_train.svs" \
        --annotations "$SHARED/data/slides/kidney_train.xml" \
        --out "$OUT/model" --depth 5 --wf 4 ;;
    trained)
      trained=${TRAINED_DIR:-}
      if [ -z "$trained" ]; then
        trained=$OUT/train
        train_models "$trained"
        trained=$trained/model
      fi
      for c in $CLASSES; do
        native=$(ls "$trained/$c/"*.aapimodel | tail -n 1)
        mkdir -p "$OUT/model/$c"
        $PY "$HERE/aapimodel.py" "$native" "$OUT/model/$c/$VERSION"
      done ;;
    *) echo "WEIGHTS is synthetic or trained" >&2; exit 2 ;;
  esac
fi

# Seconds and peak resident memory of a command, from /usr/bin/time -v.
measure() {
  name=$1; shift
  /usr/bin/time -v "$@" > "$OUT/$name.out" 2> "$OUT/$name.time"
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/$name.time" |
         awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  kb=$(awk -F': ' '/Maximum resident/ {print $2}' "$OUT/$name.time")
  echo "$name $secs $kb" >> "$OUT/times"
  echo "$name: $secs s, peak $((kb / 1024)) MiB"
}

: > "$OUT/times"
rm -f "$OUT"/aapi*.time "$OUT"/aapi*.out   # a kept BENCH_OUT's last run
export AAPI_MODEL_DIR="$OUT/model" AAPI_DATA_DIR="$OUT/data"
export AAPI_MAX_PREDICT_PIXELS=100000000
measure aapi "$AAPI" predict --slide-file "$SLIDE" --region "$REGION" \
  --format geojson
# A variant is a tiling (auto, fast, exact); int8 or bf16: the exact tiling
# with the 3x3 convolutions forced to int8 (calibrated on the probe window)
# or bf16; fast-bf16: big tiles in bf16; direct: the exact tiling without
# oneDNN's Winograd kernels.
variant_args() {
  case $1 in
    int8|bf16) echo "--tiling exact --precision $1" ;;
    fast-bf16) echo "--tiling fast --precision bf16" ;;
    direct) echo "--tiling exact" ;;
    *) echo "--tiling $1" ;;
  esac
}
for v in ${BENCH_VARIANTS:-}; do
  wino=1
  [ "$v" != direct ] || wino=0
  # shellcheck disable=SC2046
  measure "aapi-$v" env AAPI_NN_WINOGRAD=$wino "$AAPI" predict \
    $(variant_args "$v") --slide-file "$SLIDE" --region "$REGION" \
    --format geojson
done

models=""
for c in $CLASSES; do
  models="$models --model $c=$OUT/model/$c/$VERSION"
done
# shellcheck disable=SC2086
measure reference $PY "$HERE/reference.py" --slide "$SLIDE" \
  --region "$REGION" --polygons "$OUT/reference.json" $models

for e in ${BENCH_EMULATE:-}; do
  # shellcheck disable=SC2086
  measure "emulate-$e" $PY "$HERE/emulate.py" "$e" --slide "$SLIDE" \
    --region "$REGION" --polygons "$OUT/emulate-$e.json" $models
done

echo "aapi vs reference (filled polygons, per class):"
$PY "$HERE/compare.py" --region "$REGION" "$OUT/aapi.out" \
  "$OUT/reference.json" | tee "$OUT/compare.json"
for v in ${BENCH_VARIANTS:-}; do
  echo "aapi $(variant_args "$v") vs reference:"
  $PY "$HERE/compare.py" --region "$REGION" "$OUT/aapi-$v.out" \
    "$OUT/reference.json"
done
for e in ${BENCH_EMULATE:-}; do
  echo "reference in $e vs reference:"
  $PY "$HERE/compare.py" --region "$REGION" "$OUT/emulate-$e.json" \
    "$OUT/reference.json"
done
grep -h "tiling at IoU\|float32 at IoU" "$OUT"/aapi*.time || true
awk '$1 == "reference" { r = $2 } $1 ~ /^aapi/ { t[$1] = $2 }
     END { for (k in t) printf "speed-up %s: %.1fx (reference %.1f s / "\
           "%.1f s)\n", k, r / t[k], r, t[k] }' "$OUT/times"
