#!/bin/sh
# The installed package works on its own: `make install` into a temporary
# DESTDIR, then examples/resolve.c is compiled out of the tree with nothing
# but the flags of the installed dialtone.pc (strict C99, warnings as
# errors) and run, with the installed shared library, against the fake DNS
# server on loopback. Also checks that the headers, the manual pages, the
# tools and the pkg-config file were installed.
#
#   tests/install-test.sh [BUILDDIR]
#
# BUILDDIR is a configured and built tree (default: the current directory).
# Run by CI after the Quick start and by `make installcheck`. CC may name
# the compiler (default cc).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-.}" && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dt-install.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
  echo "FAIL: install-test: $*" >&2
  exit 1
}

root=$tmp/root
make -C "$build" install DESTDIR="$root" >"$tmp/install.log" 2>&1 ||
  { tail -30 "$tmp/install.log"; fail "make install DESTDIR=$root failed"; }

# Where the .pc file says things are, inside the DESTDIR.
libdir=$(PKG_CONFIG_PATH=$build pkg-config --variable=libdir dialtone)
pcdir=$root$libdir/pkgconfig
[ -f "$pcdir/dialtone.pc" ] || fail "no dialtone.pc in $pcdir"
# PKG_CONFIG_PATH comes before the system's directories, so an older
# dialtone installed on the machine cannot answer instead; the sysroot
# puts the DESTDIR in front of the -I and -L paths.
pc() {
  PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$root pkg-config "$@" dialtone
}
cflags=$(pc --cflags) || fail "pkg-config --cflags dialtone failed"
libs=$(pc --libs) || fail "pkg-config --libs dialtone failed"
case "$cflags $libs" in
*"$root"*) ;;
*) fail "pkg-config flags do not point into the DESTDIR: $cflags $libs" ;;
esac
echo "install-test: pkg-config --cflags --libs dialtone: $cflags $libs"

# Everything a user gets.
prefix=$(PKG_CONFIG_PATH=$build pkg-config --variable=prefix dialtone)
includedir=$(PKG_CONFIG_PATH=$build pkg-config --variable=includedir dialtone)
for h in dialtone.h dialtone/common.h dialtone/conn.h dialtone/dial.h \
  dialtone/listen.h dialtone/loop.h dialtone/name.h dialtone/pool.h \
  dialtone/resolver.h dialtone/sockopt.h; do
  [ -f "$root$includedir/$h" ] || fail "header $h not installed"
done
for f in bin/dtdig bin/dtdial; do
  [ -x "$root$prefix/$f" ] || fail "$f not installed"
done
for m in man1/dtdig.1 man1/dtdial.1 man3/dialtone.3; do
  found=$(find "$root" -path "*/man/$m" | head -1)
  [ -n "$found" ] || fail "manual page $m not installed"
done
ls "$root$libdir"/libdialtone.so* >/dev/null 2>&1 ||
  fail "libdialtone.so not installed in $libdir"

# Out of the tree: a copy of the example in an empty directory, and only
# the installed package's flags.
mkdir "$tmp/user"
cp "$src/examples/resolve.c" "$tmp/user/"
# shellcheck disable=SC2086 # the flags are words
(cd "$tmp/user" && $cc -std=c99 -Wall -Wextra -Werror -o resolve resolve.c \
  $cflags $libs) || fail "examples/resolve.c does not build with pkg-config's flags"
export LD_LIBRARY_PATH="$root$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if command -v ldd >/dev/null 2>&1; then
  ldd "$tmp/user/resolve" | grep -q "libdialtone.*$root" ||
    fail "resolve does not load the installed library: $(ldd "$tmp/user/resolve")"
fi

# Against the fake DNS server with the demo zone, through a resolv.conf
# and a hosts file of our own: never the machine's.
"$build/tests/fake/dt-fakedns" -4 -z "$src/tests/fake/demo.zone" \
  --port-file "$tmp/port" >"$tmp/server.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
  i=$((i + 1))
  if [ $i -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
    cat "$tmp/server.log" >&2
    fail "the fake DNS server did not start"
  fi
  sleep 0.05
done
printf 'nameserver [127.0.0.1]:%s\n' "$(cat "$tmp/port")" >"$tmp/resolv.conf"
printf '192.0.2.55 installed.test\n' >"$tmp/hosts"
"$tmp/user/resolve" -r "$tmp/resolv.conf" -H "$tmp/hosts" -n 2 \
  fast.demo.example installed.test 198.51.100.1 >"$tmp/out" 2>&1 ||
  { cat "$tmp/out"; fail "the installed resolve failed"; }
cat "$tmp/out"
for want in "fast.demo.example: 2 addresses from dns in " \
  "fast.demo.example: 2 addresses from cache in " \
  "  ::1                        ttl 60" \
  "  127.0.0.1                  ttl 60" \
  "installed.test: 1 address from the hosts file in " \
  "  192.0.2.55                 ttl 0" \
  "198.51.100.1: 1 address from the name itself in "; do
  grep -qF -- "$want" "$tmp/out" || fail "missing \"$want\" in the output"
done
echo "PASS: install-test: installed into a DESTDIR, resolve.c built with pkg-config alone and run"
