#!/bin/sh
# Runs the event-loop examples as a user would: examples/loop_dial (epoll)
# and examples/loop_uv (libuv, when configure found it) each start 1,000
# lookups of distinct names and 1,000 dials at once, against the project's
# fake DNS server (tests/fake/dt-fakedns) and a loopback listener
# (tests/fake/dt-hangv6's 127.0.0.1 side, which accepts and closes), both
# on loopback ports of their own. Checks every completion line against the
# zone and the listener, the summary, and that the descriptors open after
# are those open before.
#
# When valgrind is installed and the examples are not built with a
# sanitizer, each also runs with 100 of each under valgrind memcheck:
# that is the run CI's valgrind pass relies on, since it runs test scripts
# with the shell, not under valgrind.
set -u

fail() {
  echo "FAIL: loop examples: $*"
  exit 1
}
skip() {
  echo "SKIP: loop examples: $*"
  exit 77
}

count=1000
vg_count=100
# 1,000 dials and 1,000 lookups hold a few thousand sockets at once.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 8192 ]; then
  skip "RLIMIT_NOFILE hard limit $hard is below 8192"
fi
for p in examples/loop_dial tests/fake/dt-fakedns tests/fake/dt-hangv6; do
  [ -x "$p" ] || fail "$p is not built"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dt-loopex.XXXXXX") || fail "mktemp"
dns_pid=
tcp_pid=
cleanup() {
  [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  [ -n "$tcp_pid" ] && kill "$tcp_pid" 2>/dev/null && wait "$tcp_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Name n<i>.loop.test has A 198.18.(i/256).(i%256) and AAAA 2001:db8::<i in
# hex>; dial.loop.test has only A 127.0.0.1, so every dial goes to the
# listener over IPv4 (its AAAA question gets an empty answer).
awk -v n=$count 'BEGIN {
  print "loop.test. 300 IN SOA ns.loop.test. hostmaster.loop.test. 1 3600 600 86400 60"
  print "loop.test. 300 IN NS ns.loop.test."
  print "ns.loop.test. 300 IN A 127.0.0.1"
  print "dial.loop.test. 300 IN A 127.0.0.1"
  for (i = 0; i < n; i++) {
    printf "n%d.loop.test. 300 IN A 198.18.%d.%d\n", i, int(i / 256), i % 256
    printf "n%d.loop.test. 300 IN AAAA 2001:db8::%x\n", i, i
  }
}' >"$tmp/loop.zone"

tests/fake/dt-fakedns -4 -z "$tmp/loop.zone" --port-file "$tmp/dns.port" \
  >"$tmp/dns.log" 2>&1 &
dns_pid=$!
tests/fake/dt-hangv6 --port-file "$tmp/tcp.port" >"$tmp/tcp.log" 2>&1 &
tcp_pid=$!
i=0
while [ ! -s "$tmp/dns.port" ] || [ ! -s "$tmp/tcp.port" ]; do
  i=$((i + 1))
  [ $i -le 300 ] || fail "servers did not start: $(cat "$tmp/dns.log" "$tmp/tcp.log")"
  kill -0 "$dns_pid" 2>/dev/null || fail "dt-fakedns exited: $(cat "$tmp/dns.log")"
  kill -0 "$tcp_pid" 2>/dev/null || fail "dt-hangv6 exited: $(cat "$tmp/tcp.log")"
  sleep 0.1
done
dns_port=$(cat "$tmp/dns.port")
tcp_port=$(cat "$tmp/tcp.port")
# The resolver reads only this file: never the machine's resolv.conf.
# 2,000 questions reach dt-fakedns's one socket at once and a busy machine
# can make it drop some: five tries of 1 s each get every answer through
# well inside the examples' 10 s limit.
printf 'nameserver [127.0.0.1]:%s\noptions timeout:1 attempts:5\n' \
  "$dns_port" >"$tmp/resolv.conf"

# check NAME OUTFILE N: the output of N lookups and N dials, all right.
check() {
  out=$2
  n=$3
  grep -qx "lookups: $n completed, $n ok" "$out" ||
    fail "$1: not all $n lookups ok: $(grep -v '^lookup \|^dial ' "$out")"
  grep -qx "dials: $n completed, $n ok" "$out" ||
    fail "$1: not all $n dials ok: $(grep -v '^lookup \|^dial ' "$out")"
  grep -qx "failed: none" "$out" || fail "$1: $(grep '^failed:' "$out")"
  grep -qx "max in flight: $((2 * n))" "$out" ||
    fail "$1: not all at once: $(grep '^max in flight' "$out")"
  # Each name once, with its own two addresses, IPv6 first.
  bad=$(awk -v n="$n" '
    /^lookup / {
      name = $2
      if (name !~ /^n[0-9]+\.loop\.test$/ || $3 != "ok" || NF != 5) { print; next }
      i = substr(name, 2, index(name, ".") - 2) + 0
      v6 = i ? sprintf("2001:db8::%x", i) : "2001:db8::"
      v4 = sprintf("198.18.%d.%d", int(i / 256), i % 256)
      if ($4 != v6 || $5 != v4 || seen[i]++) { print; next }
      good++
    }
    END { if (good != n) print "right lookups: " good + 0 " of " n }' "$out")
  [ -z "$bad" ] || fail "$1: wrong lookups: $(echo "$bad" | head -5)"
  dials=$(grep -cx "dial dial.loop.test:$tcp_port ok 127.0.0.1 $tcp_port" "$out")
  [ "$dials" = "$n" ] || fail "$1: $dials of $n dials reached 127.0.0.1:$tcp_port"
  fds=$(sed -n 's/^descriptors: \([0-9]*\) open before, \([0-9]*\) after$/\1 \2/p' "$out")
  set -- $fds
  [ $# = 2 ] && [ "$1" = "$2" ] || fail "descriptors leaked: $(grep '^descriptors' "$out")"
}

run() { # NAME BIN COUNT [WRAPPER...]
  name=$1
  bin=$2
  n=$3
  shift 3
  out="$tmp/$name.out"
  "$@" "$bin" -c "$n" -r "$tmp/resolv.conf" -n 'n%d.loop.test' -v \
    dial.loop.test "$tcp_port" >"$out" 2>"$tmp/$name.err"
  rc=$?
  [ $rc = 0 ] || fail "$name exited $rc: $(cat "$tmp/$name.err"; grep -v '^lookup \|^dial ' "$out")"
  check "$name" "$out" "$n"
  echo "PASS: $name: $(grep -v '^lookup \|^dial ' "$out" | tr '\n' ';')"
}

# A sanitizer build cannot run under valgrind (nor needs it).
sanitized() {
  ldd "$1" 2>/dev/null | grep -q 'lib[at]san'
}

bins=examples/loop_dial
if [ -x examples/loop_uv ]; then
  bins="$bins examples/loop_uv"
else
  echo "SKIP: loop_uv: libuv not found by configure (apt-get install libuv1-dev, then re-run configure)"
fi
for bin in $bins; do
  name=$(basename "$bin")
  run "$name" "$bin" $count
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP: $name under valgrind: valgrind not installed"
  elif sanitized "$bin"; then
    echo "SKIP: $name under valgrind: built with a sanitizer"
  else
    run "$name-valgrind" "$bin" $vg_count valgrind -q --error-exitcode=1 \
      --leak-check=full --errors-for-leak-kinds=definite,indirect
  fi
done
exit 0
