#!/bin/sh
# Install every Debian package ztgate needs to build, run the demo and
# run its tests.  Idempotent: packages already present are skipped, so
# the test command can call this on every run at the cost of one dpkg
# query when nothing is missing.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-dev
nginx nginx-dev libpcre3-dev zlib1g-dev
libssl-dev openssl libjwt-dev libjansson-dev liboath-dev liblmdb-dev
lmdb-utils libcmocka-dev libqrencode-dev libmicrohttpd-dev libcbor-dev
libpq-dev postgresql
python3 python3-pytest python3-cryptography
chromium chromium-driver python3-selenium libnss3-tools
curl wrk oathtool"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
        | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

echo "install-deps: installing:$missing"
# Installing nginx must not start the distribution's own server on port
# 80: ztgate runs nginx from its own prefix.  policy-rc.d tells
# invoke-rc.d to leave services alone during this install only.
prc=/usr/sbin/policy-rc.d
added_prc=0
if [ ! -e "$prc" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$prc" >/dev/null
    $SUDO chmod 755 "$prc"
    added_prc=1
fi
cleanup() {
    if [ "$added_prc" = 1 ]; then
        $SUDO rm -f "$prc"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
