#!/bin/sh
# Installs the peers the integration tests run for real: Debian's `prometheus` and
# `prometheus-alertmanager`. Idempotent and quiet: when both binaries are present it does
# nothing (a `command -v` each, so `make test` stays fast). It never fails the build: where it
# cannot install (not Debian, not root and no password-less sudo, apt down) it says why on
# stderr and exits 0, and the integration test skips with that reason.
#
# The packages' services are not started: their defaults listen on every interface (:9090,
# :9093), and the tests start their own copies on loopback. A temporary policy-rc.d (the
# Debian way to tell maintainer scripts "do not start daemons") holds during the install
# unless the machine already has one.
set -eu

PACKAGES="prometheus prometheus-alertmanager"
BINARIES="prometheus prometheus-alertmanager"

missing=""
for bin in $BINARIES; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/bin/$bin" ] || missing="$missing $bin"
done
[ -z "$missing" ] && exit 0

warn() { echo "ensure-peers: $*; the Prometheus/Alertmanager integration test will skip" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
    warn "no apt-get here, install$missing yourself"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    warn "need root (or password-less sudo) to apt-get install $PACKAGES"
    exit 0
fi

POLICY=/usr/sbin/policy-rc.d
own_policy=""
log=$(mktemp)
cleanup() {
    if [ -n "$own_policy" ]; then $SUDO rm -f "$POLICY"; own_policy=""; fi
    rm -f "$log"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
if [ ! -e "$POLICY" ]; then
    own_policy=1
    printf '#!/bin/sh\n# ensure-peers.sh: no daemons during this install\nexit 101\n' \
        | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
fi

install() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $PACKAGES >"$log" 2>&1
}
# A stale package index is the usual reason an install fails on a fresh machine.
if ! install; then
    if ! { $SUDO apt-get update -qq >>"$log" 2>&1 && install; }; then
        tail -n 20 "$log" >&2
        warn "apt-get install $PACKAGES failed"
    fi
fi
exit 0
