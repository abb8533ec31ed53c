#!/bin/sh
# Installs the Debian packages aapi needs, only those missing, then the
# viewer's npm packages.  "run" needs the build and serve set; "test" adds
# what the tests and benchmarks drive (MariaDB, Chromium, Python baselines).
set -eu

mode=${1:-run}

run_packages="meson ninja-build pkg-config gcc libglib2.0-dev libopenslide-dev
libvips-dev libtiff-dev libxml2-dev libgeos-dev libsqlite3-dev libmariadb-dev
libmicrohttpd-dev libjansson-dev libdnnl-dev libzip-dev libhdf5-dev
hdf5-filter-plugin hdf5-filter-plugin-blosc-serial"

test_packages="mariadb-server mariadb-client chromium python3 python3-torch
python3-numpy python3-lxml python3-shapely python3-opencv python3-openslide
python3-flask python3-h5py curl wrk iipimage-server libvips-tools
openslide-tools valgrind"

packages=$run_packages
[ "$mode" = test ] && packages="$run_packages $test_packages"

missing=""
for p in $packages; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done

# Node.js may come from elsewhere than Debian; only its commands matter.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
  echo "install-deps: installing$missing"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi

# The viewer's packages (OpenSeadragon; playwright-core for the tests).
if [ -f web/package.json ]; then
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
    (cd web && npm ci --no-audit --no-fund)
  fi
fi
