#!/bin/sh
# `make demo`: dialtone's main job on an embedded default, with no network.
# Starts the project's fake DNS server on loopback with tests/fake/demo.zone and
# runs the tools against it.
set -eu
build=${1:-.}
src=${2:-.}
tmp=$(mktemp -d)
pid=
hpid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$hpid" ] && kill "$hpid" 2>/dev/null && wait "$hpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$build/tests/fake/dt-fakedns" -z "$src/tests/fake/demo.zone" \
  --port-file "$tmp/port" >"$tmp/server.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: the fake DNS server did not start:" >&2
    cat "$tmp/server.log" >&2
    exit 1
  fi
  sleep 0.05
done
port=$(cat "$tmp/port")
dig="$build/tools/dtdig @127.0.0.1 -p $port"

step() {
  printf '\n$ %s\n' "$*" | sed "s#$build/tools/##"
  "$@" || true
}

echo "dialtone demo: fake DNS server for demo.example on 127.0.0.1 and ::1, port $port"
step $dig app.demo.example A
step $dig fast.demo.example AAAA +short
step $dig nope.demo.example A
step $dig demo.example MX +tcp +short
step $dig -n 3 +interval=1000 app.demo.example A +short
step $dig -n 3 +interval=1000 +json +cache app.demo.example A

# Happy Eyeballs: fast.demo.example has ::1 and 127.0.0.1; on this port
# [::1] hangs (as behind a broken IPv6 route) and 127.0.0.1 answers.
"$build/tests/fake/dt-hangv6" --port-file "$tmp/hport" >"$tmp/hang.log" 2>&1 &
hpid=$!
i=0
while [ ! -s "$tmp/hport" ]; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$hpid" 2>/dev/null; then
    echo "demo: the listener pair did not start:" >&2
    cat "$tmp/hang.log" >&2
    exit 1
  fi
  sleep 0.05
done
hport=$(cat "$tmp/hport")
dial="$build/tools/dtdial --server 127.0.0.1#$port"
step $dial fast.demo.example $hport
step $dial --json slow.demo.example $hport
