#!/bin/bash
# `make test`: build with warnings as errors, start a private MariaDB server
# on loopback, run every test with meson, stop the server, and print one
# summary line ("N passed, N failed, N skipped").
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${AAPI_TEST_BUILD:-build-test}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --werror -Dbuildtype=debugoptimized
fi
ninja -C "$build"
# The viewer the web tests open (web/dist), once npm ci has run.
[ ! -d web/node_modules ] || (cd web && npm run build --silent)

# Test data lives beside the repository; tests skip when it is absent.
if [ -z "${AAPI_SHARED_DIR:-}" ] && [ -d "$top/../shared" ]; then
  export AAPI_SHARED_DIR=$(cd "$top/../shared" && pwd)
fi

# shellcheck source=scripts/mariadb.sh
. "$top/scripts/mariadb.sh"
mariadb_start
trap mariadb_stop EXIT

status=0
meson test -C "$build" --print-errorlogs --num-processes 2 \
  --timeout-multiplier "${AAPI_TEST_TIMEOUT_MULTIPLIER:-1}" "$@" || status=$?

/usr/bin/python3 "$top/scripts/test-summary.py" "$build/meson-logs/testlog.json"
exit $status
