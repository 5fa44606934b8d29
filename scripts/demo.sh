#!/bin/bash
# ztgate demo: a complete gateway on loopback, made from scratch.
#
#   scripts/demo.sh            set up and run in the foreground; Ctrl-C stops
#   scripts/demo.sh stop       stop a demo started elsewhere (pid files)
#   scripts/demo.sh selftest   set up, run, check the curl commands, stop
#
# It creates, under demo/ (or $ZT_DEMO_DIR): a device CA, the gateway's
# server certificate, a device certificate for alice's laptop, an LMDB
# store in which that device is enrolled, a user (alice, in group staff)
# with a password and a TOTP authenticator, the demo policy
# (config/demo/demo.policy), trustd and nginx configurations; then it
# starts trustd (with its sign-in portal), the staff console (ztconsole,
# behind /console/), nginx (TLS on 127.0.0.1:$ZT_DEMO_PORT, client
# certificates requested) and an upstream that echoes the headers it gets.
# Run `make` first (make demo does).

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
DEMO=${ZT_DEMO_DIR:-$ROOT/demo}
PORT=${ZT_DEMO_PORT:-8443}
ECHO_PORT=${ZT_DEMO_ECHO_PORT:-8081}
NGINX=${ZT_NGINX:-/usr/sbin/nginx}
PYTHON=/usr/bin/python3
MODE=${1:-run}

die() { echo "demo: $*" >&2; exit 1; }

stop_all() {
    local f pid
    if [ -f "$DEMO/run/nginx.pid" ]; then
        "$NGINX" -p "$DEMO" -c "$DEMO/nginx.conf" -e "$DEMO/logs/error.log" \
            -s quit 2>/dev/null || true
    fi
    for f in ztconsole trustd echo; do
        if [ -f "$DEMO/run/$f.pid" ]; then
            pid=$(cat "$DEMO/run/$f.pid")
            kill "$pid" 2>/dev/null || true
        fi
    done
    # wait for every process to be gone, then remove its pid file
    for _ in $(seq 50); do
        local alive=0
        for f in nginx ztconsole trustd echo; do
            if [ -f "$DEMO/run/$f.pid" ] \
                && kill -0 "$(cat "$DEMO/run/$f.pid")" 2>/dev/null; then
                alive=1
            fi
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    rm -f "$DEMO"/run/*.pid
}

if [ "$MODE" = stop ]; then
    stop_all
    echo "demo: stopped"
    exit 0
fi

[ "$MODE" = run ] || [ "$MODE" = selftest ] || die "usage: $0 [run|stop|selftest]"

for bin in "$B/trustd" "$B/ztctl" "$B/ztca" "$B/ztconsole" \
    "$B/ngx_http_zt_module.so"; do
    [ -e "$bin" ] || die "$bin is missing: run make first"
done

# a previous demo may still run: stop it before its files are replaced
if [ -d "$DEMO/run" ]; then
    stop_all
fi
rm -rf "$DEMO"
mkdir -p "$DEMO"/{logs,run,tmp}

echo "demo: creating the device CA, server and device certificates"
"$B/ztca" init -d "$DEMO/ca" --cn "ztgate demo device CA" >/dev/null
"$B/ztca" server -d "$DEMO/ca" --key "$DEMO/server.key" \
    --cert "$DEMO/server.crt" --dns localhost --ip 127.0.0.1 >/dev/null
"$B/ztca" device -d "$DEMO/ca" --cert "$DEMO/alice-laptop.crt" \
    --key "$DEMO/alice-laptop.key" --cn "alice-laptop" >/dev/null
"$B/ztca" crl -d "$DEMO/ca" --out "$DEMO/ca/crl.pem" >/dev/null

USER_NAME=$(id -un)
mkdir -p "$DEMO/policy"
cp "$ROOT/config/demo/demo.policy" "$DEMO/policy/"
"$B/ztpolicy" check -q "$DEMO/policy"

cat > "$DEMO/trustd.conf" <<EOF
# ztgate demo trustd configuration (see docs/trustd.8)
listen $DEMO/run/trustd.sock
listen_mode 0660
peer_user $USER_NAME
store $DEMO/store
store_map_size 64M
log_level info
log_target stderr
allow_ttl 1s
admin_listen $DEMO/run/admin.sock
policy $DEMO/policy
portal_url /zt
identity_keys $DEMO/keys
portal_listen $DEMO/run/portal.sock
portal_host localhost
EOF

# the staff console: the demo's CA, trustd's store and keys
cat > "$DEMO/console.conf" <<EOF
# ztgate demo staff console configuration (see docs/console.md)
trustd_config $DEMO/trustd.conf
listen $DEMO/run/console.sock
peer_user $USER_NAME
origin https://localhost:$PORT
base_path /console
ca_dir $DEMO/ca
log_level info
log_target stderr
EOF

echo "demo: enrolling alice's laptop in the store"
"$B/ztctl" -s "$DEMO/store" --actor demo device enroll \
    --cert "$DEMO/alice-laptop.crt" --owner alice --name "alice's laptop" \
    --platform linux

# nginx workers run as the invoking user so that only they pass trustd's
# peer check; as root that means "user root" (the demo only, on loopback)
NGINX_USER=""
if [ "$(id -u)" = 0 ]; then
    NGINX_USER="user root;"
fi

cat > "$DEMO/nginx.conf" <<EOF
# ztgate demo nginx configuration (see config/nginx-ztgate.conf)
load_module $B/ngx_http_zt_module.so;
$NGINX_USER
worker_processes 2;
pid $DEMO/run/nginx.pid;
error_log $DEMO/logs/error.log info;
events { worker_connections 512; }
http {
    access_log $DEMO/logs/access.log;
    client_body_temp_path $DEMO/tmp/body;
    proxy_temp_path $DEMO/tmp/proxy;
    fastcgi_temp_path $DEMO/tmp/fastcgi;
    uwsgi_temp_path $DEMO/tmp/uwsgi;
    scgi_temp_path $DEMO/tmp/scgi;

    zt_trustd unix:$DEMO/run/trustd.sock;

    upstream app { server 127.0.0.1:$ECHO_PORT; keepalive 8; }

    server {
        listen 127.0.0.1:$PORT ssl;
        server_name localhost;
        ssl_certificate $DEMO/server.crt;
        ssl_certificate_key $DEMO/server.key;
        ssl_client_certificate $DEMO/ca/ca.crt;
        ssl_crl $DEMO/ca/crl.pem;
        ssl_verify_client optional;

        location / {
            zt on;
            zt_timeout 500ms;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # the path ztgate decided on, not the client's raw request line
            proxy_pass http://app\$zt_uri\$is_args\$args;
        }

        # the staff console: staff on their own enrolled device with a
        # recent second factor (demo.policy); it trusts X-ZT-Assertion only
        location /console/ {
            zt on;
            zt_timeout 500ms;
            client_max_body_size 64k;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_pass http://unix:$DEMO/run/console.sock:\$zt_uri\$is_args\$args;
        }

        # the sign-in portal: reachable without a session, and told only
        # what nginx itself established
        location /zt/ {
            zt off;
            client_max_body_size 8k;
            zt_pass_session_cookie on;
            proxy_set_header Host \$host;
            proxy_set_header X-ZT-Client-Addr \$remote_addr;
            proxy_set_header X-ZT-Device-Fp \$zt_device_fp;
            proxy_set_header X-ZT-Scheme \$scheme;
            proxy_pass http://unix:$DEMO/run/portal.sock;
        }
    }
}
EOF

cleanup() {
    trap - INT TERM EXIT
    echo
    echo "demo: stopping"
    stop_all
}
trap cleanup INT TERM EXIT

echo "demo: starting the echo upstream, trustd and nginx"
"$PYTHON" "$ROOT/scripts/echo-upstream.py" --port "$ECHO_PORT" \
    --pid-file "$DEMO/run/echo.pid" > "$DEMO/logs/echo.log" 2>&1 &
"$B/trustd" -f -c "$DEMO/trustd.conf" > "$DEMO/logs/trustd.log" 2>&1 &
echo $! > "$DEMO/run/trustd.pid"

for _ in $(seq 100); do
    [ -S "$DEMO/run/trustd.sock" ] && [ -f "$DEMO/run/echo.pid" ] && break
    sleep 0.05
done
[ -S "$DEMO/run/trustd.sock" ] || { cat "$DEMO/logs/trustd.log"; die "trustd did not start"; }
for _ in $(seq 100); do
    [ -S "$DEMO/run/portal.sock" ] && break
    sleep 0.05
done

echo "demo: enrolling user alice (group staff) with a password and TOTP"
PASSWORD=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 16)
printf '%s\n' "$PASSWORD" > "$DEMO/alice.password"
chmod 600 "$DEMO/alice.password"
ZTCTL="$B/ztctl -s $DEMO/store --actor demo"
$ZTCTL user create alice --display "Alice Chen" --group staff >/dev/null
$ZTCTL user passwd alice --password-file "$DEMO/alice.password" >/dev/null
$ZTCTL user totp-enroll alice --keys "$DEMO/keys" < /dev/null \
    > "$DEMO/alice.totp" 2>&1 || true
URI=$(grep -o 'otpauth://[^ ]*' "$DEMO/alice.totp" | head -1)
SECRET=$(printf '%s' "$URI" | sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p')
[ -n "$SECRET" ] || { cat "$DEMO/alice.totp"; die "TOTP enrollment failed"; }
# the demo plays alice's authenticator to prove the enrollment (the
# previous step's code, so the current one stays fresh for a sign-in)
$ZTCTL user totp-confirm alice --keys "$DEMO/keys" \
    --code "$(oathtool --totp -b -N "now - 30 seconds" "$SECRET")" >/dev/null

"$B/ztconsole" -c "$DEMO/console.conf" > "$DEMO/logs/console.log" 2>&1 &
echo $! > "$DEMO/run/ztconsole.pid"
for _ in $(seq 100); do
    [ -S "$DEMO/run/console.sock" ] && break
    sleep 0.05
done
[ -S "$DEMO/run/console.sock" ] || { cat "$DEMO/logs/console.log"; die "ztconsole did not start"; }

"$NGINX" -p "$DEMO" -c "$DEMO/nginx.conf" -e "$DEMO/logs/error.log"

C="curl -s --cacert $DEMO/ca/ca.crt"
DEV="--cert $DEMO/alice-laptop.crt --key $DEMO/alice-laptop.key"
URL="https://localhost:$PORT"

sed -n '/^[ ]*[▀▄█]/p' "$DEMO/alice.totp" > "$DEMO/alice.qr" || true

cat <<EOF

ztgate demo is running on $URL   (policy: config/demo/demo.policy)

  Anyone may read /public:
    $C $URL/public/
  alice's enrolled laptop reaches /device without signing in (see the
  X-ZT-Device-* headers the upstream received):
    $C $DEV $URL/device/hello
  Without a device certificate or a session, you are sent to sign in:
    $C -i $URL/device/hello
  A forged identity header never reaches the upstream:
    $C $DEV -H 'X-ZT-User: admin' $URL/device/hello

  Sign in in a browser at $URL/zt/login (trust $DEMO/ca/ca.crt, or
  accept the warning) as:
    user:      alice
    password:  $PASSWORD
    code:      oathtool --totp -b $SECRET
               (or add $URI
                to an authenticator app)
  then /admin needs alice's laptop certificate in the browser as well:
  import $DEMO/alice-laptop.crt and .key.
  With the certificate, alice (group staff) also reaches the staff
  console at $URL/console/ : users, authenticators, devices, sessions
  (docs/console.md).  Its actions are in the journal with alice as actor:
    $B/ztctl -s $DEMO/store audit search --kind action --actor alice

  Revoke the laptop; its next request is denied:
    $B/ztctl -s $DEMO/store device revoke \$($B/ztca show $DEMO/alice-laptop.crt | awk '/^fingerprint/ {print \$2}')
  Change the policy in $DEMO/policy, then:
    $B/ztctl -c $DEMO/trustd.conf policy reload

Logs: $DEMO/logs/   Stop: Ctrl-C here, or: make demo-stop
EOF

if [ "$MODE" = selftest ]; then
    fail=0
    passed=0
    check() {
        local want=$1; shift
        local got
        got=$($C -o /dev/null -w '%{http_code}' "$@" || true)
        if [ "$got" = "$want" ]; then
            echo "selftest: ok   $want  $*"
            passed=$((passed + 1))
        else
            echo "selftest: FAIL want $want got $got  $*"
            fail=1
        fi
    }
    sleep 0.2
    total=0
    check 200 "$URL/public/"
    # shellcheck disable=SC2086
    check 200 $DEV "$URL/device/hello"
    check 302 "$URL/device/hello"
    total=3
    # shellcheck disable=SC2086
    if $C $DEV -H 'X-ZT-User: admin' "$URL/device/hello" | grep -qi 'x-zt-user'; then
        echo "selftest: FAIL forged header reached the upstream"; fail=1
    else
        echo "selftest: ok   forged X-ZT-User stripped"
        passed=$((passed + 1))
    fi
    total=$((total + 1))

    # sign in as alice through the portal, as a browser would
    JAR="$DEMO/tmp/cookies"
    CSRF=$($C -c "$JAR" "$URL/zt/login?next=/hello" \
        | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
    CODE=$(oathtool --totp -b "$SECRET")
    got=$($C -b "$JAR" -c "$JAR" -o /dev/null -w '%{http_code}' \
        --data-urlencode "user=alice" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "code=$CODE" --data-urlencode "csrf=$CSRF" \
        --data-urlencode "next=/hello" "$URL/zt/login" || true)
    if [ "$got" = 303 ] && $C -b "$JAR" "$URL/hello" | tr -d ' \n' \
        | grep -qi '"x-zt-user","alice"'; then
        echo "selftest: ok   signed in as alice; the upstream saw X-ZT-User"
        passed=$((passed + 1))
    else
        echo "selftest: FAIL sign-in as alice (login answered $got)"
        fail=1
    fi
    total=$((total + 1))

    # the console: not without alice's device, never from a forged header
    check 403 -b "$JAR" "$URL/console/"
    total=$((total + 1))
    got=$(curl -s -o /dev/null -w '%{http_code}' \
        --unix-socket "$DEMO/run/console.sock" -H 'X-ZT-User: alice' \
        -H 'X-ZT-Groups: staff' http://localhost/console/ || true)
    if [ "$got" = 403 ]; then
        echo "selftest: ok   403  forged X-ZT-User straight to ztconsole"
        passed=$((passed + 1))
    else
        echo "selftest: FAIL forged X-ZT-User to ztconsole got $got"
        fail=1
    fi
    total=$((total + 1))

    FP=$("$B/ztca" show "$DEMO/alice-laptop.crt" | awk '/^fingerprint/ {print $2}')
    "$B/ztctl" -s "$DEMO/store" device revoke "$FP" >/dev/null
    # shellcheck disable=SC2086
    check 403 $DEV "$URL/device/hello"
    total=$((total + 1))
    echo "selftest: $passed passed, $((total - passed)) failed"
    exit $fail
fi

wait
