#!/bin/sh
# bench/viewer-overlay: milliseconds per frame to show N annotation
# polygons after the view moves, in Debian's chromium (software rendering,
# --disable-gpu), the viewer's canvas overlay against one SVG <path> per
# polygon, side by side in the same run; prints both and the ratio.
#   bench/viewer-overlay/run.sh [N]     (default 10000)
# animation.mjs times a zoom animation in the real viewer (see its header).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ -x /usr/bin/chromium ] || { echo "chromium is not installed"; exit 1; }
[ -d "$top/web/node_modules/playwright-core" ] ||
  { echo "run npm ci in web/ first"; exit 1; }
exec node "$here/overlay.mjs" "$@"
