#!/bin/sh
# `make run`: prepare the data folder and serve.  With no slide anywhere, a
# small demo slide is made first so that the server shows something at once.
set -eu

aapi=$1
data_dir=$2
slide_dir=$3
port=$4

export AAPI_DATA_DIR="$data_dir"
mkdir -p "$data_dir" "$slide_dir"

"$aapi" init-db
if [ -z "$(ls -A "$slide_dir" 2>/dev/null)" ]; then
  echo "run: no slides in $slide_dir; making a demo slide there"
  "$aapi" make-demo --slide-dir "$slide_dir"
fi
"$aapi" init-data --slide-dir "$slide_dir"
# The viewer served at /viewer/ (web/dist), once npm ci has run.
web=$(dirname "$0")/../web
[ ! -d "$web/node_modules" ] || (cd "$web" && npm run build --silent)
exec "$aapi" serve --port "$port"
