#!/bin/sh
# Runs tests/test_netem in a private network namespace whose loopback has
# tc netem loss and delay, so the resolver's retries and the dialer's
# Happy Eyeballs meet a bad network without touching the host's: every
# address involved is the namespace's own loopback. Skips (77) with a
# reason where the machine cannot: not root, no iproute2, no namespaces,
# or a kernel without sch_netem.
set -u
skip() {
  echo "SKIP: netem: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root for a network namespace"
command -v ip >/dev/null 2>&1 || skip "ip not installed (apt-get install iproute2)"
command -v tc >/dev/null 2>&1 || skip "tc not installed (apt-get install iproute2)"
ns="dt-netem-$$"
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
trap 'ip netns del "$ns" 2>/dev/null' EXIT INT TERM
ip -n "$ns" link set lo up || skip "cannot bring up lo in the namespace"
if ! tc -n "$ns" qdisc add dev lo root netem delay 1ms 2>/dev/null; then
  skip "tc netem unavailable (kernel without sch_netem)"
fi
tc -n "$ns" qdisc del dev lo root
DT_NETEM_NS="$ns" ip netns exec "$ns" ./tests/test_netem
