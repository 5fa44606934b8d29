#!/bin/sh
# ztgate-posture-agent: the reference device posture agent for Linux.
#
# Collects the posture of the machine it runs on (OS, patch time, disk
# encryption, firewall, screen lock, endpoint protection) and POSTs it as
# JSON to https://GATEWAY/zt/posture over mTLS with the device's own
# certificate: the gateway records it for that certificate only.
#
#   ztgate-posture-agent.sh --gateway HOST[:PORT] --cert FILE --key FILE
#       [--cacert FILE] [--once | --interval SECONDS] [--dry-run]
#
#   --once               report once and exit (the default)
#   --interval SECONDS   report every SECONDS (at least 60 unless
#                        ZTGATE_AGENT_TEST=1), with up to 10% random
#                        jitter so that a fleet does not report in step
#   --dry-run            print the JSON report and exit; nothing is sent
#
# Exit status: 0 reported (or printed), 1 the gateway refused the report or
# could not be reached, 2 usage error.  Needs: sh, curl (not for
# --dry-run), awk; uses lsblk, dmsetup, nft, iptables, ufw, gsettings
# and pgrep when present.  Run it as root for the firewall checks (nft
# and iptables need it); as the desktop user, the screen lock check sees
# that user's settings.
#
# Every value is collected from the machine; a value that cannot be
# determined is reported as false (flags) or left out, never guessed.

set -u

PROG=ztgate-posture-agent
GATEWAY=
CERT=
KEY=
CACERT=
MODE=once
INTERVAL=
DRY_RUN=0

usage() {
    sed -n '4,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    echo "$PROG: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --gateway) [ $# -ge 2 ] || usage; GATEWAY=$2; shift 2 ;;
    --cert) [ $# -ge 2 ] || usage; CERT=$2; shift 2 ;;
    --key) [ $# -ge 2 ] || usage; KEY=$2; shift 2 ;;
    --cacert) [ $# -ge 2 ] || usage; CACERT=$2; shift 2 ;;
    --once) MODE=once; shift ;;
    --interval) [ $# -ge 2 ] || usage; MODE=loop; INTERVAL=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage ;;
    *) die "unknown argument \"$1\" (--help)" ;;
    esac
done

if [ "$MODE" = loop ]; then
    case $INTERVAL in
    ''|*[!0-9]*) die "--interval: a number of seconds" ;;
    esac
    if [ "$INTERVAL" -lt 60 ] && [ "${ZTGATE_AGENT_TEST:-0}" != 1 ]; then
        die "--interval: at least 60 seconds"
    fi
fi

if [ "$DRY_RUN" = 0 ]; then
    [ -n "$GATEWAY" ] || die "--gateway is required"
    if [ -z "$CERT" ] || [ -z "$KEY" ]; then
        die "--cert and --key are required"
    fi
    [ -r "$CERT" ] || die "cannot read $CERT"
    [ -r "$KEY" ] || die "cannot read $KEY"
    [ -z "$CACERT" ] || [ -r "$CACERT" ] || die "cannot read $CACERT"
    command -v curl >/dev/null 2>&1 || die "curl is required"
fi

have() {
    command -v "$1" >/dev/null 2>&1
}

# A JSON string: only printable ASCII survives, at most 64 bytes, as the
# gateway accepts; quotes and backslashes are escaped.
json_str() {
    printf '%s' "$1" | LC_ALL=C tr -cd '\040-\176' | cut -c1-64 |
        sed 's/\\/\\\\/g; s/"/\\"/g'
}

os_release_field() {
    for f in /etc/os-release /usr/lib/os-release; do
        if [ -r "$f" ]; then
            # shellcheck disable=SC2016
            awk -F= -v k="$1" '$1 == k {
                v = substr($0, length(k) + 2)
                gsub(/^["'\'']|["'\'']$/, "", v)
                print v; exit }' "$f"
            return
        fi
    done
}

# --- disk encryption: is / on a dm-crypt (LUKS) device? -----------------

disk_encrypted() {
    dev=
    if have findmnt; then
        dev=$(findmnt -n -o SOURCE / 2>/dev/null)
    fi
    if [ -z "$dev" ]; then
        dev=$(awk '$2 == "/" { d = $1 } END { print d }' /proc/mounts \
            2>/dev/null)
    fi

    # lsblk -s lists the device and everything under it (LVM, RAID, ...)
    if have lsblk && [ -b "$dev" ] &&
        lsblk -n -s -o TYPE "$dev" 2>/dev/null | grep -qx '[[:space:]]*crypt'
    then
        echo true; return
    fi

    case $dev in
    /dev/mapper/*|/dev/dm-*)
        if have dmsetup; then
            name=${dev#/dev/mapper/}
            # the root device or one it is built on has a crypt target
            for d in "$name" $(dmsetup deps -o devname "$name" 2>/dev/null |
                sed 's/.*://' | tr -d '()')
            do
                if dmsetup table "$d" 2>/dev/null | grep -q ' crypt '; then
                    echo true; return
                fi
            done
        fi
        ;;
    esac

    echo false
}

# --- firewall: a non-empty nftables ruleset, iptables rules beyond the
# --- defaults, or ufw active ---------------------------------------------

firewall() {
    # a rule in some chain, or a chain whose policy drops
    if have nft && nft list ruleset 2>/dev/null | awk '
        /policy drop/ { found = 1 }
        $1 == "table" || $1 == "chain" || $1 == "type" || $1 == "}" \
            || NF == 0 { next }
        { found = 1 }
        END { exit !found }'
    then
        echo true; return
    fi

    if have iptables; then
        # any rule (-A) or a default policy that is not ACCEPT
        if iptables -S 2>/dev/null | grep -q -e '^-A' -e '^-P [A-Z]* DROP' \
            -e '^-P [A-Z]* REJECT'
        then
            echo true; return
        fi
    fi

    if have ufw && ufw status 2>/dev/null | grep -q '^Status: active'; then
        echo true; return
    fi

    echo false
}

# --- screen lock: GNOME's lock-enabled, best effort ----------------------

screen_lock() {
    if have gsettings; then
        v=$(gsettings get org.gnome.desktop.screensaver lock-enabled \
            2>/dev/null)
        if [ "$v" = true ]; then
            echo true; return
        fi
    fi

    echo false
}

# --- endpoint protection: a known anti-malware process running ----------

endpoint_protection() {
    for p in clamd freshclam-daemon falcon-sensor wdavdaemon mdatp \
        sav-protect savd SophosED sentinelone s1-agent esets_daemon \
        bdsecd ds_agent cbagentd osqueryd
    do
        if have pgrep && pgrep -x "$p" >/dev/null 2>&1; then
            echo true; return
        fi
    done

    echo false
}

# --- patch time: when the package manager last installed updates --------

mtime() {
    stat -c %Y "$1" 2>/dev/null
}

patch_time() {
    t=
    for f in /var/lib/apt/periodic/update-success-stamp \
        /var/lib/apt/periodic/upgrade-stamp \
        /var/lib/apt/periodic/unattended-upgrades-stamp
    do
        if [ -e "$f" ]; then
            m=$(mtime "$f")
            if [ -n "$m" ] && { [ -z "$t" ] || [ "$m" -gt "$t" ]; }; then
                t=$m
            fi
        fi
    done

    if [ -z "$t" ] && [ -r /var/log/dpkg.log ]; then
        # the last "upgrade" line: "2024-11-23 10:02:11 upgrade pkg ..."
        last=$(awk '$3 == "upgrade" { d = $1 " " $2 } END { print d }' \
            /var/log/dpkg.log)
        if [ -n "$last" ]; then
            t=$(date -u -d "$last" +%s 2>/dev/null)
        fi
    fi

    if [ -z "$t" ] && [ -d /var/lib/dpkg/info ]; then
        # the newest package file list: when a package last changed
        # shellcheck disable=SC2012 # package names are plain words
        f=$(ls -t /var/lib/dpkg/info/*.list 2>/dev/null | head -n 1)
        [ -z "$f" ] || t=$(mtime "$f")
    fi

    if [ -z "$t" ] && [ -d /var/lib/rpm ]; then
        t=$(mtime /var/lib/rpm)
    fi

    echo "${t:-}"
}

report() {
    os=$(os_release_field ID)
    ver=$(os_release_field VERSION_ID)
    [ -n "$os" ] || os=$(uname -s | tr '[:upper:]' '[:lower:]')
    [ -n "$ver" ] || ver=$(uname -r)
    pt=$(patch_time)

    printf '{"os":"%s","os_version":"%s",' "$(json_str "$os")" \
        "$(json_str "$ver")"
    if [ -n "$pt" ]; then
        printf '"patch_time":%s,' "$pt"
    fi
    printf '"disk_encrypted":%s,"firewall":%s,"screen_lock":%s,' \
        "$(disk_encrypted)" "$(firewall)" "$(screen_lock)"
    printf '"endpoint_protection":%s,"reported_at":%s}\n' \
        "$(endpoint_protection)" "$(date -u +%s)"
}

send() {
    body=$(report)

    if [ "$DRY_RUN" = 1 ]; then
        printf '%s\n' "$body"
        return 0
    fi

    set -- --silent --show-error --max-time 30 --output /dev/stderr \
        --write-out '%{http_code}' --cert "$CERT" --key "$KEY" \
        -H 'Content-Type: application/json' --data-binary @-
    if [ -n "$CACERT" ]; then
        set -- "$@" --cacert "$CACERT"
    fi

    code=$(printf '%s' "$body" | curl "$@" "https://$GATEWAY/zt/posture")
    rc=$?

    if [ $rc -ne 0 ]; then
        echo "$PROG: cannot reach https://$GATEWAY/zt/posture (curl $rc)" >&2
        return 1
    fi

    if [ "$code" != 204 ]; then
        echo "" >&2
        echo "$PROG: the gateway refused the report (HTTP $code)" >&2
        return 1
    fi

    echo "$PROG: posture reported to $GATEWAY"
    return 0
}

if [ "$MODE" = once ] || [ "$DRY_RUN" = 1 ]; then
    send
    exit $?
fi

while :; do
    send || true
    # up to 10% jitter, from the kernel's randomness (sh has no $RANDOM)
    j=$(od -An -N2 -tu2 /dev/urandom 2>/dev/null | tr -d ' ')
    j=${j:-0}
    sleep $((INTERVAL + j % (INTERVAL / 10 + 1)))
done
