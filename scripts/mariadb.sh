# Starts and stops a private MariaDB server on loopback for the tests.
# Sourced; mariadb_start exports AAPI_TEST_MYSQL_URL, a URL without a
# database name: each test appends its own (the store creates it).

mariadb_start() {
  if ! command -v mariadbd >/dev/null 2>&1 &&
     [ ! -x /usr/sbin/mariadbd ]; then
    echo "mariadb: mariadbd not found; MariaDB tests will skip" >&2
    return 0
  fi
  MARIADB_DIR=$(mktemp -d /tmp/aapi-mariadb.XXXXXX)
  MARIADB_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mariadb-install-db --no-defaults --user="$(id -un)" \
    --datadir="$MARIADB_DIR/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$MARIADB_DIR/install.log" 2>&1
  /usr/sbin/mariadbd --no-defaults --user="$(id -un)" \
    --datadir="$MARIADB_DIR/data" --socket="$MARIADB_DIR/sock" \
    --pid-file="$MARIADB_DIR/pid" --bind-address=127.0.0.1 \
    --port="$MARIADB_PORT" --skip-name-resolve --innodb-buffer-pool-size=64M \
    --log-error="$MARIADB_DIR/error.log" &
  MARIADB_PID=$!
  for _ in $(seq 1 100); do
    if mariadb --no-defaults --socket="$MARIADB_DIR/sock" -uroot \
         -e 'SELECT 1' >/dev/null 2>&1; then
      break
    fi
    sleep 0.2
  done
  mariadb --no-defaults --socket="$MARIADB_DIR/sock" -uroot -e "
    CREATE USER 'aapi'@'127.0.0.1' IDENTIFIED BY 'aapi-test';
    GRANT ALL PRIVILEGES ON *.* TO 'aapi'@'127.0.0.1';" ||
    { echo "mariadb: could not start; see $MARIADB_DIR/error.log" >&2;
      cat "$MARIADB_DIR/error.log" >&2; return 1; }
  export AAPI_TEST_MYSQL_URL="mysql://aapi:aapi-test@127.0.0.1:$MARIADB_PORT"
  export AAPI_TEST_MYSQL_SOCKET="$MARIADB_DIR/sock"
  echo "mariadb: test server on 127.0.0.1:$MARIADB_PORT"
}

mariadb_stop() {
  if [ -n "${MARIADB_PID:-}" ]; then
    kill "$MARIADB_PID" 2>/dev/null || true
    wait "$MARIADB_PID" 2>/dev/null || true
    rm -rf "$MARIADB_DIR"
    MARIADB_PID=
  fi
}
